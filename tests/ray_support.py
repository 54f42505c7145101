"""A real Ray cluster on this machine, and a stand-in evaluator, for the Ray executor's tests and benchmark.

Ray is an optional extra: without it these tests skip locally and fail under CI, where .ci/run
installs the extra (like the PostgreSQL tests in tests/database_support.py).
"""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel

from evaluator import cascade
from evaluator.cascade import StageReport, no_report
from evaluator.data import Dataset
from evaluator.results import Evaluation, PairedMeasurement, RunSample, StageVerdict
from evaluator.statistics import summarize
from evolve.search.executor import EvaluationJob, Job, run_job

# Node deaths are noticed within about a second instead of Ray's default half a minute.
FAST_FAILURE_DETECTION = {"health_check_period_ms": 300, "health_check_failure_threshold": 3, "health_check_timeout_ms": 300}
NODE_MEMORY = {"object_store_memory": 80 * 1024**2}


def import_ray():
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Ray is not installed: .ci/run installs it with pip install -e '.[test,ray]'",
                        pytrace=False)
        pytest.skip("Ray is not installed: pip install -e '.[ray]' to test the Ray executor", allow_module_level=True)
    return ray


def start_cluster(worker_nodes: int = 2, cpus_per_node: int = 1):
    """A head that runs no task (num_cpus=0) and `worker_nodes` simulated nodes, all on this machine.

    Its processes start with SIGINT ignored, as they do under a CI runner or from `ray start ... &`
    in a script (a background job of a shell without job control inherits it ignored): the case in
    which Ray's polite cancel did nothing until ray_executor.accept_polite_cancel."""
    from ray.cluster_utils import Cluster

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "include_dashboard": False, "_system_config": FAST_FAILURE_DETECTION, **NODE_MEMORY})
        for _ in range(worker_nodes):
            cluster.add_node(num_cpus=cpus_per_node, **NODE_MEMORY)
        cluster.wait_for_nodes()
    finally:
        signal.signal(signal.SIGINT, previous)
    return cluster


def stub_samples(job: Job, runs: int = 3) -> list[RunSample]:
    """Deterministic samples: every candidate reaches the target, some are faster than others."""
    seconds = 3.0 + (job.candidate_id * 7919 % 13) / 100
    return [RunSample(run=i, seed=i, accuracy=0.95 + 0.001 * (i % 2), time_seconds=seconds + 0.001 * i,
                      device_name="stub", torch_version="-") for i in range(runs)]


class StubRunner(BaseModel):
    """Holds its slot for `seconds` and returns a plausible result; a picklable stand-in for run_job.

    With `marker_dir`, it first writes a file named `<candidate>-<node id>-<random>` there, so
    that a test can see where (and how often) each job started.
    """

    seconds: float = 0.5
    seconds_by_candidate: dict[int, float] = {}  # exceptions to `seconds`
    marker_dir: str | None = None

    def __call__(self, job: Job, dataset: Dataset, gpu: int | None, report: StageReport = no_report) -> Evaluation | PairedMeasurement:
        start = time.perf_counter()
        if self.marker_dir:
            (Path(self.marker_dir) / f"{job.candidate_id}-{current_node()}-{uuid.uuid4().hex[:6]}").write_text("")
        time.sleep(self.seconds_by_candidate.get(job.candidate_id, self.seconds))
        elapsed = time.perf_counter() - start
        if isinstance(job, EvaluationJob):
            samples = stub_samples(job)
            summary = summarize(samples, job.score.confidence, job.score.target, job.score.penalty_base)
            return Evaluation(changed=job.changed, status="evaluated", samples=samples, summary=summary,
                              stages=[StageVerdict(stage="timed", status="passed", seconds=elapsed)])
        pairs = job.promotion.pairs - job.first_pair
        candidate, incumbent = stub_samples(job, pairs), stub_samples(job.model_copy(update={"candidate_id": job.incumbent_id}), pairs)
        return PairedMeasurement(attempt=job.context.attempt if job.context else 1, first_pair=job.first_pair,
                                 candidate_samples=candidate, incumbent_samples=incumbent, seconds=elapsed)


