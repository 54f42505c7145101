"""The loop's generations: once a generation's candidates are all finished, its migration and its
count, stored together (so that `--resume` replays no migration).

Part of the evolution loop (loop.py), split from it because migration is the one step that moves
candidates between islands; the rule itself is in population.py.
"""

from evolve.search.population import migration_due, plan_migration_from

class GenerationSteps:
    """Mixed into EvolutionLoop: generations done and migrations."""

    def _after_generation(self) -> None:
        """Once a generation's candidates are all finished: its migration and its count, stored together."""
        generations = self.index.finished_children // self.config.candidates_per_generation
        while self.completed_generations < generations:
            generation = self.completed_generations + 1
            moves = []
            if migration_due(generation, self.config.population):
                settings = self.config.population
                elites = self.index.elites(settings.elites_per_island)
                members = {str(i.id): i for pool in elites.values() for i in pool}
                moves = [(int(members[str(m.individual_id)].origin), m.target)
                         for m in plan_migration_from(elites, self.index.on_island, settings)]
            self.store.record_generation(self.experiment.id, generation, moves)
            self.completed_generations = generation
            for candidate_id, island in moves:
                self.index.add_migrant(candidate_id, island)
            if moves:
                self.progress.event(f"migration after generation {generation}: {len(moves)} elite(s) moved")
