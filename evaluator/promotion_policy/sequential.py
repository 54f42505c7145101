"""A promotion's pairs tested as they come: the comparison stops as soon as its answer is clear, either way.

A group-sequential sign test. An attempt's plan (its alpha, its most pairs N, `looks` L) tests at
about N/L, 2N/L, ..., N pairs. At look j the candidate passes the time test when its wins (pairs
it won by more than the minimum gain, rule.py) reach `wins_needed[j]`: the least counts for which
the chance under "no gain" of crossing at any look up to j is at most alpha (n_j / N) ** 2, an
alpha-spending function (exponent 1 stops early like Pocock's, 3 late like O'Brien-Fleming's; 2
lies between). The chance is computed exactly on the binomial walk with every pair a fair coin,
the worst case of the null: crossing a boundary is an increasing event in the per-pair win
chance, so a candidate that is truly no faster crosses less often. Discreteness leaves some of a
look's share unspent; the spending is cumulative, so it passes to the next look, and a look that
cannot be crossed at all spends nothing: with L = 1 this is the fixed-sample test of rule.py.

The accuracy t-tests of a look (non-inferiority on the time branch, the gain on the accuracy
branch) run at that look's share of alpha (`accuracy_alphas`); the shares sum to alpha, so by the
union bound their error over all looks is at most alpha too, whatever links a pair's time to its
accuracy (a candidate may behave differently on different seeds), and the attempt's (an
intersection-union test: promotion at a look needs every test of that look) stays at its alpha.
The shares are fixed before the first pair: half follows the time test's spending, half the chance
that the time test first passes at each look at the promised win chance, so that the looks where
a winner is expected to stop can also show its accuracy.

Futility: after every pair, a comparison whose chance of crossing a later boundary is below
`futility` at the per-pair win chance its screening promised (the pair sizing's, policy.py), or
with no such promise at all (every pair left won: curtailment), stops as a loser. Stopping for
futility removes ways to be promoted and none to be refused, so it cannot raise the error rate;
it costs power, which `power` (and the pair sizing through it) counts.
"""

from functools import lru_cache

import numpy as np
from pydantic import BaseModel, Field

SPENDING_EXPONENT = 2.0  # alpha spent by the look at n of N pairs: alpha (n / N) ** 2


class SequentialPlan(BaseModel, frozen=True):
    """Where an attempt's pairs are tested and what each look needs; fixed before the first pair."""

    alpha: float
    pairs: int = Field(description="the most pairs: the last look")
    looks: tuple[int, ...] = Field(description="pair counts at which the time test is made, ascending, the last = pairs")
    wins_needed: tuple[int, ...] = Field(description="wins that pass each look's sign test (n + 1: that look cannot pass)")
    look_alphas: tuple[float, ...] = Field(description="each look's increment of the planned spending (sums to alpha)")
    crossing_chance: float = Field(description="the plan's exact chance of passing some look under no gain (at most alpha)")

    def look(self, pairs: int) -> int | None:
        """The index of the look made at this many pairs, None where none is."""
        return self.looks.index(pairs) if pairs in self.looks else None


def look_points(pairs: int, looks: int) -> tuple[int, ...]:
    """About pairs/looks, 2 pairs/looks, ..., pairs: ascending, distinct, at least 2 pairs each."""
    return tuple(sorted({max(2, round(pairs * j / looks)) for j in range(1, looks + 1)} | {pairs}))


@lru_cache(maxsize=4096)
def plan(pairs: int, alpha: float, looks: int = 4) -> SequentialPlan:
    """The boundaries: at each look the least wins whose cumulative crossing chance under a fair coin stays in the spending."""
    points = look_points(pairs, max(1, looks))
    alive = np.zeros(pairs + 1)  # chance of each win count among the walks that have not crossed yet
    alive[0], done, crossed = 1.0, 0, 0.0
    needed, increments, previous_spend = [], [], 0.0
    for n in points:
        alive = advance(alive, n - done, 0.5)
        done = n
        spend = alpha * (n / pairs) ** SPENDING_EXPONENT
        tail = np.cumsum(alive[: n + 1][::-1])[::-1]  # tail[c]: chance of c or more wins (and not crossed before)
        allowed = spend - crossed + 1e-15
        c = next((c for c in range(n + 1) if tail[c] <= allowed), n + 1)
        if c <= n:
            crossed += float(tail[c])
            alive[c:] = 0.0
        needed.append(c)
        increments.append(spend - previous_spend)
        previous_spend = spend
    return SequentialPlan(alpha=alpha, pairs=pairs, looks=points, wins_needed=tuple(needed), look_alphas=tuple(increments),
                          crossing_chance=crossed)


def advance(distribution: np.ndarray, steps: int, win_chance: float) -> np.ndarray:
    """The win-count distribution after `steps` more pairs, each won with `win_chance`."""
    out = distribution
    for _ in range(steps):
        out = out * (1 - win_chance) + np.concatenate(([0.0], out[:-1])) * win_chance
    return out


