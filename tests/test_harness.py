"""The harness end to end on the CPU with synthetic data, and its guards."""

import numpy as np
import pytest
import torch

from evaluator.component_set import ComponentError, ComponentSet, load_module
from evaluator.data import synthetic_dataset
from evaluator.harness import HarnessError, Speedrun, checked_logits
from evaluator.runs import iter_speedruns, run_speedruns
from evaluator.sandbox.sandboxed_worker import WorkerLimits
from evaluator.settings import HarnessSettings
from evaluator.torch_flags import current_torch_flags, reset_torch_flags


def test_speedruns_learn_synthetic_data_well_above_chance(baseline_set):
    dataset = synthetic_dataset(1000, 300, seed=1)
    settings = HarnessSettings(device="cpu", data="synthetic", seed=7, hyperparams={"epochs": 4})
    outputs = list(iter_speedruns(baseline_set, dataset, settings, runs=2))
    assert len({seed for seed, _ in outputs}) == 2
    for _, out in outputs:
        assert float((out.logits.argmax(1).numpy() == dataset.test_labels).mean()) > 0.5  # chance is 0.1
        assert out.timing.host_seconds > 0 and out.timing.device_seconds is None


def test_baseline_through_the_worker_matches_the_in_process_harness(baseline_set):
    """`evolve baseline` runs in a sandboxed worker, timed as candidates are; its seeds and
    accuracies equal the in-process harness's (the parent un-permutes the test logits)."""
    dataset = synthetic_dataset(400, 100, seed=2)
    settings = HarnessSettings(device="cpu", data="synthetic", seed=11, hyperparams={"epochs": 1})
    samples = run_speedruns(baseline_set, dataset, settings, runs=2, limits=WorkerLimits(run_seconds=300, warmup_seconds=300))
    expected = list(iter_speedruns(baseline_set, dataset, settings, runs=2))
    assert [s.run for s in samples] == [0, 1]
    assert [s.seed for s in samples] == [seed for seed, _ in expected]
    for sample, (_, out) in zip(samples, expected):
        assert sample.accuracy == float((out.logits.argmax(1).numpy() == dataset.test_labels).mean())
        assert sample.time_seconds > 0 and sample.device_time_seconds is None
        assert sample.torch_version == torch.__version__


def test_global_flags_are_reset_between_runs(baseline_set):
    source = baseline_set.sources["tta"].replace(
        "def predict(model, inputs, hp):", "def predict(model, inputs, hp):\n    torch.set_default_dtype(torch.float64)\n"
    )
    source = source.replace(
        "def predict(model: nn.Module, inputs: torch.Tensor, hp: dict) -> torch.Tensor:",
        "def predict(model: nn.Module, inputs: torch.Tensor, hp: dict) -> torch.Tensor:\n"
        "    torch.backends.cudnn.deterministic = True\n    torch.set_float32_matmul_precision('medium')",
    )
    reset_torch_flags(torch.device("cpu"))
    clean = current_torch_flags()
    speedrun = Speedrun(baseline_set.with_component("tta", source), "cpu", hyperparam_overrides={"epochs": 1, "width1": 8, "width2": 8, "width3": 8, "batch_size": 100})
    images = torch.randint(0, 256, (200, 32, 32, 3), dtype=torch.uint8)
    labels = torch.randint(0, 10, (200,))
    speedrun.run(images, labels, images[:50], seed=0)
    assert current_torch_flags() != clean
    reset_torch_flags(torch.device("cpu"))
    assert current_torch_flags() == clean


def test_logits_are_checked():
    with pytest.raises(HarnessError, match="shape"):
        checked_logits(torch.zeros(9, 10), 10)
    with pytest.raises(HarnessError, match="NaN"):
        checked_logits(torch.full((10, 10), float("nan")), 10)
    with pytest.raises(HarnessError, match="floating-point"):
        checked_logits(torch.zeros(10, 10, dtype=torch.long), 10)
    with pytest.raises(HarnessError, match="expected a tensor"):
        checked_logits(np.zeros((10, 10)), 10)


def test_batch_larger_than_training_set_is_a_clear_error(baseline_set):
    speedrun = Speedrun(baseline_set, "cpu", hyperparam_overrides={"batch_size": 500, "width1": 8, "width2": 8, "width3": 8})
    images = torch.randint(0, 256, (100, 32, 32, 3), dtype=torch.uint8)
    with pytest.raises(HarnessError, match="exceeds the 100 training images"):
        speedrun.run(images, torch.zeros(100, dtype=torch.long), images, seed=0)


def test_component_errors_name_the_problem(baseline_set):
    with pytest.raises(ComponentError, match="does not parse: line 1"):
        load_module("tta", "def predict(:\n")
    with pytest.raises(ComponentError, match="must define predict"):
        load_module("tta", "x = 1\n")
    with pytest.raises(ComponentError, match=r"must take \(model, inputs, hp\)"):
        load_module("tta", "def predict(inputs, model, hp):\n    return inputs\n")
    with pytest.raises(ComponentError, match="failed while loading: ModuleNotFoundError"):
        load_module("tta", "import not_a_module\n")
    with pytest.raises(ValueError, match="missing"):
        ComponentSet(sources={"tta": ""})
    with pytest.raises(ComponentError, match="unknown hyperparameters nope"):
        Speedrun(baseline_set, "cpu", hyperparam_overrides={"nope": 1})
