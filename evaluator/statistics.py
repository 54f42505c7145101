"""Confidence bounds and the score of a set of runs.

score = -mean_time - penalty, penalty = a ** max(0, target - LCB_ref) - 1 seconds, the shortfall
counted in percentage points. Three choices make scores of different candidates comparable:

- LCB_ref is the one-sided Student-t lower bound the mean accuracy would have at a fixed
  `reference_runs` (default 25) with the observed mean and std, not at the number of runs
  actually made. An early-stopped candidate (3 runs) and a fully measured one (25 runs) are
  then penalised on the same footing; without this the shipped baseline paid 8.7 s at 5 runs
  and 1.0 s at 25 for the same accuracy.
- The std is never taken below `std_floor` (a prior on the per-run accuracy noise, 0.14 points
  on real CIFAR-10, or the value `evolve calibrate` measured): two runs with equal accuracy do
  not make the bound certain.
- The penalty grows as a ** shortfall up to PENALTY_CAP_SECONDS and linearly (with the same
  slope) beyond, so it stays a readable number of seconds instead of overflowing to 1e21 with
  a = 1e8, and still ranks a worse shortfall lower.

The default a = 1e8 makes a shortfall of 0.1 points cost 5.3 s, more than the whole run time of
any speedrun near the record, so no time gain can buy back accuracy; 0.01 points cost 0.2 s.
Accuracy intervals are clipped to [0, 1].
"""

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import stats

from evaluator.rank_test import EXACT_RANK_TEST_LIMIT, rank_test_pvalue  # noqa: F401 (re-exported: its callers import it here)
from evaluator.results import RunSample, Summary
from evaluator.score_defaults import (  # re-exported: the statistics's defaults
    DEFAULT_ACCURACY_STD_FLOOR,
    DEFAULT_CONFIDENCE,
    DEFAULT_PENALTY_BASE,
    DEFAULT_REFERENCE_RUNS,
    DEFAULT_TARGET,
)

PENALTY_CAP_SECONDS = 1000.0


@lru_cache(maxsize=4096)
def t_quantile(q: float, df: int) -> float:
    """Student-t quantile, cached: the null simulations ask for the same few thousands of times."""
    return float(stats.t.ppf(q, df))


def floored_std(values: Sequence[float], floor: float) -> float:
    """The sample std (ddof 1), never below the floor; the floor alone for a single value."""
    x = np.asarray(values, dtype=float)
    sample = math.sqrt(float(np.var(x, ddof=1))) if len(x) > 1 else 0.0
    return max(sample, floor)


def clip_unit(value: float) -> float:
    return min(1.0, max(0.0, value))


def mean_confidence_interval(values: Sequence[float], confidence: float, std_floor: float = 0.0) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean accuracy, clipped to [0, 1]; all of it for a single value."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return 0.0, 1.0
    half = t_quantile(0.5 + confidence / 2, len(x) - 1) * floored_std(x, std_floor) / math.sqrt(len(x))
    return clip_unit(float(x.mean()) - half), clip_unit(float(x.mean()) + half)


def lower_confidence_bound(values: Sequence[float], confidence: float, std_floor: float = 0.0, runs: int | None = None) -> float:
    """One-sided Student-t lower bound of the mean at the given confidence, clipped to [0, 1].

    With `runs`, the bound as if that many runs had shown this mean and (floored) std: the
    score's comparable bound. Without, the bound of the runs made (0 for a single run)."""
    x = np.asarray(values, dtype=float)
    n = runs if runs is not None else len(x)
    if n < 2 or len(x) == 0:
        return 0.0
    std = floored_std(x, std_floor)
    return clip_unit(float(x.mean()) - t_quantile(confidence, n - 1) * std / math.sqrt(n))


def accuracy_penalty(lower_bound: float, target: float, penalty_base: float) -> float:
    """a ** shortfall - 1 seconds, continued linearly above PENALTY_CAP_SECONDS (never inf)."""
    shortfall_points = max(0.0, 100 * (target - lower_bound))
    log_a = math.log(penalty_base)
    cap_points = math.log1p(PENALTY_CAP_SECONDS) / log_a
    if shortfall_points <= cap_points:
        return math.expm1(shortfall_points * log_a)
    slope = log_a * (PENALTY_CAP_SECONDS + 1)  # the exponential's slope at the cap
    return PENALTY_CAP_SECONDS + slope * (shortfall_points - cap_points)


def score(time_mean: float, lower_bound: float, target: float, penalty_base: float) -> float:
    return -time_mean - accuracy_penalty(lower_bound, target, penalty_base)


def summarize(
    samples: Sequence[RunSample],
    confidence: float = DEFAULT_CONFIDENCE,
    target: float = DEFAULT_TARGET,
    penalty_base: float = DEFAULT_PENALTY_BASE,
    reference_runs: int = DEFAULT_REFERENCE_RUNS,
    std_floor: float = DEFAULT_ACCURACY_STD_FLOOR,
) -> Summary:
    if not samples:
        raise ValueError("cannot summarize zero runs")
    acc = np.array([s.accuracy for s in samples])
    times = np.array([s.time_seconds for s in samples])
    ddof = 1 if len(samples) > 1 else 0
    low, high = mean_confidence_interval(acc, confidence, std_floor)
    scored_bound = lower_confidence_bound(acc, confidence, std_floor, reference_runs)
    penalty = accuracy_penalty(scored_bound, target, penalty_base)
    return Summary(
        runs=len(samples),
        accuracy_mean=float(acc.mean()),
        accuracy_std=float(acc.std(ddof=ddof)),
        accuracy_ci_low=low,
        accuracy_ci_high=high,
        accuracy_lower_bound=lower_confidence_bound(acc, confidence, std_floor),
        scored_lower_bound=scored_bound,
        time_mean=float(times.mean()),
        time_std=float(times.std(ddof=ddof)),
        confidence=confidence,
        target=target,
        penalty_base=penalty_base,
        reference_runs=reference_runs,
        accuracy_std_floor=std_floor,
        penalty=penalty,
        score=-float(times.mean()) - penalty,
    )


def summarize_with(samples: Sequence[RunSample], score_settings) -> Summary:
    """summarize() with the fields of a ScoreSettings (evaluator/settings.py)."""
    s = score_settings
    return summarize(samples, s.confidence, s.target, s.penalty_base, s.reference_runs, s.accuracy_std_floor)
