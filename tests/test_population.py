from collections import Counter

import numpy as np
import pytest

from evolve.config import PopulationSettings
from evolve.search.population import (
    Individual,
    PopulationError,
    best,
    elites,
    island_for,
    migration_due,
    plan_migration,
    select_inspirations,
    select_parent,
)


def individual(id, island, score, status="evaluated", generation=1, **kw):
    return Individual(id=id, island=island, score=score, status=status, generation=generation, **kw)


def population() -> list[Individual]:
    # Scores are negative seconds: higher is better.
    return [
        individual(1, 0, -3.0), individual(2, 0, -2.5), individual(3, 0, -2.0), individual(4, 0, None, "rejected"),
        individual(5, 0, -1.0, "failed"), individual(6, 0, None, "pending"),
        individual(7, 1, -2.8), individual(8, 1, -2.2), individual(9, 2, -2.9),
    ]


def test_rank_softmax_favours_better_members_but_keeps_all():
    settings = PopulationSettings(selection_temperature=2.0, random_parent_probability=0.0)
    rng = np.random.default_rng(0)
    counts = Counter(select_parent(population(), 0, rng, settings).id for _ in range(6000))
    assert set(counts) == {1, 2, 3}  # never rejected, failed or pending ones
    # Weights exp(-r/2) for ranks 0, 1, 2: 0.506, 0.307, 0.186.
    assert counts[3] / 6000 == pytest.approx(0.506, abs=0.02)
    assert counts[2] / 6000 == pytest.approx(0.307, abs=0.02)
    assert counts[1] / 6000 == pytest.approx(0.186, abs=0.02)


def test_temperature_and_rules():
    rng = np.random.default_rng(1)
    greedy = PopulationSettings(selection_temperature=0.01, random_parent_probability=0.0)
    assert {select_parent(population(), 0, rng, greedy).id for _ in range(50)} == {3}
    assert select_parent(population(), 0, rng, PopulationSettings(parent_selection="best", random_parent_probability=0)).id == 3
    uniform = PopulationSettings(parent_selection="uniform")
    counts = Counter(select_parent(population(), 0, rng, uniform).id for _ in range(3000))
    assert all(abs(counts[i] / 3000 - 1 / 3) < 0.04 for i in (1, 2, 3))


def test_random_pick_probability_flattens_the_choice():
    rng = np.random.default_rng(2)
    explore = PopulationSettings(selection_temperature=0.01, random_parent_probability=0.3)
    counts = Counter(select_parent(population(), 0, rng, explore).id for _ in range(6000))
    assert counts[1] / 6000 == pytest.approx(0.1, abs=0.02)  # only through the random pick: 0.3 / 3


def test_tied_scores_share_their_chance():
    pop = [individual(1, 0, -2.0), individual(2, 0, -2.0), individual(3, 0, -5.0)]
    rng = np.random.default_rng(3)
    settings = PopulationSettings(random_parent_probability=0.0)
    counts = Counter(select_parent(pop, 0, rng, settings).id for _ in range(4000))
    assert abs(counts[1] - counts[2]) < 250


def test_empty_island_borrows_and_empty_population_fails():
    rng = np.random.default_rng(4)
    assert select_parent(population(), 3, rng, PopulationSettings(parent_selection="best", random_parent_probability=0)).id == 3
    with pytest.raises(PopulationError, match="evaluate the seed set first"):
        select_parent([individual(1, 0, None, "failed")], 0, rng, PopulationSettings())


def test_elites_and_best():
    settings = PopulationSettings(elites_per_island=2)
    assert [e.id for e in elites(population(), 0, settings)] == [3, 2]
    assert best(population()).id == 3 and best([]) is None
    tie = [individual("b", 0, -1.0, generation=2), individual("a", 0, -1.0, generation=2), individual("c", 0, -1.0, generation=1)]
    assert [e.id for e in elites(tie, 0, settings)] == ["c", "a"]


