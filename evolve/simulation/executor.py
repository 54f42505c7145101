"""SimulatedExecutor: the executor protocol answered by the simulation.

A job's result is drawn when it is submitted and handed back when its simulated device time has
passed, in the order a cluster of `slots` devices would finish them (clock.py). The truths it
drew are kept (`truths`: candidate id -> Truth) for benchmarks that measure the search against
them; the search itself never sees them.
"""

from concurrent.futures import Future

from evolve.search.executor import EvaluationJob, Executor, Job, JobProgress, Result
from evolve.simulation.cascade import simulated_evaluation
from evolve.simulation.clock import SimulatedClock
from evolve.simulation.landscape import Landscape, Truth
from evolve.simulation.noise import NoiseModel
from evolve.simulation.promotion import simulated_pairs
from evolve.simulation_settings import SimulationSettings


class SimulatedExecutor(Executor):
    """Jobs answered from the landscape and the noise model: no worker, no device, no waiting."""

    def __init__(self, settings: SimulationSettings | None = None):
        self.settings = settings or SimulationSettings()
        self.landscape = Landscape(self.settings.landscape, self.settings.landscape_seed)
        self.noise = NoiseModel(self.settings.noise, self.settings.noise_seed)
        self.truths: dict[int, Truth] = {}
        self.submitted = 0
        self.clock = SimulatedClock(self.settings.slots, self.settings.wall_seconds_per_device_second)

    @property
    def slots(self) -> int:
        return self.settings.slots

    def submit(self, job: Job) -> "Future[Result]":
        result = self.run(job)
        self.submitted += 1
        return self.clock.submit(result, result.seconds)

    def run(self, job: Job) -> Result:
        """The job's simulated result."""
        costs = self.settings.costs
        if isinstance(job, EvaluationJob):
            truth = self.truths[job.candidate_id] = self.landscape.truth(job.component_set)
            return simulated_evaluation(truth, job.changed, job.score, job.cascade, job.champion_times, self.noise, costs)
        candidate, incumbent = self.landscape.truth(job.candidate_set), self.landscape.truth(job.incumbent_set)
        attempt = job.context.attempt if job.context else 1
        return simulated_pairs(candidate, incumbent, attempt, job.first_pair, job.promotion.pairs, self.noise, costs)

    def job_progress(self) -> list[JobProgress]:
        return []  # nothing runs: a result waits only for its simulated device time

    def abandon(self) -> None:
        self.clock.drop()  # no worker to kill: the results in flight are dropped

    def shutdown(self, wait: bool = True) -> None:
        self.clock.close()

    def describe(self) -> str:
        s = self.settings
        kind = "A/A (null) landscape" if s.landscape.null else f"landscape seed {s.landscape_seed}"
        return (f"SIMULATED executor (evolve/simulation): {s.slots} simulated slot(s), {kind}, noise seed {s.noise_seed}; "
                "no code runs, every time and accuracy is drawn")
