"""A promotion attempt's pairs spread over slots (evolve/search/comparison.py): handed out a look at a time,
read in the series' order whatever order they come back in, and decided as one job deciding them all would."""


from evaluator.component_set import ComponentSet
from evaluator.promotion_policy.policy import PromotionPolicy
from evaluator.results import PairedMeasurement, RunSample
from evaluator.settings import HarnessSettings, PromotionSettings, ScoreSettings
from evolve.database import Store
from evolve.database.records import PromotionInfo
from evolve.search.comparison import Comparison
from evolve.search.executor import PromotionJob
from tests.ray_support import run_stub_search, stub_config
from tests.stub_search import SlowPairsExecutor


def sample(run: int, seconds: float) -> RunSample:
    return RunSample(run=run, seed=run, accuracy=0.95, time_seconds=seconds, device_name="test", torch_version="-")


def comparison(win_chance: float | None, pairs: int = 16) -> Comparison:
    settings, score = PromotionSettings(pairs=pairs, accuracy_margin=0.5), ScoreSettings()
    policy = PromotionPolicy(settings, score)
    record = [sample(i, 3.0 + 0.01 * (i % 3)) for i in range(12)]
    context = policy.context(1, 3.0, None, record).model_copy(update={"win_chance": win_chance})
    baseline = ComponentSet.shipped("baseline")
    template = PromotionJob(candidate_id=2, incumbent_id=1, candidate_set=baseline, incumbent_set=baseline,
                            harness=HarnessSettings(device="cpu"), score=score, promotion=settings, context=context)
    info = PromotionInfo(id=1, experiment_id=1, candidate_id=2, status="running", promoted=None, gpu_seconds=0.0)
    return Comparison(info, template, policy, context, policy.plan(context, pairs))


def pair(index: int, candidate: float, incumbent: float = 3.0) -> PairedMeasurement:
    return PairedMeasurement(attempt=1, first_pair=index, candidate_samples=[sample(index, candidate)],
                             incumbent_samples=[sample(index, incumbent)], seconds=2.0)


def test_the_pairs_of_a_look_are_handed_out_together_one_job_each():
    c = comparison(0.95)
    first_look = c.plan.looks[0]
    jobs = []
    while c.has_job():
        jobs.append(c.next_job())
    assert [j.first_pair for j in jobs] == list(range(first_look))
    assert all(j.promotion.pairs == j.first_pair + 1 for j in jobs)  # each job measures its one pair of the series
    # a slot with nothing else to do takes later pairs too, up to the last; the stop rule still reads them in order
    assert c.has_job(idle_slots=True) and c.next_job().first_pair == first_look
    while c.has_job(idle_slots=True):
        c.next_job()
    assert c.handed_out == c.plan.pairs


def test_pairs_back_in_any_order_are_decided_in_the_series_order():
    c = comparison(0.95)
    while c.has_job():
        c.next_job()
    looks = c.plan.looks
    assert c.add(pair(1, 2.5)) is None and c.tested == 0  # pair 0 is not back: nothing is tested yet
    decision = None
    for index in [0, *range(2, looks[-1])]:
        while c.has_job():
            c.next_job()
        decision = decision or c.add(pair(index, 2.5))
        if decision:
            break
    assert decision is not None and decision.promoted and decision.pairs in looks[:-1]  # an obvious winner stops early
    assert decision.seconds == 2.0 * decision.pairs
    whole = c.policy.decide([sample(i, 2.5) for i in range(decision.pairs)], [sample(i, 3.0) for i in range(decision.pairs)],
                            c.context, c.plan, decision.stopped)
    assert whole.model_dump(exclude={"flags", "seconds"}) == decision.model_dump(exclude={"flags", "seconds"})


def test_a_loser_stops_at_its_futility_point_and_a_failed_pair_fails_the_attempt():
    c = comparison(0.9)
    decision, index = None, 0
    while decision is None:
        while c.has_job():
            c.next_job()
        decision = c.add(pair(index, 3.5))
        index += 1
    assert not decision.promoted and decision.pairs < 16 and "stopped at" in decision.stopped
    broken = comparison(0.9)
    broken.next_job()
    failed = broken.add(PairedMeasurement(attempt=1, first_pair=0, error="worker died"))
    assert failed is not None and not failed.promoted and "worker died" in failed.reason and failed.alpha_spent == 0.0
    # a pair an idle slot took beyond where the rule stops fails: the decision on the pairs before it stands
    late = comparison(0.9)
    while late.has_job(idle_slots=True):
        late.next_job()
    assert late.add(PairedMeasurement(attempt=1, first_pair=15, error="worker died")) is None
    decision, index = None, 0
    while decision is None:
        decision = late.add(pair(index, 3.5))
        index += 1
    assert not decision.promoted and "stopped at" in decision.stopped and "failed" not in decision.reason


def test_a_search_runs_a_comparisons_pairs_on_several_slots_at_once(tmp_path):
    executor = SlowPairsExecutor(slots=4)
    url = f"sqlite:///{tmp_path / 'pairs.db'}"
    run_stub_search(executor, url, 3, config=stub_config(3))
    pairs = [job for job in executor.jobs if isinstance(job, PromotionJob)]
    assert pairs and 2 <= executor.most_at_once <= 4  # a look's pairs side by side, never more than the slots
    with Store.open(url) as store:
        experiment = store.experiment("stub")
        champion = store.current_champion(experiment.id)
        assert champion.origin != "seed"  # the 2-s children beat the 3-s seed: decided on the pairs from all slots
        promoted = [p for p in store.promotions(experiment.id) if p.promoted]
        assert promoted and all(p.gpu_seconds > 0 for p in promoted)
