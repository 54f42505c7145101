"""Which executor runs a search's evaluations: the local pool, a Ray cluster or the simulation, as the configuration says.

evolve.search.ray_executor is imported only for `executor = "ray"`: Ray is an optional extra.
"""

from evaluator.data import Dataset
from evolve.config import ExperimentConfig
from evolve.search.executor import Executor, LocalPoolExecutor
from evolve.simulation.executor import SimulatedExecutor


class ExecutorUnavailable(RuntimeError):
    """The configured executor cannot run here (Ray not installed, the cluster unreachable); the message says why."""


def make_executor(config: ExperimentConfig, dataset: Dataset) -> Executor:
    """The local pool (one worker per GPU of config.gpus, one on the CPU), the Ray cluster of config.ray, or the
    simulation of config.simulation (which reads no dataset)."""
    if config.executor == "simulated":
        return SimulatedExecutor(config.simulation)
    if config.executor == "local":
        return LocalPoolExecutor(config.gpus if config.harness.device != "cpu" else None, dataset)
    try:
        from evolve.search.ray_executor import RayClusterError, RayExecutor  # the optional extra
    except ImportError as e:
        raise ExecutorUnavailable(str(e)) from None
    try:
        return RayExecutor(config.ray, config.harness.device, dataset)
    except RayClusterError as e:
        raise ExecutorUnavailable(f"{e}\nNothing was started or stored.") from None
