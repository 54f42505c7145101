"""Confidence bounds and the score of a set of runs.

score = -mean_time - (a ** max(0, target - LCB) - 1), with the shortfall counted in percentage
points and LCB the one-sided Student-t lower bound of the mean accuracy. The default a = 1e8
makes a shortfall of 0.1 points cost 5.3 s, more than the whole run time of any speedrun near
the record, so no time gain can buy back accuracy; a shortfall of 0.01 points costs 0.2 s.
"""

import math
from collections.abc import Sequence

import numpy as np

from evaluator.results import RunSample, Summary

DEFAULT_CONFIDENCE = 0.95
DEFAULT_TARGET = 0.94
DEFAULT_PENALTY_BASE = 1e8


def mean_confidence_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean; infinite when there is a single value."""
    from scipy import stats  # imported here: the CLI starts without scipy (docs/BENCHMARKS.md)

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return -math.inf, math.inf
    if x.std() == 0:
        return float(x.mean()), float(x.mean())
    low, high = stats.t.interval(confidence, df=len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    return float(low), float(high)


def lower_confidence_bound(values: Sequence[float], confidence: float) -> float:
    """One-sided Student-t lower bound of the mean at the given confidence."""
    from scipy import stats  # imported here: the CLI starts without scipy (docs/BENCHMARKS.md)

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return -math.inf
    if x.std() == 0:
        return float(x.mean())
    return float(x.mean() - stats.t.ppf(confidence, df=len(x) - 1) * stats.sem(x))


def accuracy_penalty(lower_bound: float, target: float, penalty_base: float) -> float:
    shortfall_points = max(0.0, 100 * (target - lower_bound))
    if math.isinf(shortfall_points):
        return math.inf
    try:
        return penalty_base**shortfall_points - 1
    except OverflowError:
        return math.inf


def score(time_mean: float, lower_bound: float, target: float, penalty_base: float) -> float:
    return -time_mean - accuracy_penalty(lower_bound, target, penalty_base)


def summarize(
    samples: Sequence[RunSample],
    confidence: float = DEFAULT_CONFIDENCE,
    target: float = DEFAULT_TARGET,
    penalty_base: float = DEFAULT_PENALTY_BASE,
) -> Summary:
    if not samples:
        raise ValueError("cannot summarize zero runs")
    acc = np.array([s.accuracy for s in samples])
    times = np.array([s.time_seconds for s in samples])
    ddof = 1 if len(samples) > 1 else 0
    low, high = mean_confidence_interval(acc, confidence)
    lcb = lower_confidence_bound(acc, confidence)
    return Summary(
        runs=len(samples),
        accuracy_mean=float(acc.mean()),
        accuracy_std=float(acc.std(ddof=ddof)),
        accuracy_ci_low=low,
        accuracy_ci_high=high,
        accuracy_lower_bound=lcb,
        time_mean=float(times.mean()),
        time_std=float(times.std(ddof=ddof)),
        confidence=confidence,
        target=target,
        penalty_base=penalty_base,
        score=score(float(times.mean()), lcb, target, penalty_base),
    )
