import math

import numpy as np
import pytest
from scipy import stats

from evaluator.results import RunSample
from evaluator.statistics import accuracy_penalty, lower_confidence_bound, mean_confidence_interval, score, summarize


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


def test_a_single_run_has_no_lower_bound():
    assert lower_confidence_bound([0.95], 0.95) == -math.inf
    assert score(2.0, -math.inf, 0.94, 1e8) == -math.inf


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
