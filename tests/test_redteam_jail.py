"""The red team against the kernel jail: what the audit hook cannot see, the kernel refuses.

Every case runs through the real cascade with the static check switched off (it would refuse most
of them by name; here the jail itself is under test). Besides the verdict, each test checks that
nothing happened outside: no file written, the labels intact, no connection, no signal, no process
left behind.
"""

import os
import re
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import evaluator
import evaluator.cascade as cascade_module
from evaluator.cascade import CascadeSettings, evaluate_candidate
from evaluator.data import synthetic_dataset
from evaluator.sandbox import jail
from evaluator.sandbox.sandboxed_worker import WorkerLimits
from evaluator.settings import HarnessSettings, ScoreSettings
from tests.process_support import processes_with
from tests.redteam.jail_cases import JAIL_CASES, source

pytestmark = pytest.mark.skipif(
    jail.landlock_abi() < 1 or jail.namespaces() is None, reason="no kernel jail here: the evaluator refuses to run candidates"
)

LIMITS = WorkerLimits(setup_seconds=120, warmup_seconds=120, run_seconds=60, memory_bytes=6 << 30, output_bytes=8 << 20)
CASCADE = CascadeSettings(runs=2, min_runs=2, limits=LIMITS)
HARNESS = HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 1})
SCORE = ScoreSettings(target=0.2)


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    """The things a candidate must not reach, and a listening server and signal trap to see if it did."""
    root = tmp_path_factory.mktemp("arena")
    cache, outside = root / "cache", root / "outside"
    cache.mkdir()
    outside.mkdir()
    dataset = synthetic_dataset(300, 100, seed=7)
    secret = cache / "cifar10_uint8.npz"
    np.savez(secret, test_labels=dataset.test_labels)
    repo_root = Path(evaluator.__file__).resolve().parents[1]
    datafile = Path(tempfile.mkstemp(prefix="redteam-data-", suffix=".npz", dir=repo_root)[1])
    datafile.write_bytes(secret.read_bytes())
    foreign_dir = Path(tempfile.mkdtemp(prefix="evolve-worker-"))  # as another evaluation's folder
    foreign = foreign_dir / "work" / "model.pt"
    foreign.parent.mkdir()
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(foreign))
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    signals: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda number, frame: signals.append(number))
    marker = f"{4000 + os.getpid() % 1000}.{time.time_ns() % 10**6}"
    values = {
        "SECRET": str(secret), "DATAFILE": str(datafile), "OUTSIDE": str(outside), "FOREIGN": str(foreign),
        "PORT": str(server.getsockname()[1]), "PARENT": str(os.getpid()), "MARKER": marker, "PYTHON": sys.executable,
    }
    yield {"values": values, "dataset": dataset, "server": server, "signals": signals, "secret": secret, "outside": outside}
    signal.signal(signal.SIGUSR1, previous)
    server.close()
    datafile.unlink()
    foreign.unlink()
    foreign.parent.rmdir()
    foreign_dir.rmdir()


def fill(text: str, values: dict[str, str]) -> str:
    return re.sub("|".join(values), lambda m: values[m.group(0)], text)




@pytest.mark.parametrize("case", JAIL_CASES, ids=[c.name for c in JAIL_CASES])
def test_the_jail_stops_what_the_audit_hook_cannot_see(baseline_set, arena, case, monkeypatch):
    monkeypatch.setenv("EVOLVE_CACHE", str(arena["secret"].parent))  # the dataset cache the worker must not read
    monkeypatch.setattr(cascade_module, "check_source", lambda name, text: [])
    candidate = baseline_set.with_component("tta", baseline_set.sources["tta"] + fill(source(case), arena["values"]))
    evaluation = evaluate_candidate(candidate, ["tta"], arena["dataset"], HARNESS, SCORE, CASCADE)

    last = evaluation.stages[-1]
    assert (last.stage, last.status) == (case.stage, case.status), last.message
    if case.reason:
        assert evaluation.status in ("rejected", "failed") and evaluation.summary is None
        assert re.search(case.reason, last.message), last.message
    else:  # the construct failed quietly: the candidate is the baseline and is scored as such
        assert evaluation.status == "evaluated" and evaluation.summary is not None and len(evaluation.samples) == 2
    # nothing escaped
    assert not list(arena["outside"].iterdir())
    assert np.load(arena["secret"])["test_labels"].shape == (100,)
    with pytest.raises(TimeoutError):
        arena["server"].accept()
    assert not arena["signals"]
    deadline = time.monotonic() + 5
    while processes_with(arena["values"]["MARKER"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_with(arena["values"]["MARKER"]), "a process the candidate started outlived its worker"
