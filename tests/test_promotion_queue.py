"""The promotion queue (evolve/search/promotion_queue.py): best score first, bounded, and gated again when the
champion changes, so that a search on many slots never holds more than `promotion.queue_limit` waiting."""

from evolve.database import Store
from evolve.database.records import PromotionInfo
from evolve.search.promotion_queue import PromotionQueue
from tests.ray_support import run_stub_search, stub_config
from tests.stub_search import SlowPairsExecutor


def info(promotion_id: int) -> PromotionInfo:
    return PromotionInfo(id=promotion_id, experiment_id=1, candidate_id=promotion_id, status="queued", promoted=None,
                         gpu_seconds=0.0)


def test_the_best_score_comes_first_and_the_worst_beyond_the_limit_is_dropped():
    queue = PromotionQueue(limit=3)
    assert queue.add(info(1), -2.5) == [] and queue.add(info(2), -2.1) == [] and queue.add(info(3), None) == []
    assert queue.add(info(4), -2.1) == [info(3)]  # no score is the worst; equal scores keep their arrival order
    assert queue.add(info(5), -3.0) == [info(5)]  # worse than all three it holds: refused at once
    assert [p.id for p in queue] == [2, 4, 1] and len(queue) == 3
    assert queue.pop() == info(2) and [p.id for p in queue] == [4, 1]
    assert queue.remove(lambda p: p.id == 1) == [info(1)] and [p.id for p in queue] == [4]
    assert queue.add(info(6), -2.0) == [] and queue.pop() == info(6)


def test_a_search_on_many_slots_holds_at_most_the_limit_and_refuses_the_rest(tmp_path):
    """Pairs on a 50 ms timer while 8 slots screen at once: every 2-s child beats the 3-s seed, so far more pass the
    gate than one comparison at a time can take."""
    executor, url, limit = SlowPairsExecutor(slots=8), f"sqlite:///{tmp_path / 'queue.db'}", 3
    config = stub_config(40)
    config.promotion.queue_limit = limit
    most, refused, gated_out = [0], [], []

    def watch(loop):
        queue, store = loop.promotions.queue, loop.promotions.store
        add, remove, refuse = queue.add, queue.remove, store.refuse_promotions

        def counting_add(promotion, score):
            dropped = add(promotion, score)
            most[0] = max(most[0], len(queue))
            return dropped

        def counting_remove(refusal):
            removed = remove(refusal)
            gated_out.extend(removed)
            return removed

        def counting_refuse(ids):
            refused.extend(ids)
            refuse(ids)

        queue.add, queue.remove, store.refuse_promotions = counting_add, counting_remove, counting_refuse

    run_stub_search(executor, url, 40, config=config, on_loop=watch)
    assert most[0] == limit and refused  # it filled, and what did not fit was refused
    assert gated_out and len(gated_out) < len(refused)  # the new champion gated out some; the limit refused others
    with Store.open(url) as store:
        experiment = store.experiment("stub")
        requests = store.promotions(experiment.id)
        assert all(p.status == "done" for p in requests)  # nothing left waiting once the search ended
        compared = {job.candidate_id for job in executor.jobs if hasattr(job, "first_pair")}
        never_compared = [p for p in requests if p.candidate_id not in compared]
        assert sorted(p.id for p in never_compared) == sorted(refused)  # refused without a pair, and stored so
        assert all(not p.promoted for p in never_compared)
        assert store.current_champion(experiment.id).origin != "seed"
