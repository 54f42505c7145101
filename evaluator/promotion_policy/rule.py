"""The promotion rule: when the paired re-measurement makes a candidate the new champion.

Measured side by side (evaluator/promotion.py runs the pairs: same fresh seed, a fresh pair of
workers for every pair, who goes first a coin flip), the candidate is promoted only when all of
these hold:

1. Its score, on its paired samples, is not below the champion's score on the champion's whole
   record (every sample it ever had: screening, earlier confirmations and these pairs).
2. The gain: where the champion's earlier record reaches the accuracy target (its score pays no
   accuracy penalty: the bound at the score's reference runs is at the target), the candidate must
   be faster by more than the minimum gain `delta` (seconds): a one-sided **sign test** of
   "median of (champion time - candidate time) <= delta" over the pairs, exact binomial
   (scipy.stats.binom). A pair counts for the candidate only when it was faster by more than
   delta in that pair, however much, so a burst of background load that slows one run by 10 s
   costs or gives one pair, not the verdict. Where the champion's earlier record misses the
   target, accuracy is what the score rewards: the candidate must be more accurate (paired
   one-sided t-test on the accuracy differences, with the std floored at the prior noise).
3. Non-inferiority of accuracy on the time branch: the candidate's accuracy must not be below the
   champion's by more than `accuracy_margin`, on the same pairs (one-sided paired t-test of
   "mean difference <= -margin", std floored at the prior noise, so that pairs of identical
   accuracies do not make it certain).

Which branch applies is read from the champion's record *before* these pairs, so that the
choice cannot bias the test that follows (reading it from the same samples is what made 22-25 %
of A/A comparisons near the target succeed).

Experiment-wide error control: **alpha spending across promotion attempts**. The k-th attempt
of an experiment (k = 1, 2, ...) may spend alpha_k = alpha / (k (k + 1)); these sum to alpha over
any number of attempts, so the chance that a search ever promotes a candidate that is not
faster by delta (or, on the accuracy branch, not more accurate) is at most alpha (default 5 %),
however long it runs, with no horizon to declare and nothing to adjust on resume. Each test of
an attempt runs at alpha_k (an intersection-union test: all must reject, so the attempt's error
is at most alpha_k). Across attempts we chose spending over one sequential test because the
loop compares a changing champion with a stream of candidates of unknown length, and a fixed
series needs neither. Within an attempt the pairs are tested as they come (sequential.py: a
group-sequential plan that spends alpha_k over its looks and stops early either way), so the
attempt's error stays at most alpha_k. The price of spending: later attempts need more pairs;
`pairs_for(alpha_k)` gives the least number of pairs that can reach alpha_k at all (the sign
test's smallest p-value is 2 ** -pairs).
"""

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, Field
from scipy import special, stats

from evaluator.promotion_policy.sequential import SequentialPlan, accuracy_alphas
from evaluator.results import PairedMeasurement, RunSample, Summary
from evaluator.settings import RuleSettings, ScoreSettings
from evaluator.statistics import floored_std, lower_confidence_bound, summarize_with


class DecisionContext(BaseModel):
    """What the loop knows before the pairs run: the attempt's share of the error budget and the record."""

    attempt: int = Field(ge=1, description="this experiment's promotion attempt number (1-based)")
    alpha: float = Field(gt=0, lt=1, description="error budget this attempt spends: experiment_alpha / (k (k + 1))")
    min_gain_seconds: float = Field(ge=0)
    min_gain_source: str = Field(description="where the minimum gain came from: a setting, a calibration, the default")
    accuracy_margin: float = Field(ge=0)
    incumbent_record: list[RunSample] = Field(
        default_factory=list, description="the champion's samples before this comparison (screening and confirmations)"
    )
    win_chance: float | None = Field(
        default=None, description="the per-pair win chance the pairs were sized for (policy.py); the sequential test's "
        "futility stop is judged at it (sequential.py); None: it stops only where no later look can pass"
    )


