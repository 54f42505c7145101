"""The loop's in-memory caches of what it stored (evolve/search/requests.py) give the prompt what
the database says: proposal outcomes counted as they are stored, a refolded record read again."""

from evaluator.component_set import ComponentSet
from evaluator.settings import ScoreSettings
from evolve.config import ExperimentConfig
from evolve.database import Store
from evolve.database import decisions as promotion_records
from evolve.database.records import NewCandidate, ProposalRecord
from evolve.search.index import PopulationIndex, index_row
from evolve.search.requests import RequestBuilder
from tests.database_support import evaluation, sample


def test_requests_from_memory_match_the_database(tmp_path):
    seed_sources = ComponentSet.shipped("baseline").sources
    config = ExperimentConfig(components=["hyperparams"], seed=0, harness={"device": "cpu"})
    with Store.open(f"sqlite:///{tmp_path}/cache.db") as store:
        experiment = store.create_experiment("cache", ["hyperparams"], {}, "baseline", "cpu", seed_sources=seed_sources)
        seed, _ = store.add_candidate(NewCandidate(experiment_id=experiment.id, component="hyperparams",
                                                   source=seed_sources["hyperparams"], origin="seed", set_hash="seed"))
        index = PopulationIndex([], [])
        builder = RequestBuilder(store, index, dict(seed_sources), config, experiment.id)
        index.add(index_row(seed))
        store.claim_pending(experiment.id)
        index.add(index_row(store.record_evaluation(seed.id, evaluation([0.94, 0.95], [3.0, 3.1]))))

        first, _ = builder.request(seed.id, [], "hyperparams", 0, 1)
        assert builder.proposals_from(seed.id) == {}
        record = ProposalRecord(experiment_id=experiment.id, parent_id=seed.id, component="hyperparams", generation=1,
                                island=0, outcome="unusable")
        store.record_proposal(record)
        builder.proposed(seed.id, "unusable")
        child_source = seed_sources["hyperparams"] + "\nBENCH = 1\n"
        child, outcome = store.record_proposal(record, NewCandidate(
            experiment_id=experiment.id, component="hyperparams", source=child_source, origin="mutator",
            parent_id=seed.id, set_hash="child"))
        builder.proposed(seed.id, outcome)
        builder.stored(child.id, child_source)
        index.add(index_row(child))
        assert builder.proposals_from(seed.id) == store.proposals_from(seed.id) == {"unusable": 1, "new": 1}
        assert builder.sets([child.id])[child.id]["hyperparams"] == store.component_set_sources(child.id)["hyperparams"]

        # the seed's record is refolded with slower confirmation runs: the next prompt shows the new summary
        store.record_samples(seed.id, [sample(9, 0.95, 3.5), sample(10, 0.95, 3.6)])
        promotion_records.refresh_record(store, seed.id, ScoreSettings())
        builder.forget(seed.id)
        index.add(index_row(store.candidate(seed.id)))
        second, _ = builder.request(seed.id, [], "hyperparams", 0, 1)
        assert second.parent.summary.time_mean == store.candidate(seed.id).time_mean != first.parent.summary.time_mean
        assert second.feedback.stages == first.feedback.stages  # a finished candidate's verdicts, from memory
