"""The Ray executor on a real Ray cluster of simulated nodes on this machine (ray.cluster_utils.Cluster).

The fault tests use a stand-in evaluator that holds its slot (tests/ray_support.py); the CLI test
runs the real sandboxed evaluator inside the Ray tasks, through a SIGKILL of the driver and --resume.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluator.cascade import CascadeSettings
from evaluator.component_set import ComponentSet
from evaluator.data import synthetic_dataset
from evaluator.settings import HarnessSettings, ScoreSettings
from evolve.cli.app import app
from evolve.config import RaySettings
from evolve.database import Store
from evolve.search.executor import EvaluationJob
from tests.ray_support import NODE_MEMORY, StubRunner, crash_worker, import_ray, markers, run_stub_search, start_cluster

ray = import_ray()
from evolve.search.ray_executor import RayExecutor, Ticket  # noqa: E402  (needs Ray)

FINISHED = {"evaluated", "rejected", "failed", "champion"}
FAST = [
    "--set", "candidates_per_generation=1", "--set", "cascade.runs=2", "--set", "cascade.min_runs=2",
    "--set", "score.target=0.2", "--set", "promotion.pairs=2", "--set", "harness.hyperparams.epochs=1",
    "--set", "population.islands=1", "--set", "seed=7",
]


@pytest.fixture(scope="module")
def cluster():
    cluster = start_cluster(worker_nodes=2, cpus_per_node=1)
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(64, 16, seed=3)


@pytest.fixture(autouse=True)
def no_llm_environment(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def job(candidate_id: int = 1) -> EvaluationJob:
    return EvaluationJob(candidate_id=candidate_id, component_set=ComponentSet.shipped("baseline"), changed=["optimizer"],
                         harness=HarnessSettings(device="cpu"), score=ScoreSettings(), cascade=CascadeSettings())


def finished_search(url: str, name: str = "stub"):
    with Store.open(url) as store:
        experiment = store.experiment(name)
        candidates = store.candidates(experiment.id)
        return candidates, {c.id: store.samples(c.id, ["timed"]) for c in candidates}


def test_a_search_spreads_its_evaluations_over_both_nodes(cluster, dataset, tmp_path):
    executor = RayExecutor(RaySettings(address=cluster.address), "cpu", dataset, StubRunner(seconds=0.5))
    assert executor.slots == 2  # one per CPU of the two worker nodes; the head takes no task
    try:
        reason = run_stub_search(executor, f"sqlite:///{tmp_path / 'evolve.db'}", candidates=4)
    finally:
        executor.shutdown()
    assert reason.startswith("all 4 proposals")
    candidates, samples = finished_search(f"sqlite:///{tmp_path / 'evolve.db'}")
    assert len(candidates) == 5 and all(c.status in FINISHED for c in candidates)
    evaluations = [r for r in executor.history if r.kind == "evaluation"]
    assert sorted(r.candidate_id for r in evaluations) == sorted(c.id for c in candidates)  # each once
    assert {r.node_id for r in executor.history} == {node.node_id for node in cluster.worker_nodes}
    assert all(len(s) == 3 for s in samples.values())


def test_a_node_removed_mid_evaluation_is_retried_elsewhere_and_nothing_is_lost_or_doubled(cluster, dataset, tmp_path):
    doomed = cluster.add_node(num_cpus=1, **NODE_MEMORY)
    cluster.wait_for_nodes()
    starts = tmp_path / "starts"
    starts.mkdir()
    executor = RayExecutor(RaySettings(address=cluster.address, max_retries=2), "cpu", dataset,
                           StubRunner(seconds=2.0, marker_dir=str(starts)))
    removed: list[int] = []

    def remove_when_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            on_doomed = [c for c, node in markers(starts) if node == doomed.node_id]
            if on_doomed:
                time.sleep(0.3)  # well inside its 2-second evaluation
                removed.extend(on_doomed)
                cluster.remove_node(doomed, allow_graceful=False)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=remove_when_busy)
    killer.start()
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    try:
        reason = run_stub_search(executor, url, candidates=4)
    finally:
        killer.join()
        executor.shutdown()
    assert removed, "no evaluation ever started on the node to remove"
    victim = removed[0]
    assert reason.startswith("all 4 proposals")
    retried = [r for r in executor.history if r.outcome == "retried"]
    assert [r.candidate_id for r in retried] == [victim]
    assert "attempt 1" in retried[0].reason
    final = [r for r in executor.history if r.candidate_id == victim and r.outcome == "done" and r.kind == "evaluation"]
    assert len(final) == 1 and final[0].node_id != doomed.node_id and final[0].attempt == 1
    assert [node for c, node in markers(starts) if c == victim].count(doomed.node_id) == 1
    candidates, samples = finished_search(url)
    assert all(c.status in FINISHED and c.status != "failed" for c in candidates)  # nothing lost
    assert all(len(s) == 3 for s in samples.values())  # nothing recorded twice
    assert executor.duplicates == 0


def test_a_job_whose_worker_keeps_dying_is_recorded_as_failed_with_the_reason(cluster, dataset, tmp_path):
    executor = RayExecutor(RaySettings(address=cluster.address, max_retries=1), "cpu", dataset, crash_worker)
    try:
        evaluation = executor.submit(job()).result(timeout=120)
    finally:
        executor.shutdown()
    assert evaluation.status == "failed"
    assert [r.outcome for r in executor.history] == ["retried", "failed"]
    message = evaluation.stages[-1].message
    assert "failed 2 time(s)" in message and "WorkerCrashedError" in message and "attempt 2" in message
    with Store.open(f"sqlite:///{tmp_path / 'evolve.db'}") as store:  # the loop stores it like any failure
        from evolve.database.records import NewCandidate

        experiment = store.create_experiment("e", ["optimizer"], {}, "baseline", "stub")
        source = ComponentSet.shipped("baseline").sources["optimizer"]
        candidate, _ = store.add_candidate(NewCandidate(experiment_id=experiment.id, component="optimizer", source=source,
                                                        origin="seed"))
        stored = store.record_evaluation(candidate.id, evaluation)
        assert stored.status == "failed" and "WorkerCrashedError" in (stored.error or "")


def test_a_result_delivered_twice_resolves_its_job_once(cluster, dataset):
    executor = RayExecutor(RaySettings(address=cluster.address), "cpu", dataset, StubRunner(seconds=0))
    try:
        first = executor.submit(job(7)).result(timeout=60)
        ticket = Ticket(job=job(7), future=Future())
        assert executor.deliver(ticket, first) is True
        assert executor.deliver(ticket, first.model_copy(update={"status": "failed"})) is False
        assert ticket.future.result().status == "evaluated" and executor.duplicates == 1
    finally:
        executor.shutdown()


def test_ctrl_c_cancels_the_tasks_in_flight_and_leaves_the_database_consistent(cluster, dataset, tmp_path):
    starts = tmp_path / "starts"
    starts.mkdir()
    executor = RayExecutor(RaySettings(address=cluster.address, cancel_grace_seconds=5), "cpu", dataset,
                           StubRunner(seconds=60, marker_dir=str(starts)))

    def press_ctrl_c_twice() -> None:  # the loop's first Ctrl-C waits for running jobs, the second abandons them
        deadline = time.monotonic() + 60
        while not list(starts.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(2):
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c_twice)
    presser.start()
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    try:
        reason = run_stub_search(executor, url, candidates=2)
    finally:
        presser.join()
    started = time.monotonic()
    executor.shutdown(wait=False)  # as `evolve start` does after a Ctrl-C
    assert time.monotonic() - started < 5  # the polite cancel was enough
    assert reason == "stopped by Ctrl-C"
    assert [r.outcome for r in executor.history] == ["cancelled"]
    candidates, samples = finished_search(url)
    assert [c.status for c in candidates] == ["pending"]  # the seed goes back to the queue, nothing half-recorded
    assert samples == {candidates[0].id: []}


def test_an_unreachable_cluster_is_one_clear_error_naming_the_address(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    result = CliRunner().invoke(app, ["start", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--component",
                                      "optimizer", "--device", "cpu", "--data", "synthetic", "--db", url])
    assert result.exit_code == 1
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in result.output and "ray start --head" in result.output
    assert result.output.count("error") == 1
    with Store.open(url) as store:
        assert store.experiments() == []  # nothing was stored


@pytest.fixture
def data_file(tmp_path):
    d = synthetic_dataset(400, 100, seed=11)
    path = tmp_path / "small.npz"
    np.savez(path, train_images=d.train_images, train_labels=d.train_labels, test_images=d.test_images, test_labels=d.test_labels)
    return path


def test_sandboxed_evaluations_run_as_ray_tasks_through_a_driver_sigkill_and_resume(cluster, tmp_path, data_file):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    ray_flags = ["--executor", "ray", "--ray-address", cluster.address]
    common = ["--component", "optimizer", "--device", "cpu", "--data", str(data_file), "--db", url, *FAST, *ray_flags]
    process = subprocess.Popen([sys.executable, "-m", "evolve", "start", *common, "--generations", "1", "--name", "killed"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # kill once the seed is evaluated and a child is being evaluated
            time.sleep(0.5)
            if not (tmp_path / "evolve.db").exists():
                continue
            with Store.open(url) as store:
                found = store.find_experiment("killed")
                statuses = [c.status for c in store.candidates(found.id)] if found else []
            if "champion" in statuses and "running" in statuses:
                break
        else:
            pytest.fail("the search never reached a running child")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with Store.open(url) as store:
        experiment = store.experiment("killed")
        in_flight = [c.id for c in store.candidates(experiment.id) if c.status == "running"]
        done_before = {c.id: len(store.samples(c.id, ["timed"])) for c in store.candidates(experiment.id) if c.status in FINISHED}
    result = CliRunner().invoke(app, ["start", "--resume", "killed", "--generations", "1", "--db", url, *ray_flags])
    assert result.exit_code == 0, result.output
    assert "Ray cluster of 3 node(s)" in result.output and f"{len(in_flight)} unfinished candidate(s) re-queued" in result.output
    with Store.open(url) as store:
        candidates = store.candidates(experiment.id)
        assert all(c.status in FINISHED for c in candidates)
        assert all(c.status != "failed" for c in candidates if c.id in in_flight)  # re-submitted and evaluated
        assert all(store.samples(c.id, ["timed"]) for c in candidates if c.status != "rejected")  # the harness measured them
        assert {i: len(store.samples(i, ["timed"])) for i in done_before} == done_before  # nothing recorded twice
        assert len({c.source_hash for c in candidates}) == len(candidates)
