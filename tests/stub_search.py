"""A stub evaluator for tests and benchmarks of the search loop itself (no sandbox, no training).

StubExecutor answers every job at once with a made-up but well-formed result: the shipped seed
set runs in 3 s, any other set in 2 s plus a jitter drawn from its identity, so every child
scores above the seed and the children differ among themselves. Each evaluation reports 1 s of
smoke and 2 s of timed stages; each pair of a paired re-measurement 1 s, both sides at their stub
times (the real policy then promotes a candidate whose stub time is lower by the minimum gain).
With `block_promotions`, a paired re-measurement never returns (a search to SIGKILL in the middle
of one). SlowPairsExecutor answers each pair on a 50 ms timer instead, so that pairs run side by side and
evaluations go on meanwhile.

Run as a script it is `evolve` with the stub in place of the executor it would make:
    python -m tests.stub_search start --component optimizer --device cpu ...
(STUB_BLOCK_PROMOTIONS=1 in the environment blocks the paired re-measurements).
"""

import hashlib
import os
import sys
import threading
from concurrent.futures import Future
from functools import lru_cache

from evaluator.component_set import ComponentSet
from evaluator.results import Evaluation, PairedMeasurement, RunSample, StageVerdict
from evaluator.statistics import summarize
from evolve.cli import start_command
from evolve.cli.app import app
from evolve.search.executor import EvaluationJob, Executor, JobProgress, PromotionJob

SMOKE_SECONDS, TIMED_SECONDS, PAIR_SECONDS = 1.0, 2.0, 1.0


@lru_cache(maxsize=1)
def baseline_sources() -> dict[str, str]:
    return ComponentSet.shipped("baseline").sources


def stub_time(component_set: ComponentSet) -> float:
    if component_set.sources == baseline_sources():
        return 3.0
    digest = hashlib.sha256("".join(component_set.sources[k] for k in sorted(component_set.sources)).encode()).digest()
    return 2.0 + digest[0] / 2550  # 2.0 to 2.1 s


def stub_samples(seconds: float, runs: int = 3) -> list[RunSample]:
    return [RunSample(run=i, seed=i, accuracy=0.95 + 0.001 * i, time_seconds=seconds + 0.001 * i, device_name="stub",
                      torch_version="-") for i in range(runs)]


def stub_pairs(job: PromotionJob, candidate: float, incumbent: float, accuracy: float = 0.95,
               seconds_per_pair: float = PAIR_SECONDS) -> PairedMeasurement:
    """The job's pairs, each side at its given time and the same accuracy, undecided (the loop decides)."""
    pairs = range(job.first_pair, job.promotion.pairs)

    def side(seconds: float) -> list[RunSample]:
        return [RunSample(run=i, seed=i, accuracy=accuracy, time_seconds=seconds, device_name="stub", torch_version="-") for i in pairs]

    return PairedMeasurement(attempt=job.context.attempt if job.context else 1, first_pair=job.first_pair,
                             candidate_samples=side(candidate), incumbent_samples=side(incumbent),
                             seconds=seconds_per_pair * len(pairs))


class StubExecutor(Executor):
    """Synchronous stand-in for LocalPoolExecutor: results are ready when submit returns."""

    def __init__(self, slots: int = 1, block_promotions: bool = False):
        self._slots, self.block_promotions = slots, block_promotions
        self.jobs: list = []
        self.never = threading.Event()
        self.blocked: list[Future] = []  # the promotions that never complete, until abandon() cancels them

    @property
    def slots(self) -> int:
        return self._slots

    def submit(self, job) -> Future:
        self.jobs.append(job)
        future: Future = Future()
        if isinstance(job, EvaluationJob):
            future.set_result(self.evaluate(job))
        elif self.block_promotions:
            threading.Thread(target=self.never.wait, daemon=True).start()  # the future never completes
            self.blocked.append(future)
        else:
            future.set_result(self.confirm(job))
        return future

    def job_progress(self) -> list[JobProgress]:
        return []  # nothing runs: every result is ready at once, a blocked promotion waits for no worker

    def abandon(self) -> None:
        for future in self.blocked:
            future.cancel()

    def describe(self) -> str:
        return f"stub executor: {self.slots} slot(s), results at once"

    @staticmethod
    def evaluate(job: EvaluationJob) -> Evaluation:
        samples = stub_samples(stub_time(job.component_set))
        return Evaluation(
            changed=job.changed, status="evaluated", samples=samples, summary=summarize(samples),
            stages=[StageVerdict(stage="static", status="passed", seconds=0.0),
                    StageVerdict(stage="smoke", status="passed", seconds=SMOKE_SECONDS),
                    StageVerdict(stage="timed", status="passed", seconds=TIMED_SECONDS)],
        )

    @staticmethod
    def confirm(job: PromotionJob) -> PairedMeasurement:
        return stub_pairs(job, stub_time(job.candidate_set), stub_time(job.incumbent_set))

    def shutdown(self, wait: bool = True) -> None:
        pass


class SlowPairsExecutor(StubExecutor):
    """The stub executor whose promotion pairs take 50 ms each on a timer, so that a pair handed out while
    another runs is seen running beside it; evaluations are answered at once."""

    def __init__(self, slots: int):
        super().__init__(slots=slots)
        self.running_pairs: list[Future] = []
        self.most_at_once = 0

    def submit(self, job):
        if not isinstance(job, PromotionJob):
            return super().submit(job)
        self.jobs.append(job)
        future: Future = Future()
        self.running_pairs = [f for f in self.running_pairs if not f.done()] + [future]
        self.most_at_once = max(self.most_at_once, len(self.running_pairs))
        threading.Timer(0.05, lambda: future.set_result(self.confirm(job))).start()
        return future


def main(argv: list[str]) -> None:
    block = os.environ.get("STUB_BLOCK_PROMOTIONS") == "1"
    start_command.make_executor = lambda config, dataset: StubExecutor(block_promotions=block)
    app(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
