"""Where evaluations run: an executor interface, and a local pool with one worker per GPU.

The loop hands the executor self-contained jobs (pydantic models: the component sets as text,
the dataset spec and every setting) and gets futures back. The local pool runs each job in a
thread that drives one sandboxed worker process pinned to one GPU; a distributed engine can
implement the same two methods and take the jobs over the wire, without touching the loop.
"""

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from pydantic import BaseModel

from evaluator.cascade import CascadeSettings, ParentBehaviour, evaluate_candidate
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
    parent: ParentBehaviour | None = None  # for the behaviour check: skip a child that behaves like its parent


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


class Executor(Protocol):
    slots: int  # jobs that can run at once

    def submit(self, job: Job) -> "Future[Evaluation | PromotionDecision]": ...

    def shutdown(self, wait: bool = True) -> None: ...


class LocalPoolExecutor:
    """One thread per GPU, each running its jobs in sandboxed workers on that GPU only."""

    def __init__(self, gpus: list[int] | None, dataset: Dataset | None = None):
        self.gpus: list[int | None] = list(gpus) if gpus else [None]  # None: the CPU, or whatever the parent sees
        self.slots = len(self.gpus)
        self._free: queue.Queue[int | None] = queue.Queue()
        for gpu in self.gpus:
            self._free.put(gpu)
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="evaluation")
        self._dataset = dataset
        self._dataset_lock = threading.Lock()

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
            dataset = self.dataset(job.harness.data)
            if isinstance(job, EvaluationJob):
                return evaluate_candidate(
                    job.component_set, job.changed, dataset, job.harness, job.score, job.cascade, job.champion_times, gpu, job.parent
                )
            return confirm_promotion(job.candidate_set, job.incumbent_set, dataset, job.harness, job.score, job.promotion, gpu)
        finally:
            self._free.put(gpu)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
