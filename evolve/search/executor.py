"""Where evaluations run: an executor interface, and a local pool with one worker per GPU.

The loop hands the executor self-contained jobs (pydantic models: the component sets as text,
the dataset spec and every setting) and gets futures back. The local pool runs each job in a
thread that drives one sandboxed worker process pinned to one GPU; the Ray executor
(evolve/search/ray_executor.py) implements the same interface and runs each job as a Ray task on
some node of a cluster. Both call `run_job`, so the evaluator's entry points (and the sandbox
they start) are the same wherever a job runs.
"""

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel

from evaluator.cascade import CascadeSettings, evaluate_candidate
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset, load_dataset
from evaluator.promotion import PromotionDecision, PromotionSettings, confirm_promotion
from evaluator.results import Evaluation
from evaluator.settings import HarnessSettings, ScoreSettings


class EvaluationJob(BaseModel):
    """Walk one candidate through the cascade."""

    candidate_id: int
    component_set: ComponentSet
    changed: list[str]
    harness: HarnessSettings
    score: ScoreSettings
    cascade: CascadeSettings
    champion_times: list[float] | None = None


class PromotionJob(BaseModel):
    """The paired re-measurement of a candidate against the incumbent champion."""

    candidate_id: int
    incumbent_id: int
    candidate_set: ComponentSet
    incumbent_set: ComponentSet
    harness: HarnessSettings
    score: ScoreSettings
    promotion: PromotionSettings


Job = EvaluationJob | PromotionJob


Result = Evaluation | PromotionDecision
# What runs one job: run_job, or a stand-in with the same signature (tests, benchmarks).
JobRunner = Callable[[Job, Dataset, "int | None"], Result]


def run_job(job: Job, dataset: Dataset, gpu: int | None) -> Result:
    """One job through the evaluator: the cascade for a candidate, the paired runs for a promotion."""
    if isinstance(job, EvaluationJob):
        return evaluate_candidate(
            job.component_set, job.changed, dataset, job.harness, job.score, job.cascade, job.champion_times, gpu
        )
    return confirm_promotion(job.candidate_set, job.incumbent_set, dataset, job.harness, job.score, job.promotion, gpu)


class Executor(Protocol):
    slots: int  # jobs that can run at once (a property where it changes, e.g. as cluster nodes come and go)

    def submit(self, job: Job) -> "Future[Evaluation | PromotionDecision]": ...

    def shutdown(self, wait: bool = True) -> None:
        """wait=True: let submitted jobs finish; False: cancel them (their futures end cancelled)."""
        ...


class LocalPoolExecutor:
    """One thread per GPU, each running its jobs in sandboxed workers on that GPU only."""

    def __init__(self, gpus: list[int] | None, dataset: Dataset | None = None, runner: JobRunner = run_job):
        self.gpus: list[int | None] = list(gpus) if gpus else [None]  # None: the CPU, or whatever the parent sees
        self.slots = len(self.gpus)
        self._free: queue.Queue[int | None] = queue.Queue()
        for gpu in self.gpus:
            self._free.put(gpu)
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="evaluation")
        self._dataset = dataset
        self._dataset_lock = threading.Lock()
        self._runner = runner

    def dataset(self, spec: str) -> Dataset:
        with self._dataset_lock:
            if self._dataset is None:
                self._dataset = load_dataset(spec)
            return self._dataset

    def submit(self, job: Job) -> "Future[Evaluation | PromotionDecision]":
        return self._pool.submit(self._run, job)

    def _run(self, job: Job) -> Evaluation | PromotionDecision:
        gpu = self._free.get()
        try:
            return self._runner(job, self.dataset(job.harness.data), gpu)
        finally:
            self._free.put(gpu)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
