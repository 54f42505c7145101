"""Each of the search's collaborators built and tested alone, from what its constructor declares."""

from concurrent.futures import Future

import pytest

from evaluator.component_set import ComponentSet
from evaluator.promotion_policy.policy import ChampionRecord, PromotionPolicy, Standing
from evaluator.results import Evaluation, RunSample, StageVerdict
from evaluator.settings import PromotionSettings, ScoreSettings
from evaluator.statistics import summarize
from evolve.config import ExperimentConfig
from evolve.config_display import masked_dump
from evolve.database import Store
from evolve.database.records import NewCandidate
from evolve.search.executor import Executor
from evolve.search.identity import set_identity
from evolve.search.scheduler import Scheduler
from evolve.search.state import SearchState


def samples(times: list[float], accuracy: float = 0.95) -> list[RunSample]:
    return [RunSample(run=i, seed=i, accuracy=accuracy, time_seconds=t, device_name="test", torch_version="-")
            for i, t in enumerate(times)]


class CountingExecutor(Executor):
    """Futures that finish when the test says so; abandon() records that it was called."""

    def __init__(self, slots: int):
        self._slots, self.submitted, self.abandoned = slots, [], False

    @property
    def slots(self) -> int:
        return self._slots

    def submit(self, job) -> Future:
        future: Future = Future()
        self.submitted.append((job, future))
        return future

    def job_progress(self):
        return []

    def abandon(self) -> None:
        self.abandoned = True

    def shutdown(self, wait: bool = True) -> None:
        pass

    def describe(self) -> str:
        return "counting"


def test_the_scheduler_fills_the_slots_and_times_each_job():
    executor = CountingExecutor(slots=2)
    scheduler = Scheduler(executor, evaluation_seconds=[1.0] * 60, promotion_seconds=[])
    assert len(scheduler.measured["evaluation"]) == 50  # the estimate averages the recent ones
    scheduler.submit("evaluation", 1, "job 1")
    assert scheduler.has_free_slot()
    scheduler.submit("promotion", 2, "job 2")
    assert not scheduler.has_free_slot()
    future = executor.submitted[1][1]
    future.set_result("pair")
    assert scheduler.finished(future) == ("promotion", 2)
    # one pair of a comparison spread over slots: the loop notes the whole comparison's cost once it is decided
    assert scheduler.measured["promotion"] == [] and scheduler.has_free_slot()
    evaluation = executor.submitted[0][1]
    evaluation.set_result("evaluation")
    assert scheduler.finished(evaluation) == ("evaluation", 1) and len(scheduler.measured["evaluation"]) == 51
    scheduler.submit("evaluation", 3, "job 3")
    assert scheduler.abandon() == 1 and executor.abandoned and not scheduler.running


def policy(**settings) -> PromotionPolicy:
    return PromotionPolicy(PromotionSettings(**settings), ScoreSettings(target=0.94))


def test_the_policy_raises_the_pairs_to_what_the_attempt_can_spend():
    p = policy(pairs=4, experiment_alpha=0.05)
    first, tenth = p.context(1, 3.0, None), p.context(10, 3.0, None)
    assert p.pairs(first) == 6 and p.pairs(tenth) == 12  # 2 ** -pairs must reach alpha / (k (k + 1))
    assert p.pairs_for_attempt(10) == p.pairs(tenth)
    assert first.min_gain_seconds == pytest.approx(0.03) and "default" in first.min_gain_source
    assert p.context(1, 3.0, 0.05).min_gain_seconds == 0.05  # a calibration wins over the default


