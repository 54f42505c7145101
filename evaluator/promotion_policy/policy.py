"""The promotion policy as one object: who reaches a paired comparison, with how many pairs,
under which share of the error budget, and what the pairs decide.

Its parts stay in their own modules because each has its own argument: the gate to a
comparison (gate.py: screening evidence, which only chooses what to measure) and the rule
(rule.py: the paired tests and alpha spending, which bound the false-champion rate). This
class is what the callers use: the search loop (evolve/search/promotions.py), `evolve
calibrate` (evaluator/calibration.py), a lone `confirm_promotion` (evaluator/promotion.py) and
the null simulations in the tests all build their context, size their pairs and decide here,
so a change of policy is made in one place and seen by all of them.
"""

from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, Field

from evaluator.promotion_policy.gate import better_score, screening_pvalue, worth_comparing
from evaluator.promotion_policy.rule import (
    DecisionContext,
    PromotionDecision,
    attempt_alpha,
    branch_of,
    decide,
    minimum_gain,
    pairs_for,
)
from evaluator.promotion_policy.sequential import SequentialPlan, futile, pairs_for_power, plan
from evaluator.results import RunSample
from evaluator.settings import PromotionSettings, ScoreSettings


class Standing(BaseModel):
    """A side's result as the gate compares it: its score and, to break exact ties, its accuracy bound."""

    score: float | None
    accuracy_lower_bound: float | None = None


class ChampionRecord(Standing):
    """The champion as the policy sees it: its score and every timed sample of its record."""

    id: int | None = None
    time_mean: float | None = None
    samples: list[RunSample] = Field(default_factory=list, description="screening and every confirmation, oldest first")
    confirmed: bool = Field(False, description="the record holds paired runs on fresh workers (gate.py: the time test waits for them)")

    @property
    def times(self) -> list[float]:
        return [s.time_seconds for s in self.samples]


