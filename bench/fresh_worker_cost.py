"""What one timed run per worker costs: where a scored sample's seconds go.

Every scored sample now comes from a fresh worker (evaluator/runs.py `fresh_run`): start the
jailed process and set it up, warm up on random data, one timed run, kill. Before, the runs of
one evaluation shared a worker, so the start and the warm-up were paid once per evaluation. This
measures each part with the evaluator's own functions and prints, per sample and per evaluation
of `--runs` runs, the new cost against what the shared-worker protocol would have cost with the
same parts (start and warm-up once, then the runs).

    OMP_NUM_THREADS=1 python bench/fresh_worker_cost.py --samples 4 --runs 4
    python bench/fresh_worker_cost.py --device cuda --data ../shared/data/cifar10_jpeg.npz --epochs 9.9

One JSON line per sample, then a summary line.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.component_set import ComponentSet
from evaluator.data import load_dataset, synthetic_dataset
from evaluator.runs import fresh_seed, timed_sample, warm_up_worker
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerLimits
from evaluator.settings import HarnessSettings


def one_sample(component_set, dataset, harness, limits) -> dict:
    """The parts of `fresh_run`, each timed by the parent."""
    t0 = time.perf_counter()
    worker = SandboxedWorker(limits, harness.device, 0 if harness.device == "cuda" else None)
    worker.__enter__()
    try:
        started = time.perf_counter()
        warm_up_worker(worker, component_set, dataset, harness)
        warm = time.perf_counter()
        sample = timed_sample(worker, 0, fresh_seed(), dataset, 0.05, [])
        ran = time.perf_counter()
    finally:
        worker.__exit__(None, None, None)
    done = time.perf_counter()
    return {
        "start_s": round(started - t0, 3),
        "setup_and_warmup_s": round(warm - started, 3),  # set-up, imports of the components, the warm-up run
        "warmup_run_s": round(worker.warmup_seconds or 0.0, 3),
        "timed_s": round(sample.time_seconds, 3),
        "timed_request_and_kill_s": round(ran - warm, 3),
        "teardown_s": round(done - ran, 3),
        "total_s": round(done - t0, 3),
        "accuracy": round(sample.accuracy, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--runs", type=int, default=4, help="runs per evaluation, for the per-evaluation comparison")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", default="synthetic", help="synthetic, or a .npz")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--set", default="baseline")
    args = parser.parse_args()

    dataset = synthetic_dataset(2000, 500, seed=1) if args.data == "synthetic" else load_dataset(args.data)
    harness = HarnessSettings(device=args.device, data=args.data, compile=args.compile, hyperparams={"epochs": args.epochs})
    limits = WorkerLimits(setup_seconds=600, warmup_seconds=600, run_seconds=600)
    component_set = ComponentSet.shipped(args.set)
    rows = []
    for _ in range(args.samples):
        row = one_sample(component_set, dataset, harness, limits)
        rows.append(row)
        print(json.dumps(row), flush=True)

    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in rows)

    overhead = mean("total_s") - mean("timed_s")
    per_evaluation_now = args.runs * mean("total_s")
    per_evaluation_shared = mean("total_s") + (args.runs - 1) * mean("timed_request_and_kill_s")
    print(json.dumps({
        "summary": True, "device": args.device, "data": args.data, "epochs": args.epochs, "compile": args.compile,
        "samples": args.samples, "mean_total_s": round(mean("total_s"), 3), "mean_timed_s": round(mean("timed_s"), 3),
        "mean_overhead_s": round(overhead, 3), "timed_share": round(mean("timed_s") / mean("total_s"), 3),
        "runs": args.runs, "evaluation_now_s": round(per_evaluation_now, 2),
        "evaluation_shared_worker_s": round(per_evaluation_shared, 2),
        "cost_factor": round(per_evaluation_now / per_evaluation_shared, 2),
    }), flush=True)


if __name__ == "__main__":
    main()
