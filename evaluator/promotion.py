"""Promotion: a candidate becomes champion only after a paired, interleaved re-measurement.

A candidate's own timed runs (evaluator/cascade.py) rank it, but they were measured at another
moment than the incumbent's, perhaps after a lucky draw of seeds. Before it replaces the
incumbent, both are measured again, side by side:

1. Both component sets are loaded into two sandboxed workers on the same device and warmed up.
2. For each of `pairs` fresh seeds, both train once on that seed (same initialization seed and
   same order of the training set), one after the other; who goes first alternates from pair
   to pair, so that drift of the GPU's clock or temperature falls on both equally.
3. From these confirmation runs alone: each side's score (evaluator/statistics.py), the per-pair
   differences of time (incumbent minus candidate) and of accuracy (candidate minus incumbent),
   and one-sided paired t-tests of them (scipy.stats.ttest_rel).

The rule, at the stated confidence c (p-values below 1 - c count as confirmed):
- the candidate's score must be higher than the incumbent's, and
- if the candidate's accuracy lower bound reaches the target: when the incumbent's also does,
  the candidate must be confirmed faster (paired time test); when the incumbent's does not,
  reaching the target is the gain and no time test is needed;
- if the candidate's lower bound is below the target, it must be confirmed more accurate
  (paired accuracy test): while both miss the target, accuracy is what the score rewards.
"""

import math
import time

import numpy as np
from pydantic import BaseModel, Field

from evaluator.cascade import StageReport, fresh_seed, no_report, start_speedrun_worker, timed_sample
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset
from evaluator.results import RunSample, Summary
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure, WorkerLimits
from evaluator.settings import HarnessSettings, ScoreSettings
from evaluator.statistics import summarize


class PromotionSettings(BaseModel):
    pairs: int = Field(10, ge=2, description="paired runs of candidate and incumbent on shared fresh seeds")
    clock_tolerance: float = Field(0.05, description="flag a run whose device-event time differs from the parent's by more")
    limits: WorkerLimits = Field(default_factory=WorkerLimits)


class PairedTest(BaseModel):
    mean_difference: float = Field(description="mean over pairs, in the direction that favours the candidate")
    ci_low: float = Field(description="lower end of the two-sided confidence interval of the mean difference")
    ci_high: float
    pvalue: float = Field(description="one-sided paired t-test of 'no gain'")


class PromotionDecision(BaseModel):
    """The paired comparison and its verdict, stored in the champion history."""

    promoted: bool
    reason: str
    pairs: int
    confidence: float
    time_gain: PairedTest | None = Field(default=None, description="incumbent time minus candidate time, seconds")
    accuracy_gain: PairedTest | None = Field(default=None, description="candidate accuracy minus incumbent accuracy")
    candidate: Summary | None = None
    incumbent: Summary | None = None
    candidate_samples: list[RunSample] = Field(default_factory=list)
    incumbent_samples: list[RunSample] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    seconds: float = 0.0


def paired_test(gains: list[float], confidence: float) -> PairedTest:
    """One-sided test that the mean gain is above zero, with its two-sided interval."""
    from scipy import stats  # imported here: `evolve config show` and --help start without scipy

    x = np.asarray(gains, dtype=float)
    mean = float(x.mean())
    if np.all(x == x[0]):  # no spread: the sign of the gain is the whole answer
        return PairedTest(mean_difference=mean, ci_low=mean, ci_high=mean, pvalue=0.0 if mean > 0 else 1.0)
    pvalue = float(stats.ttest_1samp(x, 0.0, alternative="greater").pvalue)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * stats.sem(x))
    return PairedTest(mean_difference=mean, ci_low=mean - half, ci_high=mean + half, pvalue=pvalue)