class PromotionPolicy:
    """The gate, the pair count, the decision context and the decision, under one set of settings."""

    def __init__(self, settings: PromotionSettings, score: ScoreSettings):
        self.settings, self.score = settings, score

    def minimum_gain(self, champion_time: float, calibrated_noise: float | None) -> tuple[float, str]:
        """Seconds a candidate must gain per run, and where that number came from (rule.py minimum_gain)."""
        return minimum_gain(self.settings, champion_time, calibrated_noise)

    def branch(self, record: list[RunSample]) -> str:
        """'time' where the champion's record reaches the target, else 'accuracy' (rule.py branch_of)."""
        return branch_of([s.accuracy for s in record], self.score) if record else "accuracy"

    def context(self, attempt: int, champion_time: float, calibrated_noise: float | None,
                record: list[RunSample] | None = None) -> DecisionContext:
        """What the k-th attempt may spend and must show, fixed before its pairs run."""
        gain, source = self.minimum_gain(champion_time, calibrated_noise)
        return DecisionContext(attempt=attempt, alpha=attempt_alpha(self.settings.experiment_alpha, attempt),
                               min_gain_seconds=gain, min_gain_source=source, accuracy_margin=self.settings.accuracy_margin,
                               incumbent_record=list(record or []))

    def lone_context(self, incumbent_samples: list[RunSample]) -> DecisionContext:
        """A comparison with no experiment around it: attempt 1, the default minimum gain, no record."""
        champion_time = float(np.median([s.time_seconds for s in incumbent_samples])) if incumbent_samples else 0.0
        return self.context(1, champion_time, None)

    def pairs(self, context: DecisionContext) -> int:
        """The setting, raised to what the attempt's alpha needs (fewer pairs can never reach it)."""
        return max(self.settings.pairs, pairs_for(context.alpha))

    def pairs_for_candidate(self, context: DecisionContext, candidate_times: list[float],
                            champion: ChampionRecord) -> tuple[int | None, str]:
        """Pairs for this candidate's comparison, and why that many; None where it should not be compared.

        At scale the attempts' shares of alpha shrink as 1/k^2 (rule.py), so an attempt with too few
        pairs to confirm a real but small gain does not only fail: it makes every later attempt
        harder (bench/search_dynamics.py: with 16 fixed pairs, 176 attempts and one promotion in 480
        simulated candidates, most of the refused ones truly faster). With `power`, the pairs are
        raised to what the screening's estimated gain needs for that chance of passing the sign
        test at this attempt's alpha, and a candidate that even `max_pairs` could not confirm is not
        compared: it spends nothing. Pairs favour the candidate with the normal chance of its
        estimated gain (champion record mean - screening mean) beating the minimum gain over the
        paired noise (the record's std, which spans fresh workers, times sqrt 2). The estimate is
        optimistic (the gate let it through on those runs), so the real power is lower. Only the
        number of pairs depends on the screening: the decision is made on the fresh pairs alone."""
        pairs, s = self.pairs(context), self.settings
        win_chance = self.win_chance(context, candidate_times, champion)
        if win_chance is None:
            return pairs, f"{pairs} pairs (promotion.pairs, raised to what alpha needs)"
        most = max(s.max_pairs, pairs)
        needed = pairs_for_power(context.alpha, win_chance, s.power, most, s.looks, s.futility, least=pairs_for(context.alpha))
        if needed is None:
            return None, (f"its screening promises each pair to it with chance {win_chance:.2f}, too little for {most} pairs "
                          f"to confirm at alpha {context.alpha:.2g} with power {s.power:g}: not compared, no error budget spent")
        pairs = max(pairs, needed)
        return pairs, f"at most {pairs} pairs (power {s.power:g} at the pair win chance {win_chance:.2f} its screening promises)"

    def win_chance(self, context: DecisionContext, candidate_times: list[float], champion: ChampionRecord) -> float | None:
        """The chance that a pair favours the candidate by the minimum gain, estimated from its screening (see
        pairs_for_candidate); None where the pairs are not sized by power."""
        times = champion.times
        if self.settings.power <= 0 or not champion.confirmed or len(candidate_times) < 2 or len(times) < 3 \
                or self.branch(champion.samples) != "time":
            return None
        gain = float(np.mean(times) - np.mean(candidate_times))
        pair_std = max(float(np.std(times, ddof=1)) * 2 ** 0.5, 1e-9)
        return NormalDist().cdf((gain - context.min_gain_seconds) / pair_std)

    def plan(self, context: DecisionContext, pairs: int) -> SequentialPlan:
        """Where the attempt's pairs are tested (sequential.py): `promotion.looks` looks, the last at `pairs`, where the
        pairs were sized for a promised win chance; else one look after all of them (the accuracy tests' share of alpha
        at a look follows the promise: without one, looks would split it blindly), stopping early only as a loser."""
        return plan(pairs, context.alpha, self.settings.looks if context.win_chance is not None else 1)

    def stop_reason(self, candidate: list[RunSample], incumbent: list[RunSample], context: DecisionContext,
                    plan_: SequentialPlan) -> str | None:
        """Why the pairs measured so far are enough (None: measure the next pair): a look passed, or no later one can."""
        n = len(candidate)
        if n < 2 or n >= plan_.pairs:
            return None  # the last look decides whatever it shows
        if plan_.look(n) is not None and self.decide(candidate, incumbent, context, plan_).promoted:
            return f"passed at {n} of at most {plan_.pairs} pairs"
        record = context.incumbent_record or incumbent
        if self.branch(record) != "time":
            return None  # the accuracy branch's t-test has no walk to curtail: it waits for its looks
        wins = sum(b.time_seconds - a.time_seconds > context.min_gain_seconds for a, b in zip(candidate, incumbent))
        if futile(plan_, n, wins, context.win_chance, self.settings.futility):
            promise = "at all" if context.win_chance is None else f"with chance {self.settings.futility:g} at its promised pair win chance {context.win_chance:.2f}"
            return f"stopped at {n} of at most {plan_.pairs} pairs ({wins} won): no later look can pass {promise}"
        return None

    def pairs_for_attempt(self, attempt: int) -> int:
        return max(self.settings.pairs, pairs_for(attempt_alpha(self.settings.experiment_alpha, attempt)))

    def gate(self, candidate: Standing, candidate_times: list[float], champion: ChampionRecord, gain: float) -> str | None:
        """None where the candidate is worth a paired comparison, else why not (gate.py).

        A score above the champion's record by the minimum gain and, where the champion reaches the
        target and its record spans fresh workers, screening times that beat its record's at
        `gate_pvalue`."""
        if candidate.score is None or champion.score is None:
            return None if candidate.score is not None else "no score"
        if not better_score(candidate.score, champion.score + gain, candidate.accuracy_lower_bound or 0,
                            champion.accuracy_lower_bound or 0):
            return "its score is not above the champion's by the minimum gain"
        times = champion.times
        if self.branch(champion.samples) != "time" or not times or not champion.confirmed:
            return None  # a record of one worker's screening runs may be lucky as a whole (gate.py)
        if worth_comparing(candidate_times, times, gain, self.settings.gate_pvalue):
            return None
        pvalue = screening_pvalue(candidate_times, times, gain)
        return (f"scores above champion #{champion.id}, but its {len(candidate_times)} screening times do not beat the "
                f"champion's {len(times)} by the minimum gain {gain:.4f} s (p = {pvalue:.2f} > "
                f"promotion.gate_pvalue {self.settings.gate_pvalue:g}): not compared")

    def decide(self, candidate: list[RunSample], incumbent: list[RunSample], context: DecisionContext,
               plan_: SequentialPlan | None = None, stopped: str | None = None) -> PromotionDecision:
        """The rule on paired samples (rule.py decide), at the plan's look for this many pairs where there is a plan."""
        return decide(candidate, incumbent, self.score, context, plan_, stopped)
