"""The one-sided Mann-Whitney p-value, remembered by what it depends on.

The gate (evaluator/promotion_policy/gate.py) and the early stop (evaluator/early_stop.py) test
a few screening runs against the champion's record for every candidate: the same sizes and
mostly the same champion again and again. scipy's mannwhitneyu spends most of its time in
argument handling and, for the exact distribution, in rebuilding that distribution whenever the
sizes change (it keeps one per thread). Its p-value depends on the two samples only through
their sizes, the statistic U1 and the tie term (sum of t^3 - t over groups of equal values), so
those few numbers, computed here in a few numpy calls, are the key of a cache whose values are
scipy's own p-values: the same inputs give the same floats as before, bit for bit."""

from collections.abc import Sequence

import numpy as np
from scipy import stats

EXACT_RANK_TEST_LIMIT = 2_000  # n1 * n2 above which the rank test uses the normal approximation
CACHED_PVALUES = 65_536

_PVALUES: dict[tuple[int, int, str, float, float], float] = {}


def rank_key(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """U1 of x against y (pairs with x greater, ties counting one half) and the tie term of
    the pooled sample: exact in float64, as scipy's rank sums are, for any realistic size."""
    ys = np.sort(y)
    below = np.searchsorted(ys, x, "left")
    equal = np.searchsorted(ys, x, "right") - below
    _, counts = np.unique(np.concatenate((x, y)), return_counts=True)
    counts = counts.astype(float)
    return float(below.sum()) + 0.5 * float(equal.sum()), float((counts ** 3 - counts).sum())


def scipy_pvalue(x: Sequence[float], y: Sequence[float], method: str) -> float:
    return float(stats.mannwhitneyu(x, y, alternative="greater", method=method).pvalue)


def rank_test_pvalue(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided Mann-Whitney p-value of "x is not stochastically greater than y".

    scipy's exact distribution (its default for a small sample without ties) costs time that
    grows with the product of the sizes, and a champion compared a hundred times holds thousands
    of runs; beyond EXACT_RANK_TEST_LIMIT the normal approximation with tie and continuity
    corrections is used instead: with one side that large it is accurate to the third decimal."""
    method = "auto" if len(x) * len(y) <= EXACT_RANK_TEST_LIMIT else "asymptotic"
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.ndim != 1 or ys.ndim != 1 or not len(xs) or not len(ys) or np.isnan(xs).any() or np.isnan(ys).any():
        return scipy_pvalue(x, y, method)  # scipy's own answer (or error) for what the key does not cover
    key = (len(xs), len(ys), method, *rank_key(xs, ys))
    pvalue = _PVALUES.get(key)
    if pvalue is None:
        pvalue = _PVALUES[key] = scipy_pvalue(x, y, method)
        if len(_PVALUES) > CACHED_PVALUES:
            _PVALUES.pop(next(iter(_PVALUES)), None)  # the oldest; a racing thread may have taken it
    return pvalue
