"""How much evaluation-slot time does Ray's scheduling cost, against the local pool?

The same search runs on each executor: the real loop (evolve/search/loop.py), the real database
(SQLite in a temporary folder) and the built-in mutator, with a stand-in evaluator that holds its
slot for a fixed time (tests/ray_support.py StubRunner) and reports how long it held it. On Ray
the slots are simulated nodes of a real Ray cluster on this machine (ray.cluster_utils.Cluster,
one CPU each); locally they are the pool's threads.

For every job the driver sees it occupy a slot from submission to the moment its future resolves;
the evaluator's own time inside the task is useful, the rest (queueing in Ray, starting or reusing
a worker process, fetching the dataset, shipping the job and the result) is lost to scheduling.
Reported: lost / occupied over all jobs, the mean loss per job in seconds, and that loss as a share
of a 30-second evaluation (the loss per job does not grow with the evaluation's length, so
`overhead / (30 + overhead)` extrapolates from shorter evaluations). Before the search, each slot
runs one job: on Ray that first job starts the node's worker process and imports the evaluator,
a one-time cost per node reported apart as `first job`. `loop idle` is the slots' idle share
between the first submission and the last result, whatever the cause (the seed evaluated alone,
the loop's own turns).

    python bench/ray_scheduling.py --slots 2 --eval-seconds 2 --candidates 12
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.cascade import CascadeSettings  # noqa: E402
from evaluator.component_set import ComponentSet  # noqa: E402
from evaluator.data import synthetic_dataset  # noqa: E402
from evaluator.settings import HarnessSettings, ScoreSettings  # noqa: E402
from evolve.search.executor import EvaluationJob, Executor, Job, JobProgress, LocalPoolExecutor  # noqa: E402
from tests.ray_support import StubRunner, run_stub_search, start_cluster  # noqa: E402

REFERENCE_SECONDS = 30.0


class TimedExecutor(Executor):
    """Any executor, with each job's submission and resolution times on the driver's clock."""

    def __init__(self, inner: Executor):
        self.inner = inner
        self.jobs: list[tuple[float, float, float]] = []  # submitted, resolved, seconds the evaluator held the slot
        self.lock = threading.Lock()

    @property
    def slots(self) -> int:
        return self.inner.slots

    def submit(self, job: Job) -> Future:
        submitted = time.perf_counter()
        future = self.inner.submit(job)
        future.add_done_callback(lambda f: self._done(submitted, f))
        return future

    def _done(self, submitted: float, future: Future) -> None:
        resolved = time.perf_counter()
        if not future.cancelled() and future.exception() is None:
            with self.lock:
                self.jobs.append((submitted, resolved, future.result().seconds))

    def job_progress(self) -> list[JobProgress]:
        return self.inner.job_progress()

    def abandon(self) -> None:
        self.inner.abandon()

    def shutdown(self, wait: bool = True) -> None:
        self.inner.shutdown(wait)

    def describe(self) -> str:
        return f"{self.inner.describe()} (timed)"


def warm_up(executor, slots: int) -> float:
    """One job per slot, all at once; returns the mean time they lost (each slot's one-time start)."""
    job = EvaluationJob(candidate_id=0, component_set=ComponentSet.shipped("baseline"), changed=["optimizer"],
                        harness=HarnessSettings(device="cpu"), score=ScoreSettings(), cascade=CascadeSettings())
    started = time.perf_counter()
    futures = [executor.submit(job) for _ in range(slots)]
    lost = []
    for future in futures:
        result = future.result()
        lost.append(time.perf_counter() - started - result.seconds)
    return statistics.mean(lost)


def measure(name: str, executor: TimedExecutor, slots: int, candidates: int) -> dict:
    first_job = warm_up(executor.inner, slots)
    with tempfile.TemporaryDirectory() as folder:
        run_stub_search(executor, f"sqlite:///{folder}/bench.db", candidates)
    executor.shutdown()
    jobs = sorted(executor.jobs)
    occupied = [resolved - submitted for submitted, resolved, _ in jobs]
    overhead = [held - busy for held, (_, _, busy) in zip(occupied, jobs)]
    span = max(r for _, r, _ in jobs) - min(s for s, _, _ in jobs)
    row = {
        "executor": name,
        "jobs": len(jobs),
        "lost": sum(overhead) / sum(occupied),
        "overhead_s": statistics.mean(overhead),
        "median_overhead_s": statistics.median(overhead),
        "max_overhead_s": max(overhead),
        "at_30s": statistics.mean(overhead) / (REFERENCE_SECONDS + statistics.mean(overhead)),
        "first_job_s": first_job,
        "loop_idle": 1 - sum(b for _, _, b in jobs) / (slots * span),
    }
    print(f"{name:6s} {row['jobs']:4d} jobs  lost {row['lost']:6.2%}  overhead/job mean {row['overhead_s']:.3f} s, "
          f"median {row['median_overhead_s']:.3f} s, max {row['max_overhead_s']:.3f} s  -> at 30 s: {row['at_30s']:.2%}  "
          f"first job per slot {row['first_job_s']:.2f} s  loop idle {row['loop_idle']:.1%}", flush=True)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=2, help="evaluation slots: local threads, or Ray nodes of one CPU")
    parser.add_argument("--eval-seconds", type=float, default=2.0, help="how long the stand-in evaluator holds its slot")
    parser.add_argument("--candidates", type=int, default=12, help="proposals in the search (the seed comes on top)")
    parser.add_argument("--executors", default="local,ray", help="which to measure, comma-separated: local, ray")
    args = parser.parse_args(argv)
    runner = StubRunner(seconds=args.eval_seconds)
    print(f"{args.slots} slots, evaluations of {args.eval_seconds:.2f} s, {args.candidates} candidates + the seed")
    rows = []
    for name in args.executors.split(","):
        if name == "local":
            rows.append(measure(name, TimedExecutor(LocalPoolExecutor(list(range(args.slots)), synthetic_dataset(64, 16), runner)),
                                args.slots, args.candidates))
        elif name == "ray":
            from evolve.config import RaySettings
            from evolve.search.ray_executor import RayExecutor

            cluster = start_cluster(worker_nodes=args.slots, cpus_per_node=1)
            try:
                executor = RayExecutor(RaySettings(address=cluster.address), "cpu", synthetic_dataset(64, 16), runner)
                rows.append(measure(name, TimedExecutor(executor), args.slots, args.candidates))
            finally:
                cluster.shutdown()
        else:
            parser.error(f"unknown executor {name!r}: choose local or ray")
    return rows


if __name__ == "__main__":
    main()
