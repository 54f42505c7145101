"""The first real GPU run in one command: every open CUDA measurement, each under its own deadline.

Steps, in order (each a child process in its own process group, killed when its deadline passes):

1. data: decode the shared JPEG pack (or, for a CPU dry run, write a small synthetic set);
2. eval: `evolve eval` of the baseline through the full sandboxed cascade (compile on CUDA):
   smoke and timed stages, and the parent's clock against the CUDA-event time of every run;
3. comparison: bench/speedrun_comparison.py, interleaved rounds of frontier, record and
   cifar10_speedrun.py, then baseline and airbench94_muon.py if the deadline leaves time;
4. promotion: evaluator.promotion.confirm_promotion of record against baseline (two fresh workers a pair),
   its time split into phases by bench/device_budget.py (process start, imports, compile, timed runs...);
5. search: a short `evolve start` with the built-in mutator (one child, no compile, no paired
   comparison: the promotion step measures one), then `evolve export` of its champion
   (not --verify: that check runs on the CPU whatever the device, minutes of a device session, and
   tests/test_export.py makes it wherever the tests run).

Every step writes its JSON under --out as soon as it ends (data.json, eval.json, comparison.json,
promotion.json, search.json; summary.json holds them all), so a run cut short keeps what it has.
The whole stops itself before --total-seconds (470 by default, under the 8 minutes one device
call may spend on it). Before the first step it prints each step's estimate (ESTIMATES, by
device) against the deadline; a step is not started when less time is left than its estimate,
and the comparison, which ends itself at its deadline, gets what the later steps' estimates
leave. Steps use only public entry points (the evolve CLI, the bench scripts,
confirm_promotion), so that changes inside evaluator/ and evolve/ do not break this script.

On the GPU machine (docs/BENCHMARKS.md has the preparation and the exact device call):

    python bench/gpu_check.py --out $OUT/gpu_check

A CPU dry run of the same steps, a tiny network on synthetic data (tests/test_gpu_check.py runs a
smaller one):

    python bench/gpu_check.py --dry-run --out /tmp/gc/out --workdir /tmp/gc/work
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's evaluator and components, also when run as a script

STEPS = ("data", "eval", "comparison", "promotion", "search")
# Seconds each step may take at most on the GPU; unused time is left to the steps after it.
BUDGETS = {"data": 45.0, "eval": 130.0, "comparison": 170.0, "promotion": 210.0, "search": 180.0}
# Seconds each step is expected to take with the defaults, by device: printed as the plan before the
# first step, and a step is not started when less time is left than its estimate (it could not finish).
# GPU: no step has been measured on one yet; from docs/BENCHMARKS.md ("One timed run per worker"):
# 20-60 s a sample with compile (a fresh worker: CUDA, a cold compile, the warm-up, one run), 5-10 s
# without; taken as 40 s and 8 s, and 5 s a CPU contract worker. eval: contracts + 2 compiled samples;
# promotion: 2 pairs = 4 compiled samples; search (no compile): the seed's and one child's evaluation
# (contracts + 2 samples each), the CLI and the export; comparison: its least useful
# share: it stops itself at its deadline and gets what the later steps' estimates leave.
# CPU: the --dry-run preset as measured on the 2-core machine under load (docs/BENCHMARKS.md, "The first
# real GPU run"), about 12-15 s a sandboxed worker there.
ESTIMATES = {
    "cuda": {"data": 20.0, "eval": 85.0, "comparison": 60.0, "promotion": 165.0, "search": 60.0},
    "cpu": {"data": 2.0, "eval": 45.0, "comparison": 35.0, "promotion": 85.0, "search": 130.0},
}
ELASTIC = {"comparison"}  # ends itself at its own deadline, so it may take the time the others leave
DRY_RUN = {"device": "cpu", "data": "synthetic", "synthetic_size": (300, 100), "target": 0.2, "rounds": 2,
           "contestants": "frontier,cifar10_speedrun", "optional": ""}  # one of ours, one reference (skipped without .refs)
TINY = ["epochs=1", "width1=8", "width2=8", "width3=8", "batch_size=50", "tta_batch_size=50", "whiten_init_images=100"]
EXPORT_RESERVE = 30.0  # of the search step's time, kept for `evolve export` of its champion
# The search step's loop compares no child with its champion (the gate wants this gain): a comparison
# takes at least 3 pairs at the first attempt's alpha, 6 fresh workers, and the promotion step measures one.
NO_PROMOTION_GAIN = 1e9
KILL_GRACE = 5.0  # seconds between SIGINT and SIGKILL when a deadline passes
CLOCK_GOAL = 0.01  # the parent's clock and the CUDA events should agree within 1%


@dataclass
class StepResult:
    step: str
    status: str  # ok, failed, timeout or skipped
    seconds: float = 0.0
    budget: float = 0.0
    summary: str = ""
    result: dict = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)
    log_tail: str = ""


@dataclass
class Bounded:
    returncode: int | None  # None: killed at its deadline
    stdout: str
    stderr: str
    seconds: float


def run_bounded(command: list[str], timeout: float, log: Path, env: dict | None = None) -> Bounded:
    """Run a child in its own process group; at the deadline interrupt it, then kill the whole group."""
    t0 = time.perf_counter()
    with open(log, "w") as out, open(log.with_suffix(".err"), "w") as err:
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, start_new_session=True, env=env)
        try:
            returncode = child.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            returncode = None
            os.killpg(child.pid, signal.SIGINT)
            try:
                child.wait(timeout=KILL_GRACE)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
    return Bounded(returncode, log.read_text(), log.with_suffix(".err").read_text(), time.perf_counter() - t0)


def tail(text: str, chars: int = 3000) -> str:
    return text[-chars:]


def overrides(args: argparse.Namespace) -> list[str]:
    return [item for kv in args.overrides for item in ("--set", kv)]


# ---------------------------------------------------------------------------------------------
# The steps. Each takes its time limit and returns a StepResult. A step imports the project's modules
# it needs inside itself: an import broken by a change fails that step alone, and the others still
# spend the scarce device time on their measurements.


def step_data(args: argparse.Namespace, limit: float) -> StepResult:
    npz = args.workdir / "cifar10_uint8.npz"
    if args.data == "synthetic":
        import numpy as np

        from evaluator.data import synthetic_dataset

        n_train, n_test = args.synthetic_size
        d = synthetic_dataset(n_train, n_test, seed=0)
        np.savez(npz, train_images=d.train_images, train_labels=d.train_labels, test_images=d.test_images, test_labels=d.test_labels)
        return StepResult("data", "ok", summary=f"synthetic: {n_train} train, {n_test} test images", result={"npz": str(npz)})
    decoder = args.decoder or args.jpeg_pack.parent / "decode_cifar10_jpeg75.py"
    command = [sys.executable, str(decoder), str(args.jpeg_pack.resolve()), str(npz)]
    if not args.jpeg_pack.exists() or not decoder.exists():
        return StepResult("data", "failed", summary=f"{args.jpeg_pack} or {decoder} is missing: run bench/prepare_gpu_check.sh", commands=[command])
    run = run_bounded(command, limit, args.workdir / "data.log")
    status = "timeout" if run.returncode is None else "ok" if run.returncode == 0 and npz.exists() else "failed"
    result = {"npz": str(npz), "decode_seconds": run.seconds}
    if status == "ok":
        from evaluator.data import load_npz

        result["dataset"] = load_npz(npz).describe()
    return StepResult("data", status, summary=f"decoded in {run.seconds:.1f} s", result=result, commands=[command],
                      log_tail=tail(run.stdout + run.stderr))


def step_eval(args: argparse.Namespace, limit: float) -> StepResult:
    """The baseline through `evolve eval`: the whole cascade as a candidate goes, compile included on CUDA."""
    # The baseline set as a candidate that replaced its own tta module: the whole set trains, and the
    # cascade's CPU contract stage checks that one module only, as for a mutated child.
    command = [sys.executable, "-m", "evolve", "eval", "components/baseline/tta.py", "--components", "baseline",
               "--device", args.device, "--data", str(args.npz), "--runs", str(args.eval_runs),
               "--min-runs", str(args.eval_runs), "--target", str(args.target), "--json", *overrides(args)]
    run = run_bounded(command, limit, args.workdir / "eval.log")
    if run.returncode is None:
        return StepResult("eval", "timeout", summary=f"killed after {limit:.0f} s", commands=[command], log_tail=tail(run.stderr))
    try:
        evaluation = json.loads(run.stdout)
    except json.JSONDecodeError:
        return StepResult("eval", "failed", summary=f"exit {run.returncode}, no JSON", commands=[command], log_tail=tail(run.stdout + run.stderr))
    clocks = []
    for s in evaluation.get("samples", []):
        device = s.get("device_time_seconds")
        gap = None if device is None else (s["time_seconds"] - device) / device
        clocks.append({"run": s["run"], "parent_seconds": s["time_seconds"], "cuda_event_seconds": device,
                       "relative_gap": gap, "accuracy": s["accuracy"]})
    gaps = [abs(c["relative_gap"]) for c in clocks if c["relative_gap"] is not None]
    stages = [{k: st.get(k) for k in ("stage", "status", "seconds", "message")} for st in evaluation.get("stages", [])]
    result = {
        "status": evaluation.get("status"),
        "stages": stages,
        "clocks": clocks,
        "max_relative_gap": max(gaps) if gaps else None,
        "clocks_within_goal": all(g <= CLOCK_GOAL for g in gaps) if gaps else None,
        "evaluation_wall_seconds": sum(st.get("seconds") or 0 for st in stages),
        "process_wall_seconds": run.seconds,
        "summary": evaluation.get("summary"),
        "flags": evaluation.get("flags", []),
    }
    passed = [st["stage"] for st in stages if st["status"] == "passed"]
    ok = evaluation.get("status") == "evaluated" and {"smoke", "timed"} <= set(passed)
    clock = f"clocks differ by at most {100 * max(gaps):.2f}% (goal {100 * CLOCK_GOAL:.0f}%)" if gaps else "no CUDA-event times"
    summary = f"{evaluation.get('status')}; {len(clocks)} runs; {clock}; evaluation wall {result['evaluation_wall_seconds']:.1f} s"
    return StepResult("eval", "ok" if ok else "failed", summary=summary, result=result, commands=[command],
                      log_tail=tail(run.stderr))


def step_comparison(args: argparse.Namespace, limit: float) -> StepResult:
    out = args.out / "comparison.json"
    command = [sys.executable, "bench/speedrun_comparison.py", "--device", args.device, "--data", str(args.npz),
               "--runs", str(args.rounds), "--only", args.contestants, "--optional", args.optional,
               "--deadline", f"{max(1.0, limit - 15):.0f}", "--airbench", str(args.refs / "airbench94_muon.py"),
               "--speedrun", str(args.refs / "cifar10_speedrun.py"), "--workdir", str(args.workdir / "bench"),
               "--out", str(out), *overrides(args)]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    run = run_bounded(command, limit, args.workdir / "comparison.log")
    report = json.loads(out.read_text()) if out.exists() else {}
    rows = report.get("contestants", [])
    status = "timeout" if run.returncode is None else "ok" if run.returncode == 0 and rows else "failed"
    cells = [f"{r['name']} {r['time_mean']:.3f}s {100 * r['accuracy_mean']:.2f}% (n={r['runs']})" for r in rows]
    return StepResult("comparison", status, summary="; ".join(cells) or "no rounds", result=report, commands=[command],
                      log_tail=tail(run.stdout[-2000:] + run.stderr))


def step_promotion(args: argparse.Namespace, limit: float) -> StepResult:
    out = args.workdir / "promotion_decision.json"
    command = [sys.executable, "bench/gpu_check.py", "--promotion-only", "--device", args.device, "--npz", str(args.npz),
               "--pairs", str(args.pairs), "--target", str(args.target), "--workdir", str(args.workdir),
               "--out", str(args.out), *overrides(args)]
    budget_file = args.workdir / "promotion_budget.json"
    for stale in (out, budget_file):  # an earlier run's, in the same --workdir
        stale.unlink(missing_ok=True)
    run = run_bounded(command, limit, args.workdir / "promotion.log")
    if run.returncode is None or not out.exists():
        status = "timeout" if run.returncode is None else "failed"
        return StepResult("promotion", status, summary=f"no decision ({status})", commands=[command], log_tail=tail(run.stdout + run.stderr))
    decision = json.loads(out.read_text())
    measured = decision.get("pairs", 0) >= args.pairs and not decision.get("reason", "").startswith("the paired re-measurement failed")
    summary = f"record vs baseline: {'promoted' if decision.get('promoted') else 'not promoted'} after {decision.get('pairs')} pairs"
    if budget_file.exists():  # bench/device_budget.py's phases of this promotion
        decision["budget"] = json.loads(budget_file.read_text())
        summary += f" (timed runs {100 * decision['budget']['timed_share']:.0f}% of its {decision['budget']['wall_s']:.0f} s)"
    summary += f": {decision.get('reason', '')[:160]}"
    return StepResult("promotion", "ok" if measured else "failed", summary=summary, result=decision, commands=[command],
                      log_tail=tail(run.stderr))


def promotion_only(args: argparse.Namespace) -> int:
    """Child of the promotion step: the paired rule through its public entry point, as the loop calls it."""
    from bench.device_budget import measure, report
    from evaluator.component_set import ComponentSet
    from evaluator.data import load_npz
    from evaluator.promotion import PromotionSettings, confirm_promotion
    from evaluator.settings import HarnessSettings, ScoreSettings
    from evolve.cli.arguments import parse_overrides

    harness = HarnessSettings(device=args.device, data=str(args.npz), hyperparams=parse_overrides(args.overrides))
    dataset = load_npz(args.npz)
    budget, decision = measure(lambda: confirm_promotion(  # its time, phase by phase (issue 28, part 1)
        ComponentSet.shipped("record"), ComponentSet.shipped("baseline"), dataset, harness,
        ScoreSettings(target=args.target), PromotionSettings(pairs=args.pairs),
    ))
    (args.workdir / "promotion_decision.json").write_text(decision.model_dump_json(indent=2))
    (args.workdir / "promotion_budget.json").write_text(json.dumps(report("promotion", budget, 2 * decision.pairs), indent=2))
    return 0


def step_search(args: argparse.Namespace, limit: float) -> StepResult:
    db = f"sqlite:///{args.workdir / 'evolve.db'}"
    name = "gpu-check"
    search = [sys.executable, "-m", "evolve", "start", "--components", "baseline", "--component", "hyperparams",
              "--device", args.device, "--data", str(args.npz), "--db", db, "--name", name, "--generations", "1",
              "--set", "candidates_per_generation=1", "--set", "harness.compile=false", "--set", f"cascade.runs={args.eval_runs}",
              "--set", f"promotion.min_gain_seconds={NO_PROMOTION_GAIN:g}",
              "--set", "cascade.min_runs=2", "--set", f"promotion.pairs={args.pairs}", "--set", f"score.target={args.target}",
              *[item for kv in args.overrides for item in ("--set", f"harness.hyperparams.{kv}")]]
    script = args.workdir / "speedrun_export.py"
    export = [sys.executable, "-m", "evolve", "export", name, "--db", db, "-o", str(script)]
    run = run_bounded(search, max(1.0, limit - EXPORT_RESERVE), args.workdir / "search.log")
    exported = run_bounded(export, max(1.0, limit - run.seconds), args.workdir / "export.log")
    result = {"search_seconds": run.seconds, "search_exit": run.returncode, "search_finished": run.returncode == 0,
              "export_seconds": exported.seconds, "export_exit": exported.returncode, "search_log_tail": tail(run.stdout, 2000)}
    status = "ok" if run.returncode == 0 and exported.returncode == 0 else "timeout" if None in (run.returncode, exported.returncode) else "failed"
    search_state = "finished" if run.returncode == 0 else "stopped at its deadline" if run.returncode is None else f"exit {run.returncode}"
    export_state = "champion exported" if exported.returncode == 0 else "champion not exported"
    return StepResult("search", status, summary=f"search {search_state} in {run.seconds:.0f} s; {export_state}",
                      result=result, commands=[search, export], log_tail=tail(exported.stdout + exported.stderr))


RUNNERS = {"data": step_data, "eval": step_eval, "comparison": step_comparison, "promotion": step_promotion, "search": step_search}


# ---------------------------------------------------------------------------------------------


def environment() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "python": sys.version.split()[0],
    }


def print_table(results: list[StepResult], total: float, limit: float, estimates: dict[str, float]) -> None:
    print(f"\n{'step':12s}{'status':>9s}{'seconds':>10s}{'estimate':>10s}{'budget':>9s}  result")
    for r in results:
        print(f"{r.step:12s}{r.status:>9s}{r.seconds:10.1f}{estimates[r.step]:10.0f}{r.budget:9.0f}  {r.summary}")
    comparison = next((r for r in results if r.step == "comparison" and r.result.get("contestants")), None)
    if comparison:
        base = comparison.result.get("ratio_base")
        print(f"\n{'contestant':18s}{'runs':>5s}{'time (s)':>18s}{'accuracy (%)':>16s}{'lower bound':>13s}{'/ ' + str(base):>20s}")
        for row in comparison.result["contestants"]:
            ratio = f"{row['time_ratio']:.4f}" if "time_ratio" in row else "-"
            print(f"{row['name']:18s}{row['runs']:5d}{row['time_mean']:10.4f} ± {row['time_std']:.4f}"
                  f"{100 * row['accuracy_mean']:9.2f} ± {100 * row['accuracy_std']:.2f}"
                  f"{100 * row['accuracy_lower_bound']:13.2f}{ratio:>20s}")
    print(f"\ntotal {total:.1f} s of {limit:.0f} s ({100 * total / limit:.0f}%)")


def plan(args: argparse.Namespace, budgets: dict[str, float]) -> dict[str, float]:
    """Each step's expected seconds on this device, printed up front with the sum against the deadline."""
    estimates = {step: 0.0 if step in args.skip else ESTIMATES[args.device][step] for step in STEPS}
    print(f"{'step':12s}{'estimate':>10s}{'budget':>9s}{'ends by':>9s}")
    ends = 0.0
    for step in STEPS:
        ends += estimates[step]
        print(f"{step:12s}{estimates[step]:10.0f}{budgets[step]:9.0f}{ends:9.0f}" + ("  (skipped)" if step in args.skip else ""))
    total = sum(estimates.values())
    print(f"estimated {total:.0f} s of {args.total_seconds:.0f} s ({100 * total / args.total_seconds:.0f}%)", flush=True)
    return estimates


