"""The Ray executor on a real Ray cluster of simulated nodes on this machine (ray.cluster_utils.Cluster).

The fault tests use a stand-in evaluator that holds its slot (tests/ray_support.py); one test runs
the real evaluator in a Ray task, with a candidate that only the sandbox can stop.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.cascade import CascadeSettings
from evaluator.component_set import ComponentSet
from evaluator.data import synthetic_dataset
from evaluator.settings import HarnessSettings, ScoreSettings
from evolve.cli.app import app
from evolve.config import RaySettings
from evolve.database import Store
from evaluator.sandbox.sandboxed_worker import WorkerLimits
from evolve.search.executor import EvaluationJob
from tests.ray_support import (
    NODE_MEMORY, NoStaticCheckRunner, StubRunner, crash_worker, import_ray, markers, run_stub_search, start_cluster,
)
from tests.redteam.cases import CASES

ray = import_ray()
from evolve.search.ray_executor import RayExecutor, Ticket  # noqa: E402  (needs Ray)

# One cluster serves every test here, and its nodes' health checks are timed: under pytest -n the module stays on one worker.
pytestmark = pytest.mark.xdist_group("ray")
FINISHED = {"evaluated", "rejected", "failed", "champion"}
ROOT = Path(__file__).resolve().parents[1]


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
    # The grace is long so that the time bound below tells the polite cancel (0.4 s) from the forced one, which
    # waits it out: the cluster's workers start with SIGINT ignored (ray_support.start_cluster), as under CI, where
    # the polite cancel did nothing until ray_executor.accept_polite_cancel.
    grace = 30
    executor = RayExecutor(RaySettings(address=cluster.address, cancel_grace_seconds=grace), "cpu", dataset,
                           StubRunner(seconds=60, marker_dir=str(starts)))

    loops = []
    # Ctrl-C must raise KeyboardInterrupt here: a pytest started as a background job (as CI starts it) inherits
    # SIGINT ignored, and the presses went nowhere (the search ran to its end).
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)

    def press_ctrl_c_twice() -> None:  # the loop's first Ctrl-C waits for running jobs, the second abandons them
        deadline = time.monotonic() + 240  # a loaded machine may take minutes to start a Ray worker
        while not list(starts.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        # The second press only once the loop took the first (it is stopping): on a loaded machine in a
        # full suite run a press 0.5 s after the first was seen to go nowhere (the search ran to its end).
        while not (loops and loops[0].stop_reason) and time.monotonic() < deadline:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c_twice)
    presser.start()
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    try:
        reason = run_stub_search(executor, url, candidates=2, on_loop=loops.append)
    finally:
        presser.join()
        signal.signal(signal.SIGINT, handler)
    started = time.monotonic()
    executor.shutdown(wait=False)  # as `evolve start` does after a Ctrl-C
    assert time.monotonic() - started < grace  # the polite cancel was enough
    assert reason.startswith("stopped by a second Ctrl-C"), (reason, handler)  # the loop abandons the running jobs (evolve/search/interrupts.py)
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
    assert result.exit_code == 2  # bad input: the address
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in result.output and "ray start --head" in result.output
    assert result.output.count("error") == 1
    with Store.open(url) as store:
        assert store.experiments() == []  # nothing was stored


def test_the_sandbox_applies_inside_a_ray_task(cluster, tmp_path):
    case = next(c for c in CASES if c.name == "opens a file with open()")
    baseline = ComponentSet.shipped("baseline")
    candidate = baseline.with_component(case.component, baseline.sources[case.component] + case.code)
    limits = WorkerLimits(setup_seconds=120, warmup_seconds=120, run_seconds=60, memory_bytes=6 << 30)
    attack = EvaluationJob(candidate_id=1, component_set=candidate, changed=[case.component],
                           harness=HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 1}),
                           score=ScoreSettings(target=0.2), cascade=CascadeSettings(runs=2, min_runs=2, limits=limits))
    executor = RayExecutor(RaySettings(address=cluster.address), "cpu", synthetic_dataset(400, 100, seed=5), NoStaticCheckRunner())
    try:
        evaluation = executor.submit(attack).result(timeout=600)
    finally:
        executor.shutdown()
    assert executor.history[0].node_id in {node.node_id for node in cluster.worker_nodes}
    stopped = evaluation.stages[-1]
    assert [s.stage for s in evaluation.stages][0] == "static" and stopped.stage != "static"  # the check was off
    assert evaluation.status in ("rejected", "failed") and not evaluation.samples
    assert "/etc/hostname" in stopped.message  # the worker's guard refused the open, on a Ray node


def test_a_driver_killed_mid_search_then_resumed_resubmits_what_was_in_flight(cluster, dataset, tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    starts = tmp_path / "starts"
    starts.mkdir()
    driver = (f"from tests.ray_support import stub_driver; "
              f"stub_driver({cluster.address!r}, {url!r}, {str(starts)!r}, seconds=60, seed_seconds=0.5)")
    process = subprocess.Popen([sys.executable, "-c", driver], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # kill once the seed is evaluated and a child's task has started
            time.sleep(0.3)
            if not (tmp_path / "evolve.db").exists():
                continue
            with Store.open(url) as store:
                found = store.find_experiment("killed")
                statuses = [c.status for c in store.candidates(found.id)] if found else []
            if "champion" in statuses and any(c != 1 for c, _ in markers(starts)):
                break
        else:
            pytest.fail("the search never reached a running child")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with Store.open(url) as store:
        experiment = store.experiment("killed")
        in_flight = [c.id for c in store.candidates(experiment.id) if c.status == "running"]
        assert in_flight
        assert store.requeue_unfinished(experiment.id) == len(in_flight)  # what `evolve start --resume` does first
    executor = RayExecutor(RaySettings(address=cluster.address), "cpu", dataset, StubRunner(seconds=0.5))
    try:
        deadline = time.monotonic() + 60  # Ray ends the dead driver's tasks: their CPUs come back
        while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ray.available_resources().get("CPU", 0) == 2
        reason = run_stub_search(executor, url, candidates=2, name="killed")
    finally:
        executor.shutdown()
    assert reason.startswith("all 2 proposals")
    assert set(in_flight) <= {r.candidate_id for r in executor.history if r.outcome == "done"}
    candidates, samples = finished_search(url, "killed")
    assert all(c.status in FINISHED for c in candidates)
    assert all(len(s) == 3 for s in samples.values())  # each evaluation stored once


def test_the_cli_resumes_on_the_cluster_it_is_given(cluster, tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    executor = RayExecutor(RaySettings(address=cluster.address), "cpu", synthetic_dataset(64, 16), StubRunner(seconds=0.2))
    try:
        run_stub_search(executor, url, candidates=1, name="done")
    finally:
        executor.shutdown()
    result = CliRunner().invoke(app, ["start", "--resume", "done", "--generations", "1", "--db", url,
                                      "--executor", "ray", "--ray-address", cluster.address])
    assert result.exit_code == 0, result.output
    assert "Ray cluster of 3 node(s), 0 GPU(s), 2 CPU(s): 2 evaluation(s) at once" in result.output
    assert "resuming done with its stored settings: 0 unfinished" in result.output
