"""Component sets and proposal requests, rebuilt from the lineage: the stored seed set, the
in-memory index (who changed which component along an ancestry) and the module texts read from
the database in one query.

What does not change once stored is kept in memory, so that a proposal usually reads nothing:
module texts by candidate id (a bounded cache; the loop hands in each new candidate's text as it
stores it), the records and cascade verdicts of finished candidates (a record changes only when
the loop refolds it after a paired comparison, and it says so: `forget`; the status, which a
champion change moves, comes from the index), and the count of proposals made from each parent
by outcome (loaded once, then counted as the loop stores them).

A request shows the model the parent's module, how the parent came about (its description and
diff), its relatives with theirs, the evaluator's feedback, the hyperparameter values in force
and the interfaces of the set's other components.
"""

from collections import Counter, OrderedDict
from functools import lru_cache

from evaluator.results import ProfileSummary, StageVerdict, Summary
from evolve.config import ExperimentConfig
from evolve.database.records import CandidateInfo
from evolve.database.store import Store
from evolve.llm.module_summary import hyperparams_in_force, module_interface
from evolve.llm.prompt_builder import Feedback, PromptCandidate
from evolve.search.index import FINISHED, PopulationIndex
from evolve.search.proposer import ProposalRequest

RECENT_FAILURES = 3
CACHED_TEXTS = 4096  # module texts kept in memory (a few KB each)


class Bounded(OrderedDict):
    """A dict that forgets its least recently used entries beyond `limit`."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def get_fresh(self, key):
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@lru_cache(maxsize=512)
def cached_interface(source: str) -> str:
    return module_interface(source)


@lru_cache(maxsize=64)
def cached_hyperparams(source: str) -> tuple | None:
    values = hyperparams_in_force(source, {})
    return None if values is None else tuple(values.items())


class RequestBuilder:
    def __init__(self, store: Store, index: PopulationIndex, seed_sources: dict[str, str], config: ExperimentConfig,
                 experiment_id: int | None = None):
        """With `experiment_id`, the proposals' outcomes are counted in memory (the loop tells `proposed`)."""
        self.store, self.index, self.seed_sources, self.config = store, index, seed_sources, config
        self.experiment_id = experiment_id
        self.texts: Bounded = Bounded(CACHED_TEXTS)  # candidate id -> module text (immutable once stored)
        self.finished_stages: Bounded = Bounded(CACHED_TEXTS)  # candidate id -> its cascade verdicts, once finished
        self.finished_infos: Bounded = Bounded(CACHED_TEXTS)  # candidate id -> its record, once finished (see forget)
        self.outcomes: dict[int, Counter] | None = None  # parent id -> proposals made from it by outcome, once loaded

    def known_infos(self, candidate_ids: list[int]) -> dict[int, CandidateInfo]:
        """The finished candidates' records held in memory, their status (a champion change) from the index."""
        found = {}
        for cid in candidate_ids:
            info = self.finished_infos.get_fresh(cid)
            if info is not None:
                status = self.index.rows[cid].status
                found[cid] = info if info.status == status else info.model_copy(update={"status": status})
        return found

    def forget(self, candidate_id: int) -> None:
        """The candidate's record changed (refolded after a paired comparison): read it again when needed."""
        self.finished_infos.pop(candidate_id, None)

    def stored(self, candidate_id: int, source: str) -> None:
        """A candidate just stored: its text is known without reading it back."""
        self.texts.put(candidate_id, source)

    def proposed(self, parent_id: int | None, outcome: str) -> None:
        """A proposal from `parent_id` just stored with this outcome."""
        if self.outcomes is not None and parent_id is not None:
            self.outcomes.setdefault(parent_id, Counter())[outcome] += 1

    def proposals_from(self, parent_id: int) -> dict[str, int]:
        """What came of the proposals made from this parent, by outcome (read from the database once)."""
        if self.experiment_id is None:
            return self.store.proposals_from(parent_id)
        if self.outcomes is None:
            self.outcomes = {}
            for parent, outcome, count in self.store.proposal_outcomes_by_parent(self.experiment_id):
                self.outcomes.setdefault(parent, Counter())[outcome] = count
        return dict(self.outcomes.get(parent_id, {}))

    def module_texts(self, candidate_ids: list[int]) -> dict[int, str]:
        """The module text of each candidate: from memory, the missing ones in one query."""
        found = {cid: text for cid in candidate_ids if (text := self.texts.get_fresh(cid)) is not None}
        missing = [cid for cid in candidate_ids if cid not in found]
        for cid, text in (self.store.sources(missing) if missing else {}).items():
            self.texts.put(cid, text)
            found[cid] = text
        return found

    def sets(self, candidate_ids: list[int], texts: dict[int, str] | None = None) -> dict[int, dict[str, str]]:
        """The whole component set of each candidate: the seed set with the latest change of each
        component along its ancestry (the texts from memory or one query, unless given)."""
        providers = {cid: self.index.providers(cid) for cid in candidate_ids}
        if texts is None:
            texts = self.module_texts(self.provider_ids(providers))
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
        texts = {cid: text for cid in providers if (text := self.texts.get_fresh(cid)) is not None}
        missing = [cid for cid in providers if cid not in texts]
        stages = self.finished_stages.get_fresh(parent_id)
        infos = self.known_infos([*shown, *failures])
        unknown = [cid for cid in dict.fromkeys([*shown, *failures]) if cid not in infos]
        read: dict[int, str] = {}
        if unknown or missing or stages is None:
            fresh, read, read_stages = self.store.prompt_material(unknown, missing, parent_id if stages is None else None)
            for cid, info in fresh.items():
                if info.status in FINISHED:
                    self.finished_infos.put(cid, info)
            infos.update(fresh)
        for cid, text in read.items():
            self.texts.put(cid, text)
        if stages is None:  # a finished candidate's verdicts never change
            stages = read_stages
            if infos[parent_id].status in FINISHED:
                self.finished_stages.put(parent_id, stages)
        sets = self.sets(shown, {**texts, **read})
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
