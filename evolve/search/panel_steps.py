"""What the loop's panel shows: counters continued from the database, the running jobs, and the
time and money left.

Part of the evolution loop (loop.py), split from it because none of it decides anything: it
reads the loop's state for the live panel (progress.py) and the status lines.
"""

import time

from evolve.database.status import champion_line, experiment_status
from evolve.search.estimate import Costs, Remaining, duration, mean, remaining


def latest_generation(attempts: int, per_generation: int) -> int:
    """The generation of the latest proposal (proposal k, from 0, belongs to k // per_generation + 1);
    0 before any. Proposals run ahead of evaluations, so this is what the search is working on."""
    return 0 if attempts <= 0 else (attempts - 1) // per_generation + 1


class PanelSteps:
    """Mixed into EvolutionLoop: its panel."""

    def _update_stats(self) -> None:
        self.stats.generation = latest_generation(self.attempts, self.config.candidates_per_generation)
        self.stats.running = len(self.running)
        self.stats.queued = self.index.count("pending") + len(self.proposing)
        self.stats.best_score = self.index.best_score
        self.stats.gpu_hours = self.budget.gpu_hours_spent
        self.stats.usd = self.budget.usd_spent
        self.stats.generations = self.config.generations
        self.stats.jobs = self._job_lines()
        self.stats.remaining = self._remaining().text()

    def _continue_counters(self) -> None:
        """Counters and measured costs from the database, so that they continue across --resume."""
        status = experiment_status(self.store, self.experiment)
        self.stats.proposed, self.stats.evaluated = status.proposed, status.evaluated
        self.stats.rejections.update(status.rejections)
        self.stats.tokens = status.tokens
        self.stats.champion_history = champion_line(status.champions)
        self.measured: dict[str, list[float]] = {
            "evaluation": status.evaluation_seconds[-50:], "promotion": status.promotion_seconds[-20:]}

    def _job_lines(self) -> list[str]:
        progress = {p.candidate_id: p for p in getattr(self.executor, "job_progress", list)()}
        lines = []
        for future, (kind, candidate_id) in self.running.items():
            p = progress.get(candidate_id)
            stage = "waiting for a worker" if p is None else p.stage + (f" {p.run}/{p.runs}" if p.run is not None else "")
            label = f"#{candidate_id}" + (" promotion" if kind == "promotion" else "")
            elapsed = time.monotonic() - (p.started if p is not None else self.started.get(future, time.monotonic()))
            lines.append(f"{label}: {stage}, {duration(elapsed)}")
        return lines

    def _remaining(self) -> Remaining:
        evaluations = self.measured["evaluation"]
        promotions_started = len(self.measured["promotion"]) + sum(1 for kind, _ in self.running.values() if kind == "promotion")
        costs = Costs(
            evaluation_seconds=mean(evaluations),
            promotion_seconds=mean(self.measured["promotion"]),
            promotion_rate=promotions_started / len(evaluations) if evaluations else 0.0,
            usd_per_proposal=self.budget.usd_spent / self.stats.proposed if self.stats.proposed and self.budget.usd_spent else None,
        )
        left = (self.total_attempts - self.attempts) + self.index.count("pending") + len(self.running)
        device_left = None if self.budget.gpu_hours_limit is None else (self.budget.gpu_hours_limit - self.budget.gpu_hours_spent) * 3600
        usd_left = None if self.budget.usd_limit is None else self.budget.usd_limit - self.budget.usd_spent
        expected = {"evaluation": costs.evaluation_seconds or 0.0, "promotion": costs.promotion_seconds or costs.evaluation_seconds or 0.0}
        now = time.monotonic()
        in_progress = sum(min(now - self.started.get(future, now), expected.get(kind, 0.0)) for future, (kind, _) in self.running.items())
        return remaining(costs, left, self.executor.slots, device_left, usd_left, in_progress)
