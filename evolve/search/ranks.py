"""Average ranks of a short list, as scipy.stats.rankdata(method="average") gives them, without its cost.

The parent draw ranks the head of an island's pool (about 40 members) for every proposal;
scipy's rankdata spends some 0.3 ms on argument handling for that, more than the draw's other
work. Ranks are halves of integers, exact in float64, so a plain sort gives the same floats;
a non-finite value (scipy propagates NaN) goes to scipy itself.
"""

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (float64), in the order of `values`."""
    if not all(math.isfinite(v) for v in values):
        return rankdata(values, method="average")
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and values[order[end]] == values[order[start]]:
            end += 1
        mean = (start + 1 + end) / 2  # of the 1-based ranks start + 1 .. end
        for position in range(start, end):
            ranks[order[position]] = mean
        start = end
    return np.array(ranks, dtype=float)
