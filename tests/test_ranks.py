"""The parent draw's ranks (evolve/search/ranks.py) are scipy's rankdata(method="average"), float for float."""

import numpy as np
from scipy.stats import rankdata

from evolve.search.ranks import average_ranks


def test_the_same_ranks_as_scipy_with_and_without_ties():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(0, 60))
        values = rng.normal(-3.0, 0.1, n)
        if rng.random() < 0.6:
            values = np.round(values, int(rng.integers(0, 3)))  # ties, long runs of them at 0 decimals
        values = [float(v) for v in values]
        got = average_ranks(values)
        assert got.dtype == np.float64 and np.array_equal(got, rankdata(values, method="average"))


def test_edges():
    for values in ([], [1.0], [2.0, 2.0, 2.0], [0.0, -0.0, 1.0], [float("inf"), 1.0, float("-inf")], [1.0, float("nan")]):
        assert np.array_equal(average_ranks(values), rankdata(values, method="average"), equal_nan=True), values