def test_the_policy_gate_needs_a_score_above_the_gain_then_screening_evidence():
    p = policy(gate_pvalue=0.2)
    champion = ChampionRecord(id=7, score=-3.0, accuracy_lower_bound=0.945, time_mean=3.0,
                              samples=samples([3.0, 3.01, 2.99, 3.02, 3.0, 2.98]), confirmed=True)
    assert p.gate(Standing(score=-2.99), [2.99] * 3, champion, 0.03) == "its score is not above the champion's by the minimum gain"
    assert p.gate(Standing(score=-2.5), [2.5, 2.51, 2.49], champion, 0.03) is None  # clearly faster
    lucky = p.gate(Standing(score=-2.9), [3.1, 2.7, 3.05], champion, 0.03)  # a score from one lucky run
    assert lucky is not None and lucky.startswith("scores above champion #7")
    unconfirmed = champion.model_copy(update={"confirmed": False})
    assert p.gate(Standing(score=-2.9), [3.1, 2.7, 3.05], unconfirmed, 0.03) is None  # the score alone decides


def test_the_policy_decides_on_pairs_and_a_lone_comparison_reads_its_own_branch():
    p = policy()
    candidate, incumbent = samples([2.5] * 8), samples([3.0] * 8)
    context = p.lone_context(incumbent)
    assert context.attempt == 1 and not context.incumbent_record
    decision = p.decide(candidate, incumbent, context)
    assert decision.promoted and decision.branch == "time"
    assert not p.decide(incumbent, candidate, context).promoted


def test_the_search_state_is_rebuilt_from_the_database_alone(tmp_path):
    config = ExperimentConfig(components=["hyperparams"], generations=1, candidates_per_generation=1, harness={"device": "cpu"})
    events: list[str] = []
    with Store.open(f"sqlite:///{tmp_path}/state.db") as store:
        experiment = store.create_experiment("state", config.components, masked_dump(config), "baseline", "test")
        state = SearchState.load(store, experiment, config, events.append)
        assert events == ["stored the baseline set as this experiment's seed set"]
        assert state.seed_sources == ComponentSet.shipped("baseline").sources and state.champion is None
        seed, _ = store.add_candidate(NewCandidate(experiment_id=experiment.id, component="hyperparams",
                                                   source=state.seed_sources["hyperparams"], origin="seed",
                                                   set_hash=set_identity(state.seed_sources, config.harness), description="seed"))
        store.claim_pending(experiment.id, limit=1, worker="test")
        measured = samples([3.0, 3.01, 2.99])
        store.record_evaluation(seed.id, Evaluation(changed=[], status="evaluated", samples=measured, summary=summarize(measured),
                                                    stages=[StageVerdict(stage="smoke", status="passed", seconds=1.5)]))
        store.record_champion(experiment.id, seed.id, None, {"reason": "test"})
        again = SearchState.load(store, experiment, config, events.append)
        assert len(events) == 1  # the stored seed set is the truth on a resume
        assert again.champion.id == seed.id and again.index.count("champion") == 1
        assert again.champion_record.id == seed.id and not again.champion_record.confirmed
        assert again.component_set(seed.id).sources == state.seed_sources
        assert again.champion_record.times == [3.0, 3.01, 2.99] and again.seed_warmup == 1.5


def test_a_long_promotion_moves_the_estimate_pair_by_pair():
    """The first promotion of a search has no measured cost: the estimate must not freeze at the evaluation's."""
    import time

    from evolve.search.executor import JobProgress
    from evolve.search.panel import Panel

    class Reporting(CountingExecutor):
        pair = 1

        def job_progress(self):
            return [JobProgress(candidate_id=2, kind="promotion", stage="pair", run=self.pair, runs=16,
                                started=time.monotonic() - 60.0 * (self.pair - 1))]  # a minute a pair

    executor = Reporting(slots=1)
    scheduler = Scheduler(executor, evaluation_seconds=[60.0], promotion_seconds=[])
    scheduler.submit("promotion", 2, "job")
    expected = {"evaluation": 60.0, "promotion": 60.0}
    still_needed = []
    for pair in (2, 5, 9, 16):
        executor.pair = pair
        still_needed.append(60.0 - Panel.in_progress(scheduler, expected))  # what this job still needs
    assert still_needed == pytest.approx([15 * 60, 12 * 60, 8 * 60, 1 * 60], rel=0.01)  # falls as the pairs are done
