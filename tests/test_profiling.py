"""Profiler feedback: phase shares and top kernels of one extra run, in process and through the cascade."""

import pytest
import torch

from evaluator.cascade import CascadeSettings, evaluate_candidate
from evaluator.data import synthetic_dataset
from evaluator.harness import Speedrun
from evaluator.profiling import PHASES, profile_run
from evaluator.sandbox.sandboxed_worker import WorkerLimits
from evaluator.settings import HarnessSettings, ScoreSettings

HARNESS = HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 1})


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(400, 100, seed=4)


def test_profile_summary_covers_every_phase(baseline_set, dataset):
    speedrun = Speedrun(baseline_set, "cpu", False, HARNESS.effective_overrides())
    speedrun.warm_up(400, 100)
    images, labels, test = (torch.from_numpy(a) for a in (dataset.train_images, dataset.train_labels, dataset.test_images))
    summary = profile_run(speedrun, images, labels, test, seed=1)
    assert tuple(summary.phases) == PHASES
    assert sum(summary.phases.values()) == pytest.approx(1.0)
    assert all(summary.phases[p] > 0 for p in ("forward", "backward", "optimizer", "prediction"))
    assert summary.top_kernels and summary.top_kernels[0].share >= summary.top_kernels[-1].share
    assert any("convolution" in k.name for k in summary.top_kernels)
    assert "Phases:" in summary.as_text() and "Top kernels" in summary.as_text()
    assert speedrun.modules["tta"].__name__  # the real modules are back after profiling


def test_the_cascade_profiles_on_request(baseline_set, dataset):
    limits = WorkerLimits(setup_seconds=60, warmup_seconds=120, run_seconds=60, memory_bytes=6 << 30)
    cascade = CascadeSettings(runs=2, min_runs=2, limits=limits, profile=True)
    evaluation = evaluate_candidate(baseline_set, ["tta"], dataset, HARNESS, ScoreSettings(target=0.1), cascade)
    assert evaluation.status == "evaluated", evaluation.stages
    assert [s.stage for s in evaluation.stages][-1] == "profile" and evaluation.stages[-1].status == "passed"
    assert evaluation.profile is not None and evaluation.profile.kernel_seconds > 0
