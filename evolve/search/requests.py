"""Component sets and proposal requests, rebuilt from the lineage: the stored seed set, the
in-memory index (who changed which component along an ancestry) and the module texts read from
the database in one query.

A request shows the model the parent's module, how the parent came about (its description and
diff), its relatives with theirs, the evaluator's feedback, the hyperparameter values in force
and the interfaces of the set's other components.
"""

from functools import lru_cache

from evaluator.results import ProfileSummary, StageVerdict, Summary
from evolve.config import ExperimentConfig
from evolve.database.records import CandidateInfo
from evolve.database.store import Store
from evolve.llm.module_summary import hyperparams_in_force, module_interface
from evolve.llm.prompt_builder import Feedback, PromptCandidate
from evolve.search.index import PopulationIndex
from evolve.search.proposer import ProposalRequest

RECENT_FAILURES = 3


@lru_cache(maxsize=512)
def cached_interface(source: str) -> str:
    return module_interface(source)


@lru_cache(maxsize=64)
def cached_hyperparams(source: str) -> tuple | None:
    values = hyperparams_in_force(source, {})
    return None if values is None else tuple(values.items())


class RequestBuilder:
    def __init__(self, store: Store, index: PopulationIndex, seed_sources: dict[str, str], config: ExperimentConfig):
        self.store, self.index, self.seed_sources, self.config = store, index, seed_sources, config

    def sets(self, candidate_ids: list[int], texts: dict[int, str] | None = None) -> dict[int, dict[str, str]]:
        """The whole component set of each candidate: the seed set with the latest change of each
        component along its ancestry (one query for all the texts needed, unless given)."""
        providers = {cid: self.index.providers(cid) for cid in candidate_ids}
        if texts is None:
            texts = self.store.sources(self.provider_ids(providers))
        return {cid: {**self.seed_sources, **{name: texts[p] for name, p in found.items()}} for cid, found in providers.items()}

    @staticmethod
    def provider_ids(providers: dict[int, dict[str, int]]) -> list[int]:
        return sorted({p for found in providers.values() for p in found.values()})

    def changed(self, candidate_id: int) -> list[str]:
        """What the candidate's set changes against the seed set (all of it for the seed itself)."""
        return sorted(self.index.providers(candidate_id)) or [self.index.rows[candidate_id].component]

    def hyperparams(self, sources: dict[str, str]) -> dict | None:
        values = cached_hyperparams(sources["hyperparams"]) if "hyperparams" in sources else None
        return None if values is None else {**dict(values), **self.config.harness.effective_overrides()}

    def request(
        self, parent_id: int, inspiration_ids: list[int], component: str, island: int, generation: int
    ) -> tuple[ProposalRequest, dict[str, str]]:
        """The request for a child of `parent_id` changing `component`, and the parent's whole set."""
        failures = self.index.failed_children.get(parent_id, [])[-RECENT_FAILURES:]
        shown = [parent_id, *inspiration_ids]
        providers = self.provider_ids({cid: self.index.providers(cid) for cid in shown})
        infos, texts, stages = self.store.prompt_material([*shown, *failures], providers, parent_id)
        sets = self.sets(shown, texts)
        parent, parent_set = infos[parent_id], sets[parent_id]
        request = ProposalRequest(
            component=component,
            parent=prompt_candidate(parent, parent_set[component]),
            inspirations=[prompt_candidate(infos[i], sets[i][component]) for i in inspiration_ids],
            feedback=self.feedback(parent, stages, [infos[i] for i in failures]),
            parent_id=parent_id,
            island=island,
            generation=generation,
            hyperparams=self.hyperparams(parent_set),
            siblings={name: cached_interface(source) for name, source in parent_set.items() if name != component},
        )
        return request, parent_set

    def feedback(self, parent: CandidateInfo, stages: list[StageVerdict], failures: list[CandidateInfo]) -> Feedback:
        profile = ProfileSummary.model_validate(parent.profile).as_text() if parent.profile else None
        return Feedback(
            stages=stages,
            flags=parent.flags,
            recent_failures=[
                f"child #{c.id} ({c.component}: {c.description[:200] or 'no description'}): {c.status}: "
                f"{(c.error or c.verdict or '')[:400]}"
                for c in failures
            ],
            profile=profile,
        )


def prompt_candidate(candidate: CandidateInfo, source: str) -> PromptCandidate:
    summary = Summary.model_validate(candidate.summary) if candidate.summary else None
    return PromptCandidate(id=candidate.id, source=source, summary=summary, status=candidate.status,
                           component=candidate.component, description=candidate.description, diff=candidate.diff)


def skip_notes(outcomes: dict[str, int], dead: dict[str, str], limit: int = 8) -> list[str]:
    """What the prompt says about work that would be wasted: near-copies skipped, sites that cannot matter."""
    notes = []
    if outcomes.get("near-copy"):
        notes.append(f"{outcomes['near-copy']} earlier proposal(s) from this parent were skipped as near-copies of programs "
                     "already evaluated (renamings and reformattings are not changes)")
    if outcomes.get("duplicate"):
        notes.append(f"{outcomes['duplicate']} earlier proposal(s) from this parent duplicated known programs")
    if dead:
        shown = "; ".join(f"{site}: {why}" for site, why in list(dead.items())[:limit])
        notes.append(f"changes here cannot take effect, do not make them: {shown}")
    return notes
