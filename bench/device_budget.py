"""Where an evaluation's and a promotion's device time goes (issue 28, part 1).

Drives one real evaluation (evaluator.cascade.evaluate_candidate: static check, contracts, smoke,
timed runs, profile) and one real promotion (evaluator.promotion.confirm_promotion: paired runs,
each side on a fresh worker) through the evaluator's own functions, and attributes their wall
seconds to phases. The parent times every phase itself, by wrapping the evaluator's functions in
this process only (nothing is changed on disk); the worker's start is split with the
CLOCK_MONOTONIC marks its "ready" answer carries (evaluator/sandbox/worker.py `setup_marks`):

  process start   the parent's set-up of the worker, exec, the interpreter, the jail module's imports
  jail            Landlock and seccomp (evaluator/sandbox/jail.py)
  imports         torch and the evaluator in the worker
  device init     the CUDA memory limit, which initialises CUDA (nothing on the CPU)
  setup           the guard, the torch threads, the answer
  compile         the warm-up's excess over one timed run of the same worker: loading the components,
                  building the network, compilation, autotuning, first-touch allocation (on the CPU,
                  no compile: the rest only)
  warm-up run     the rest of the warm-up, one run's worth on random data
  timed runs      the parent's clock of the scored runs
  run data        the parent's untimed work around a run: the sealed data file, the logits, the accuracy
  teardown        killing the worker and removing its folder
  checks          the static check and the contracts stage (a CPU worker of its own)
  profile         the profiled run (a worker of its own, start to end)
  other           the rest: the cascade's and the rule's own work

Shares are of the whole wall time of each, so they add up to 1. The goal (issue 28): timed runs
at least half of an evaluation's and of a promotion's time on the GPU.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python bench/device_budget.py
    PYTHONPATH=$PWD python bench/device_budget.py --device cuda --data .gpu_check/cifar10_uint8.npz

A table per evaluation and promotion, then one JSON line.
"""

import argparse
import contextlib
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator import cascade, runs
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset, load_dataset, synthetic_dataset
from evaluator.promotion import confirm_promotion
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerLimits
from evaluator.settings import CascadeSettings, HarnessSettings, PromotionSettings, ScoreSettings

PHASES = ("process start", "jail", "imports", "device init", "setup", "compile", "warm-up run", "timed runs",
          "run data", "teardown", "checks", "profile", "other")
GOAL = 0.5  # timed runs' least share of the whole (issue 28)


class Budget:
    """Seconds per phase. `span` charges a phase with its block's time less what was charged inside it,
    so nested phases never count twice and the phases add up to the outermost block's wall time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.seconds: dict[str, float] = defaultdict(float)
        self.quiet = 0  # > 0: inside a block charged as a whole (a check's or the profile's worker)

    def add(self, phase: str, seconds: float) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        if not self.quiet:
            self.seconds[phase] += max(0.0, seconds)

    def move(self, source: str, target: str, seconds: float) -> None:
        """Re-charge seconds already charged (the total stays, so enclosing spans stay right)."""
        if not self.quiet:
            seconds = min(seconds, self.seconds[source])
            self.seconds[source] -= seconds
            self.seconds[target] += seconds

    def total(self) -> float:
        return sum(self.seconds.values())

    @contextlib.contextmanager
    def span(self, phase: str, whole: bool = False) -> Iterator[None]:
        """Charge `phase` with this block's time; `whole`: everything inside too, no finer phase."""
        started, charged = self.clock(), self.total()
        self.quiet += whole
        try:
            yield
        finally:
            self.quiet -= whole
            self.add(phase, self.clock() - started - (self.total() - charged))

    def shares(self) -> dict[str, float]:
        total = self.total()
        return {p: self.seconds.get(p, 0.0) / total if total else 0.0 for p in PHASES}


