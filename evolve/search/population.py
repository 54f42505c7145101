"""Islands, parent selection, inspirations and migration, on plain records (no database).

The population is split into `islands` that evolve apart, so that one early lucky line does not
take over the whole search. A candidate belongs to one island; its children are born there.

Rules (numbers from PopulationSettings):

- Members of an island: its candidates with status "evaluated" and a score. Candidates that were
  rejected, failed or are still pending never become parents or inspirations.
- Elites of an island: its `elites_per_island` best members by score (ties: the older, then the
  smaller id, so the rule is deterministic).
- Parent: with probability `random_parent_probability`, a member drawn uniformly (exploration);
  otherwise by `parent_selection`:
  - "rank_softmax": member of rank r (0 = best; tied scores share their mean rank) drawn with
    weight exp(-r / selection_temperature). Ranks rather than scores make the rule independent of
    the score's scale (seconds, and a steep accuracy penalty); temperature 2 gives the best about
    1.6 times the chance of the second;
  - "uniform": any member alike;
  - "best": the island's best.
  An island without members (early in a run, or all its candidates failed) borrows from the
  whole population, so every island can start from the seed set.
- Inspirations for a prompt: the best candidate of the whole population (unless it is the
  parent), then elites drawn from the islands in a random order, one per island in turn, so
  they come from lines that evolved apart; never the parent, never twice the same candidate.
- Migration: every `migration_interval` generations, each island sends copies of its
  `migration_size` best elites to the next island in a ring (i -> i + 1 mod islands). An elite is
  not sent where it (or the candidate it was copied from) already is. The loop stores a migrant as
  a new record with `migrated_from` set to the original's id, on the target island.
"""

from collections.abc import Callable

import numpy as np
from pydantic import BaseModel

from evolve.config import PopulationSettings
from evolve.search.ranks import average_ranks

CandidateId = int | str


class Individual(BaseModel):
    """What selection needs to know of a candidate."""

    id: CandidateId
    island: int
    score: float | None = None
    status: str = "pending"  # only "evaluated" (with a score) can be chosen; others: rejected, failed, pending...
    generation: int = 0
    parent_id: CandidateId | None = None
    migrated_from: CandidateId | None = None

    @property
    def origin(self) -> CandidateId:
        """The candidate this one is a copy of (itself unless it migrated)."""
        return self.migrated_from if self.migrated_from is not None else self.id


class Migration(BaseModel):
    """Copy `individual_id` from island `source` to island `target`."""

    individual_id: CandidateId
    source: int
    target: int


class PopulationError(ValueError):
    """Selection asked of a population with no evaluated candidate."""


def members(population: list[Individual], island: int | None = None) -> list[Individual]:
    """Evaluated, scored candidates (of one island, or of all when island is None)."""
    return [i for i in population if i.status == "evaluated" and i.score is not None
            and (island is None or i.island == island)]


def rank_key(individual: Individual) -> tuple:
    """Best first; ties broken by age, then id, so the order is deterministic."""
    return (-individual.score, individual.generation, str(individual.id))


def ranked(individuals: list[Individual]) -> list[Individual]:
    return sorted(individuals, key=rank_key)


def elites(population: list[Individual], island: int, settings: PopulationSettings) -> list[Individual]:
    return ranked(members(population, island))[: settings.elites_per_island]


def best(population: list[Individual]) -> Individual | None:
    scored = ranked(members(population))
    return scored[0] if scored else None


def select_parent(
    population: list[Individual], island: int, rng: np.random.Generator, settings: PopulationSettings
) -> Individual:
    """The parent of the next child on `island` (see the module docstring for the rule)."""
    return select_parent_from(ranked(members(population, island) or members(population)), rng, settings)


def select_parent_from(pool: list[Individual], rng: np.random.Generator, settings: PopulationSettings) -> Individual:
    """The rule on a pool already ranked best first (the loop's index keeps its islands ranked)."""
    if not pool:
        raise PopulationError(
            "no evaluated candidate to choose a parent from: evaluate the seed set first (a failed seed means the "
            "harness or the seed set is broken)"
        )
    if settings.parent_selection == "seed":
        seeds = [i for i in pool if i.parent_id is None and i.migrated_from is None]
        if not seeds:
            raise PopulationError("parent_selection 'seed': the seed is not in this island's pool; use population.islands=1")
        return seeds[0]
    if rng.random() < settings.random_parent_probability or settings.parent_selection == "uniform":
        return pool[int(rng.integers(len(pool)))]
    if settings.parent_selection == "best":
        return pool[0]
    pool = softmax_head(pool, settings.selection_temperature)
    ranks = average_ranks([-i.score for i in pool]) - 1
    weights = np.exp(-ranks / settings.selection_temperature)
    return pool[int(rng.choice(len(pool), p=weights / weights.sum()))]


