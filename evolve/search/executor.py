"""Where evaluations run: the executor protocol, and a local pool with one worker per GPU.

The loop hands the executor self-contained jobs (pydantic models: the component sets as text,
the dataset spec and every setting) and gets futures back. The local pool runs each job in a
thread that drives one sandboxed worker process pinned to one GPU; the Ray executor
(evolve/search/ray_executor.py) implements the same protocol and runs each job as a Ray task on
some node of a cluster. Both call `run_job`, so the evaluator's entry points (and the sandbox
they start) are the same wherever a job runs.

The protocol is the abstract base class `Executor`: `slots` (jobs that can run at once),
`submit` (a job in, a future out), `job_progress` (what each running job does, for the live
panel), `abandon` (kill every worker now: the second Ctrl-C, a seed that fails), `shutdown`
(finish or cancel, then release) and `describe` (one line for the console). Every method is
abstract and none is optional: the loop and `evolve start` call each of them on whatever executor
they were given, so an executor that lacked one would fail only on the path that needs it (a
Ctrl-C, a failing seed), the paths least often run. Python refuses to instantiate a subclass that
leaves one out, and tests/test_executor_protocol.py checks every executor of the product.
"""

import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from pydantic import BaseModel, Field

from evaluator.cascade import CascadeSettings, ParentBehaviour, StageReport, evaluate_candidate, no_report
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset, load_dataset
from evaluator.promotion import PromotionSettings, measure_pairs
from evaluator.promotion_policy.rule import DecisionContext
from evaluator.results import Evaluation, PairedMeasurement
from evaluator.settings import HarnessSettings, ScoreSettings
from evolve.search.interrupts import kill_process_tree


class EvaluationJob(BaseModel):
    """Walk one candidate through the cascade."""

    candidate_id: int
    component_set: ComponentSet
    changed: list[str]
    harness: HarnessSettings
    score: ScoreSettings
    cascade: CascadeSettings
    champion_times: list[float] | None = None
    parent: ParentBehaviour | None = None  # for the behaviour check: skip a child that behaves like its parent


class PromotionJob(BaseModel):
    """Pairs of a candidate's paired re-measurement against the incumbent champion: pairs `first_pair` to
    `promotion.pairs` - 1 of the attempt's seed series. The search hands out one pair a job, so that an attempt's
    pairs run on several slots at once; the loop decides on them as they come (evolve/search/comparison.py)."""

    candidate_id: int
    first_pair: int = Field(0, ge=0, description="the first pair this job measures (its index in the attempt's series)")
    incumbent_id: int
    candidate_set: ComponentSet
    incumbent_set: ComponentSet
    harness: HarnessSettings
    score: ScoreSettings
    promotion: PromotionSettings
    context: DecisionContext | None = Field(default=None, description="the attempt's error budget, minimum gain and champion record")


Job = EvaluationJob | PromotionJob


class JobProgress(BaseModel):
    """What one running job does now, for the live panel."""

    candidate_id: int
    kind: str = Field(description="evaluation or promotion")
    stage: str = Field("queued", description="cascade stage (static, contracts, smoke, timed, profile), warm-up, pair, "
                                             "or where the job is when its stages are not reported (on the cluster)")
    run: int | None = Field(None, description="timed run or pair being measured, from 1")
    runs: int | None = None
    started: float = Field(description="time.monotonic() when the job began running")


Result = Evaluation | PairedMeasurement
# What runs one job: run_job, or a stand-in with the same signature (tests, benchmarks), which
# may ignore the report (the stage it reaches, for job_progress).
JobRunner = Callable[[Job, Dataset, int | None, StageReport], Result]


def job_kind(job: Job) -> str:
    """evaluation or promotion."""
    return "evaluation" if isinstance(job, EvaluationJob) else "promotion"


