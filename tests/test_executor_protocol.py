"""Every executor implements the whole protocol (evolve/search/executor.py Executor), and abandon() stops what runs.

The executors are found by reading the source: any class of the product (evolve/, evaluator/) or of
the tests and benchmarks that defines `submit(self, job)` is an executor, so a new one that forgot to subclass
Executor, or left a method out, fails here rather than on the rare path (a second Ctrl-C, a failing
seed) that calls the missing method.
"""

import ast
import importlib
import inspect
import time
from pathlib import Path

import psutil
import pytest

from evaluator.cascade import CascadeSettings
from evaluator.component_set import ComponentSet
from evaluator.data import synthetic_dataset
from evaluator.promotion import PromotionSettings
from evaluator.settings import HarnessSettings, ScoreSettings
from evolve.config import ExperimentConfig
from evolve.executor_choice import make_executor
from evolve.search.executor import EvaluationJob, Executor, LocalPoolExecutor, PromotionJob
from tests.ray_support import ChildProcessRunner, import_ray, start_cluster
from tests.stub_search import StubExecutor

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("evolve", "evaluator")
STAND_INS = ("tests", "bench")


def executor_classes(folders: tuple[str, ...]) -> list[tuple[str, str]]:
    """(module, class) of every module-level class under `folders` that defines `submit(self, job)`, but the protocol itself."""
    found = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and (module, node.name) != ("evolve.search.executor", "Executor") and any(
                        isinstance(item, ast.FunctionDef) and item.name == "submit" and len(item.args.args) == 2
                        for item in node.body):  # a job in, a future out (the loop's Scheduler.submit takes more)
                    found.append((module, node.name))
    return found


def load(module: str, name: str) -> type:
    if module == "evolve.search.ray_executor":
        import_ray()  # skips (fails under CI) without the optional extra
    return getattr(importlib.import_module(module), name)


def check_implements_the_protocol(cls: type) -> None:
    assert issubclass(cls, Executor), f"{cls.__qualname__} does not subclass evolve.search.executor.Executor"
    assert not inspect.isabstract(cls), f"{cls.__qualname__} leaves out {sorted(cls.__abstractmethods__)}"
    for name in Executor.__abstractmethods__:
        assert getattr(cls, name) is not getattr(Executor, name), (cls, name)
        if name == "slots":
            continue
        wanted = list(inspect.signature(getattr(Executor, name)).parameters)
        given = inspect.signature(getattr(cls, name)).parameters
        assert list(given)[: len(wanted)] == wanted, f"{cls.__qualname__}.{name}{inspect.signature(getattr(cls, name))}"
        extra = list(given.values())[len(wanted):]
        assert all(p.default is not inspect.Parameter.empty for p in extra), f"{cls.__qualname__}.{name} needs more"


def test_the_product_has_the_executors_it_should():
    names = {name for _, name in executor_classes(PRODUCT)}
    assert {"LocalPoolExecutor", "RayExecutor"} <= names, names


@pytest.mark.parametrize("module,name", executor_classes(PRODUCT) + executor_classes(STAND_INS))
def test_every_executor_implements_every_method(module, name):
    check_implements_the_protocol(load(module, name))


def test_a_class_that_leaves_a_method_out_cannot_be_made():
    class Partial(Executor):
        slots = 1

        def submit(self, job):
            raise NotImplementedError

    with pytest.raises(TypeError, match="abstract"):
        Partial()


def test_the_executor_choice_follows_the_configuration():
    config = ExperimentConfig(components=["hyperparams"])
    config.harness.device = "cpu"
    executor = make_executor(config, synthetic_dataset(64, 16))
    try:
        assert isinstance(executor, LocalPoolExecutor) and executor.slots == 1
        assert "1 evaluation at a time" in executor.describe()
    finally:
        executor.shutdown()
    config.harness.device, config.gpus = "cuda", [0, 1]
    executor = make_executor(config, synthetic_dataset(64, 16))
    try:
        assert executor.slots == 2 and "one per GPU (0, 1)" in executor.describe()
    finally:
        executor.shutdown()


def job(candidate_id: int) -> EvaluationJob:
    return EvaluationJob(candidate_id=candidate_id, component_set=ComponentSet.shipped("baseline"), changed=["optimizer"],
                         harness=HarnessSettings(device="cpu"), score=ScoreSettings(), cascade=CascadeSettings())


def started_children(folder: Path, count: int, seconds: float) -> list[int]:
    """The pids of the children the runner started, once `count` have started."""
    deadline = time.monotonic() + seconds
    while len(list(folder.iterdir())) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [int(path.name.split("-")[1]) for path in folder.iterdir()]
    assert len(pids) == count, pids
    return pids


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until_dead(pids: list[int], seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def test_abandon_kills_the_local_pools_running_jobs_now(tmp_path):
    # Runs before the Ray test below: abandon() kills every process below this one, a Ray cluster's included.
    executor = LocalPoolExecutor([0, 1], synthetic_dataset(64, 16), ChildProcessRunner(marker_dir=str(tmp_path)))
    futures = [executor.submit(job(i)) for i in (1, 2, 3)]  # two run, the third waits for a slot
    pids = started_children(tmp_path, 2, seconds=30)
    progress = executor.job_progress()
    assert sorted(p.candidate_id for p in progress) == [1, 2] and {p.stage for p in progress} == {"sleeping"}
    started = time.monotonic()
    executor.abandon()
    assert time.monotonic() - started < 10
    assert all(f.done() for f in futures) and futures[2].cancelled()
    assert wait_until_dead(pids) == []
    assert executor.job_progress() == []
    executor.shutdown(wait=False)


def test_the_stub_executor_abandons_its_blocked_promotions():
    baseline = ComponentSet.shipped("baseline")
    executor = StubExecutor(block_promotions=True)
    future = executor.submit(PromotionJob(candidate_id=2, incumbent_id=1, candidate_set=baseline, incumbent_set=baseline,
                                          harness=HarnessSettings(device="cpu"), score=ScoreSettings(),
                                          promotion=PromotionSettings()))
    assert not future.done()
    executor.abandon()
    assert future.cancelled()


@pytest.mark.xdist_group("ray")  # with tests/test_ray_executor.py: one Ray cluster at a time
def test_abandon_cancels_the_ray_tasks_in_flight_and_kills_their_workers(tmp_path):
    ray = import_ray()
    from evolve.config import RaySettings
    from evolve.search.ray_executor import RayExecutor

    cluster = start_cluster(worker_nodes=1, cpus_per_node=2)
    grace = 30  # the polite cancel (a KeyboardInterrupt in the task) ends the job well within it
    try:
        executor = RayExecutor(RaySettings(address=cluster.address, cancel_grace_seconds=grace), "cpu",
                               synthetic_dataset(64, 16), ChildProcessRunner(marker_dir=str(tmp_path)))
        futures = [executor.submit(job(i)) for i in (1, 2)]
        pids = started_children(tmp_path, 2, seconds=240)  # a loaded machine may take minutes to start a Ray worker
        progress = executor.job_progress()
        assert sorted(p.candidate_id for p in progress) == [1, 2] and {p.stage for p in progress} == {"on the cluster"}
        started = time.monotonic()
        executor.abandon()
        assert time.monotonic() - started < grace
        assert all(f.cancelled() for f in futures)
        assert sorted(r.outcome for r in executor.history) == ["cancelled", "cancelled"]
        assert wait_until_dead(pids) == []
        assert executor.job_progress() == []
        executor.shutdown(wait=False)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
