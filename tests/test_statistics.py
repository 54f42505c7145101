import math

import numpy as np
import pytest
from scipy import stats

from evaluator.early_stop import clearly_failing
from evaluator.results import RunSample
from evaluator.statistics import (
    PENALTY_CAP_SECONDS,
    accuracy_penalty,
    lower_confidence_bound,
    mean_confidence_interval,
    summarize,
)


def samples(accuracies, times):
    return [
        RunSample(run=i, seed=i, accuracy=a, time_seconds=t, device_name="cpu", torch_version="x")
        for i, (a, t) in enumerate(zip(accuracies, times))
    ]


def test_lower_bound_is_one_sided_student_t():
    x = np.array([0.9401, 0.9385, 0.9412, 0.9398, 0.9420])
    expected = x.mean() - stats.t.ppf(0.95, 4) * x.std(ddof=1) / math.sqrt(5)
    assert lower_confidence_bound(x, 0.95) == pytest.approx(expected)
    low, high = mean_confidence_interval(x, 0.95)
    assert low < lower_confidence_bound(x, 0.95) < x.mean() < high


def test_a_single_run_has_no_lower_bound_but_a_finite_score():
    assert lower_confidence_bound([0.95], 0.95) == 0.0 and mean_confidence_interval([0.95], 0.95) == (0.0, 1.0)
    one = summarize(samples([0.95], [2.0]), target=0.94)
    assert math.isfinite(one.score) and one.score == pytest.approx(-2.0)  # scored at the reference runs with the prior std


def test_equal_accuracies_do_not_make_the_bound_certain():
    """std == 0 once gave the lower bound infinite confidence from two runs; the floor keeps the prior noise."""
    x = [0.9402, 0.9402]
    assert lower_confidence_bound(x, 0.95, std_floor=0.0014) == pytest.approx(0.9402 - stats.t.ppf(0.95, 1) * 0.0014 / math.sqrt(2))
    assert clearly_failing([0.50, 0.50, 0.50], 0.94, 0.95) and not clearly_failing([0.9395] * 3, 0.94, 0.95)


def test_scores_of_early_stopped_and_full_evaluations_compare():
    """The same accuracy distribution scored from 5 runs or 25: the same median penalty (a noisier
    mean still scatters more). Scored at the runs made, it was 8.7 s against 1.0 s."""
    rng = np.random.default_rng(0)

    def median_penalty(runs):
        return np.median([summarize(samples(rng.normal(0.9400, 0.0014, runs), [2.0] * runs)).penalty for _ in range(400)])

    few, many = median_penalty(5), median_penalty(25)
    assert abs(few - many) < 0.3 * many, (few, many)


def test_intervals_stay_within_zero_and_one():
    summary = summarize(samples([0.99, 1.0, 1.0], [1.0] * 3))
    assert 0.0 <= summary.accuracy_ci_low <= summary.accuracy_ci_high <= 1.0
    assert summarize(samples([0.0, 0.01], [1.0] * 2)).accuracy_ci_low == 0.0


def test_a_large_shortfall_costs_a_readable_number_of_seconds():
    """a = 1e8 and a 2.6-point shortfall printed -1.8e21; the penalty now grows linearly past the cap."""
    assert accuracy_penalty(0.914, 0.94, 1e8) < 1e6
    assert accuracy_penalty(0.0, 0.94, 1e8) < 1e7
    assert accuracy_penalty(0.90, 0.94, 1e8) > accuracy_penalty(0.91, 0.94, 1e8) > 1000
    cap = math.log1p(PENALTY_CAP_SECONDS) / math.log(1e8) / 100
    below, above = accuracy_penalty(0.94 - cap + 1e-9, 0.94, 1e8), accuracy_penalty(0.94 - cap - 1e-9, 0.94, 1e8)
    assert below == pytest.approx(above, rel=1e-4)  # continuous at the cap


def test_penalty_only_below_target_and_in_points():
    assert accuracy_penalty(0.945, 0.94, 1e8) == 0
    assert accuracy_penalty(0.939, 0.94, 1e8) == pytest.approx(1e8**0.1 - 1)
    assert accuracy_penalty(0.939, 0.94, 1e8) > 5  # 0.1 points cost more than a whole speedrun


def test_summary_scores_time_when_bound_clears_target():
    summary = summarize(samples([0.95, 0.951, 0.949, 0.95], [2.0, 2.1, 1.9, 2.0]), target=0.94)
    assert summary.score == pytest.approx(-2.0)
    assert summary.accuracy_std == pytest.approx(np.std([0.95, 0.951, 0.949, 0.95], ddof=1))
    failing = summarize(samples([0.94, 0.938, 0.941, 0.939], [1.0] * 4), target=0.94)
    assert failing.score < -1.0