def run_job(job: Job, dataset: Dataset, gpu: int | None, report: StageReport = no_report) -> Result:
    """One job through the evaluator: the cascade for a candidate, its pairs for a promotion (never decided here)."""
    if isinstance(job, EvaluationJob):
        return evaluate_candidate(
            job.component_set, job.changed, dataset, job.harness, job.score, job.cascade, job.champion_times, gpu, report,
            job.parent,
        )
    return measure_pairs(job.candidate_set, job.incumbent_set, dataset, job.harness, job.promotion, gpu, report,
                         job.context.attempt if job.context else 1, first=job.first_pair)


class Executor(ABC):
    """Runs jobs somewhere; every method is required (see the module docstring)."""

    @property
    @abstractmethod
    def slots(self) -> int:
        """Jobs that can run at once (it may change, e.g. as cluster nodes come and go)."""

    @abstractmethod
    def submit(self, job: Job) -> "Future[Result]":
        """Start the job (or queue it for a free slot); its future ends with its result."""

    @abstractmethod
    def job_progress(self) -> list[JobProgress]:
        """What each running job does now, oldest first; a job not listed waits for a slot."""

    @abstractmethod
    def abandon(self) -> None:
        """Kill every worker now and return once none runs; the futures of the jobs killed end
        cancelled or with whatever their runner returned, which the loop does not record."""

    @abstractmethod
    def shutdown(self, wait: bool = True) -> None:
        """wait=True: let submitted jobs finish; False: cancel them (their futures end cancelled). Then release."""

    @abstractmethod
    def describe(self) -> str:
        """Where the jobs run, in one line for the console."""


class LocalPoolExecutor(Executor):
    """One thread per GPU, each running its jobs in sandboxed workers on that GPU only."""

    def __init__(self, gpus: list[int] | None, dataset: Dataset | None = None, runner: JobRunner = run_job):
        self.gpus: list[int | None] = list(gpus) if gpus else [None]  # None: the CPU, or whatever the parent sees
        self._free: queue.Queue[int | None] = queue.Queue()
        for gpu in self.gpus:
            self._free.put(gpu)
        self._pool = ThreadPoolExecutor(max_workers=len(self.gpus), thread_name_prefix="evaluation")
        self._dataset = dataset
        self._dataset_lock = threading.Lock()
        self._progress: dict[int, JobProgress] = {}  # written by the job threads, read by the loop's thread
        self._futures: set[Future] = set()
        self._runner = runner

    @property
    def slots(self) -> int:
        return len(self.gpus)

    def dataset(self, spec: str) -> Dataset:
        with self._dataset_lock:
            if self._dataset is None:
                self._dataset = load_dataset(spec)
            return self._dataset

    def submit(self, job: Job) -> "Future[Result]":
        future = self._pool.submit(self._run, job)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)
        return future

    def job_progress(self) -> list[JobProgress]:
        """The jobs running now, oldest first."""
        return sorted(dict(self._progress).values(), key=lambda p: p.started)

    def abandon(self, timeout: float = 30.0) -> None:
        """Kill every worker now and wait (killing again) until the job threads have returned.

        A job between two stages may start a new worker after a kill, so the tree is killed until
        no job runs any more; their results are not recorded by the loop."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        while True:
            kill_process_tree()
            if not any(not f.done() for f in list(self._futures)) or time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def _run(self, job: Job) -> Result:
        gpu = self._free.get()
        progress = JobProgress(candidate_id=job.candidate_id, kind=job_kind(job), started=time.monotonic())
        self._progress[job.candidate_id] = progress

        def report(stage: str, run: int | None = None, runs: int | None = None) -> None:
            self._progress[job.candidate_id] = progress.model_copy(update={"stage": stage, "run": run, "runs": runs})

        try:
            return self._runner(job, self.dataset(job.harness.data), gpu, report)
        finally:
            self._progress.pop(job.candidate_id, None)
            self._free.put(gpu)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    def describe(self) -> str:
        if self.gpus == [None]:
            return "local pool on this machine: 1 evaluation at a time, on the CPU or the GPU the process sees"
        return f"local pool on this machine: {self.slots} evaluation(s) at once, one per GPU ({', '.join(map(str, self.gpus))})"
