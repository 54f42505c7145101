"""Promotion: a candidate becomes champion only after a paired, interleaved re-measurement.

A candidate's own timed runs (evaluator/cascade.py) rank it, but they were measured at another
moment than the incumbent's, perhaps after a lucky draw of seeds. Before it replaces the
incumbent, both are measured again, side by side:

1. Every pair runs on a fresh pair of sandboxed workers: on the pair's seed (same initialization
   seed, same order of the training set; a seed no screening runs on, evaluator/training.py
   `evaluation_seeds`), one side, then the other, who goes
   first decided by a coin flip; each side in a worker of its own that warms up on random data,
   makes its one timed run and is killed before the other side's worker starts
   (evaluator/runs.py `fresh_run`). No worker is alive while the other side is timed, so neither
   side can slow the other's run (a thread left spinning, say), whatever code it runs.
2. Why fresh workers for every pair: a worker process has a speed of its own. On this project's
   2-core CPU machine, two workers running the *same* set, warmed up side by side and measured
   alternately over 10 pairs, were won by one side in all 10 pairs in 4 of 6 such measurements,
   by a steady 0.06-0.18 s in 1.6-1.9 s runs (bench/worker_offset.py; docs/BENCHMARKS.md, "A
   worker has a speed of its own"). With both sides kept in one worker each, every pair shares
   that offset, the pairs are not independent, and the sign test promoted a no-op change
   (head_lr 0.67 -> 0.673) at p = 0.001. A GPU has per-process sources of its own (autotuned
   kernel choices, allocator state). With fresh workers the offset is drawn again for every
   run, on both sides alike: it becomes noise that the pairs see, and the pairs are independent
   and exchangeable under "no difference", which is what the rule's error bound assumes. Every
   timed run is then the first one after a warm-up, on both sides, as in the speedrun itself.
3. The rule (evaluator/promotion_policy/rule.py) decides on these pairs and the champion's record, spending
   this attempt's share of the experiment's error budget.

This module runs the pairs (`measure_pairs`); the decision is made apart from it, so that the
same rule serves the search, `evolve calibrate` and the null simulations in the tests.
"""

import time
from collections.abc import Callable

from evaluator.cascade import StageReport, no_report
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset
from evaluator.promotion_policy.policy import PromotionPolicy
from evaluator.promotion_policy.rule import DecisionContext, PromotionDecision, failed_decision
from evaluator.results import PairedMeasurement, RunSample
from evaluator.runs import scored_runs, side_order
from evaluator.sandbox.sandboxed_worker import WorkerFailure
from evaluator.settings import HarnessSettings, PromotionSettings, ScoreSettings

__all__ = ["PairedMeasurement", "PromotionDecision", "PromotionSettings", "confirm_promotion", "failed_decision", "measure_pairs"]


def pair_order(first: int) -> tuple[str, str]:
    """Who runs first in a pair (0: the candidate): `scored_runs` draws it for every pair."""
    return side_order(("candidate", "incumbent"), first)


def measure_pairs(
    candidate: ComponentSet,
    incumbent: ComponentSet,
    dataset: Dataset,
    harness: HarnessSettings,
    settings: PromotionSettings,
    gpu: int | None = None,
    report: StageReport = no_report,
    attempt: int = 1,
    stop: Callable[[list[RunSample], list[RunSample]], str | None] = lambda candidate, incumbent: None,
    first: int = 0,
) -> PairedMeasurement:
    """Measure both sets side by side on shared seeds; never raises for a worker's failure.

    The seeds are the promotion stream of `attempt` (evaluator/training.py `evaluation_seeds`):
    with a fixed harness seed, the same for the same attempt; always apart from the screening's.
    After every complete pair `stop(candidate samples, incumbent samples)` may end the measurement
    with its reason (the sequential test: the answer is already clear); no worker is left running.
    `first` > 0 measures pairs `first` to `settings.pairs` - 1 of the series only (the search spreads
    an attempt's pairs over its slots, one job a pair: evolve/search/comparison.py)."""
    start = time.perf_counter()
    flags: list[str] = []
    samples: dict[str, list[RunSample]] = {"candidate": [], "incumbent": []}
    error = stopped = None

    def on_seed(pair: int) -> None:  # the job's own pairs: "pair 1/1" for one pair of a series spread over slots
        report("pair", pair + 1 - first, settings.pairs - first)

    try:  # fresh workers for every run: the module docstring, points 1 and 2
        for side, sample in scored_runs({"candidate": candidate, "incumbent": incumbent}, dataset, harness, settings.limits,
                                        settings.pairs, flags, clock_tolerance=settings.clock_tolerance, gpu=gpu,
                                        promotion_attempt=attempt, on_seed=on_seed, first=first):
            samples[side].append(sample)
            paired = len(samples["candidate"]) == len(samples["incumbent"])
            if paired and (stopped := stop(samples["candidate"], samples["incumbent"])):
                break
    except WorkerFailure as e:
        error = str(e)[:2000]
    pairs = min(len(samples["candidate"]), len(samples["incumbent"]))  # a pair counts only when both sides ran
    return PairedMeasurement(attempt=attempt, first_pair=first, candidate_samples=samples["candidate"][:pairs],
                             incumbent_samples=samples["incumbent"][:pairs], flags=flags, error=error, stopped=stopped, seconds=time.perf_counter() - start)


def confirm_promotion(
    candidate: ComponentSet,
    incumbent: ComponentSet,
    dataset: Dataset,
    harness: HarnessSettings,
    score: ScoreSettings,
    settings: PromotionSettings | None = None,
    gpu: int | None = None,
    context: DecisionContext | None = None,
    report: StageReport = no_report,
) -> PromotionDecision:
    """Measure the pairs, tested as they come (the sequential plan of `settings.pairs` at most), then apply the rule
    at the look where they stopped; a failed measurement promotes nothing and spends nothing."""
    settings = settings or PromotionSettings()
    policy = PromotionPolicy(settings, score)
    plan = policy.plan(context, settings.pairs) if context is not None else None  # a lone comparison: its context needs the pairs

    def stop(candidate_samples: list[RunSample], incumbent_samples: list[RunSample]) -> str | None:
        return policy.stop_reason(candidate_samples, incumbent_samples, context, plan) if plan is not None else None

    measured = measure_pairs(candidate, incumbent, dataset, harness, settings, gpu, report, context.attempt if context else 1, stop)
    context = context or policy.lone_context(measured.incumbent_samples)
    if measured.error is not None or len(measured.candidate_samples) < 2:
        return failed_decision(measured, score, context)
    decision = policy.decide(measured.candidate_samples, measured.incumbent_samples, context,
                             plan or policy.plan(context, settings.pairs), measured.stopped)
    decision.flags, decision.seconds = measured.flags, measured.seconds
    return decision

