"""Component merges: the best version of one component joins the lineage holding the best of another.

A child changes one component of its parent's set, so wins in different components found in
different lineages never meet. A merge brings them together without an LLM: for components X and
Y, let bx be the best evaluated candidate that changed X itself and by the best that changed Y.
When neither set already holds the other's version, the merge is bx's whole set with Y's module
taken from by: a candidate of origin `merge` with parent bx (its set), second parent by (its Y),
component Y. It is stored like any child (one change against its first parent, so its set,
identity, behaviour check and lineage work as for any other), evaluated by the same cascade and
promoted only by the same paired rule.

Scheduling: `search.merge_share` of the proposals are merges, whenever one not tried yet exists
(the merges made so far stay at or below that share of all proposals). Pairs are tried best
first (by the better of the two scores, then the other).
"""

from pydantic import BaseModel

from evolve.database.records import CandidateInfo, IndexRow, NewCandidate, ProposalRecord
from evolve.database.serialize import unified_diff
from evolve.search.identity import set_identity
from evolve.search.index import PopulationIndex
from evolve.search.novelty import context_key


class MergePlan(BaseModel):
    first_parent_id: int  # bx: the set kept
    second_parent_id: int  # by: whose version of `component` joins it
    component: str
    kept_component: str  # X, for the description

    def description(self, index: PopulationIndex) -> str:
        first, second = index.rows[self.first_parent_id], index.rows[self.second_parent_id]
        return (
            f"merge: {self.component} from #{second.id} (best {self.component}, score {second.score:.4f}) into the set of "
            f"#{first.id} (best {self.kept_component}, score {first.score:.4f})"
        )


def best_per_component(index: PopulationIndex, components: list[str]) -> dict[str, IndexRow]:
    """For each component, the best evaluated candidate that changed it itself (merges included;
    the index keeps them as results arrive)."""
    return {name: row for name, row in index.best_changed.items() if name in components}


def merge_plans(index: PopulationIndex, components: list[str], tried: set[tuple[int, int, str]]) -> list[MergePlan]:
    """Every merge of two components' best versions that neither lineage already holds, best first."""
    best = best_per_component(index, components)
    plans: list[tuple[tuple, MergePlan]] = []
    for kept, bx in best.items():
        for taken, by in best.items():
            if kept == taken or bx.id == by.id:
                continue
            if index.providers(bx.id).get(taken) == by.id or index.providers(by.id).get(kept) == bx.id:
                continue  # one set already holds the other's version: nothing to merge
            key = (bx.id, by.id, taken)
            if key in tried:
                continue
            order = (-max(bx.score, by.score), -min(bx.score, by.score), bx.id, by.id)
            plans.append((order, MergePlan(first_parent_id=bx.id, second_parent_id=by.id, component=taken, kept_component=kept)))
    return [plan for _, plan in sorted(plans, key=lambda p: p[0])]


def tried_merges(index: PopulationIndex) -> set[tuple[int, int, str]]:
    return {key for key in index.merges if key[0] is not None and key[1] is not None}


def merge_due(merges_made: int, attempts: int, share: float) -> bool:
    """Whether the next proposal should be a merge: keeps merges at `share` of all proposals."""
    return share > 0 and merges_made + 1 <= share * (attempts + 1)


class Merger:
    """Finds the next merge and stores it as a proposal with its candidate (the loop's part of merging)."""

    def __init__(self, store, index: PopulationIndex, requests, config, experiment_id: int, novelty=None):
        self.store, self.index, self.requests, self.config = store, index, requests, config
        self.experiment_id, self.novelty = experiment_id, novelty

    def propose(self, generation: int) -> CandidateInfo | None:
        if len(self.config.components) < 2:
            return None  # one component evolving: nothing to merge
        known = self.index.identities
        for plan in merge_plans(self.index, self.config.components, tried_merges(self.index)):
            sets = self.requests.sets([plan.first_parent_id, plan.second_parent_id])
            base, taken = sets[plan.first_parent_id], sets[plan.second_parent_id][plan.component]
            identity = set_identity({**base, plan.component: taken}, self.config.harness)
            if identity not in known:
                return self._store(plan, base, taken, identity, generation)
        return None

    def _store(self, plan: MergePlan, base: dict[str, str], taken: str, identity: str, generation: int) -> CandidateInfo:
        first = self.index.rows[plan.first_parent_id]
        record = ProposalRecord(
            experiment_id=self.experiment_id, parent_id=first.id, component=plan.component, generation=generation,
            island=first.island, outcome="new", origin="merge", second_parent_id=plan.second_parent_id,
        )
        candidate, outcome = self.store.record_proposal(record, NewCandidate(
            experiment_id=self.experiment_id, component=plan.component, source=taken, origin="merge",
            parent_id=first.id, second_parent_id=plan.second_parent_id, generation=generation, island=first.island,
            set_hash=identity, description=plan.description(self.index),
            diff=unified_diff(base[plan.component], taken, f"{plan.component} #{first.id}", f"{plan.component} #{plan.second_parent_id}"),
        ))
        self.requests.proposed(first.id, outcome)
        self.requests.stored(candidate.id, taken)
        self.index.add(IndexRow.model_validate(candidate, from_attributes=True))
        if self.novelty is not None:
            self.novelty.add(plan.component, context_key(base, plan.component), candidate.id, taken)
        return candidate
