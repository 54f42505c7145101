"""The simulated pairs of a paired re-measurement; the search decides on them with the real policy.

Each pair is two fresh workers on one seed, both sides on the job's host (evaluator/promotion.py);
the samples come from the noise model around each side's truth. As on a cluster, a job measures
pairs `first_pair` to `pairs` - 1 of the attempt's series (the search hands out one a job,
evolve/search/comparison.py) and returns them undecided, as `measure_pairs` does.
"""

from evaluator.results import PairedMeasurement
from evolve.simulation.cascade import SIMULATED_FLAG, SLOW_HOST_FLAG
from evolve.simulation.landscape import Truth
from evolve.simulation.noise import NoiseModel
from evolve.simulation_settings import DeviceCosts

PROMOTION_SEED = 1_000_000  # pair p of attempt k runs on seed PROMOTION_SEED + 1000 k + p, apart from the screening's


def simulated_pairs(candidate: Truth, incumbent: Truth, attempt: int, first_pair: int, pairs: int, noise: NoiseModel,
                    costs: DeviceCosts) -> PairedMeasurement:
    """Pairs `first_pair` to `pairs` - 1, drawn; their device time is both sides' runs and worker costs."""
    host = noise.host_factor()
    candidate_samples, incumbent_samples = [], []
    for pair in range(first_pair, pairs):
        seed = PROMOTION_SEED + 1000 * attempt + pair
        candidate_samples.append(noise.sample(candidate, pair, seed, host))
        incumbent_samples.append(noise.sample(incumbent, pair, seed, host))
    seconds = sum(s.time_seconds + costs.worker_seconds for s in candidate_samples + incumbent_samples)
    return PairedMeasurement(attempt=attempt, first_pair=first_pair, candidate_samples=candidate_samples,
                             incumbent_samples=incumbent_samples, flags=[SIMULATED_FLAG] + ([SLOW_HOST_FLAG] if host > 1 else []),
                             seconds=seconds)
