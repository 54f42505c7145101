"""What one timed run per worker costs: where a scored sample's seconds go, under both protocols.

Every scored sample comes from a fresh worker (evaluator/runs.py `fresh_run`). Two protocols,
measured side by side in one run (`--protocol both`, samples alternating):

- `old` (issue 25): start the jailed process with an empty private compile cache, set it up,
  warm up with a full run on random data, one timed run, kill.
- `new` (issue 28, part 2): once per evaluation the set's smoke worker (`prepare_set`: a short and
  a full warm-up, no data, its compile cache harvested); then per sample a worker seeded with a
  copy of that cache, a short warm-up (`--warmup-batches` batches per epoch), one timed run, kill.

Each part is timed by the parent with the evaluator's own functions. The summary gives, per
protocol, the mean sample, its timed share, and an evaluation of `--runs` runs (old: runs x
sample; new: the smoke worker + runs x sample). `--import-rounds K` also times, in K alternating
rounds of fresh interpreters, the worker module's imports against those plus the modules it no
longer imports at start (contracts, behaviour, profiling).

    OMP_NUM_THREADS=1 python bench/fresh_worker_cost.py --samples 4 --runs 4 --protocol both --import-rounds 6
    python bench/fresh_worker_cost.py --device cuda --data ../shared/data/cifar10_jpeg.npz --epochs 9.9 --compile --protocol both

One JSON line per sample, then a summary line per protocol (and one for the imports).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.component_set import ComponentSet
from evaluator.data import load_dataset, synthetic_dataset
from evaluator.runs import fresh_seed, prepare_set, set_up_worker, timed_sample, warm_up
from evaluator.sandbox.compile_cache import CompileCache, folder_bytes
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerLimits, child_pids
from evaluator.settings import HarnessSettings

LAZY_MODULES = ("evaluator.behaviour", "evaluator.contracts", "evaluator.profiling")


def one_sample(component_set, dataset, harness, limits, cache: CompileCache | None) -> dict:
    """The parts of `fresh_run`, each timed by the parent; `cache` None: the old protocol."""
    t0, cpu = time.perf_counter(), []
    worker = SandboxedWorker(limits, harness.device, 0 if harness.device == "cuda" else None, cache=cache)
    measure_cpu_at_kill(worker, cpu)
    worker.__enter__()
    try:
        started = time.perf_counter()
        set_up_worker(worker, component_set, harness)  # answers once the process has started, imported, loaded the set
        ready = time.perf_counter()
        warmup_s = warm_up(worker, dataset, fresh_seed(), None if cache is None else harness.warmup_batches)
        worker.warmup_seconds = warmup_s if cache is None else max(warmup_s, cache.full_warmup_seconds())
        warm = time.perf_counter()
        cpu_warm = sum(process_cpu_seconds(pid) for pid in child_pids(worker.process.pid))
        sample = timed_sample(worker, 0, fresh_seed(), dataset, 0.05, [])
        ran = time.perf_counter()
    finally:
        worker.__exit__(None, None, None)
    done = time.perf_counter()
    return {
        "protocol": "old" if cache is None else "new",
        "start_s": round(started - t0, 3),  # Popen, the cache's copy into the worker's folder included
        "process_and_setup_s": round(ready - started, 3),  # interpreter, jail, imports, the set loaded
        "warmup_s": round(warm - ready, 3),
        "timed_s": round(sample.time_seconds, 3),
        "timed_request_and_kill_s": round(ran - warm, 3),
        "teardown_s": round(done - ran, 3),
        "total_s": round(done - t0, 3),
        "cpu_s": round(sum(cpu), 3),  # the worker's own CPU, all parts: robust to load
        "timed_cpu_s": round(sum(cpu) - cpu_warm, 3),  # its CPU from "go" to the kill
        "accuracy": round(sample.accuracy, 4),
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, all its threads and its reaped children (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def measure_cpu_at_kill(worker: SandboxedWorker, found: list[float]) -> None:
    """Before the worker's first kill, the CPU its namespace's init (the worker's Python) has used:
    a measure of a sample's work that a loaded machine inflates far less than the wall clock."""
    real_kill = worker.kill

    def kill() -> None:
        if not found and worker.process is not None and worker.process.poll() is None:
            found.extend(process_cpu_seconds(pid) for pid in child_pids(worker.process.pid))
        real_kill()

    worker.kill = kill


def smoke_seconds(component_set, dataset, harness, limits) -> tuple[float, CompileCache]:
    """The new protocol's once-per-evaluation part: the smoke worker that fills the set's cache."""
    found: list[float] = []
    real_enter = SandboxedWorker.__enter__

    def enter(worker: SandboxedWorker) -> SandboxedWorker:
        measure_cpu_at_kill(worker, found)
        return real_enter(worker)

    started = time.perf_counter()
    SandboxedWorker.__enter__ = enter  # the smoke worker is made inside prepare_set
    try:
        cache = prepare_set(component_set, dataset, harness, limits, smoke=False)
    finally:
        SandboxedWorker.__enter__ = real_enter
    return time.perf_counter() - started, sum(found), cache


def summary(rows: list[dict], protocol: str, runs: int, smoke: float, smoke_cpu: float) -> dict:
    mine = [r for r in rows if r["protocol"] == protocol]

    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in mine)

    per_evaluation = smoke + runs * mean("total_s")
    return {
        "summary": protocol, "samples": len(mine), "mean_start_s": round(mean("start_s"), 3),
        "mean_process_and_setup_s": round(mean("process_and_setup_s"), 3), "mean_warmup_s": round(mean("warmup_s"), 3),
        "mean_timed_s": round(mean("timed_s"), 3),
        "mean_total_s": round(mean("total_s"), 3), "timed_share": round(mean("timed_s") / mean("total_s"), 3),
        "smoke_worker_s": round(smoke, 3), "runs": runs, "evaluation_s": round(per_evaluation, 2),
        "evaluation_timed_share": round(runs * mean("timed_s") / per_evaluation, 3),
        "mean_cpu_s": round(mean("cpu_s"), 3), "mean_timed_cpu_s": round(mean("timed_cpu_s"), 3), "evaluation_cpu_s": round(smoke_cpu + runs * mean("cpu_s"), 2),
    }


