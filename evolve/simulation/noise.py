"""The noise model: one timed run's sample around its set's truth (parameters: NoiseSettings, with their sources).

time = truth * host * (1 + worker offset) * (1 + run noise): the worker offset is drawn afresh
for every run because every timed run is made by a fresh worker (evaluator/promotion.py, point 2);
the host factor is drawn once per job (a slow host slows all its runs, both promotion sides alike).
accuracy = truth + normal(0, accuracy_std), kept within [0, 1].
"""

import random

from evaluator.results import RunSample
from evolve.simulation.landscape import Truth
from evolve.simulation_settings import NoiseSettings

DEVICE_NAME = "simulated"  # every simulated sample's device_name and torch_version


class NoiseModel:
    """Draws run samples; deterministic given its seed and the order of the calls."""

    def __init__(self, settings: NoiseSettings, seed: int = 0):
        self.settings = settings
        self.rng = random.Random(seed)  # the stdlib's: a scalar draw costs a fraction of a microsecond

    def host_factor(self) -> float:
        """The time factor of the host a job lands on: 1, or slow_host_factor with slow_host_probability."""
        s = self.settings
        return s.slow_host_factor if self.rng.random() < s.slow_host_probability else 1.0

    def time(self, truth: Truth, host: float = 1.0) -> float:
        s = self.settings
        offset, noise = self.rng.gauss(0.0, s.worker_offset_fraction), self.rng.gauss(0.0, s.time_noise_fraction)
        return float(truth.time_seconds * host * max(0.05, 1 + offset) * max(0.05, 1 + noise))

    def accuracy(self, truth: Truth) -> float:
        return float(min(1.0, max(0.0, truth.accuracy + self.rng.gauss(0.0, self.settings.accuracy_std))))

    def sample(self, truth: Truth, run: int, seed: int, host: float = 1.0) -> RunSample:
        """One timed run, labelled simulated."""
        return RunSample(run=run, seed=seed, accuracy=self.accuracy(truth), time_seconds=self.time(truth, host),
                         device_name=DEVICE_NAME, torch_version=DEVICE_NAME)