def test_inspirations_best_then_other_islands():
    pop = population()
    parent = pop[0]  # id 1, island 0
    settings = PopulationSettings(inspirations=3, elites_per_island=2)
    for seed in range(10):
        chosen = select_inspirations(pop, parent, np.random.default_rng(seed), settings)
        ids = [c.id for c in chosen]
        assert ids[0] == 3 and len(ids) == 3 and len(set(ids)) == 3 and 1 not in ids
        assert all(c.status == "evaluated" for c in chosen)
    # One per island in turn: with two more to draw, they come from two different islands.
    islands = Counter(
        tuple(sorted(c.island for c in select_inspirations(pop, parent, np.random.default_rng(s), settings)[1:]))
        for s in range(40)
    )
    assert all(len(set(key)) == 2 for key in islands)


def test_inspirations_never_include_the_parent_or_its_copies():
    pop = population() + [individual(10, 1, -2.0, migrated_from=3)]
    chosen = select_inspirations(pop, pop[2], np.random.default_rng(0), PopulationSettings(inspirations=10))
    ids = {c.id for c in chosen}
    assert 3 not in ids and 10 not in ids and ids <= {1, 2, 7, 8, 9}
    assert select_inspirations(pop, pop[2], np.random.default_rng(0), PopulationSettings(inspirations=0)) == []


def test_migration_ring_skips_what_is_already_there():
    settings = PopulationSettings(islands=3, migration_size=1, migration_interval=5)
    assert [migration_due(g, settings) for g in (0, 4, 5, 10)] == [False, False, True, True]
    assert not migration_due(5, PopulationSettings(islands=1))
    plan = plan_migration(population(), settings)
    assert [(m.individual_id, m.source, m.target) for m in plan] == [(3, 0, 1), (8, 1, 2), (9, 2, 0)]
    # After the copies exist, the same elites are not sent again; island 1's best is now the copy of 3,
    # which travels on to island 2 (3 itself is not there).
    migrated = population() + [
        individual(20, 1, -2.0, migrated_from=3), individual(21, 2, -2.2, migrated_from=8), individual(22, 0, -2.9, migrated_from=9)
    ]
    again = plan_migration(migrated, settings)
    assert [(m.individual_id, m.source, m.target) for m in again] == [(2, 0, 1), (20, 1, 2), (21, 2, 0)]


def test_island_assignment_round_robin():
    settings = PopulationSettings(islands=3)
    assert [island_for(s, 0, settings) for s in range(4)] == [0, 1, 2, 0]
    assert [island_for(s, 1, settings) for s in range(4)] == [1, 2, 0, 1]


def index_row(id, island, score, status="evaluated", generation=1):
    from evolve.database.records import IndexRow

    return IndexRow(id=id, component="optimizer", parent_id=None if id == 1 else 1, island=island, generation=generation,
                    origin="seed" if id == 1 else "mutator", status=status, score=score, accuracy_lower_bound=0.95,
                    set_hash=f"h{id}")


def test_index_reranks_a_candidate_whose_record_is_refolded():
    """After a paired comparison a candidate's record (and score) changes: its rank among the parents
    follows, on its island and wherever its migrants are, and the best score too."""
    from evolve.database.records import MigrantInfo
    from evolve.search.index import PopulationIndex

    index = PopulationIndex([index_row(1, 0, -3.0), index_row(2, 0, -2.0), index_row(3, 0, -2.5), index_row(4, 1, -2.8)],
                            [MigrantInfo(candidate_id=2, island=1, generation=2)])
    assert [i.id for i in index.members(0)] == [2, 3, 1]
    assert [i.id for i in index.members(1)] == ["2@1", 4]
    assert index.best().id == 2 and index.best_score == -2.0

    index.add(index_row(2, 0, -2.9))  # its confirmation runs were slower: it falls below #3
    assert [i.id for i in index.members(0)] == [3, 2, 1]
    assert [i.id for i in index.members(1)] == [4, "2@1"]
    assert [i.score for i in index.members(1)] == [-2.8, -2.9]
    assert index.best().id == 3 and index.best_score == -2.5

    index.add(index_row(1, 0, -1.5))  # the seed's record improved: it leads
    assert [i.id for i in index.members(0)] == [1, 3, 2]
    assert index.best_score == -1.5

    index.set_status(1, "champion")  # a champion change alone keeps the ranks
    assert [i.id for i in index.members(0)] == [1, 3, 2]
    assert index.count("champion") == 1 and len(index.members()) == 5
