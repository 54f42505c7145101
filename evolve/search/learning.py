"""What the search learns from its own lineage, and keeps across --resume by rebuilding it from the
database: the novelty archive (novelty.py: near-copies of evaluated programs are skipped), the
mutator sites whose children behaved exactly like their parents (liveness.py) and the model
bandit's arms (evolve/llm/bandit.py: the model of each proposal)."""

import math

import numpy as np

from evolve.config import ExperimentConfig
from evolve.database.store import Store
from evolve.llm.bandit import ModelBandit, ModelOutcome
from evolve.search.index import PopulationIndex
from evolve.search.liveness import dead_sites, site_of
from evolve.search.novelty import NoveltyArchive, context_key, openai_embedder
from evolve.search.requests import RequestBuilder


def load_novelty_archive(config: ExperimentConfig, store: Store, experiment_id: int, index: PopulationIndex,
                         seed_sources: dict[str, str], proposer, event) -> NoveltyArchive | None:
    settings = config.search
    if not settings.novelty_enabled:
        return None
    embedder = None
    client = getattr(getattr(proposer, "client", None), "client", None)  # the LLM proposer's openai client
    if settings.embedding_model and client is not None:
        embedder = openai_embedder(client, settings.embedding_model)
    elif settings.embedding_model:
        event(f"search.embedding_model {settings.embedding_model} needs an LLM endpoint: structural distance only")
    archive = NoveltyArchive(settings.novelty_threshold, embedder, settings.embedding_threshold)
    rows = list(index.rows.values())
    ids = [row.id for row in rows if row.origin != "seed"]
    texts = store.sources(ids)
    sets = RequestBuilder(store, index, seed_sources, config).sets(ids, {**texts}) if ids else {}
    for row in rows:
        if row.origin == "seed":
            archive.add_seed(row.id, seed_sources)
        else:
            archive.add(row.component, context_key(sets[row.id], row.component), row.id, texts[row.id])
    return archive


def load_learned_dead_sites(store: Store, experiment_id: int) -> dict[str, dict[str, str]]:
    """component -> mutator site -> why: the sites whose children behaved exactly like their parents."""
    learned: dict[str, dict[str, str]] = {}
    for candidate in store.candidates(experiment_id, "rejected"):
        note_no_op(learned, candidate)
    return learned


def note_no_op(learned: dict[str, dict[str, str]], candidate) -> None:
    """A mutator child that behaved exactly like its parent: the site it changed is dead."""
    if candidate.origin == "mutator" and candidate.verdict == "rejected at behaviour":
        for site in site_of(candidate.description):
            learned.setdefault(candidate.component, {})[site] = f"#{candidate.id} changed it and behaved like its parent"


def load_bandit(config: ExperimentConfig, store: Store, experiment_id: int, proposer, rng: np.random.Generator) -> ModelBandit | None:
    """The bandit, with the arms the stored proposals left, when an LLM has several models."""
    if not config.search.bandit or not config.llm.enabled or len(config.llm.models) < 2 or not hasattr(proposer, "client"):
        return None
    bandit = ModelBandit(config.llm.models, config.search.gpu_usd_per_hour, config.search.bandit_exploration, rng)
    outcomes = []
    for row in store.model_outcomes(experiment_id):
        new = row["outcome"] == "new" and row["id"] is not None
        finished = new and row["status"] in ("evaluated", "champion", "rejected", "failed")
        gain = None
        if finished:
            gain = 0.0
            if row["score"] is not None and row["parent_score"] is not None and math.isfinite(row["score"] - row["parent_score"]):
                gain = row["score"] - row["parent_score"]
        outcomes.append(ModelOutcome(model=row["model"], cost_usd=row["cost_usd"] or 0.0, candidate_id=row["id"] if new else None,
                                     gain=gain, gpu_seconds=row["seconds"] or 0.0))
    bandit.restore(outcomes)
    return bandit


class Learning:
    """The three learners together, as the proposals consult them and the evaluations teach them."""

    def __init__(self, novelty: NoveltyArchive | None, learned_dead: dict[str, dict[str, str]], bandit: ModelBandit | None):
        self.novelty, self.learned_dead, self.bandit = novelty, learned_dead, bandit

    @classmethod
    def load(cls, config: ExperimentConfig, store: Store, experiment_id: int, index: PopulationIndex,
             seed_sources: dict[str, str], proposer, rng: np.random.Generator, event) -> "Learning":
        return cls(load_novelty_archive(config, store, experiment_id, index, seed_sources, proposer, event),
                   load_learned_dead_sites(store, experiment_id), load_bandit(config, store, experiment_id, proposer, rng))

    def dead_sites(self, component: str, parent_set: dict[str, str], overrides: dict) -> dict[str, str]:
        """Sites of the component not worth an edit: dead by reading the set, or learned from no-op children."""
        return {**dead_sites(component, parent_set[component], parent_set, overrides), **self.learned_dead.get(component, {})}

    def evaluated(self, candidate, parent, device_seconds: float) -> None:
        """An evaluation finished: the bandit's gain (score over the parent's), a no-op child's site."""
        if self.bandit is not None:
            gain = (candidate.score - parent.score) if candidate.score is not None and parent and parent.score is not None else 0.0
            self.bandit.evaluated(candidate.id, gain if math.isfinite(gain) else 0.0, device_seconds)
        note_no_op(self.learned_dead, candidate)

    def proposed(self, model: str | None, cost_usd: float, candidate_id: int | None) -> None:
        if self.bandit is not None and model:
            self.bandit.proposed(model, cost_usd, candidate_id)
