"""The search's one in-memory view of the lineage, rebuilt from the database at start and on resume.

The database is the truth; this view is what the loop's collaborators read so that a proposal
or a panel refresh does not query it: the seed set, the population index (index.py: statuses,
islands, ranking), the sets and request material (requests.py: module texts and records held
in memory) and the champion with its record. Each piece has one owner here: a collaborator
writes to the database first, then tells the view (`add`, `refresh`, `crown`).
"""

from components import set_description
from evaluator.component_set import ComponentSet
from evaluator.promotion_policy.policy import ChampionRecord
from evaluator.sandbox.limits import WorkerLimits
from evolve.config import ExperimentConfig
from evolve.database import decisions as promotion_records
from evolve.database.records import CandidateInfo, ExperimentInfo, StoredSample
from evolve.database.store import Store
from evolve.search.index import PopulationIndex, index_row
from evolve.search.requests import RequestBuilder


class SearchState:
    """The seed set, the population, the request builder and the champion, as the database holds them."""

    def __init__(self, store: Store, experiment_id: int, seed_sources: dict[str, str], index: PopulationIndex,
                 requests: RequestBuilder):
        self.store, self.experiment_id = store, experiment_id
        self.seed_sources, self.index, self.requests = seed_sources, index, requests
        self.champion: CandidateInfo | None = None
        self.champion_record: ChampionRecord | None = None
        self.seed_warmup: float | None = None  # seconds of the seed's warm-up: the run limit follows it
        self._records: dict[int, list[StoredSample]] = {}  # record samples read so far (the champion's grows with each comparison)

    @classmethod
    def load(cls, store: Store, experiment: ExperimentInfo, config: ExperimentConfig, event) -> "SearchState":
        """Read once. The stored seed set is the truth (a folder seed is read when the experiment is
        created: on a resume the folder may have changed or gone); only an experiment created without one
        stores it here."""
        if not store.seed_sources(experiment.id, required=False):
            store.store_seed_sources(experiment.id, ComponentSet.named(config.seed_set).sources)
            event(f"stored {set_description(config.seed_set)} as this experiment's seed set")
        seed_sources = store.seed_sources(experiment.id)
        index = PopulationIndex(store.index_rows(experiment.id), store.migrants(experiment.id))
        state = cls(store, experiment.id, seed_sources, index, RequestBuilder(store, index, seed_sources, config, experiment.id))
        champion = store.current_champion(experiment.id)
        if champion is not None:
            state.crown(champion.id)
        seed = state.seed_row()
        if seed is not None:
            state.seed_warmup = next((s.seconds for s in store.stages(seed.id) if s.stage == "smoke" and s.status == "passed"), None)
        return state

    def run_limits(self, limits: WorkerLimits) -> WorkerLimits:
        """The run limit follows the seed's measured warm-up once there is one (WorkerLimits.run_limit)."""
        if self.seed_warmup is None or limits.reference_warmup_seconds is not None:
            return limits
        return limits.model_copy(update={"reference_warmup_seconds": self.seed_warmup})

    def seed_row(self):
        return next((row for row in self.index.rows.values() if row.origin == "seed"), None)

    def add(self, candidate: CandidateInfo) -> None:
        """A candidate just stored or finished."""
        self.index.add(index_row(candidate))

    def refresh(self, candidate_id: int) -> None:
        """The candidate's record was refolded in the database (after a paired comparison): read it again."""
        self.requests.forget(candidate_id)
        self.index.add(index_row(self.store.candidate(candidate_id)))

    def component_set(self, candidate_id: int) -> ComponentSet:
        return ComponentSet(sources=self.requests.sets([candidate_id])[candidate_id])

    def record(self, candidate_id: int) -> list[StoredSample]:
        """The candidate's record samples, oldest first. Records only grow: what was read before is kept and only
        the samples stored since are read, so a champion compared a thousand times is not read a thousand times."""
        known = self._records.setdefault(candidate_id, [])
        known.extend(promotion_records.record_samples_of(self.store, candidate_id, skip=len(known)))
        return known

    def crown(self, candidate_id: int) -> None:
        """The champion is now this candidate (stored already), or its record grew: read both again."""
        if self.champion is not None and self.champion.id != candidate_id:
            self.index.set_status(self.champion.id, "evaluated")
        self.index.set_status(candidate_id, "champion")
        self.champion = self.store.candidate(candidate_id)
        self._records = {candidate_id: self._records.get(candidate_id, [])}  # the others' are read when next needed
        record = self.record(candidate_id)
        self.champion_record = ChampionRecord(
            id=candidate_id, score=self.champion.score, accuracy_lower_bound=self.champion.accuracy_lower_bound,
            time_mean=self.champion.time_mean, samples=list(record), confirmed=any(s.stage == "confirm" for s in record),
        )
