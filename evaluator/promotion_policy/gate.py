"""The gate to a paired comparison: which screened candidates are worth re-measuring against the champion.

A paired re-measurement (evaluator/promotion.py) is the search's most expensive step: two
warm-ups and 2 x `pairs` timed runs, 16 or more pairs at the default error budget. Every attempt
also spends a share of the experiment's error budget, alpha / (k (k + 1)) for the k-th
(evaluator/promotion_policy/rule.py), so the more attempts a search wastes on candidates that are only lucky,
the more pairs a later, real improvement needs and the less likely it is to be confirmed.

A score above the champion's by the minimum gain alone is a weak gate: a candidate's score
rests on its few screening runs (2-5), and about half of the neutral candidates, those that
change nothing that matters, score above the champion on a lucky draw. In an A/A search on the
CPU (every child a no-op, tests/test_null_search.py) 3 to 6 of 8 no-op children reached a paired
comparison.

So where the champion reaches the accuracy target (its time is what the score rewards) the gate
also asks the screening times for evidence: a one-sided Mann-Whitney test of "the champion's
record is not slower than the candidate's screening runs plus the minimum gain" must reject at
`gate_pvalue`. A candidate that is no faster then reaches a comparison with a chance of at most
`gate_pvalue` (default 0.2); one that is faster by a few run-to-run deviations passes it with
its 3-5 screening runs. The gate only chooses what to measure: the promotion decision is made on
fresh pairs that the gate never saw, so it changes no error rate of the rule, only what the
rule's budget is spent on. Where the champion misses the target, accuracy is what the score
rewards, and the score comparison alone decides, as before.

The time test also waits for a champion record that spans fresh workers. A candidate's screening
runs all run in one worker process, and a worker has a speed of its own (evaluator/promotion.py,
point 2): the seed's 3-5 screening runs can be lucky as a whole, by a few per cent, and a test
against them alone refused every candidate of a search (bench/smart_search.py, 2026-12-02: 20
proposals, no comparison, a seed measured 0.3 s faster than the same seed in the other variant).
A paired comparison adds runs on a fresh pair of workers each, so until the champion's record
holds confirmation runs (the seed, before its first comparison) the score alone decides.
"""

from collections.abc import Sequence

from evaluator.statistics import rank_test_pvalue


def better_score(candidate: float, incumbent: float, candidate_lcb: float = 0.0, incumbent_lcb: float = 0.0) -> bool:
    """Higher score (scores are finite now; the bounds only break exact ties)."""
    if candidate == incumbent:
        return candidate_lcb > incumbent_lcb
    return candidate > incumbent


def screening_pvalue(candidate_times: Sequence[float], champion_times: Sequence[float], min_gain_seconds: float) -> float:
    """One-sided p-value of 'the champion's runs are not slower than the candidate's by more than the gain'."""
    if len(candidate_times) == 0 or len(champion_times) == 0:
        return 1.0
    shifted = [t + min_gain_seconds for t in candidate_times]
    return rank_test_pvalue(champion_times, shifted)


def worth_comparing(
    candidate_times: Sequence[float], champion_times: Sequence[float], min_gain_seconds: float, gate_pvalue: float,
) -> bool:
    """The time half of the gate (the loop checks the scores first): screening evidence at `gate_pvalue`."""
    if gate_pvalue >= 1.0:
        return True
    return screening_pvalue(candidate_times, champion_times, min_gain_seconds) <= gate_pvalue
