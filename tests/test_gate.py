"""The gate to a paired comparison: neutral candidates rarely pass it, faster ones do."""

import numpy as np
import pytest

from evaluator.component_set import ComponentSet
from evaluator.promotion_policy.gate import screening_pvalue, worth_comparing
from evaluator.results import Evaluation, PairedMeasurement, RunSample, StageVerdict
from evaluator.statistics import summarize
from evolve.search.executor import PromotionJob
from tests.ray_support import run_stub_search, stub_config
from tests.stub_search import StubExecutor, stub_pairs


def pass_rate(gain_in_stds: float, min_gain_in_stds: float, candidate_runs: int, champion_runs: int, trials: int = 2000) -> float:
    rng = np.random.default_rng(7)
    passed = 0
    for _ in range(trials):
        champion = rng.normal(3.0, 0.05, champion_runs)
        candidate = rng.normal(3.0 - gain_in_stds * 0.05, 0.05, candidate_runs)
        passed += worth_comparing(candidate, champion, min_gain_in_stds * 0.05, 0.2)
    return passed / trials


def test_a_candidate_that_is_no_faster_reaches_a_comparison_at_most_at_the_gate_rate():
    for candidate_runs, champion_runs in ((2, 2), (3, 10), (5, 30)):
        rate = pass_rate(0.0, 0.0, candidate_runs, champion_runs)
        assert rate <= 0.2 + 3 * np.sqrt(0.2 * 0.8 / 2000), (candidate_runs, champion_runs, rate)
    assert pass_rate(0.0, 0.5, 3, 10) < 0.1  # the minimum gain raises the bar further


def test_a_candidate_faster_by_a_few_deviations_passes():
    assert pass_rate(3.0, 0.5, 3, 10) > 0.8
    assert pass_rate(3.0, 0.5, 5, 30) > 0.95


def test_no_evidence_or_the_gate_off():
    assert screening_pvalue([], [3.0, 3.1], 0.0) == 1.0 and screening_pvalue([2.0], [], 0.0) == 1.0
    assert worth_comparing([3.5, 3.6], [3.0, 3.1], 0.0, 1.0)  # gate_pvalue 1: the score alone decides
    assert not worth_comparing([3.5, 3.6], [3.0, 3.1], 0.0, 0.2)


NOISE = 0.2


class NeutralExecutor(StubExecutor):
    """Every set, the seed included, runs in N(3 s, NOISE): no child is faster, some are lucky. Each job's draws
    come from a generator keyed by the job, not by the order jobs arrive in, so that a loaded machine sees the
    same noise."""

    @staticmethod
    def draw(runs: int, *key: int) -> list[RunSample]:
        rng = np.random.default_rng([5, *key])
        return [RunSample(run=i, seed=i, accuracy=0.95, time_seconds=float(rng.normal(3.0, NOISE)), device_name="stub",
                          torch_version="-") for i in range(runs)]

    def evaluate(self, job):
        samples = self.draw(3, job.candidate_id)
        return Evaluation(changed=job.changed, status="evaluated", samples=samples, summary=summarize(samples),
                          stages=[StageVerdict(stage="timed", status="passed", seconds=1.0)])

    def confirm(self, job):
        pairs, key = job.promotion.pairs - job.first_pair, (job.candidate_id, job.context.attempt, job.first_pair)
        return PairedMeasurement(attempt=job.context.attempt, first_pair=job.first_pair,
                                 candidate_samples=self.draw(pairs, *key, 0), incumbent_samples=self.draw(pairs, *key, 1),
                                 seconds=1.0)


def comparisons_of_a_neutral_search(tmp_path, gate_pvalue: float) -> int:
    config = stub_config(60)
    config.promotion.gate_pvalue = gate_pvalue
    config.promotion.power = 0.0  # the gate alone: sizing pairs by power would also skip most of these (test_promotion_power.py)
    config.search.novelty_enabled = False  # every child evaluated: the gate alone decides what is compared
    executor = NeutralExecutor()
    run_stub_search(executor, f"sqlite:///{tmp_path / f'gate-{gate_pvalue}.db'}", 60, config=config)
    return sum(isinstance(job, PromotionJob) and job.first_pair == 0 for job in executor.jobs)  # a comparison's first pair