class GainTest(BaseModel):
    """One test of the rule, in the direction that favours the candidate."""

    name: str
    estimate: float = Field(description="median (time) or mean (accuracy) difference, candidate's favour")
    lower_bound: float = Field(description="one-sided lower confidence bound at 1 - alpha; -inf when unreachable")
    threshold: float = Field(description="the bound must exceed this: the minimum gain, or minus the margin")
    pvalue: float
    passed: bool


class PromotionDecision(BaseModel):
    """The paired comparison and its verdict; stored whole in the promotion_decisions table."""

    promoted: bool
    reason: str
    pairs: int
    planned_pairs: int | None = Field(default=None, description="the most pairs the sequential plan allowed (None: a fixed count)")
    stopped: str | None = Field(default=None, description="why the pairs stopped before the plan's last look, if they did")
    confidence: float = Field(description="the score's confidence (for the summaries); the tests use alpha")
    attempt: int | None = None
    alpha_spent: float = Field(0.0, description="error budget this decision spent (0 when it could not test)")
    min_gain_seconds: float | None = None
    min_gain_source: str | None = None
    accuracy_margin: float | None = None
    branch: str | None = Field(default=None, description="'time' (champion reaches the target) or 'accuracy'")
    tests: list[GainTest] = Field(default_factory=list)
    candidate: Summary | None = Field(default=None, description="the candidate's paired samples")
    incumbent: Summary | None = Field(default=None, description="the champion's whole record including these pairs")
    candidate_samples: list[RunSample] = Field(default_factory=list)
    incumbent_samples: list[RunSample] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    seconds: float = 0.0


def attempt_alpha(experiment_alpha: float, attempt: int) -> float:
    """The k-th attempt's share: alpha / (k (k + 1)); the shares of all attempts sum to alpha."""
    return experiment_alpha / (attempt * (attempt + 1))


def pairs_for(alpha: float) -> int:
    """The fewest pairs whose sign test can reach alpha at all (all pairs won: p = 2 ** -pairs)."""
    return max(2, math.ceil(math.log2(1 / alpha)))


def sign_test_power(pairs: int, alpha: float, win_chance: float) -> float:
    """Chance that the sign test over `pairs` rejects at `alpha` when each pair favours the candidate with `win_chance`."""
    return float(stats.binom.sf(wins_needed(pairs, alpha) - 1, pairs, win_chance))


def pairs_for_power(alpha: float, win_chance: float, power: float, most: int) -> int | None:
    """The fewest pairs (at least what alpha needs) whose sign test reaches `power` at `win_chance`; None where
    even `most` pairs would not: an attempt that cannot succeed would spend its share of alpha for nothing."""
    low = pairs_for(alpha)
    if low > most or sign_test_power(most, alpha, win_chance) < power:
        return None
    while low < most:  # power grows with the pairs (up to the binomial's steps): bisect for the first that reaches it
        middle = (low + most) // 2
        if sign_test_power(middle, alpha, win_chance) >= power:
            most = middle
        else:
            low = middle + 1
    return low


def minimum_gain(rule: RuleSettings, champion_time: float, calibrated_seconds: float | None) -> tuple[float, str]:
    """Seconds a candidate must gain per run: a setting, else the calibrated noise, else a fraction."""
    if rule.min_gain_seconds is not None:
        return rule.min_gain_seconds, "promotion.min_gain_seconds"
    if rule.min_gain_fraction is not None:
        return rule.min_gain_fraction * champion_time, f"promotion.min_gain_fraction ({rule.min_gain_fraction:g} of the champion's time)"
    if calibrated_seconds is not None:
        return calibrated_seconds, "calibrated paired time noise (evolve calibrate)"
    return rule.default_gain_fraction * champion_time, f"default: {rule.default_gain_fraction:.0%} of the champion's time"


@lru_cache(maxsize=4096)
def wins_needed(n: int, alpha: float) -> int:
    """The least count c with P(Bin(n, 1/2) >= c) <= alpha (n + 1 when no count is rare enough)."""
    return int(stats.binom.isf(alpha, n, 0.5)) + 1


