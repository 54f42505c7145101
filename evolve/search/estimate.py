"""How long a search will take and what it will cost: before it starts, and while it runs.

Both come from measurements where there are any: the seconds each finished candidate took
(evaluation jobs and promotion jobs apart, since a promotion trains two sets `pairs` times each)
and the LLM's price per call. Before the first measurement the estimate counts training runs
only and says that the time is unknown; it never invents a speed.
"""

import math

from pydantic import BaseModel, Field


class Costs(BaseModel):
    """Measured seconds per job and USD per proposal; None where nothing was measured yet."""

    evaluation_seconds: float | None = None
    promotion_seconds: float | None = None
    promotion_rate: float = Field(0.0, description="promotions started per finished evaluation")
    usd_per_proposal: float | None = None


class Remaining(BaseModel):
    """The rest of a search: jobs left and, when costs are known, its wall-clock seconds."""

    evaluations: int
    seconds: float | None
    limited_by: str | None = Field(None, description="the budget that ends the search before the proposals run out")

    def text(self) -> str:
        if self.seconds is None:
            return f"unknown until a candidate is measured ({self.evaluations} candidate(s) left)"
        budget = f", then the {self.limited_by} budget stops it" if self.limited_by else ""
        return f"about {duration(self.seconds)} ({self.evaluations} candidate(s) left{budget})"


def duration(seconds: float) -> str:
    """12 s, 4 min 05 s, 2 h 10 min."""
    if not math.isfinite(seconds):
        return "unknown"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def remaining(
    costs: Costs,
    evaluations_left: int,
    slots: int,
    device_seconds_left: float | None = None,
    usd_left: float | None = None,
    seconds_in_progress: float = 0.0,
) -> Remaining:
    """Wall-clock time of the jobs left on `slots` workers, cut short where a budget ends first.

    device_seconds_left and usd_left are what the budgets still allow (None: no limit);
    seconds_in_progress is the running jobs' (counted in evaluations_left) expected cost minus what
    they still need, so that the estimate falls while a job runs; negative where a running job
    needs more than its kind's average (Panel.in_progress: a long promotion, pair by pair).
    """
    if costs.evaluation_seconds is None:
        return Remaining(evaluations=evaluations_left, seconds=None)
    promotions = costs.promotion_rate * evaluations_left
    work = evaluations_left * costs.evaluation_seconds + promotions * (costs.promotion_seconds or 0.0)
    work = max(0.0, work - seconds_in_progress)
    seconds, limited_by = work / max(1, slots), None
    if device_seconds_left is not None and device_seconds_left / max(1, slots) < seconds:
        seconds, limited_by = max(0.0, device_seconds_left) / max(1, slots), "device-time"
    if usd_left is not None and costs.usd_per_proposal:
        affordable = max(0.0, usd_left) / costs.usd_per_proposal
        if affordable < evaluations_left:
            by_money = affordable * (work / max(1, evaluations_left)) / max(1, slots)
            if by_money < seconds:
                seconds, limited_by = by_money, "USD"
    return Remaining(evaluations=evaluations_left, seconds=seconds, limited_by=limited_by)


class Plan(BaseModel):
    """What a search will do at most, printed before it starts."""

    candidates: int
    runs_per_candidate: int = Field(description="1 untimed warm-up and the most timed runs")
    runs_per_promotion: int = Field(description="the next promotion attempt's: 2 warm-ups and 2 timed runs per pair (later attempts need more pairs)")
    seconds_per_candidate: float | None = Field(None, description="measured on this device and data, when known")
    measured_from: str | None = None
    slots: int = 1
    llm_calls: int = 0
    usd_per_call: float | None = None

    def lines(self, device_unit: str) -> list[str]:
        lines = [
            f"plan: up to {self.candidates} candidate(s), each 1 warm-up + up to {self.runs_per_candidate - 1} timed run(s); "
            f"the next promotion {self.runs_per_promotion} runs (later ones more); {self.slots} worker(s)"
        ]
        if self.seconds_per_candidate is None:
            lines.append("time: unknown until the seed is measured (the live panel estimates it from then on)")
        else:
            total = self.candidates * self.seconds_per_candidate
            lines.append(
                f"time: about {duration(total / self.slots)} without promotions, {total / 3600:.2f} {device_unit} "
                f"({duration(self.seconds_per_candidate)} per candidate, measured {self.measured_from})"
            )
        if self.llm_calls:
            usd = "price unknown (no prices configured)" if not self.usd_per_call else (
                f"about ${self.llm_calls * self.usd_per_call:.2f} (${self.usd_per_call:.4f} per call, rough)")
            lines.append(f"LLM: about {self.llm_calls} call(s), {usd}")
        return lines