def split_start(budget: Budget, entered: float, marks: dict, ready: float) -> None:
    """A worker's start, from the parent's entering to its "ready" answer, by the worker's marks."""
    points = [entered, marks.get("jail_started"), marks.get("jailed"), marks.get("setup_started"),
              marks.get("device_started"), marks.get("device_ready"), ready]
    if any(not isinstance(p, (int, float)) for p in points) or sorted(points) != points:
        budget.add("setup", ready - entered)  # no usable marks (an unjailed or older worker): one phase
        return
    phases = ("process start", "jail", "imports", "setup", "device init", "setup")
    for phase, begin, end in zip(phases, points[:-1], points[1:], strict=True):
        budget.add(phase, end - begin)


def split_warm_up(budget: Budget, warm_up: float, timed: float) -> None:
    """The warm-up, charged to "compile" when it ended, is one run on random data plus what only a
    first run pays (compile, allocation): one timed run's worth of it moves to "warm-up run"."""
    budget.move("compile", "warm-up run", min(warm_up, timed))


@contextlib.contextmanager
def instrumented(budget: Budget) -> Iterator[None]:
    """Wrap the evaluator's functions in this process so that they report to `budget`; restore them after."""
    originals: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, make: Callable[[Callable], Callable]) -> None:
        original = getattr(owner, name)
        originals.append((owner, name, original))
        setattr(owner, name, make(original))

    def enter(original):
        def wrapper(worker: SandboxedWorker):
            worker.budget_entered = budget.clock()
            return original(worker)
        return wrapper

    def request(original):
        def wrapper(worker: SandboxedWorker, header: dict, expected: str, timeout: float, payload: bytes = b""):
            started = budget.clock()
            answer = original(worker, header, expected, timeout, payload)
            if header["type"] == "setup":
                split_start(budget, getattr(worker, "budget_entered", started), answer[0].get("marks") or {}, budget.clock())
            elif header["type"] == "warmup":
                worker.budget_warm_up = budget.clock() - started
                budget.add("compile", worker.budget_warm_up)  # split once the timed run is known
            return answer
        return wrapper

    def timed_request(original):
        def wrapper(worker: SandboxedWorker, *args, **kwargs):
            answer, payload, seconds = original(worker, *args, **kwargs)
            budget.add("timed runs", seconds)
            split_warm_up(budget, getattr(worker, "budget_warm_up", 0.0), seconds)
            worker.budget_warm_up = 0.0
            return answer, payload, seconds
        return wrapper

    def spanned(phase: str, whole: bool = False):
        def make(original):
            def wrapper(*args, **kwargs):
                with budget.span(phase, whole):
                    return original(*args, **kwargs)
            return wrapper
        return make

    patch(SandboxedWorker, "__enter__", enter)
    patch(SandboxedWorker, "request", request)
    patch(SandboxedWorker, "timed_request", timed_request)
    patch(SandboxedWorker, "kill", spanned("teardown"))
    patch(SandboxedWorker, "__exit__", spanned("teardown"))
    patch(runs, "timed_sample", spanned("run data"))
    for name in ("static_stage", "contracts_stage"):
        patch(cascade, name, spanned("checks", whole=True))
    patch(cascade, "fresh_profile", spanned("profile", whole=True))
    try:
        yield
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


def measure(run: Callable[[], object]) -> tuple[Budget, object]:
    """One evaluation or promotion, its phases charged; what is left over is "other"."""
    budget = Budget()
    with instrumented(budget), budget.span("other"):
        result = run()
    return budget, result


def report(name: str, budget: Budget, runs_count: int) -> dict:
    shares = budget.shares()
    on_device = budget.total() - budget.seconds.get("checks", 0.0)  # the checks run in a CPU worker, wherever the runs go
    return {"what": name, "wall_s": round(budget.total(), 2), "timed_runs": runs_count,
            "timed_share": round(shares["timed runs"], 3), "goal_met": shares["timed runs"] >= GOAL,
            "timed_share_without_checks": round(budget.seconds.get("timed runs", 0.0) / on_device, 3) if on_device else 0.0,
            "seconds": {p: round(budget.seconds.get(p, 0.0), 3) for p in PHASES},
            "shares": {p: round(s, 4) for p, s in shares.items()}}