@lru_cache(maxsize=4096)
def sign_pvalue(n: int, wins: int) -> float:
    """P(at least `wins` heads in n fair coin flips)."""
    return float(stats.binom.sf(wins - 1, n, 0.5))


def sign_test(gains: Sequence[float], threshold: float, alpha: float, name: str, needed: int | None = None) -> GainTest:
    """One-sided exact sign test of 'median gain <= threshold', and the order-statistic bound; `needed`: the wins a
    sequential look requires (sequential.py) in place of the fixed-sample test's."""
    x = np.sort(np.asarray(gains, dtype=float))
    n = len(x)
    wins = int(np.sum(x > threshold))
    pvalue = sign_pvalue(n, wins)  # the fixed-sample p-value, for the record; a sequential look passes on `needed`
    needed = wins_needed(n, alpha) if needed is None else needed  # the bound is the (n - needed + 1)-th smallest gain
    lower = float(x[n - needed]) if needed <= n else -math.inf
    return GainTest(name=name, estimate=float(np.median(x)), lower_bound=lower, threshold=threshold, pvalue=pvalue,
                    passed=wins >= needed)


def t_lower_bound(mean: float, se: float, df: float, alpha: float, threshold: float, name: str) -> GainTest:
    statistic = (mean - threshold) / se
    pvalue = float(special.stdtr(df, -statistic))  # Student-t survival function (scipy.special: fast)
    lower = mean - float(special.stdtrit(df, 1 - alpha)) * se
    return GainTest(name=name, estimate=mean, lower_bound=lower, threshold=threshold, pvalue=pvalue, passed=pvalue <= alpha)


def paired_accuracy_gain(candidate: Sequence[float], incumbent: Sequence[float], alpha: float, floor: float) -> GainTest:
    """Candidate minus champion accuracy on the same seeds, greater than 0; std floored (sqrt 2 * floor)."""
    d = np.asarray(candidate, dtype=float) - np.asarray(incumbent, dtype=float)
    se = floored_std(d, math.sqrt(2) * floor) / math.sqrt(len(d))
    return t_lower_bound(float(d.mean()), se, len(d) - 1, alpha, 0.0, "accuracy gain (paired t)")


def accuracy_non_inferiority(candidate: Sequence[float], incumbent: Sequence[float], margin: float, alpha: float, floor: float) -> GainTest:
    """Paired one-sided test of 'mean(candidate - champion) <= -margin'; std floored (sqrt 2 * floor)."""
    d = np.asarray(candidate, dtype=float) - np.asarray(incumbent, dtype=float)
    se = floored_std(d, math.sqrt(2) * floor) / math.sqrt(len(d))
    return t_lower_bound(float(d.mean()), se, len(d) - 1, alpha, -margin, "accuracy non-inferiority (paired t)")


def branch_of(record_accuracies: Sequence[float], score: ScoreSettings) -> str:
    """'time' where the champion's record reaches the target (its score pays no penalty), else 'accuracy'."""
    bound = lower_confidence_bound(record_accuracies, score.confidence, score.accuracy_std_floor, score.reference_runs)
    return "time" if bound >= score.target else "accuracy"


