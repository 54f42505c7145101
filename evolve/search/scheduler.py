"""The jobs in flight on the executor: which candidate each future belongs to, when it started,
and what finished jobs cost (the panel's estimate reads these durations)."""

import time
from concurrent.futures import Future

from evolve.search.executor import Executor, Job

RECENT_EVALUATIONS, RECENT_PROMOTIONS = 50, 20  # durations the estimate averages


class Scheduler:
    def __init__(self, executor: Executor, evaluation_seconds: list[float], promotion_seconds: list[float]):
        """`*_seconds`: durations measured before (this experiment's, from the database), so the estimate continues."""
        self.executor = executor
        self.running: dict[Future, tuple[str, int]] = {}  # future -> ("evaluation" | "promotion", candidate id)
        self.started: dict[Future, float] = {}  # time.monotonic() at submission
        self.measured: dict[str, list[float]] = {"evaluation": evaluation_seconds[-RECENT_EVALUATIONS:],
                                                 "promotion": promotion_seconds[-RECENT_PROMOTIONS:]}

    def has_free_slot(self) -> bool:
        return len(self.running) < self.executor.slots

    def submit(self, kind: str, candidate_id: int, job: Job) -> None:
        future = self.executor.submit(job)
        self.running[future] = (kind, candidate_id)
        self.started[future] = time.monotonic()

    def finished(self, future: Future) -> tuple[str, int]:
        """A job's future is done: its kind and candidate, an evaluation's duration noted (a promotion's pairs run as
        several jobs: the loop notes the whole comparison's when it is decided)."""
        kind, candidate_id = self.running.pop(future)
        started = self.started.pop(future, time.monotonic())
        if kind == "evaluation":
            self.measured[kind].append(time.monotonic() - started)
        return kind, candidate_id

    def abandon(self) -> int:
        """Kill every job now; their results are no verdicts. Returns how many were running."""
        self.executor.abandon()
        killed = len(self.running)
        self.running.clear()
        self.started.clear()
        return killed