def test_the_gate_keeps_lucky_neutral_candidates_from_the_paired_comparison(tmp_path):
    """Without the time half of the gate, a score above the champion's by the minimum gain sent 14-16 of these 59
    no-faster children to a paired comparison (a seed measured lucky in its 3 runs stays hard to beat); with it, 1."""
    without, with_gate = comparisons_of_a_neutral_search(tmp_path, 1.0), comparisons_of_a_neutral_search(tmp_path, 0.2)
    assert without >= 10, without
    assert with_gate <= without / 4, (with_gate, without)


def test_the_panel_says_when_only_the_time_test_kept_a_candidate_from_a_comparison(tmp_path):
    events: list[str] = []
    config = stub_config(40)
    config.search.novelty_enabled = False
    config.promotion.power = 0.0  # the gate's own message (a comparison skipped for power says so in its own words)
    run_stub_search(NeutralExecutor(), f"sqlite:///{tmp_path / 'events.db'}", 40, config=config,
                    on_loop=lambda loop: setattr(loop.progress, "event", events.append))
    blocked = [e for e in events if "not compared" in e]
    assert blocked and all("promotion.gate_pvalue 0.2" in e and "p = " in e for e in blocked), events


class LuckySeedExecutor(StubExecutor):
    """The seed's 3 screening runs average 3.00 s; every child's 2.95 s (it scores above the seed by the minimum
    gain) with times too spread for the time test against the seed's 3 runs alone (p > 0.2)."""

    @staticmethod
    def runs(times: list[float]) -> list[RunSample]:
        return [RunSample(run=i, seed=i, accuracy=0.95, time_seconds=t, device_name="stub", torch_version="-")
                for i, t in enumerate(times)]

    def evaluate(self, job):
        is_seed = job.component_set.sources == ComponentSet.shipped("baseline").sources
        samples = self.runs([2.90, 3.00, 3.10] if is_seed else [2.85, 2.97, 3.03])
        return Evaluation(changed=job.changed, status="evaluated", samples=samples, summary=summarize(samples),
                          stages=[StageVerdict(stage="timed", status="passed", seconds=1.0)])

    def confirm(self, job):
        return stub_pairs(job, 3.0, 3.0)  # no faster in the pairs


def test_the_time_test_waits_for_a_champion_record_with_paired_runs(tmp_path):
    """A seed's screening runs share one worker and may be lucky as a whole: its first challenger is compared on the
    score alone; once the record holds paired runs on fresh workers, the same screening is refused."""
    assert screening_pvalue([2.85, 2.97, 3.03], [2.90, 3.00, 3.10], 0.03) > 0.2  # the time test alone would refuse
    events: list[str] = []
    config = stub_config(5)
    config.search.novelty_enabled = False
    executor = LuckySeedExecutor()
    run_stub_search(executor, f"sqlite:///{tmp_path / 'lucky.db'}", 5, config=config,
                    on_loop=lambda loop: setattr(loop.progress, "event", events.append))
    compared = [job.candidate_id for job in executor.jobs if isinstance(job, PromotionJob) and job.first_pair == 0]
    assert len(compared) == 1, (compared, events)  # the first child that scored above the unconfirmed seed
    assert sum("not compared" in e for e in events) >= 3, events  # the rest: the record now spans fresh workers


def test_the_rank_test_of_a_long_record_agrees_with_the_exact_one():
    from scipy import stats

    from evaluator.statistics import EXACT_RANK_TEST_LIMIT, rank_test_pvalue

    rng = np.random.default_rng(3)
    record, screening = rng.normal(3.0, 0.08, 2000), rng.normal(2.95, 0.08, 3)
    assert len(record) * len(screening) > EXACT_RANK_TEST_LIMIT  # the approximation's side of the limit
    exact = stats.mannwhitneyu(record, screening, alternative="greater", method="exact").pvalue
    assert rank_test_pvalue(record, screening) == pytest.approx(exact, abs=0.01)
    assert rank_test_pvalue([3.0, 3.1], [2.0, 2.1]) == stats.mannwhitneyu([3.0, 3.1], [2.0, 2.1], alternative="greater").pvalue