def import_cpu_seconds(modules: str) -> float:
    """CPU seconds (user + system) of a fresh interpreter that imports `modules`, as a worker starts."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-P", "-c", f"import {modules}"], check=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def import_comparison(rounds: int) -> dict:
    now, then = [], []
    for _ in range(rounds):  # alternating, so that a change of load hits both alike
        now.append(import_cpu_seconds("evaluator.sandbox.worker"))
        then.append(import_cpu_seconds(", ".join(("evaluator.sandbox.worker", *LAZY_MODULES))))
    return {"summary": "imports", "rounds": rounds, "worker_now_cpu_s": round(statistics.fmean(now), 3),
            "with_stage_modules_cpu_s": round(statistics.fmean(then), 3),
            "saved_cpu_s": round(statistics.fmean(then) - statistics.fmean(now), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=4, help="samples per protocol")
    parser.add_argument("--runs", type=int, default=4, help="runs per evaluation, for the per-evaluation comparison")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", default="synthetic", help="synthetic, or a .npz")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--set", default="baseline")
    parser.add_argument("--protocol", choices=("old", "new", "both"), default="both")
    parser.add_argument("--warmup-batches", type=int, default=HarnessSettings().warmup_batches)
    parser.add_argument("--import-rounds", type=int, default=0)
    args = parser.parse_args()

    dataset = synthetic_dataset(2000, 500, seed=1) if args.data == "synthetic" else load_dataset(args.data)
    harness = HarnessSettings(device=args.device, data=args.data, compile=args.compile, hyperparams={"epochs": args.epochs},
                              warmup_batches=args.warmup_batches)
    limits = WorkerLimits(setup_seconds=600, warmup_seconds=600, run_seconds=600)
    component_set = ComponentSet.shipped(args.set)
    protocols = ("old", "new") if args.protocol == "both" else (args.protocol,)
    with tempfile.TemporaryDirectory(prefix="evolve-bench-cache-") as folder:
        os.environ["EVOLVE_CACHE"] = folder  # a cold cache of its own: the smoke worker below fills it
        smoke, smoke_cpu, cache = smoke_seconds(component_set, dataset, harness, limits) if "new" in protocols else (0.0, 0.0, None)
        if cache is not None:
            print(json.dumps({"smoke_worker_s": round(smoke, 3), "smoke_worker_cpu_s": round(smoke_cpu, 3),
                              "cache_bytes": folder_bytes(cache.files)}), flush=True)
        rows = []
        for _ in range(args.samples):
            for protocol in protocols:
                row = one_sample(component_set, dataset, harness, limits, cache if protocol == "new" else None)
                rows.append(row)
                print(json.dumps(row), flush=True)
    context = {"device": args.device, "data": args.data, "epochs": args.epochs, "compile": args.compile,
               "warmup_batches": args.warmup_batches}
    for protocol in protocols:
        new = protocol == "new"
        print(json.dumps({**summary(rows, protocol, args.runs, smoke if new else 0.0, smoke_cpu if new else 0.0), **context}), flush=True)
    if args.import_rounds:
        print(json.dumps(import_comparison(args.import_rounds)), flush=True)


if __name__ == "__main__":
    main()
