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

import math

from pydantic import BaseModel

from evolve.database.records import IndexRow
from evolve.search.index import PopulationIndex

MEMBER_STATUSES = ("evaluated", "champion")


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


def _scored(row: IndexRow) -> bool:
    return row.status in MEMBER_STATUSES and row.score is not None and not math.isnan(row.score)


def best_per_component(index: PopulationIndex, components: list[str]) -> dict[str, IndexRow]:
    """For each component, the best evaluated candidate that changed it itself (merges included)."""
    best: dict[str, IndexRow] = {}
    for row in index.rows.values():
        if row.origin == "seed" or row.component not in components or not _scored(row):
            continue
        held = best.get(row.component)
        if held is None or (row.score, -row.id) > (held.score, -held.id):
            best[row.component] = row
    return best


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
    return {(row.parent_id, row.second_parent_id, row.component) for row in index.rows.values()
            if row.origin == "merge" and row.parent_id is not None and row.second_parent_id is not None}


def merge_due(merges_made: int, attempts: int, share: float) -> bool:
    """Whether the next proposal should be a merge: keeps merges at `share` of all proposals."""
    return share > 0 and merges_made + 1 <= share * (attempts + 1)
