"""Generations: once a generation's candidates are all finished, its migration and its count,
stored together (so that `--resume` replays no migration). Migration is the one step that moves
candidates between islands; the rule itself is in population.py.

A generation is its `candidates_per_generation` proposals: one that made no candidate (unusable, a
duplicate, a near-copy) is finished when it is stored, one that made a candidate when that candidate
is; counting candidates alone, a search with one near-copy never finished its last generation."""

from evolve.config import ExperimentConfig
from evolve.database.store import Store
from evolve.search.panel import Panel
from evolve.search.population import migration_due, plan_migration_from
from evolve.search.state import SearchState

NO_CANDIDATE = ("unusable", "duplicate", "near-copy")  # proposal outcomes with no candidate of their own to wait for


class Generations:
    """Owns the count of generations done."""

    def __init__(self, config: ExperimentConfig, store: Store, experiment, state: SearchState, panel: Panel):
        self.config, self.store, self.experiment_id, self.state, self.panel = config, store, experiment.id, state, panel
        self.completed = store.experiment(experiment.name).completed_generations
        counts = store.proposal_counts(experiment.id)
        self.without_candidate = sum(counts.get(outcome, 0) for outcome in NO_CANDIDATE)

    def proposal_without_candidate(self) -> None:
        """A proposal ended with no candidate of its own: it is finished, and may finish its generation."""
        self.without_candidate += 1
        self.advance()

    def advance(self) -> None:
        """Every generation whose proposals are all finished: its migration and its count, stored together."""
        index, settings = self.state.index, self.config.population
        generations = (index.finished_children + self.without_candidate) // self.config.candidates_per_generation
        while self.completed < generations:
            generation = self.completed + 1
            moves = []
            if migration_due(generation, settings):
                elites = index.elites(settings.elites_per_island)
                members = {str(i.id): i for pool in elites.values() for i in pool}
                moves = [(int(members[str(m.individual_id)].origin), m.target)
                         for m in plan_migration_from(elites, index.on_island, settings)]
            self.store.record_generation(self.experiment_id, generation, moves)
            self.completed = generation
            for candidate_id, island in moves:
                index.add_migrant(candidate_id, island)
            if moves:
                self.panel.event(f"migration after generation {generation}: {len(moves)} elite(s) moved")
