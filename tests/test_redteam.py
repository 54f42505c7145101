"""The red-team suite: every malicious or broken component gets its verdict, and nothing breaks.

All on the CPU with small synthetic data and short time limits. Cases marked runtime_check run a
second time with the static check switched off, to show the runtime guards stop them too.
"""

import re

import pytest

import evaluator.cascade as cascade_module
from evaluator.cascade import CascadeSettings, evaluate_candidate
from evaluator.data import synthetic_dataset
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerLimits, scrubbed_environment
from evaluator.settings import HarnessSettings, ScoreSettings
from tests.redteam.carry_cases import CARRY_CASES, OUT_OF_BOUNDS_CASES
from tests.redteam.cases import CASES
from tests.redteam.state_cases import STATE_CASES, memorising_tta

LIMITS = WorkerLimits(setup_seconds=60, warmup_seconds=60, run_seconds=30, memory_bytes=6 << 30, output_bytes=8 << 20)
CASCADE = CascadeSettings(runs=2, min_runs=2, limits=LIMITS)
HARNESS = HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 1})
SCORE = ScoreSettings(target=0.2)


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(400, 100, seed=5)


def evaluate(baseline_set, case, dataset):
    source = baseline_set.sources[case.component] + case.code
    candidate = baseline_set.with_component(case.component, source)
    return evaluate_candidate(candidate, [case.component], dataset, HARNESS, SCORE, CASCADE)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malicious_component_gets_its_verdict(baseline_set, dataset, case):
    evaluation = evaluate(baseline_set, case, dataset)
    last = evaluation.stages[-1]
    assert (last.stage, last.status) == (case.stage, case.status), last.message
    assert evaluation.status in ("rejected", "failed") and evaluation.summary is None
    assert last.message  # the verdict says why


RUNTIME_CASES = [c for c in CASES if c.runtime_check]


@pytest.mark.parametrize("case", RUNTIME_CASES, ids=[c.name for c in RUNTIME_CASES])
def test_runtime_guards_stop_it_without_the_static_check(baseline_set, dataset, case, monkeypatch):
    monkeypatch.setattr(cascade_module, "check_source", lambda name, source: [])
    evaluation = evaluate(baseline_set, case, dataset)
    assert evaluation.status in ("rejected", "failed"), evaluation.stages
    assert evaluation.summary is None and not evaluation.samples


@pytest.mark.parametrize("case", STATE_CASES, ids=[c.name for c in STATE_CASES])
def test_forged_replies_fail_at_run_time(baseline_set, dataset, case, monkeypatch):
    monkeypatch.setattr(cascade_module, "check_source", lambda name, source: [])
    evaluation = evaluate(baseline_set, case, dataset)
    last = evaluation.stages[-1]
    assert (last.stage, last.status) == (case.stage, case.status), last.message
    assert re.search(case.reason, last.message), last.message
    assert evaluation.status == "failed" and evaluation.summary is None


def test_answers_memorised_by_test_position_score_at_chance(baseline_set, dataset, monkeypatch):
    """The parent permutes the test images afresh for every run, so a table by position is worth nothing."""
    monkeypatch.setattr(cascade_module, "check_source", lambda name, source: [])
    candidate = baseline_set.with_component("tta", baseline_set.sources["tta"] + memorising_tta(dataset.test_labels))
    evaluation = evaluate_candidate(candidate, ["tta"], dataset, HARNESS, SCORE, CASCADE)
    assert evaluation.status == "evaluated", evaluation.stages
    assert all(s.accuracy < 0.35 for s in evaluation.samples), [s.accuracy for s in evaluation.samples]  # 1.0 unpermuted


def test_the_evaluator_still_scores_the_baseline_afterwards(baseline_set):
    harness = HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 4})
    dataset = synthetic_dataset(1000, 300, seed=6)
    generous = CascadeSettings(runs=2, min_runs=2, limits=LIMITS.model_copy(update={"run_seconds": 300, "warmup_seconds": 300}))
    evaluation = evaluate_candidate(baseline_set, ["tta"], dataset, harness, SCORE, generous)
    assert evaluation.status == "evaluated", evaluation.stages
    assert [s.stage for s in evaluation.stages] == ["static", "contracts", "smoke", "timed"]
    assert len(evaluation.samples) == 2 and evaluation.summary is not None
    assert all(s.accuracy > 0.3 for s in evaluation.samples)  # chance is 0.1


def test_worker_gets_no_credentials_and_no_test_labels(monkeypatch, dataset):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    with SandboxedWorker(LIMITS, "cpu") as worker:
        env = scrubbed_environment(worker.workdir)
        assert not any("KEY" in k or "SECRET" in k for k in env)
    import numpy as np

    from evaluator.runs import run_data_file
    from evaluator.sandbox.run_data import map_run_data

    fd, layout = run_data_file(dataset, seed=3, test_order=np.arange(len(dataset.test_images)))
    arrays = map_run_data(fd, layout)
    assert sorted(arrays) == ["test_images", "train_images", "train_labels"]  # never the test labels
    assert len(arrays["train_labels"]) == len(dataset.train_labels)


