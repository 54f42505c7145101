"""Promotion: a candidate becomes champion only after a paired, interleaved re-measurement.

A candidate's own timed runs (evaluator/cascade.py) rank it, but they were measured at another
moment than the incumbent's, perhaps after a lucky draw of seeds. Before it replaces the
incumbent, both are measured again, side by side:

1. Both component sets are loaded into two sandboxed workers on the same device and warmed up,
   side by side (evaluator/runs.py `start_speedrun_workers`).
2. For each of `pairs` fresh seeds, both train once on that seed (same initialization seed and
   same order of the training set), one after the other; who goes first alternates from pair
   to pair, so that drift of the GPU's clock or temperature falls on both equally, and who goes
   first in the first pair is a coin flip. The first timed run after the warm-ups is slower (on
   the CPU of CI by 0.1-0.3 s in 0.4 s runs); with the candidate always first it paid that in
   every comparison, one pair lost before the pairs began, and the rule's null hypothesis (both
   sides alike) did not hold exactly. The flip makes the pairs exchangeable again.
3. The rule (evaluator/decision.py) decides on these pairs and the champion's record, spending
   this attempt's share of the experiment's error budget.

This module runs the pairs (`measure_pairs`); the decision is made apart from it, so that the
same rule serves the search, `evolve calibrate` and the null simulations in the tests.
"""

import secrets
import time

import numpy as np
from pydantic import BaseModel, Field

from evaluator.cascade import StageReport, no_report
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset
from evaluator.decision import DecisionContext, PromotionDecision, attempt_alpha, decide, minimum_gain
from evaluator.results import RunSample
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure
from evaluator.settings import HarnessSettings, PromotionSettings, ScoreSettings

__all__ = ["PairedMeasurement", "PromotionDecision", "PromotionSettings", "better_score", "confirm_promotion", "measure_pairs"]


class PairedMeasurement(BaseModel):
    """Both sides' samples on shared seeds, and why the measurement stopped early, if it did."""

    candidate_samples: list[RunSample] = Field(default_factory=list)
    incumbent_samples: list[RunSample] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def better_score(candidate: float, incumbent: float, candidate_lcb: float = 0.0, incumbent_lcb: float = 0.0) -> bool:
    """Higher score (scores are finite now; the bounds only break exact ties)."""
    if candidate == incumbent:
        return candidate_lcb > incumbent_lcb
    return candidate > incumbent


def pair_orders(pairs: int, first: int) -> list[tuple[str, str]]:
    """Who runs first in each pair: alternating, the first pair's order given by `first` (0: the candidate)."""
    sides = ("candidate", "incumbent")
    return [sides if (pair + first) % 2 == 0 else sides[::-1] for pair in range(pairs)]


def measure_pairs(
    candidate: ComponentSet,
    incumbent: ComponentSet,
    dataset: Dataset,
    harness: HarnessSettings,
    settings: PromotionSettings,
    gpu: int | None = None,
    report: StageReport = no_report,
) -> PairedMeasurement:
    """Measure both sets side by side on fresh shared seeds; never raises for a worker's failure."""
    from evaluator.runs import finish_runs, fresh_seed, start_speedrun_workers, timed_sample  # imported here: the settings above load without torch

    start = time.perf_counter()
    flags: list[str] = []
    samples: dict[str, list[RunSample]] = {"candidate": [], "incumbent": []}
    error = None
    try:
        with SandboxedWorker(settings.limits, harness.device, gpu) as c_worker, SandboxedWorker(settings.limits, harness.device, gpu) as i_worker:
            workers = {"candidate": c_worker, "incumbent": i_worker}
            seeds = [fresh_seed() for _ in range(settings.pairs)]
            report("warm-up", None, None)
            start_speedrun_workers([(c_worker, candidate), (i_worker, incumbent)], dataset, harness, seeds)
            for pair, (seed, order) in enumerate(zip(seeds, pair_orders(settings.pairs, secrets.randbelow(2)))):
                report("pair", pair + 1, settings.pairs)
                for side in order:
                    samples[side].append(timed_sample(workers[side], pair, seed, dataset, settings.clock_tolerance, flags))
            finish_runs(c_worker)
            finish_runs(i_worker)
    except WorkerFailure as e:
        error = str(e)[:2000]
    pairs = min(len(samples["candidate"]), len(samples["incumbent"]))  # a pair counts only when both sides ran
    return PairedMeasurement(candidate_samples=samples["candidate"][:pairs], incumbent_samples=samples["incumbent"][:pairs],
                             flags=flags, error=error, seconds=time.perf_counter() - start)


def default_context(settings: PromotionSettings, incumbent_samples: list[RunSample]) -> DecisionContext:
    """A lone comparison (no experiment around it): attempt 1, the default minimum gain."""
    champion_time = float(np.median([s.time_seconds for s in incumbent_samples])) if incumbent_samples else 0.0
    gain, source = minimum_gain(settings, champion_time, None)
    return DecisionContext(attempt=1, alpha=attempt_alpha(settings.experiment_alpha, 1), min_gain_seconds=gain,
                           min_gain_source=source, accuracy_margin=settings.accuracy_margin)


def confirm_promotion(
    candidate: ComponentSet,
    incumbent: ComponentSet,
    dataset: Dataset,
    harness: HarnessSettings,
    score: ScoreSettings,
    settings: PromotionSettings | None = None,
    gpu: int | None = None,
    context: DecisionContext | None = None,
    report: StageReport = no_report,
) -> PromotionDecision:
    """Measure the pairs, then apply the rule; a failed measurement promotes nothing and spends nothing."""
    settings = settings or PromotionSettings()
    measured = measure_pairs(candidate, incumbent, dataset, harness, settings, gpu, report)
    context = context or default_context(settings, measured.incumbent_samples)
    if measured.error is not None or len(measured.candidate_samples) < 2:
        return PromotionDecision(
            promoted=False,
            reason=f"the paired re-measurement failed: {measured.error or 'fewer than 2 pairs'}",
            pairs=len(measured.candidate_samples),
            confidence=score.confidence,
            attempt=context.attempt,
            candidate_samples=measured.candidate_samples,
            incumbent_samples=measured.incumbent_samples,
            flags=measured.flags,
            seconds=measured.seconds,
        )
    decision = decide(measured.candidate_samples, measured.incumbent_samples, score, context)
    decision.flags, decision.seconds = measured.flags, measured.seconds
    return decision
