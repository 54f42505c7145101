"""The sequential promotion test (evaluator/promotion_policy/sequential.py): its error rate, exact and
by simulation, and that it stops early either way."""

import numpy as np
import pytest

from evaluator.promotion_policy.policy import PromotionPolicy
from evaluator.promotion_policy.rule import wins_needed
from evaluator.promotion_policy.sequential import (
    accuracy_alphas,
    chance_to_cross,
    futile,
    operating,
    pairs_for_power,
    plan,
)
from evaluator.results import RunSample
from evaluator.settings import PromotionSettings, ScoreSettings


@pytest.mark.parametrize("pairs,alpha", [(8, 0.025), (16, 0.025), (23, 0.05 / 6), (40, 0.05 / 110), (64, 1e-5)])
def test_the_boundaries_keep_the_attempts_alpha_exactly(pairs, alpha):
    p = plan(pairs, alpha, 8)
    assert p.looks[-1] == pairs and list(p.looks) == sorted(set(p.looks))
    assert p.crossing_chance <= alpha
    # the same chance by brute force: every one of the 2**n win/loss sequences is too many; the walk's count is exact
    alive = {0: 1.0}
    crossed, done = 0.0, 0
    for n, c in zip(p.looks, p.wins_needed):
        for _ in range(n - done):
            step: dict[int, float] = {}
            for w, m in alive.items():
                step[w] = step.get(w, 0.0) + m / 2
                step[w + 1] = step.get(w + 1, 0.0) + m / 2
            alive = step
        done = n
        crossed += sum(m for w, m in alive.items() if w >= c)
        alive = {w: m for w, m in alive.items() if w < c}
        assert crossed <= alpha * (n / pairs) ** 2 + 1e-12  # the spending, look by look
    assert crossed == pytest.approx(p.crossing_chance)
    assert sum(p.look_alphas) == pytest.approx(alpha) and sum(accuracy_alphas(p, 0.85)) == pytest.approx(alpha)


def test_one_look_is_the_fixed_sample_sign_test():
    for pairs, alpha in [(16, 0.025), (30, 0.001)]:
        assert plan(pairs, alpha, 1).wins_needed == (wins_needed(pairs, alpha),)


def test_a_null_candidate_passes_at_most_alpha_of_the_time_with_futility_stops():
    """Monte Carlo over 40,000 walks of fair-coin pairs, each stopped where the policy would stop it."""
    rng = np.random.default_rng(0)
    alpha, pairs, promised = 0.05, 24, 0.8
    p = plan(pairs, alpha, 8)
    wins = np.cumsum(rng.random((40_000, pairs)) < 0.5, axis=1)
    passed = 0
    for walk in wins:
        for n in range(1, pairs + 1):
            look = p.look(n)
            if look is not None and walk[n - 1] >= p.wins_needed[look]:
                passed += 1
                break
            if futile(p, n, int(walk[n - 1]), promised, 0.2):
                break
    assert passed / len(wins) <= alpha  # exact chance without futility: p.crossing_chance <= alpha; futility only lowers it
    assert operating(p, 0.5, promised, 0.2).power <= p.crossing_chance


def test_an_obvious_winner_and_an_obvious_loser_stop_after_a_few_pairs():
    alpha, promised = 0.025, 0.8
    pairs = pairs_for_power(alpha, promised, 0.8, 64, 8, 0.2)
    p = plan(pairs, alpha, 8)
    winner, loser, promise = operating(p, 1.0, promised, 0.2), operating(p, 0.2, promised, 0.2), operating(p, promised, promised, 0.2)
    assert promise.power >= 0.8  # the sizing counts the sequential plan and its futility stops
    assert winner.power == pytest.approx(1.0) and winner.expected_pairs <= pairs / 2
    assert loser.power < 1e-3 and loser.expected_pairs <= pairs / 3
    assert chance_to_cross(p, pairs - 1, 0, 1.0) == 0.0 and futile(p, pairs - 1, 0, None, 0.2)  # curtailment