def test_worker_runs_without_network_where_the_os_allows():
    import socket
    import subprocess
    import sys

    from evaluator.sandbox.sandboxed_worker import network_namespace_prefix

    prefix = network_namespace_prefix()
    if not prefix:
        pytest.skip("this OS refuses network namespaces; the audit hook's socket ban is the guard here")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        probe = f"import socket; print(socket.socket().connect_ex(('127.0.0.1', {port})))"
        outside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
        inside = subprocess.run([*prefix, sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert outside.stdout.strip() == "0"  # the probe can reach the server from the parent's namespace
    assert inside.stdout.strip() not in ("", "0"), inside.stderr  # but not from the worker's
    with SandboxedWorker(LIMITS, "cpu") as worker:
        assert worker.network_isolated


# --- state carried between runs (issue 25): effects on the scored samples, not verdicts ---------

SEEDED = HARNESS.model_copy(update={"seed": 11})  # the same run seeds for the shipped and the hostile set
CARRY_CASCADE = CascadeSettings(runs=2, min_runs=2, limits=LIMITS)


@pytest.fixture(scope="module")
def shipped_samples(baseline_set, dataset):
    evaluation = evaluate_candidate(baseline_set, ["tta"], dataset, SEEDED, SCORE, CARRY_CASCADE)
    assert evaluation.status == "evaluated", evaluation.stages
    return evaluation.samples


def hostile_set(baseline_set, case):
    return baseline_set.with_component(case.component, baseline_set.sources[case.component] + case.code)


def in_one_process(component_set, dataset, seeds):
    """Runs on `seeds` in one process, one after the other: where carried state pays off."""
    import time

    import torch

    from evaluator.harness import DeviceData, Speedrun
    from evaluator.training import training_order

    vars(torch.backends).pop("stash", None)  # as a fresh process would start: without an earlier test's stash
    speedrun = Speedrun(component_set, "cpu", False, SEEDED.effective_overrides())
    speedrun.warm_up(len(dataset.train_labels), len(dataset.test_labels), seed=0)
    data = DeviceData.from_dataset(dataset, torch.device("cpu"))
    outputs = []
    for seed in seeds:
        run = data.reordered(training_order(seed, len(dataset.train_labels)))
        start = time.perf_counter()
        out = speedrun.run(run.train_images, run.train_labels, run.test_images, seed)
        outputs.append((out.logits, time.perf_counter() - start))
    return outputs


@pytest.mark.parametrize("case", CARRY_CASES, ids=[c.name for c in CARRY_CASES])
def test_carried_state_pays_off_where_runs_share_a_process(baseline_set, dataset, case, tmp_path, monkeypatch):
    """The teeth of the next test: in one process, each attack changes its later runs."""
    hostile = hostile_set(baseline_set, case)
    for home in ("shared", "alone"):  # a folder of its own for each process, as each worker has
        (tmp_path / home).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "shared"))
    (_first, first_time), (second, second_time) = in_one_process(hostile, dataset, [5, 6])
    monkeypatch.setenv("HOME", str(tmp_path / "alone"))
    (alone, alone_time), = in_one_process(hostile, dataset, [6])  # run 6 as the first run of a process
    if case.pays_off_by == "time":
        # it skips all training: far faster, even when a parallel test slows one of the two runs (0.27 s against 0.45 s seen)
        assert second_time < 0.75 * alone_time, (first_time, second_time, alone_time)
    assert not torch_equal(second, alone)  # the carried state reached the second run


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.parametrize("case", CARRY_CASES, ids=[c.name for c in CARRY_CASES])
def test_carried_state_has_no_effect_on_scored_samples(baseline_set, dataset, case, shipped_samples, monkeypatch):
    """Every scored run is a fresh worker: the hostile set scores exactly as the shipped one."""
    monkeypatch.setattr(cascade_module, "check_source", lambda name, source: [])
    evaluation = evaluate_candidate(hostile_set(baseline_set, case), [case.component], dataset, SEEDED, SCORE, CARRY_CASCADE)
    assert evaluation.status == "evaluated", evaluation.stages
    assert [s.seed for s in evaluation.samples] == [s.seed for s in shipped_samples]
    for hostile, shipped in zip(evaluation.samples, shipped_samples):
        assert hostile.accuracy <= shipped.accuracy, (hostile, shipped)  # no higher accuracy
    fastest_shipped = min(s.time_seconds for s in shipped_samples)
    assert all(s.time_seconds > 0.6 * fastest_shipped for s in evaluation.samples), (evaluation.samples, shipped_samples)


@pytest.mark.parametrize("case", OUT_OF_BOUNDS_CASES, ids=[c.name for c in OUT_OF_BOUNDS_CASES])
def test_out_of_bounds_memory_gains_nothing(baseline_set, dataset, case, shipped_samples, monkeypatch):
    """Reading or corrupting the worker's own memory: at worst the worker crashes; the parent goes
    on, and a sample that is scored is no better than the shipped set's."""
    monkeypatch.setattr(cascade_module, "check_source", lambda name, source: [])
    evaluation = evaluate_candidate(hostile_set(baseline_set, case), [case.component], dataset, SEEDED, SCORE, CARRY_CASCADE)
    assert evaluation.status in ("evaluated", "failed", "rejected"), evaluation.stages
    for hostile, shipped in zip(evaluation.samples, shipped_samples):
        assert hostile.accuracy <= shipped.accuracy, (hostile, shipped)