@lru_cache(maxsize=4096)
def _chance_to_cross(plan_: SequentialPlan, win_chance: float) -> np.ndarray:
    """table[n, w]: chance that a walk at w wins after n pairs passes some look at n or later (no futility stops)."""
    N = plan_.pairs
    table = np.zeros((N + 1, N + 2))
    boundary = dict(zip(plan_.looks, plan_.wins_needed))
    for n in range(N, -1, -1):
        wins = np.arange(N + 2)
        if n < N:
            table[n, : N + 1] = win_chance * table[n + 1, 1 : N + 2] + (1 - win_chance) * table[n + 1, : N + 1]
        if n in boundary:
            table[n, wins >= boundary[n]] = 1.0
        table[n, wins > n] = 0.0  # unreachable states
    table.setflags(write=False)
    return table


def chance_to_cross(plan_: SequentialPlan, pairs: int, wins: int, win_chance: float) -> float:
    """Chance of passing a look at `pairs` or later from `wins` wins in `pairs` pairs, each later pair won with `win_chance`."""
    return float(_chance_to_cross(plan_, round(win_chance, 6))[pairs, wins])


def futile(plan_: SequentialPlan, pairs: int, wins: int, win_chance: float | None, futility: float) -> bool:
    """True where the comparison should stop as a loser after this pair (see the module docstring)."""
    if pairs >= plan_.pairs:
        return False  # the last look decides
    chance = chance_to_cross(plan_, pairs, wins, 1.0 if win_chance is None else win_chance)
    return chance <= 0.0 if win_chance is None else chance < futility


@lru_cache(maxsize=4096)
def first_passes(plan_: SequentialPlan, win_chance: float) -> tuple[float, ...]:
    """The chance that the time test first passes at each look, every pair won with `win_chance` (no futility stops)."""
    alive = np.zeros(plan_.pairs + 1)
    alive[0], done, out = 1.0, 0, []
    for n, c in zip(plan_.looks, plan_.wins_needed):
        alive = advance(alive, n - done, win_chance)
        done = n
        out.append(float(alive[c:].sum()) if c <= n else 0.0)
        alive[c:] = 0.0
    return tuple(out)


def accuracy_alphas(plan_: SequentialPlan, win_chance: float | None) -> tuple[float, ...]:
    """Each look's alpha for its accuracy tests: half by the spending, half where the promised winner would pass."""
    spending = np.asarray(plan_.look_alphas)
    if win_chance is None:
        return tuple(float(a) for a in spending)
    passes = np.asarray(first_passes(plan_, round(win_chance, 6)))
    if passes.sum() <= 0:
        return tuple(float(a) for a in spending)
    return tuple(float(a) for a in 0.5 * spending + 0.5 * plan_.alpha * passes / passes.sum())


class Operating(BaseModel):
    """What a plan does at one per-pair win chance: its chance to pass, and the pairs it takes on average."""

    power: float
    expected_pairs: float


@lru_cache(maxsize=4096)
def operating(plan_: SequentialPlan, win_chance: float, design_chance: float | None, futility: float) -> Operating:
    """Exact, by walking the win-count distribution pair by pair, stopping where the comparison would."""
    N = plan_.pairs
    boundary = dict(zip(plan_.looks, plan_.wins_needed))
    cross = None if design_chance is None else _chance_to_cross(plan_, round(design_chance, 6))
    curtail = _chance_to_cross(plan_, 1.0)
    alive = np.zeros(N + 1)
    alive[0] = 1.0
    power, expected = 0.0, 0.0
    for n in range(1, N + 1):
        alive = advance(alive, 1, win_chance)
        expected += float(alive.sum())  # every walk still going ran this pair
        if n in boundary and boundary[n] <= n:
            power += float(alive[boundary[n]:].sum())
            alive[boundary[n]:] = 0.0
        if n < N:
            stop = (curtail[n, : N + 1] <= 0.0) if cross is None else (cross[n, : N + 1] < futility)
            alive[stop] = 0.0
    return Operating(power=power, expected_pairs=expected)


def pairs_for_power(alpha: float, win_chance: float, power: float, most: int, looks: int, futility: float,
                    least: int = 2) -> int | None:
    """The fewest pairs (from `least`) whose sequential plan passes with chance `power` at `win_chance`; None where
    even `most` would not: an attempt that cannot succeed would spend its share of alpha for nothing."""
    def reaches(n: int) -> bool:
        return operating(plan(n, alpha, looks), round(win_chance, 6), round(win_chance, 6), futility).power >= power

    if least > most or not reaches(most):
        return None
    low = least
    while low < most:  # power grows with the pairs (up to the binomial's steps): bisect for the first that reaches it
        middle = (low + most) // 2
        if reaches(middle):
            most = middle
        else:
            low = middle + 1
    return low