def decide(candidate: list[RunSample], incumbent: list[RunSample], score: ScoreSettings) -> PromotionDecision:
    """The promotion rule of the module docstring, on paired samples (same seeds, same order)."""
    if len(candidate) != len(incumbent) or len(candidate) < 2:
        raise ValueError(f"need at least 2 pairs of samples, got {len(candidate)} and {len(incumbent)}")
    c = summarize(candidate, score.confidence, score.target, score.penalty_base)
    i = summarize(incumbent, score.confidence, score.target, score.penalty_base)
    time_gain = paired_test([a.time_seconds - b.time_seconds for a, b in zip(incumbent, candidate)], score.confidence)
    accuracy_gain = paired_test([a.accuracy - b.accuracy for a, b in zip(candidate, incumbent)], score.confidence)
    alpha = 1 - score.confidence
    reaches, incumbent_reaches = c.accuracy_lower_bound >= score.target, i.accuracy_lower_bound >= score.target

    if not better_score(c.score, i.score, c.accuracy_lower_bound, i.accuracy_lower_bound):
        promoted, reason = False, f"its score {c.score:.4f} is not above the incumbent's {i.score:.4f}"
    elif reaches and incumbent_reaches:
        promoted = time_gain.pvalue < alpha
        reason = (
            f"faster by {time_gain.mean_difference:.4f} s per run "
            f"(interval [{time_gain.ci_low:.4f}, {time_gain.ci_high:.4f}], p = {time_gain.pvalue:.3g})"
            + ("" if promoted else f": not confirmed at {score.confidence:.0%}")
        )
    elif reaches:
        promoted, reason = True, f"reaches the target {score.target:.4f} (lower bound {c.accuracy_lower_bound:.4f}); the incumbent does not"
    else:
        promoted = accuracy_gain.pvalue < alpha
        reason = (
            f"below the target, more accurate by {accuracy_gain.mean_difference * 100:.3f} points "
            f"(p = {accuracy_gain.pvalue:.3g})" + ("" if promoted else f": not confirmed at {score.confidence:.0%}")
        )
    return PromotionDecision(
        promoted=promoted,
        reason=reason,
        pairs=len(candidate),
        confidence=score.confidence,
        time_gain=time_gain,
        accuracy_gain=accuracy_gain,
        candidate=c,
        incumbent=i,
        candidate_samples=candidate,
        incumbent_samples=incumbent,
    )


def better_score(candidate: float, incumbent: float, candidate_lcb: float, incumbent_lcb: float) -> bool:
    """Higher score; when the penalty overflows both to -inf, the higher accuracy bound."""
    if math.isinf(candidate) and math.isinf(incumbent):
        return candidate_lcb > incumbent_lcb
    return candidate > incumbent


def confirm_promotion(
    candidate: ComponentSet,
    incumbent: ComponentSet,
    dataset: Dataset,
    harness: HarnessSettings,
    score: ScoreSettings,
    settings: PromotionSettings | None = None,
    gpu: int | None = None,
    report: StageReport = no_report,
) -> PromotionDecision:
    """Measure both sets side by side on fresh shared seeds and apply the rule; never raises for a worker's failure."""
    settings = settings or PromotionSettings()
    start = time.perf_counter()
    flags: list[str] = []
    samples: dict[str, list[RunSample]] = {"candidate": [], "incumbent": []}
    try:
        with SandboxedWorker(settings.limits, harness.device, gpu) as c_worker, SandboxedWorker(settings.limits, harness.device, gpu) as i_worker:
            workers = {"candidate": c_worker, "incumbent": i_worker}
            report("warm-up", None, None)
            start_speedrun_worker(c_worker, candidate, dataset, harness)
            start_speedrun_worker(i_worker, incumbent, dataset, harness)
            for pair in range(settings.pairs):
                report("pair", pair + 1, settings.pairs)
                seed = fresh_seed()
                order = ("candidate", "incumbent") if pair % 2 == 0 else ("incumbent", "candidate")
                for side in order:
                    samples[side].append(timed_sample(workers[side], pair, seed, dataset, settings.clock_tolerance, flags))
    except WorkerFailure as e:
        return PromotionDecision(
            promoted=False,
            reason=f"the paired re-measurement failed: {str(e)[:2000]}",
            pairs=len(samples["incumbent"]),
            confidence=score.confidence,
            candidate_samples=samples["candidate"],
            incumbent_samples=samples["incumbent"],
            flags=flags,
            seconds=time.perf_counter() - start,
        )
    decision = decide(samples["candidate"], samples["incumbent"], score)
    decision.flags, decision.seconds = flags, time.perf_counter() - start
    return decision