NEGLIGIBLE_RANK = 40  # exp(-40) ~ 4e-18: beyond rank 40 * temperature, a weight is below double precision's share


def softmax_head(pool: list[Individual], temperature: float) -> list[Individual]:
    """The head of a ranked pool that holds all of rank_softmax's probability at double precision: the
    members more than NEGLIGIBLE_RANK * temperature ranks below the best weigh less than 1e-17 of it together, so
    leaving them out changes no draw (one uniform number picks the same member either way) and keeps
    a draw's cost flat as an island grows. A tie group at the cut is kept whole (its ranks are averaged)."""
    top = 1
    while top < len(pool) and pool[top].score == pool[0].score:
        top += 1  # the best tie group: its average rank is below `top`
    cut = top + int(NEGLIGIBLE_RANK * temperature) + 1
    if len(pool) <= cut:
        return pool
    while cut < len(pool) and pool[cut].score == pool[cut - 1].score:
        cut += 1
    return pool[:cut]


def select_inspirations(
    population: list[Individual], parent: Individual, rng: np.random.Generator, settings: PopulationSettings
) -> list[Individual]:
    """Up to `settings.inspirations` other candidates to show beside the parent."""
    islands = sorted({i.island for i in population})
    pools = {island: elites(population, island, settings) for island in islands}
    return select_inspirations_from(best(population), pools, parent, rng, settings)


def select_inspirations_from(
    top: Individual | None,
    pools: dict[int, list[Individual]],
    parent: Individual,
    rng: np.random.Generator,
    settings: PopulationSettings,
) -> list[Individual]:
    """The rule, given the best candidate and each island's elites (best first)."""
    count = settings.inspirations
    chosen: list[Individual] = []
    taken = {parent.id, parent.origin}

    def take(individual: Individual) -> None:
        chosen.append(individual)
        taken.update((individual.id, individual.origin))

    if count and top is not None and top.id not in taken and top.origin not in taken:
        take(top)
    islands = sorted(pools)
    order = [islands[k] for k in rng.permutation(len(islands))]
    while len(chosen) < count:
        progressed = False
        for island in order:
            if len(chosen) >= count:
                break
            available = [e for e in pools[island] if e.id not in taken and e.origin not in taken]
            if available:
                take(available[int(rng.integers(len(available)))])
                progressed = True
        if not progressed:
            break
    return chosen


def island_for(slot: int, generation: int, settings: PopulationSettings) -> int:
    """The island of a generation's `slot`-th candidate: round robin, shifted each generation."""
    return (slot + generation) % settings.islands


def migration_due(generation: int, settings: PopulationSettings) -> bool:
    """Whether migration happens after `generation` (counted from 1) completes."""
    return settings.islands > 1 and settings.migration_size > 0 and generation > 0 \
        and generation % settings.migration_interval == 0


def plan_migration(population: list[Individual], settings: PopulationSettings) -> list[Migration]:
    """The copies to make: each island's best elites to the next island of the ring."""
    islands = range(settings.islands)
    pools = {island: elites(population, island, settings) for island in islands}
    origins = {island: {i.origin for i in population if i.island == island} for island in islands}
    return plan_migration_from(pools, lambda origin, island: origin in origins[island], settings)


def plan_migration_from(
    elites_by_island: dict[int, list[Individual]], present: Callable[[CandidateId, int], bool], settings: PopulationSettings
) -> list[Migration]:
    """The rule, given each island's elites (best first) and whether a candidate (by origin) is on an
    island already (the loop's index answers both without a pass over the population)."""
    if settings.islands < 2:
        return []
    migrations = []
    for source in range(settings.islands):
        target = (source + 1) % settings.islands
        sent_here: set[CandidateId] = set()
        sent = 0
        for elite in elites_by_island.get(source, [])[: settings.elites_per_island]:
            if sent >= settings.migration_size:
                break
            if elite.origin in sent_here or present(elite.origin, target):
                continue
            migrations.append(Migration(individual_id=elite.id, source=source, target=target))
            sent_here.add(elite.origin)
            sent += 1
    return migrations