def step_limit(step: str, left: float, budget: float, estimates: dict[str, float]) -> tuple[float, str]:
    """The step's deadline, or why it is not started: less time left than it needs cannot finish it.
    An elastic step gets what the later steps' estimates leave, at least its own estimate."""
    if left < max(2.0, estimates[step]):
        return 0.0, f"not started: needs about {estimates[step]:.0f} s, {left:.0f} s left"
    if step in ELASTIC:
        later = sum(estimates[s] for s in STEPS[STEPS.index(step) + 1:])
        return min(budget, max(estimates[step], left - later)), ""
    return min(budget, left), ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON results (created)")
    parser.add_argument("--dry-run", action="store_true",
                        help="the CPU check of every step: --device cpu --data synthetic --synthetic-size 300,100, a tiny "
                             "network (--set " + " ".join(TINY) + " unless --set is given), --target 0.2 --rounds 2 "
                             "--contestants frontier,cifar10_speedrun --optional ''")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--data", default="jpeg", choices=["jpeg", "synthetic"], help="the shared JPEG pack, or synthetic (dry run)")
    parser.add_argument("--jpeg-pack", type=Path, default=ROOT / ".data" / "cifar10_jpeg75.npz")
    parser.add_argument("--decoder", type=Path, default=None, help="default: decode_cifar10_jpeg75.py beside the pack")
    parser.add_argument("--synthetic-size", type=lambda s: tuple(int(x) for x in s.split(",")), default=(2000, 500),
                        metavar="TRAIN,TEST", help="image counts of the synthetic set")
    parser.add_argument("--refs", type=Path, default=ROOT / ".refs", help="folder holding airbench94_muon.py and cifar10_speedrun.py")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".gpu_check", help="decoded data, logs, the search's database")
    parser.add_argument("--total-seconds", type=float, default=470.0, help="the whole stops itself before this")
    parser.add_argument("--budget", action="append", default=[], metavar="STEP=SECONDS", help="a step's own deadline")
    parser.add_argument("--skip", action="append", default=[], choices=STEPS, help="leave a step out (repeatable)")
    parser.add_argument("--eval-runs", type=int, default=2, help="timed runs of the baseline's evaluation and of search candidates")
    parser.add_argument("--rounds", type=int, default=50, help="most comparison rounds (the deadline usually ends them first)")
    parser.add_argument("--contestants", default="frontier,record,cifar10_speedrun,baseline,airbench94_muon", help="round order")
    parser.add_argument("--optional", default="baseline,airbench94_muon", help="contestants that join only if time allows")
    parser.add_argument("--pairs", type=int, default=2,
                        help="paired runs of the promotion step (each sets up and warms up two fresh workers, compile included)")
    parser.add_argument("--target", type=float, default=0.94, help="accuracy target of the scores")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="hyperparameter override for every set and step (CPU dry runs: epochs=1, width1=8, ...)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--promotion-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--npz", type=Path, default=None, help=argparse.SUPPRESS)
    if parser.parse_known_args(argv)[0].dry_run:
        parser.set_defaults(**DRY_RUN)
    args = parser.parse_args(argv)
    if args.dry_run and not args.overrides:
        args.overrides = list(TINY)
    if args.data == "synthetic" and args.device == "cuda" and not args.promotion_only:
        parser.error("--data synthetic is for CPU dry runs: add --device cpu")
    for item in args.budget:
        step, _, seconds = item.partition("=")
        if step not in STEPS or not seconds:
            parser.error(f"--budget {item!r}: expected STEP=SECONDS with STEP one of {', '.join(STEPS)}")
    args.out, args.workdir = args.out.resolve(), args.workdir.resolve()
    args.npz = (args.npz or args.workdir / "cifar10_uint8.npz").resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.promotion_only:
        return promotion_only(args)
    budgets = {**BUDGETS, **{s: float(v) for s, _, v in (b.partition("=") for b in args.budget)}}
    deadline = started + args.total_seconds
    estimates = plan(args, budgets)
    summary = {"environment": environment(), "arguments": sys.argv[1:] if argv is None else argv, "estimates": estimates,
               "steps": {}}
    results: list[StepResult] = []
    for step in STEPS:
        limit, refusal = step_limit(step, deadline - time.perf_counter(), budgets[step], estimates)
        if step in args.skip or refusal:
            result = StepResult(step, "skipped", summary="--skip" if step in args.skip else refusal)
        elif step != "data" and not args.npz.exists():
            result = StepResult(step, "skipped", summary="no data: the data step failed")
        else:
            print(f"[{time.perf_counter() - started:6.1f} s] {step} (at most {limit:.0f} s)...", flush=True)
            t0 = time.perf_counter()
            try:
                result = RUNNERS[step](args, limit)
            except Exception as e:  # noqa: BLE001  one broken step must not cost the others their results
                result = StepResult(step, "failed", summary=f"{type(e).__name__}: {e}"[:300])
            result.seconds, result.budget = time.perf_counter() - t0, limit
        results.append(result)
        record = vars(result)
        summary["steps"][step] = record
        if step != "comparison":  # the bench writes comparison.json itself, round by round
            (args.out / f"{step}.json").write_text(json.dumps(record, indent=2, default=str))
        summary["total_seconds"] = time.perf_counter() - started
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print_table(results, time.perf_counter() - started, args.total_seconds, estimates)
    return 0 if all(r.status in ("ok", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