def print_table(rows: list[dict]) -> None:
    print(f"{'phase':15s}" + "".join(f"{r['what'] + ' s':>16s}{'share':>8s}" for r in rows))
    for phase in PHASES:
        print(f"{phase:15s}" + "".join(f"{r['seconds'][phase]:16.2f}{100 * r['shares'][phase]:7.1f}%" for r in rows))
    print(f"{'whole':15s}" + "".join(f"{r['wall_s']:16.2f}{100.0:7.1f}%" for r in rows))
    for r in rows:
        verdict = "meets" if r["goal_met"] else "misses"
        print(f"{r['what']}: {r['timed_runs']} timed runs, {100 * r['timed_share']:.1f}% of its time "
              f"({100 * r['timed_share_without_checks']:.1f}% without the CPU checks): {verdict} the goal of {100 * GOAL:.0f}%")


def dataset_for(args: argparse.Namespace) -> Dataset:
    if args.data == "synthetic":
        return synthetic_dataset(args.train, args.test, seed=1)
    return load_dataset(args.data)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--data", default="synthetic", help="synthetic, or a .npz")
    parser.add_argument("--train", type=int, default=2000, help="synthetic training images")
    parser.add_argument("--test", type=int, default=500, help="synthetic test images")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the evaluation")
    parser.add_argument("--pairs", type=int, default=2, help="pairs of the promotion")
    parser.add_argument("--candidate", default="baseline", help="evaluated set (its tta module as the change); promotion candidate")
    parser.add_argument("--incumbent", default="baseline", help="the promotion's champion")
    parser.add_argument("--what", default="both", choices=["both", "evaluation", "promotion"],
                        help="what to measure (bench/gpu_check.py's promotion step measures a promotion already)")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="leave the profiled run out")
    parser.add_argument("--target", type=float, default=0.1, help="accuracy target (low on synthetic data: no early stop)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="hyperparameter override (default on the CPU: epochs=3)")
    args = parser.parse_args(argv)
    if args.device == "cpu" and not any(kv.startswith("epochs=") for kv in args.overrides):
        args.overrides.append("epochs=3")
    return args


def main(argv: list[str] | None = None) -> int:
    from evolve.cli.arguments import parse_overrides

    args = parse_args(argv)
    dataset = dataset_for(args)
    harness = HarnessSettings(device=args.device, data=args.data, hyperparams=parse_overrides(args.overrides))
    score = ScoreSettings(target=args.target)
    limits = WorkerLimits(setup_seconds=600, warmup_seconds=600, run_seconds=600)
    candidate, incumbent = ComponentSet.shipped(args.candidate), ComponentSet.shipped(args.incumbent)
    rows = []
    if args.what in ("both", "evaluation"):
        settings = CascadeSettings(runs=args.runs, min_runs=max(2, args.runs), profile=args.profile, limits=limits)
        budget, evaluation = measure(lambda: cascade.evaluate_candidate(candidate, ["tta"], dataset, harness, score, settings))
        if evaluation.status != "evaluated":
            raise SystemExit(f"the evaluation did not complete: {evaluation.status}: {[s.message for s in evaluation.stages]}")
        rows.append(report("evaluation", budget, len(evaluation.samples)))
    if args.what in ("both", "promotion"):
        budget, decision = measure(lambda: confirm_promotion(
            candidate, incumbent, dataset, harness, score, PromotionSettings(pairs=args.pairs, power=0, limits=limits)))
        if decision.pairs < args.pairs:
            raise SystemExit(f"the promotion measured {decision.pairs} of {args.pairs} pairs: {decision.reason}")
        rows.append(report("promotion", budget, 2 * decision.pairs))
    print_table(rows)
    print(json.dumps({"device": args.device, "data": args.data, "overrides": args.overrides, "runs": args.runs,
                      "pairs": args.pairs, "candidate": args.candidate, "incumbent": args.incumbent, "budgets": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
