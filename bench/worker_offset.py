"""Does a worker process have a speed of its own? A/A paired measurements on fresh workers.

The same component set on both sides of a paired measurement, `--measurements` times, with
`evaluator.promotion.measure_pairs`: a new worker for every run. (The "shared" protocol, two
workers kept for all pairs, which evaluator/promotion.py used before 2026-12-02 and which showed
the offset, is gone: now no worker makes more than one timed run; its results stay
in docs/BENCHMARKS.md.)

If pairs were independent and the sides exchangeable, one side would win all `--pairs` pairs of a
measurement with probability 2 * 2 ** -pairs (0.2 % for 10 pairs), and the medians of the paired
differences would scatter as the pairs' own noise predicts. A per-process offset breaks both: a
measurement then shows one side faster in (nearly) every pair. Reported per measurement: the
median difference (side a minus side b), how many pairs each side won, and the two-sided sign-test
p-value of "no side is faster"; one JSON line each on stdout, and a summary line.

    OMP_NUM_THREADS=1 python bench/worker_offset.py --protocol fresh --measurements 6 --pairs 10

On a GPU (the open question: is there a per-process offset there too? If not, a protocol that
reuses workers would be sound on that device), with the decoded CIFAR-10 pack:

    python bench/worker_offset.py --device cuda --data .gpu_check/cifar10_uint8.npz --epochs 8 --measurements 3 --pairs 8
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.component_set import ComponentSet
from evaluator.data import load_dataset, synthetic_dataset
from evaluator.promotion import PromotionSettings, measure_pairs
from evaluator.results import RunSample
from evaluator.settings import HarnessSettings


def gpu_of(harness: HarnessSettings) -> int | None:
    """The first GPU on CUDA (one worker pair at a time), none on the CPU."""
    return 0 if harness.device == "cuda" else None


def fresh_workers(component_set, dataset, harness, settings) -> tuple[list[RunSample], list[RunSample]]:
    measured = measure_pairs(component_set, component_set, dataset, harness, settings, gpu_of(harness))
    if measured.error:
        raise SystemExit(f"the paired measurement failed: {measured.error}")
    return measured.candidate_samples, measured.incumbent_samples


PROTOCOLS = {"fresh": fresh_workers}  # the old "shared" protocol (one worker per side for all pairs) no longer exists


def sign_pvalue_two_sided(wins: int, pairs: int) -> float:
    return float(stats.binomtest(wins, pairs, 0.5).pvalue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="fresh", help="fresh (the one protocol left)")
    parser.add_argument("--measurements", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--components", default="baseline", help="shipped component set on both sides")
    parser.add_argument("--epochs", type=float, default=3.0, help="harness override of HYPERPARAMS['epochs']")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (compile follows the harness's default for it)")
    parser.add_argument("--data", default="synthetic", help="synthetic (--train/--test images) or a .npz path")
    parser.add_argument("--train", type=int, default=400, help="synthetic training images")
    parser.add_argument("--test", type=int, default=500, help="synthetic test images")
    args = parser.parse_args()
    component_set = ComponentSet.shipped(args.components)
    dataset = synthetic_dataset(args.train, args.test, seed=11) if args.data == "synthetic" else load_dataset(args.data)
    harness = HarnessSettings(device=args.device, data=args.data, hyperparams={"epochs": args.epochs})
    settings = PromotionSettings(pairs=args.pairs)
    protocols = args.protocol.split(",")
    lopsided = {p: 0 for p in protocols}
    for measurement in range(args.measurements):
        for protocol in protocols:  # interleaved, so that both see the same drift of the machine's load
            started = time.perf_counter()
            a, b = PROTOCOLS[protocol](component_set, dataset, harness, settings)
            diffs = [x.time_seconds - y.time_seconds for x, y in zip(a, b)]
            a_wins = sum(d < 0 for d in diffs)
            lopsided[protocol] += a_wins in (0, len(diffs))
            print(json.dumps({
                "protocol": protocol, "measurement": measurement, "pairs": len(diffs),
                "median_difference_seconds": round(float(np.median(diffs)), 4),
                "median_time_seconds": round(float(np.median([s.time_seconds for s in a + b])), 4),
                "a_wins": a_wins, "b_wins": len(diffs) - a_wins, "sign_pvalue": round(sign_pvalue_two_sided(a_wins, len(diffs)), 5),
                "seconds": round(time.perf_counter() - started, 1), "load_average": round(os.getloadavg()[0], 2),
                "a": [round(s.time_seconds, 4) for s in a], "b": [round(s.time_seconds, 4) for s in b],
            }), flush=True)
    chance = 2 * 2.0 ** -args.pairs
    print(json.dumps({"summary": {p: f"{lopsided[p]} of {args.measurements} measurements won by one side in every pair"
                                  for p in protocols}, "chance_per_measurement_if_independent": chance}), flush=True)


if __name__ == "__main__":
    main()
