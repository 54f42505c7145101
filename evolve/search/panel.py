"""What the search shows while it runs: event lines, the counters of the live panel, and the time
and money left.

None of it decides anything. The collaborators report here (`event`, `count`, `rejected`), and
`refresh` reads the rest from their owners (the state, the scheduler, the budget) twice a second.
The counters start from the database (`experiment_status`), so they continue across --resume.
"""

import time

from evolve.database.status import champion_line, experiment_status
from evolve.database.store import Store
from evolve.llm.client import Budget
from evolve.search.estimate import Costs, Remaining, duration, mean, remaining
from evolve.search.progress import Progress
from evolve.search.scheduler import Scheduler
from evolve.search.state import SearchState


def latest_generation(attempts: int, per_generation: int) -> int:
    """The generation of the latest proposal (proposal k, from 0, belongs to k // per_generation + 1);
    0 before any. Proposals run ahead of evaluations, so this is what the search is working on."""
    return 0 if attempts <= 0 else (attempts - 1) // per_generation + 1


class Panel:
    """The live panel's counters (LoopStats) and its event lines; the one owner of both."""

    def __init__(self, progress: Progress, store: Store, experiment):
        self.progress, self.stats = progress, progress.stats
        self.store, self.experiment = store, experiment
        status = experiment_status(store, experiment)
        counts = store.proposal_counts(experiment.id)
        s = self.stats
        s.proposed, s.evaluated, s.tokens = status.proposed, status.evaluated, status.tokens
        s.duplicates, s.near_copies = counts.get("duplicate", 0), counts.get("near-copy", 0)
        if counts.get("unusable"):
            s.rejections["unusable"] = counts["unusable"]
        s.rejections.update(status.rejections)
        s.champion_history = champion_line(status.champions)

    def event(self, message: str) -> None:
        self.progress.event(message)

    def count(self, counter: str, n: int = 1) -> None:
        """One more proposal, duplicate, near-copy, merge, evaluation or token."""
        setattr(self.stats, counter, getattr(self.stats, counter) + n)

    def rejected(self, reason: str) -> None:
        self.stats.rejections[reason] += 1

    def champion_changed(self, state: SearchState) -> None:
        champion = state.champion
        if champion is None:
            return
        if self.stats.champion_id != champion.id:
            self.stats.champion_history = champion_line(experiment_status(self.store, self.experiment).champions)
        self.stats.champion_id, self.stats.champion_time, self.stats.champion_accuracy = champion.id, champion.time_mean, champion.accuracy_mean

    def refresh(self, state: SearchState, scheduler: Scheduler, budget: Budget, attempts: int, total_attempts: int,
                proposing: int, per_generation: int, generations: int) -> None:
        s = self.stats
        s.proposed = attempts
        s.generation = latest_generation(attempts, per_generation)
        s.running = len(scheduler.running)
        s.queued = state.index.count("pending") + proposing
        s.best_score = state.index.best_score
        s.gpu_hours, s.usd, s.generations = budget.gpu_hours_spent, budget.usd_spent, generations
        s.jobs = self.job_lines(scheduler)
        left = (total_attempts - attempts) + state.index.count("pending") + len(scheduler.running)
        s.remaining = self.remaining(scheduler, budget, left).text()
        self.progress.refresh()

    @staticmethod
    def job_lines(scheduler: Scheduler) -> list[str]:
        progress = {p.candidate_id: p for p in scheduler.executor.job_progress()}
        lines = []
        for future, (kind, candidate_id) in scheduler.running.items():
            p = progress.get(candidate_id)
            stage = "waiting for a worker" if p is None else p.stage + (f" {p.run}/{p.runs}" if p.run is not None else "")
            label = f"#{candidate_id}" + (" promotion" if kind == "promotion" else "")
            elapsed = time.monotonic() - (p.started if p is not None else scheduler.started.get(future, time.monotonic()))
            lines.append(f"{label}: {stage}, {duration(elapsed)}")
        return lines

    def remaining(self, scheduler: Scheduler, budget: Budget, left: int) -> Remaining:
        measured = scheduler.measured
        evaluations = measured["evaluation"]
        promotions_started = len(measured["promotion"]) + any(kind == "promotion" for kind, _ in scheduler.running.values())
        costs = Costs(
            evaluation_seconds=mean(evaluations),
            promotion_seconds=mean(measured["promotion"]),
            promotion_rate=promotions_started / len(evaluations) if evaluations else 0.0,
            usd_per_proposal=budget.usd_spent / self.stats.proposed if self.stats.proposed and budget.usd_spent else None,
        )
        device_left = None if budget.gpu_hours_limit is None else (budget.gpu_hours_limit - budget.gpu_hours_spent) * 3600
        usd_left = None if budget.usd_limit is None else budget.usd_limit - budget.usd_spent
        expected = {"evaluation": costs.evaluation_seconds or 0.0, "promotion": costs.promotion_seconds or costs.evaluation_seconds or 0.0}
        return remaining(costs, left, scheduler.executor.slots, device_left, usd_left, self.in_progress(scheduler, expected))

    @staticmethod
    def in_progress(scheduler: Scheduler, expected: dict[str, float]) -> float:
        """The running jobs' expected cost minus what they still need (remaining() subtracts it from the work left).

        A job that reports which of its runs or pairs it measures is extrapolated from the share done, so a
        16-pair promotion moves the estimate pair by pair and one longer than the average (more pairs at a later
        attempt, or the first, when no promotion was measured yet) adds what it still needs; any other job counts
        its elapsed time, up to its kind's expected cost."""
        progress = {p.candidate_id: p for p in scheduler.executor.job_progress()}
        now, done = time.monotonic(), 0.0
        for future, (kind, candidate_id) in scheduler.running.items():
            p, typical = progress.get(candidate_id), expected.get(kind, 0.0)
            elapsed = now - (p.started if p is not None else scheduler.started.get(future, now))
            if p is not None and p.run is not None and p.runs and p.run > 1:
                still_needed = elapsed * (p.runs - (p.run - 1)) / (p.run - 1)
                done += typical - still_needed
            else:
                done += min(elapsed, typical)
        return done
