"""The store under real process failure and contention: SIGKILL mid-run, several writers."""

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

from database_support import database_url, evaluation  # noqa: F401 (fixture)
from evolve.database import NewCandidate, Store

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3

# A search worker in miniature: claim, "train" (sleep), record, report; until nothing is pending.
WRITER = """
import sys, time
sys.path.insert(0, "tests")
from database_support import evaluation
from evolve.database import Store
url, experiment_id = sys.argv[1], int(sys.argv[2])
with Store.open(url) as store:
    while claimed := store.claim_pending(experiment_id, worker="killed"):
        time.sleep(0.03)
        store.record_evaluation(claimed[0].id, evaluation([0.94, 0.945, 0.942], [3.0, 3.1, 2.9]))
        print(claimed[0].id, flush=True)
"""


def seed_candidates(store: Store, count: int, name: str = "exp") -> int:
    experiment = store.create_experiment(name, ["tta"], {}, "baseline", "cuda", version="test")
    for i in range(count):
        store.add_candidate(NewCandidate(experiment_id=experiment.id, component="tta", source=f"x = {i}", origin="seed"))
    return experiment.id


def check_nothing_lost_or_duplicated(store: Store, experiment_id: int) -> list[int]:
    """Every evaluated candidate has exactly its own stages and samples; returns their ids."""
    evaluated = []
    for candidate in store.candidates(experiment_id):
        detail = store.detail(candidate.id)
        if candidate.status == "evaluated":
            assert len(detail.samples) == RUNS and len(detail.stages) == 4 and candidate.runs == RUNS
            evaluated.append(candidate.id)
        else:
            assert candidate.status in ("pending", "running") and not detail.samples and not detail.stages
    return evaluated


def test_sigkill_mid_run_keeps_finished_evaluations_and_requeues_the_rest(database_url):
    with Store.open(database_url) as store:
        experiment_id = seed_candidates(store, 12)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, database_url, str(experiment_id)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    reported = [int(writer.stdout.readline()) for _ in range(5)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    reported += [int(line) for line in writer.stdout.read().split()]
    assert writer.returncode == -signal.SIGKILL

    with Store.open(database_url) as store:
        evaluated = check_nothing_lost_or_duplicated(store, experiment_id)
        assert set(reported) <= set(evaluated) and len(evaluated) < 12
        running = len(store.candidates(experiment_id, status="running"))
        assert store.requeue_unfinished(experiment_id) == running
        assert len(store.candidates(experiment_id, status="pending")) == 12 - len(evaluated)

    # Resume: a fresh writer finishes the rest, and no candidate is evaluated twice.
    resumed = subprocess.run(
        [sys.executable, "-c", WRITER, database_url, str(experiment_id)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert set(map(int, resumed.stdout.split())).isdisjoint(evaluated)
    with Store.open(database_url) as store:
        assert len(check_nothing_lost_or_duplicated(store, experiment_id)) == 12


def contend(url: str, experiment_id: int, worker: str) -> tuple[list[int], list[int]]:
    """One of several processes: add the same new programs as the others, then evaluate what it claims."""
    added = []
    with Store.open(url) as store:
        for i in range(8):
            candidate, _ = store.add_candidate(
                NewCandidate(experiment_id=experiment_id, component="tta", source=f"shared = {i}", origin="mutator")
            )
            added.append(candidate.id)
        claimed = []
        while batch := store.claim_pending(experiment_id, limit=2, worker=worker):
            for candidate in batch:
                store.record_evaluation(candidate.id, evaluation([0.94, 0.945, 0.942], [3.0, 3.1, 2.9]))
                claimed.append(candidate.id)
    return added, claimed


def test_several_writer_processes_lose_and_duplicate_nothing(database_url):
    with Store.open(database_url) as store:
        experiment_id = seed_candidates(store, 16)
    workers = 3
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.starmap_async(contend, [(database_url, experiment_id, f"w{i}") for i in range(workers)]).get(timeout=240)
    added = [r[0] for r in results]
    claimed = [c for r in results for c in r[1]]
    assert all(ids == added[0] for ids in added), "every process got the same candidate for the same program"
    assert len(claimed) == len(set(claimed)) == 16 + 8, "each candidate claimed and evaluated exactly once"
    with Store.open(database_url) as store:
        assert len(check_nothing_lost_or_duplicated(store, experiment_id)) == 24
        by_worker = {c.claimed_by for c in store.candidates(experiment_id)}
        assert by_worker <= {f"w{i}" for i in range(workers)}


def open_and_list(url: str) -> list[str]:
    with Store.open(url) as store:
        return [e.name for e in store.experiments()]


def test_processes_creating_a_new_database_at_once_all_succeed(database_url):
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        assert pool.map_async(open_and_list, [database_url] * 3).get(timeout=120) == [[], [], []]