def samples(times: list[float], accuracy: float = 0.95) -> list[RunSample]:
    return [RunSample(run=i, seed=i, accuracy=accuracy, time_seconds=t, device_name="test", torch_version="-")
            for i, t in enumerate(times)]


def test_the_policy_stops_the_pairs_at_the_first_look_that_passes_and_decides_there():
    settings, score = PromotionSettings(pairs=16, accuracy_margin=0.5), ScoreSettings()
    policy = PromotionPolicy(settings, score)
    record = samples([3.0, 3.02, 2.98, 3.01, 2.99] * 4)
    context = policy.context(1, 3.0, None, record).model_copy(update={"win_chance": 0.95})
    p = policy.plan(context, 16)
    assert len(p.looks) > 1
    candidate, incumbent = samples([2.5] * 16), samples([3.0] * 16)
    stops = [n for n in range(2, 17) if policy.stop_reason(candidate[:n], incumbent[:n], context, p)]
    first = stops[0]
    assert first in p.looks and first < 16
    decision = policy.decide(candidate[:first], incumbent[:first], context, p, "passed")
    assert decision.promoted and decision.pairs == first and decision.planned_pairs == 16
    # the loser: every pair lost; it stops long before the last look, and nothing between looks can pass
    losing = samples([3.5] * 16)
    n = next(n for n in range(2, 17) if policy.stop_reason(losing[:n], incumbent[:n], context, p))
    assert n <= 4 and not policy.decide(losing[:n], incumbent[:n], context, p, "stopped").promoted
    # no promised win chance: one look after all the pairs, as the fixed-sample rule
    assert policy.plan(policy.context(1, 3.0, None, record), 16).looks == (16,)


def test_the_sequential_bench_prints_the_saving_against_the_fixed_test(capsys):
    from bench.sequential_promotion import main

    main(["--looks", "4"])
    out = capsys.readouterr().out
    assert "| 1 | 0.025 | 0.85 |" in out and "of 15" in out  # the fixed test needs 15 pairs there; the sequential row says its average


def test_a_no_op_candidate_stopped_and_decided_by_the_policy_is_promoted_at_most_alpha_of_the_time():
    """1,500 comparisons at the edge of the null through the policy's stop rule and decision (time and accuracy
    tests, as the search runs them): the candidate faster by exactly the minimum gain, so that each pair is a fair
    coin (the worst case of "no gain"), with the pairs sized for a promised win chance of 0.9 it does not have."""
    rng = np.random.default_rng(7)
    settings, score = PromotionSettings(experiment_alpha=0.1), ScoreSettings()
    policy = PromotionPolicy(settings, score)
    record = [RunSample(run=i, seed=i, accuracy=0.95, time_seconds=float(t), device_name="test", torch_version="-")
              for i, t in enumerate(rng.normal(3.0, 0.03, 12))]
    context = policy.context(1, 3.0, None, record).model_copy(update={"win_chance": 0.9})
    plan_ = policy.plan(context, 24)
    promoted, pairs_used = 0, []
    for _ in range(1500):
        times, accuracies = rng.normal(3.0, 0.03, (2, 24)), rng.normal(0.95, 0.0014, (2, 24))
        times[0] -= context.min_gain_seconds
        sides = [[RunSample(run=i, seed=i, accuracy=float(accuracies[s, i]), time_seconds=float(times[s, i]),
                            device_name="test", torch_version="-") for i in range(24)] for s in (0, 1)]
        n = next((n for n in range(2, 25) if policy.stop_reason(sides[0][:n], sides[1][:n], context, plan_)), 24)
        stopped = policy.stop_reason(sides[0][:n], sides[1][:n], context, plan_) if n < 24 else None
        promoted += policy.decide(sides[0][:n], sides[1][:n], context, plan_, stopped).promoted
        pairs_used.append(n)
    assert promoted / 1500 <= context.alpha + 0.017, promoted  # alpha 0.05 here; 3 binomial standard deviations above it
    assert np.mean(pairs_used) < 0.75 * 24, np.mean(pairs_used)  # and they stop early: the fixed test would use all 24