class ChildProcessRunner(BaseModel):
    """Starts a child that sleeps in its own session (as the sandbox starts its worker), writes the child's
    pid to `marker_dir`, reports the stage `sleeping` and waits for the child; a failed evaluation once the
    child is killed. For the tests of abandon(): the job ends only when something kills its process."""

    marker_dir: str

    def __call__(self, job: Job, dataset: Dataset, gpu: int | None, report: StageReport = no_report) -> Evaluation:
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)
        (Path(self.marker_dir) / f"{job.candidate_id}-{child.pid}").write_text("")
        report("sleeping")
        code = child.wait()
        return Evaluation(changed=job.changed, status="failed",
                          stages=[StageVerdict(stage="timed", status="failed", message=f"the child ended with {code}")])


def crash_worker(job: Job, dataset: Dataset, gpu: int | None, report: StageReport = no_report) -> None:
    """A runner whose process dies, as a Ray worker does when the machine's OOM killer picks it."""
    os._exit(3)


def current_node() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    except ImportError:
        return "local"


def markers(folder: Path) -> list[tuple[int, str]]:
    """(candidate id, node id) of every job start the stub recorded."""
    found = []
    for path in folder.iterdir():
        candidate, node, _ = path.name.split("-")
        found.append((int(candidate), node))
    return found


def stub_config(candidates: int, **update):
    """A one-generation search of `candidates` children of the hyperparameters (the baseline optimizer has no
    site the mutator can change to effect), on the CPU, proposals by the mutator."""
    from evolve.config import ExperimentConfig

    config = ExperimentConfig(components=["hyperparams"], generations=1, candidates_per_generation=candidates, seed=0)
    config.harness.device, config.harness.data = "cpu", "synthetic"
    config.population.islands = 1
    return config.model_copy(update=update)


def run_stub_search(executor, url: str, candidates: int, name: str = "stub", on_loop=None, config=None) -> str:
    """The real loop, store and built-in mutator, evaluating through `executor`; returns the stop reason.
    `on_loop(loop)` is called before the loop runs (a test that interrupts it watches its state);
    `config` replaces stub_config(candidates)."""
    import numpy as np
    from rich.console import Console

    from evaluator.component_set import ComponentSet
    from evolve.database import Store
    from evolve.llm.client import Budget
    from evolve.search.loop import EvolutionLoop
    from evolve.search.progress import LoopStats, Progress
    from evolve.search.proposer import MutatorProposer

    config = config or stub_config(candidates)
    with Store.open(url) as store:
        experiment = store.find_experiment(name) or store.create_experiment(
            name, config.components, config, "baseline", "stub", seed_sources=ComponentSet.shipped("baseline").sources)
        proposer = MutatorProposer(config.mutator, np.random.default_rng(1))
        with Progress(Console(stderr=True, quiet=True), LoopStats(experiment=name, proposer=proposer.name)) as progress:
            loop = EvolutionLoop(config, store, experiment, executor, proposer, progress, Budget(), np.random.default_rng(0))
            if on_loop is not None:
                on_loop(loop)
            return loop.run()


def stub_driver(address: str, url: str, marker_dir: str, seconds: float, seed_seconds: float) -> None:
    """A driver process for the SIGKILL test: a stub search on the cluster at `address`."""
    from evaluator.data import synthetic_dataset
    from evolve.config import RaySettings
    from evolve.search.ray_executor import RayExecutor

    runner = StubRunner(seconds=seconds, seconds_by_candidate={1: seed_seconds}, marker_dir=marker_dir)
    executor = RayExecutor(RaySettings(address=address), "cpu", synthetic_dataset(64, 16), runner)
    run_stub_search(executor, url, candidates=2, name="killed")
    executor.shutdown()


class NoStaticCheckRunner(BaseModel):
    """run_job with the static check switched off inside the task, so that only the sandbox stands in the way."""

    def __call__(self, job: Job, dataset: Dataset, gpu: int | None, report: StageReport = no_report) -> Evaluation | PairedMeasurement:
        cascade.check_source = lambda name, source: []
        return run_job(job, dataset, gpu, report)
