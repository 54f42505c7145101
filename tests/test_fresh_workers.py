"""One timed run per worker (issue 25): the real data arrives only with the clock running, and the
worker is gone once its logits are in."""

import os
import signal
import subprocess
import sys
import time

import pytest

import evaluator.runs as runs_module
from evaluator.cascade import evaluate_candidate
from evaluator.data import synthetic_dataset
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, child_pids
from tests.test_redteam import CASCADE, HARNESS, SCORE


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(400, 100, seed=5)


def descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        children = child_pids(stack.pop())
        found += children
        stack += children
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_no_real_data_reaches_a_worker_before_its_clock_starts(baseline_set, dataset, monkeypatch):
    events: list[tuple] = []
    real_send, real_descriptor = SandboxedWorker._send, SandboxedWorker.send_descriptor
    monkeypatch.setattr(SandboxedWorker, "_send", lambda w, header, payload=b"": (
        events.append((str(w.workdir), header["type"], len(payload))), real_send(w, header, payload))[1])
    monkeypatch.setattr(SandboxedWorker, "send_descriptor", lambda w, fd: (
        events.append((str(w.workdir), "descriptor", os.fstat(fd).st_size)), real_descriptor(w, fd))[1])
    evaluation = evaluate_candidate(baseline_set, ["tta"], dataset, HARNESS, SCORE, CASCADE)
    assert evaluation.status == "evaluated", evaluation.stages
    by_worker: dict[str, list[tuple]] = {}
    for worker, *event in events:
        by_worker.setdefault(worker, []).append(tuple(event))
    timed = [e for e in by_worker.values() if ("go" in [kind for kind, _ in e])]
    assert len(timed) == 2  # one worker per timed run
    for worker_events in timed:
        kinds = [kind for kind, _ in worker_events]
        assert kinds == ["setup", "warmup", "go", "descriptor"], kinds  # one run, then nothing
        assert all(size == 0 for kind, size in worker_events if kind not in ("descriptor", "setup"))  # no data payload
        assert worker_events[-1][1] > dataset.train_images.nbytes  # the data travels with the clock running


def test_the_worker_is_gone_once_its_logits_are_in(baseline_set, dataset, monkeypatch):
    """Killed, with every process of its namespace, before the parent even computes the accuracy
    (that processes a worker starts, setsid or not, die with it: tests/test_jail_channels.py)."""
    checked = []
    real_timed_sample = runs_module.timed_sample

    def checking_timed_sample(worker, *args, **kwargs):
        sample = real_timed_sample(worker, *args, **kwargs)
        assert worker.process.poll() is not None
        lingering = [pid for pid in descendants(os.getpid()) if alive(pid) and "evaluator.sandbox.jail" in cmdline(pid)]
        assert not lingering, lingering
        checked.append(sample)
        return sample

    monkeypatch.setattr(runs_module, "timed_sample", checking_timed_sample)
    evaluation = evaluate_candidate(baseline_set, ["tta"], dataset, HARNESS, SCORE, CASCADE)
    assert evaluation.status == "evaluated", evaluation.stages
    assert len(checked) == 2


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_worker_dies_with_the_search_that_started_it(tmp_path):
    """A search killed with SIGKILL (no cleanup runs) leaves no worker behind to train on, even one that
    is busy and would not notice its closed pipes for minutes."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import time\n"
        "from evaluator.component_set import ComponentSet\n"
        "from evaluator.runs import worker_setup\n"
        "from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerLimits\n"
        "with SandboxedWorker(WorkerLimits(warmup_seconds=600), 'cpu') as worker:\n"
        "    worker.request(worker_setup(ComponentSet.shipped('baseline'), 'cpu', False, {}, worker), 'ready', 300)\n"
        "    worker.send({'type': 'warmup', 'seed': 0, 'num_train': 50000, 'num_test': 10000})  # busy: it reads no pipe\n"
        "    print(worker.process.pid, flush=True)\n"
        "    time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        worker_pid = int(parent.stdout.readline())
        inside = descendants(worker_pid)
        time.sleep(1.0)  # well into the warm-up
        assert alive(worker_pid) and inside
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in [worker_pid, *inside]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in [worker_pid, *inside])
    finally:
        parent.kill()
