"""Noise calibration: a component set against itself in the paired protocol, on the user's device.

The promotion rule (evaluator/promotion_policy/rule.py) needs to know how noisy a pair is on this machine:
the minimum gain worth promoting defaults to the calibrated paired time noise, and the user
wants to know what the rule will do with that noise. From A/A pairs (the same set on both
sides, same seeds) this reports:

- per-run noise: the std of time and of accuracy over all runs, and the robust std
  (1.4826 x median absolute deviation) of the paired time differences, which bursts of load do
  not inflate the way they inflate the plain std;
- the false-promotion rate of the current settings on that noise: A/A comparisons simulated
  by resampling the measured pairs (each drawn with replacement, sides swapped at random, which
  is exactly what "no difference" means for a pair) through the real decision function;
- the pairs needed to detect a given gain with 80 % power at a given attempt, by the same
  resampling with the candidate's times shortened by the gain.
"""

import numpy as np
from pydantic import BaseModel, Field

from evaluator.promotion_policy.policy import PromotionPolicy
from evaluator.promotion_policy.rule import RuleSettings, attempt_alpha, pairs_for
from evaluator.results import RunSample
from evaluator.settings import PromotionSettings, ScoreSettings

POWER = 0.8
MAX_PAIRS = 64


class PairsNeeded(BaseModel):
    attempt: int
    alpha: float
    pairs: int | None = Field(description=f"fewest pairs with {POWER:.0%} power; none: more than {MAX_PAIRS}")


class CalibrationReport(BaseModel):
    subject: str
    device_name: str
    pairs: int
    time_mean: float
    time_std: float = Field(description="per-run std of time over all runs of both sides, seconds")
    time_noise_seconds: float = Field(description="robust std of the paired time differences: the default minimum gain")
    accuracy_mean: float
    accuracy_std: float = Field(description="per-run std of accuracy over all runs")
    accuracy_pair_std: float = Field(description="std of the paired accuracy differences")
    min_gain_seconds: float = Field(description="the minimum gain the current settings use with this calibration")
    min_gain_source: str
    simulations: int
    false_promotion_rate: float = Field(description="share of simulated A/A comparisons promoted at attempt 1")
    attempt_alpha: float = Field(description="what attempt 1 may spend: the bound that rate must respect")
    experiment_alpha: float
    gain_seconds: float = Field(description="the gain the pairs below are sized to detect")
    pairs_needed: list[PairsNeeded]
    samples_a: list[RunSample]
    samples_b: list[RunSample]


def robust_std(values: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def resampled(a: list[RunSample], b: list[RunSample], n: int, rng: np.random.Generator, gain: float) -> tuple[list[RunSample], list[RunSample]]:
    """n pairs drawn from the measured ones, sides swapped at random; the candidate `gain` seconds faster."""
    candidate, incumbent = [], []
    for run, j in enumerate(rng.integers(len(a), size=n)):
        first, second = (a[j], b[j]) if rng.random() < 0.5 else (b[j], a[j])
        candidate.append(first.model_copy(update={"run": run, "time_seconds": first.time_seconds - gain}))
        incumbent.append(second.model_copy(update={"run": run}))
    return candidate, incumbent


def policy_of(rule: RuleSettings, score: ScoreSettings) -> PromotionPolicy:
    """The search's promotion policy under these rule settings (a calibration has no gate or pair setting of its own)."""
    return PromotionPolicy(PromotionSettings.model_validate(rule.model_dump()), score)


def promotion_rate(a, b, n, attempt, gain, simulations, rule, score, min_gain, rng) -> float:
    """Share of `simulations` resampled comparisons that the policy promotes at `attempt`, with the calibrated gain."""
    policy = policy_of(rule, score)
    context = policy.context(attempt, 0.0, min_gain, a).model_copy(update={"min_gain_seconds": min_gain, "min_gain_source": "calibration"})
    return float(np.mean([policy.decide(*resampled(a, b, n, rng, gain), context).promoted for _ in range(simulations)]))


def pairs_needed(a, b, attempt, gain, simulations, rule, score, min_gain, rng) -> int | None:
    """The fewest pairs reaching POWER, by bisection (power grows with the pairs)."""
    low = pairs_for(attempt_alpha(rule.experiment_alpha, attempt))
    if promotion_rate(a, b, MAX_PAIRS, attempt, gain, simulations, rule, score, min_gain, rng) < POWER:
        return None
    high = MAX_PAIRS
    while low < high:
        mid = (low + high) // 2
        if promotion_rate(a, b, mid, attempt, gain, simulations, rule, score, min_gain, rng) >= POWER:
            high = mid
        else:
            low = mid + 1
    return low


def calibration_report(
    a: list[RunSample],
    b: list[RunSample],
    subject: str,
    rule: RuleSettings,
    score: ScoreSettings,
    gain_seconds: float | None = None,
    simulations: int = 400,
    attempts: tuple[int, ...] = (1, 10),
    seed: int | None = None,
) -> CalibrationReport:
    """The report of the module docstring from A/A pairs (a[i] and b[i] ran on the same seed)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"calibration needs at least 2 complete pairs, got {min(len(a), len(b))}")
    rng = np.random.default_rng(seed)
    times = np.array([s.time_seconds for s in a + b])
    accs = np.array([s.accuracy for s in a + b])
    time_diffs = np.array([x.time_seconds - y.time_seconds for x, y in zip(a, b)])
    acc_diffs = np.array([x.accuracy - y.accuracy for x, y in zip(a, b)])
    noise = robust_std(time_diffs)
    min_gain, source = policy_of(rule, score).minimum_gain(float(np.median(times)), noise)
    gain = gain_seconds if gain_seconds is not None else max(min_gain, rule.default_gain_fraction * float(np.median(times))) * 2
    n = max(len(a), pairs_for(attempt_alpha(rule.experiment_alpha, 1)))
    return CalibrationReport(
        subject=subject,
        device_name=a[0].device_name,
        pairs=len(a),
        time_mean=float(times.mean()),
        time_std=float(times.std(ddof=1)),
        time_noise_seconds=noise,
        accuracy_mean=float(accs.mean()),
        accuracy_std=float(accs.std(ddof=1)),
        accuracy_pair_std=float(acc_diffs.std(ddof=1)),
        min_gain_seconds=min_gain,
        min_gain_source=source,
        simulations=simulations,
        false_promotion_rate=promotion_rate(a, b, n, 1, 0.0, simulations, rule, score, min_gain, rng),
        attempt_alpha=attempt_alpha(rule.experiment_alpha, 1),
        experiment_alpha=rule.experiment_alpha,
        gain_seconds=gain,
        pairs_needed=[PairsNeeded(attempt=k, alpha=attempt_alpha(rule.experiment_alpha, k),
                                  pairs=pairs_needed(a, b, k, gain, max(simulations // 4, 50), rule, score, min_gain, rng))
                      for k in attempts],
        samples_a=a,
        samples_b=b,
    )
