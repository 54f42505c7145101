"""The remembered rank test gives scipy's p-value bit for bit (evaluator/rank_test.py)."""

import numpy as np

from evaluator import rank_test
from evaluator.rank_test import rank_test_pvalue, scipy_pvalue


def reference(x, y) -> float:
    method = "auto" if len(x) * len(y) <= rank_test.EXACT_RANK_TEST_LIMIT else "asymptotic"
    return scipy_pvalue(x, y, method)


def samples(rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """Sizes and values as the gate and the early stop see them: a few screening runs, a record of
    a few to thousands, times rounded so that ties happen (and exact values, so that they do not)."""
    n1, n2 = int(rng.integers(1, 9)), int(rng.choice([1, 3, 5, 8, 12, 40, 300, 2500]))
    x, y = rng.normal(10.0, 0.2, n1), rng.normal(10.05, 0.2, n2)
    if rng.random() < 0.5:
        x, y = np.round(x, 2), np.round(y, 2)
    if rng.random() < 0.2:
        x[0] = y[0]  # a tie across the samples
    if rng.random() < 0.5:
        x, y = y, x
    return [float(v) for v in x], [float(v) for v in y]


def test_the_same_pvalues_as_scipy_cached_or_not():
    rng = np.random.default_rng(0)
    cases = [samples(rng) for _ in range(400)]
    rank_test._PVALUES.clear()
    for x, y in cases + cases:  # the second round comes from the cache
        assert rank_test_pvalue(x, y) == reference(x, y)
        assert rank_test_pvalue(list(reversed(x)), y) == reference(x, y)  # the order of the runs does not matter


def test_equal_keys_have_equal_pvalues():
    """Two different samples with the same sizes, U1 and ties share an entry: scipy agrees they are equal."""
    rank_test._PVALUES.clear()
    a = rank_test_pvalue([1.0, 5.0], [2.0, 3.0, 4.0])
    assert len(rank_test._PVALUES) == 1
    b = rank_test_pvalue([10.0, 50.0], [20.0, 30.0, 40.0])
    assert len(rank_test._PVALUES) == 1 and a == b == reference([10.0, 50.0], [20.0, 30.0, 40.0])


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(rank_test, "CACHED_PVALUES", 10)
    rank_test._PVALUES.clear()
    for k in range(30):
        rank_test_pvalue([float(k)], [float(i) for i in range(40)])
    assert len(rank_test._PVALUES) <= 10


def test_what_the_key_does_not_cover_goes_to_scipy():
    x, y = [1.0, float("nan")], [2.0, 3.0]
    assert np.isnan(rank_test_pvalue(x, y)) == np.isnan(reference(x, y))
    assert np.isnan(rank_test_pvalue([], [1.0])) == np.isnan(reference([], [1.0]))  # scipy's warning and NaN
    assert rank_test_pvalue([float("inf"), 1.0], [2.0, 3.0]) == reference([float("inf"), 1.0], [2.0, 3.0])
