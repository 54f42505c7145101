"""Pairs sized by power: an attempt that could not confirm its candidate spends no error budget, and one
that can gets the pairs it needs. The decision itself stays on the fresh pairs (tests/test_decision.py)."""

import numpy as np
import pytest

from evaluator.promotion_policy.policy import ChampionRecord, PromotionPolicy
from evaluator.promotion_policy.rule import pairs_for, pairs_for_power, sign_test_power, wins_needed
from evaluator.results import RunSample
from evaluator.settings import PromotionSettings, ScoreSettings


def samples(times, accuracy: float = 0.95) -> list[RunSample]:
    return [RunSample(run=i, seed=i, accuracy=accuracy, time_seconds=float(t), device_name="test", torch_version="-")
            for i, t in enumerate(times)]


def test_sign_test_power_is_the_binomial_tail_and_grows_with_the_pairs():
    assert sign_test_power(16, 0.025, 0.5) <= 0.025  # no gain: at most alpha
    assert sign_test_power(10, 0.001, 1.0) == 1.0  # every pair won, enough pairs to reach alpha
    assert sign_test_power(8, 0.001, 1.0) == 0.0  # 2 ** -8 > 0.001: no count is rare enough
    rng = np.random.default_rng(0)  # the tail by simulation
    wins = rng.binomial(30, 0.7, size=200_000)
    assert np.mean(wins >= wins_needed(30, 0.01)) == pytest.approx(sign_test_power(30, 0.01, 0.7), abs=0.005)
    assert sign_test_power(60, 0.01, 0.7) > sign_test_power(30, 0.01, 0.7)


def test_pairs_for_power_is_the_fewest_that_reach_it_or_none():
    n = pairs_for_power(0.01, 0.75, 0.8, 64)
    assert n is not None and n >= pairs_for(0.01)
    assert sign_test_power(n, 0.01, 0.75) >= 0.8
    assert all(sign_test_power(m, 0.01, 0.75) < 0.8 for m in range(pairs_for(0.01), n - 3))  # none well below it
    assert pairs_for_power(0.01, 0.55, 0.8, 64) is None  # a small edge needs far more than 64 pairs
    assert pairs_for_power(1e-30, 0.99, 0.8, 64) is None  # alpha below 2 ** -64
    assert pairs_for_power(0.025, 0.999, 0.8, 64) == pairs_for(0.025)  # a clear winner: what alpha needs


def champion(times, confirmed=True) -> ChampionRecord:
    return ChampionRecord(id=1, score=-float(np.mean(times)), accuracy_lower_bound=0.945, time_mean=float(np.mean(times)),
                          samples=samples(times), confirmed=confirmed)


def test_the_policy_sizes_pairs_by_the_screening_gain_and_skips_what_it_cannot_confirm():
    p = PromotionPolicy(PromotionSettings(pairs=16, power=0.8, max_pairs=64), ScoreSettings(target=0.94))
    record = champion(3.0 + 0.08 * np.random.default_rng(1).standard_normal(40))  # 2.7 % per-run noise
    context = p.context(3, 3.0, None)  # min gain 0.03 s, alpha 0.05 / 12
    clear, _ = p.pairs_for_candidate(context, [2.6, 2.62, 2.58], record)
    modest, why = p.pairs_for_candidate(context, [2.9, 2.92, 2.89], record)
    tiny, reason = p.pairs_for_candidate(context, [2.98, 2.99, 2.97], record)
    assert clear == p.pairs(context)  # an obvious winner needs no more than the setting
    assert modest is not None and modest > clear and "power 0.8" in why
    assert tiny is None and "no error budget spent" in reason
    # the old policy where the record is one worker's screening runs, off the time branch, or power = 0
    assert p.pairs_for_candidate(context, [2.98, 2.99, 2.97], champion(record.times, confirmed=False))[0] == p.pairs(context)
    off = PromotionPolicy(PromotionSettings(pairs=16, power=0.0), ScoreSettings(target=0.94))
    assert off.pairs_for_candidate(context, [2.98, 2.99, 2.97], record)[0] == off.pairs(context)
