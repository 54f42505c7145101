"""The population in memory: loaded from the database once, then updated as results arrive.

The loop consults the population for every proposal (parents, inspirations, counts, ancestry)
and its panel twice a second; reading every candidate back from the database each time made a
10,000-candidate search CPU-bound. The index holds no source text: it keeps each candidate's
place in the lineage and its result, the islands' members ranked best first (insertion keeps
them ranked), and counts by status. The database stays the truth: the loop writes there first,
then tells the index.
"""

import bisect
import math
from collections import Counter

from evolve.database.records import IndexRow, MigrantInfo
from evolve.search.population import Individual, rank_key

FINISHED = ("evaluated", "rejected", "failed", "champion")


def index_row(candidate) -> IndexRow:
    """A candidate (CandidateInfo) as the index holds it."""
    return IndexRow.model_validate(candidate, from_attributes=True)


class PopulationIndex:
    def __init__(self, rows: list[IndexRow], migrants: list[MigrantInfo]):
        self.rows: dict[int, IndexRow] = {}
        self.counts: Counter = Counter()
        self.ranked: dict[int, list[Individual]] = {}  # island -> members, best first
        self.failed_children: dict[int, list[int]] = {}  # parent -> children rejected or failed, oldest first
        self.finished_children = 0  # finished candidates other than the seed (generations are counted in them)
        self.best_score: float | None = None
        self.identities: set[str] = set()  # every set_hash: a merge whose set is known is not made
        self.merges: set[tuple[int | None, int | None, str]] = set()  # (parent, second parent, component) of each merge
        self.best_changed: dict[str, IndexRow] = {}  # component -> the best member that changed it itself (merge.py)
        self._member_ids: set = set()
        self._providers: dict[int, dict[str, int]] = {}  # candidate -> providers(candidate), as they are asked for
        for row in rows:
            self.add(row)
        for migrant in migrants:
            self.add_migrant(migrant.candidate_id, migrant.island)

    # updates

    def add(self, row: IndexRow) -> None:
        """A new candidate, or one as it is now (its status and result)."""
        previous = self.rows.get(row.id)
        if previous is not None:
            self.counts[previous.status] -= 1
        self.rows[row.id] = row
        self.counts[row.status] += 1
        self.identities.add(row.set_hash)
        if row.origin == "merge":
            self.merges.add((row.parent_id, row.second_parent_id, row.component))
        if row.status in FINISHED and (previous is None or previous.status not in FINISHED):
            self.finished_children += row.origin != "seed"
            if row.status in ("rejected", "failed") and row.parent_id is not None:
                self.failed_children.setdefault(row.parent_id, []).append(row.id)
            if self._is_member(row):
                self._insert(self._individual(row))
                self._note_best_changed(row)
        elif previous is not None and self._is_member(previous) and (
            not self._is_member(row) or (row.score, row.generation, row.island) != (previous.score, previous.generation, previous.island)
        ):
            self._rerank(row)  # its record was refolded after a paired comparison: its place among the parents moves
            return
        if row.score is not None and not math.isnan(row.score):
            self.best_score = row.score if self.best_score is None else max(self.best_score, row.score)

    def set_status(self, candidate_id: int, status: str) -> None:
        """pending -> running, or a champion change (champions stay members: status 'evaluated' to selection)."""
        self.add(self.rows[candidate_id].model_copy(update={"status": status}))

    def add_migrant(self, candidate_id: int, island: int) -> None:
        original = self._individual(self.rows[candidate_id])
        self._insert(original.model_copy(update={"id": f"{candidate_id}@{island}", "island": island, "migrated_from": candidate_id}))

    # queries

    def count(self, *statuses: str) -> int:
        return sum(self.counts[s] for s in statuses)

    def members(self, island: int | None = None) -> list[Individual]:
        """An island's members best first; all islands' (merged) when None."""
        if island is not None:
            return self.ranked.get(island, [])
        return sorted((i for pool in self.ranked.values() for i in pool), key=rank_key)

    def pool(self, island: int) -> list[Individual]:
        """Where a parent on `island` is drawn from: its members, or everyone's while it has none."""
        return self.members(island) or self.members()

    def best(self) -> Individual | None:
        heads = [pool[0] for pool in self.ranked.values() if pool]
        return min(heads, key=rank_key) if heads else None

    def elites(self, count: int) -> dict[int, list[Individual]]:
        return {island: pool[:count] for island, pool in sorted(self.ranked.items())}

    def on_island(self, origin: int, island: int) -> bool:
        """Whether the candidate (or a migrant copy of it) is a member of that island."""
        row = self.rows.get(origin)
        return (row is not None and row.island == island and origin in self._member_ids) or f"{origin}@{island}" in self._member_ids

    def has_parents(self) -> bool:
        return any(self.ranked.values())

    def providers(self, candidate_id: int) -> dict[str, int]:
        """For each component the candidate's set changes against the seed set, the candidate (itself
        or its nearest ancestor) whose module text it uses."""
        known = self._providers.get(candidate_id)
        if known is not None:
            return dict(known)
        chain: list[IndexRow] = []  # up to the nearest ancestor already known (a lineage never changes)
        current: int | None = candidate_id
        base: dict[str, int] = {}
        while current is not None:
            if current in self._providers:
                base = self._providers[current]
                break
            row = self.rows[current]
            chain.append(row)
            current = row.parent_id
        for row in reversed(chain):
            base = {**base, row.component: row.id} if row.origin != "seed" else dict(base)
            self._providers[row.id] = base
        return dict(base)

    # helpers

    @staticmethod
    def _is_member(row: IndexRow) -> bool:
        return row.status in ("evaluated", "champion") and row.score is not None and not math.isnan(row.score)

    @staticmethod
    def _individual(row: IndexRow) -> Individual:
        return Individual(id=row.id, island=row.island, score=row.score, status="evaluated", generation=row.generation,
                          parent_id=row.parent_id)

    def _rerank(self, row: IndexRow) -> None:
        """The candidate and its migrants' copies out of the ranked pools, and back where its new result puts them."""
        copies = []  # the islands its migrants are on
        for island, pool in self.ranked.items():
            for individual in [i for i in pool if i.id == row.id or i.migrated_from == row.id]:
                pool.remove(individual)
                self._member_ids.discard(individual.id)
                if individual.migrated_from == row.id:
                    copies.append(island)
        if self._is_member(row):
            self._insert(self._individual(row))
            for island in copies:
                self.add_migrant(row.id, island)
        scores = [r.score for r in self.rows.values() if r.score is not None and not math.isnan(r.score)]
        self.best_score = max(scores) if scores else None
        self.best_changed.pop(row.component, None)
        for other in self.rows.values():
            if other.component == row.component and self._is_member(other):
                self._note_best_changed(other)

    def _note_best_changed(self, row: IndexRow) -> None:
        if row.origin == "seed":
            return
        held = self.best_changed.get(row.component)
        if held is None or (row.score, -row.id) > (held.score, -held.id):
            self.best_changed[row.component] = row

    def _insert(self, individual: Individual) -> None:
        if individual.id in self._member_ids:
            return
        self._member_ids.add(individual.id)
        bisect.insort(self.ranked.setdefault(individual.island, []), individual, key=rank_key)