def decide(
    candidate: list[RunSample], incumbent: list[RunSample], score: ScoreSettings, context: DecisionContext,
    plan: SequentialPlan | None = None, stopped: str | None = None,
) -> PromotionDecision:
    """The rule of the module docstring, on paired samples (same seeds, same order). With a sequential `plan`
    the tests are the look's at this many pairs (sequential.py); between looks (a futility stop) nothing passes."""
    if len(candidate) != len(incumbent) or len(candidate) < 2:
        raise ValueError(f"need at least 2 pairs of samples, got {len(candidate)} and {len(incumbent)}")
    floor, needed = score.accuracy_std_floor, None
    alpha = context.alpha  # the accuracy tests' level: the attempt's, or the look's increment of its spending
    if plan is not None:
        look = plan.look(len(candidate))
        needed = len(candidate) + 1 if look is None else plan.wins_needed[look]
        alpha = context.alpha if look is None else accuracy_alphas(plan, context.win_chance)[look]
    before = context.incumbent_record or incumbent  # a lone comparison (no record) reads the branch from its own pairs
    record = [*context.incumbent_record, *incumbent]
    c, i = summarize_with(candidate, score), summarize_with(record, score)
    branch = branch_of([s.accuracy for s in before], score)
    c_acc, i_acc = [s.accuracy for s in candidate], [s.accuracy for s in incumbent]
    if branch == "time":
        tests = [
            sign_test([b.time_seconds - a.time_seconds for a, b in zip(candidate, incumbent)], context.min_gain_seconds, alpha,
                      "time gain (sign test)", needed),
            accuracy_non_inferiority(c_acc, i_acc, context.accuracy_margin, alpha, floor),
        ]
    else:
        tests = [paired_accuracy_gain(c_acc, i_acc, alpha, floor)]
    if plan is not None and plan.look(len(candidate)) is None:
        tests = [t.model_copy(update={"passed": False}) for t in tests]  # stopped between looks: no test was made
    score_ok = c.score >= i.score
    promoted = score_ok and all(t.passed for t in tests)
    reason = explain(promoted, branch, tests, score_ok, c, i, context, plan, len(candidate))
    return PromotionDecision(
        promoted=promoted,
        reason=f"{stopped}; {reason}" if stopped else reason,
        pairs=len(candidate),
        planned_pairs=plan.pairs if plan is not None else None,
        stopped=stopped,
        confidence=score.confidence,
        attempt=context.attempt,
        alpha_spent=alpha,
        min_gain_seconds=context.min_gain_seconds,
        min_gain_source=context.min_gain_source,
        accuracy_margin=context.accuracy_margin,
        branch=branch,
        tests=tests,
        candidate=c,
        incumbent=i,
        candidate_samples=candidate,
        incumbent_samples=incumbent,
    )


def explain(promoted: bool, branch: str, tests: list[GainTest], score_ok: bool, c: Summary, i: Summary, context: DecisionContext,
            plan: SequentialPlan | None = None, pairs: int = 0) -> str:
    budget = f"attempt {context.attempt}, alpha {context.alpha:.2g}"
    if plan is not None:
        look = plan.look(pairs)
        where = f"look {look + 1} of {len(plan.looks)}" if look is not None else "between looks"
        budget = f"{pairs} of at most {plan.pairs} pairs, {where}; {budget}"
    if not score_ok:
        return f"not promoted: its paired score {c.score:.4f} is below the champion's record {i.score:.4f} ({budget})"
    first = tests[0]
    if branch == "time":
        gain = (f"faster by a median {first.estimate:.4f} s per run (lower bound {first.lower_bound:.4f} s, minimum gain "
                f"{context.min_gain_seconds:.4f} s, p = {first.pvalue:.2g})")
        ni = tests[1]
        accuracy = (f"accuracy {100 * ni.estimate:+.3f} points on the same seeds (lower bound {100 * ni.lower_bound:+.3f}, "
                    f"margin -{100 * context.accuracy_margin:.2f})")
        text = f"{gain}; {accuracy}"
    else:
        text = (f"the champion misses the target: more accurate by {100 * first.estimate:.3f} points "
                f"(lower bound {100 * first.lower_bound:+.3f}, p = {first.pvalue:.2g})")
    failed = [t.name for t in tests if not t.passed]
    verdict = "promoted" if promoted else f"not promoted ({', '.join(failed)} not shown)"
    return f"{verdict}: {text} ({budget})"

def failed_decision(measured: PairedMeasurement, score: ScoreSettings, context: DecisionContext) -> PromotionDecision:
    """A measurement that failed (a worker's failure, fewer than 2 pairs) promotes nothing and spends nothing."""
    return PromotionDecision(
        promoted=False,
        reason=f"the paired re-measurement failed: {measured.error or 'fewer than 2 pairs'}",
        pairs=len(measured.candidate_samples),
        confidence=score.confidence,
        attempt=context.attempt,
        candidate_samples=measured.candidate_samples,
        incumbent_samples=measured.incumbent_samples,
        flags=measured.flags,
        seconds=measured.seconds,
    )
