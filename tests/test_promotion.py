"""The promotion rule on paired samples, and the paired re-measurement end to end on the CPU."""

import pytest

from evaluator.data import synthetic_dataset
from evaluator.promotion_policy.rule import DecisionContext, decide
from evaluator import promotion
from evaluator.promotion import PromotionSettings, confirm_promotion, pair_order
from evaluator.results import RunSample
from evaluator.sandbox.sandboxed_worker import WorkerLimits
from evaluator.settings import HarnessSettings, ScoreSettings

SCORE = ScoreSettings(target=0.94, confidence=0.95)


def samples(times: list[float], accuracies: list[float]) -> list[RunSample]:
    return [
        RunSample(run=i, seed=i, accuracy=a, time_seconds=t, device_name="test", torch_version="x")
        for i, (t, a) in enumerate(zip(times, accuracies))
    ]


def context(record):
    return DecisionContext(attempt=1, alpha=0.025, min_gain_seconds=0.05, min_gain_source="test", accuracy_margin=0.002,
                           incumbent_record=record)


def test_a_confirmed_speedup_at_the_target_is_promoted():
    incumbent = samples([3.00, 3.02, 2.99, 3.01, 3.03, 3.00, 3.01, 3.00], [0.950, 0.951, 0.949, 0.950, 0.952, 0.950, 0.950, 0.951])
    candidate = samples([2.80, 2.83, 2.79, 2.80, 2.84, 2.81, 2.80, 2.82], [0.950, 0.950, 0.950, 0.951, 0.951, 0.949, 0.951, 0.950])
    decision = decide(candidate, incumbent, SCORE, context(incumbent))
    assert decision.promoted, decision.reason
    assert decision.tests[0].estimate == pytest.approx(0.195, abs=1e-3)
    assert decision.tests[0].pvalue == pytest.approx(1 / 256) and "faster" in decision.reason


def test_a_gain_within_the_noise_is_not_promoted():
    incumbent = samples([3.00, 2.90, 3.10, 2.95, 3.05, 3.00], [0.95] * 6)
    candidate = samples([2.95, 3.05, 2.90, 3.00, 3.00, 3.02], [0.95] * 6)
    decision = decide(candidate, incumbent, SCORE, context(incumbent))
    assert not decision.promoted and "not promoted" in decision.reason


def test_a_gain_below_the_minimum_is_not_promoted():
    incumbent = samples([3.00] * 8, [0.95] * 8)
    candidate = samples([2.97] * 8, [0.95] * 8)  # 0.03 s faster in every pair; the minimum is 0.05 s
    decision = decide(candidate, incumbent, SCORE, context(incumbent))
    assert not decision.promoted and decision.tests[0].estimate == pytest.approx(0.03)


def test_faster_but_below_the_target_is_not_promoted():
    incumbent = samples([3.0] * 2 + [3.01] * 2, [0.950, 0.951, 0.949, 0.950])
    candidate = samples([2.0] * 2 + [2.01] * 2, [0.935, 0.936, 0.934, 0.935])
    decision = decide(candidate, incumbent, SCORE, context(incumbent))
    assert not decision.promoted and "score" in decision.reason


def test_pairs_must_match():
    with pytest.raises(ValueError, match="at least 2 pairs"):
        decide(samples([1.0], [0.9]), samples([1.0], [0.9]), SCORE, context([]))


def test_paired_remeasurement_end_to_end_on_the_cpu(baseline_set):
    """The same set against itself: paired on shared seeds, identical accuracies, no promotion."""
    dataset = synthetic_dataset(400, 100, seed=3)
    harness = HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 1})
    limits = WorkerLimits(setup_seconds=60, warmup_seconds=120, run_seconds=60, memory_bytes=6 << 30)
    decision = confirm_promotion(baseline_set, baseline_set, dataset, harness, SCORE, PromotionSettings(pairs=2, limits=limits))
    assert decision.pairs == 2 and len(decision.candidate_samples) == len(decision.incumbent_samples) == 2
    assert [s.seed for s in decision.candidate_samples] == [s.seed for s in decision.incumbent_samples]
    # Same code, same seed, same data order on the CPU: the same predictions.
    assert [s.accuracy for s in decision.candidate_samples] == [s.accuracy for s in decision.incumbent_samples]
    assert not decision.promoted and decision.attempt == 1 and decision.alpha_spent == 0.025  # 2 pairs cannot reach it


def test_who_goes_first_is_a_coin_flip_for_each_pair():
    assert pair_order(0) == ("candidate", "incumbent") and pair_order(1) == ("incumbent", "candidate")


def test_every_pair_runs_on_a_fresh_pair_of_workers(baseline_set, monkeypatch):
    """A worker has a speed of its own: pairs that shared the two workers would share their offset
    (module docstring); and no worker lives while another is started, let alone timed."""
    from evaluator.sandbox.sandboxed_worker import SandboxedWorker

    started, pids = [], []
    real_enter = SandboxedWorker.__enter__

    def recording_enter(worker):
        assert all(w.process.poll() is not None for w in started), "a worker was still alive when the next one started"
        entered = real_enter(worker)
        started.append(worker)
        pids.append(worker.process.pid)
        return entered

    monkeypatch.setattr(SandboxedWorker, "__enter__", recording_enter)
    dataset = synthetic_dataset(400, 100, seed=3)
    harness = HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 1})
    limits = WorkerLimits(setup_seconds=60, warmup_seconds=120, run_seconds=60, memory_bytes=6 << 30)
    measured = promotion.measure_pairs(baseline_set, baseline_set, dataset, harness, PromotionSettings(pairs=3, limits=limits))
    assert measured.error is None and len(measured.candidate_samples) == 3
    assert len(started) == 6 and len(set(pids)) == 6  # two new workers for each of the 3 pairs
    assert len({s.seed for s in measured.candidate_samples}) == 3


def test_a_side_that_fails_its_set_up_ends_the_measurement_with_its_reason(baseline_set):
    """The failing side's error comes back, nothing hangs, nothing is promoted."""
    broken = baseline_set.model_copy(update={"sources": {**baseline_set.sources, "hyperparams": baseline_set.sources["hyperparams"]
                                                        + "\nraise RuntimeError('broken on purpose')\n"}})
    dataset = synthetic_dataset(400, 100, seed=3)
    harness = HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 1})
    limits = WorkerLimits(setup_seconds=60, warmup_seconds=120, run_seconds=60, memory_bytes=6 << 30)
    decision = confirm_promotion(broken, baseline_set, dataset, harness, SCORE, PromotionSettings(pairs=2, limits=limits))
    assert not decision.promoted and decision.pairs == 0 and decision.alpha_spent == 0
    assert decision.reason.startswith("the paired re-measurement failed") and "broken on purpose" in decision.reason
