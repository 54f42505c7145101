"""Ctrl-C on a real search: the first lets the running job go on, the second kills the whole worker
tree at once and exits 130, with nothing left running and nothing stored lost."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from test_loop import FAST, FINISHED, data_file, no_llm_environment  # noqa: F401  (fixtures)

from evolve.database import Store
from evolve.search.interrupts import Interrupts, kill_process_tree


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def command_line(process: psutil.Process) -> str:
    """A process that ends while the tree is read (a finished worker left as a zombie) has no command line."""
    try:
        return " ".join(process.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""


def test_two_ctrl_c_kill_every_worker_and_exit_130(tmp_path, data_file):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    command = [sys.executable, "-m", "evolve", "start", "--component", "hyperparams", "--device", "cpu", "--data", str(data_file),
               "--db", url, *FAST, "--generations", "2", "--name", "interrupted"]
    log = open(tmp_path / "log.txt", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    parent = psutil.Process(process.pid)
    try:
        def child_running():  # the seed is champion and a child is being trained by a worker process
            if not (tmp_path / "evolve.db").exists():
                return False
            with Store.open(url) as store:
                found = store.find_experiment("interrupted")
                statuses = [c.status for c in store.candidates(found.id)] if found else []
            # the worker starts as `python -m evaluator.sandbox.jail ...`, which enters the jail and runs it
            workers = [p for p in parent.children(recursive=True) if "evaluator.sandbox.jail" in command_line(p)]
            return workers if "champion" in statuses and "running" in statuses else False

        workers = wait_for(child_running, 300, "a child candidate in a worker")
        tree = parent.children(recursive=True)
        process.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert process.poll() is None, "the first Ctrl-C lets the running job finish"
        assert any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers), "the first Ctrl-C kills nothing"
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    output = (tmp_path / "log.txt").read_text()
    assert code == 130, output
    assert "stopping: finishing" in output and "second Ctrl-C" in output and "Traceback" not in output, output
    alive = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running: {[command_line(p) for p in alive]}"
    with Store.open(url) as store:
        experiment = store.experiment("interrupted")
        candidates = store.candidates(experiment.id)
        assert experiment.status == "stopped"
        assert not [c for c in candidates if c.status == "running"], "killed jobs go back to pending"
        assert "pending" in {c.status for c in candidates} and candidates[0].status in FINISHED
        assert store.samples(candidates[0].id, ["timed"]), "what was stored stays"


def test_kill_process_tree_reaches_grandchildren_in_their_own_groups():
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        wait_for(lambda: psutil.Process(child.pid).children(), 30, "the grandchild")
        tree = [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]
        assert kill_process_tree() >= 2
        child.wait(timeout=10)
        assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        if child.poll() is None:
            child.kill()


def test_interrupts_count_presses_and_restore_the_handler():
    before = signal.getsignal(signal.SIGINT)
    with Interrupts() as interrupts:
        assert not interrupts.stop_requested
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert interrupts.stop_requested and not interrupts.abandon.is_set()
    assert signal.getsignal(signal.SIGINT) is before
