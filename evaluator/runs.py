"""Repeated timed speedruns of one component set: warm-up once, then N runs on fresh seeds."""

import platform
import subprocess
from collections.abc import Callable, Iterator

import torch

from evaluator.component_set import ComponentSet
from evaluator.data import Dataset
from evaluator.harness import DeviceData, RunOutput, Speedrun, accuracy
from evaluator.results import RunSample
from evaluator.settings import HarnessSettings
from evaluator.training import evaluation_seeds, run_seeds, training_order

__all__ = ["device_description", "iter_speedruns", "run_seeds", "run_speedruns"]


def device_description(device: torch.device) -> tuple[str, str | None]:
    """The device's name and, on CUDA, the driver version (None when nvidia-smi is absent)."""
    if device.type != "cuda":
        return f"cpu ({platform.processor() or platform.machine()})", None
    name = torch.cuda.get_device_name(device)
    try:
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        driver = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout.split("\n")[0].strip()
    except (OSError, subprocess.SubprocessError):
        driver = None
    return name, driver


def iter_speedruns(
    component_set: ComponentSet, dataset: Dataset, settings: HarnessSettings, runs: int
) -> Iterator[tuple[int, RunOutput]]:
    """Build and warm up once, then yield (seed, output) of each timed run on a fresh training order."""
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA GPU: use --device cpu, or install a CUDA build of torch")
    device = torch.device(settings.device)
    speedrun = Speedrun(component_set, settings.device, settings.effective_compile(), settings.effective_overrides())
    data = DeviceData.from_dataset(dataset, device)
    warm_up_seed, seeds = evaluation_seeds(settings.seed, runs)
    speedrun.warm_up(len(dataset.train_labels), len(dataset.test_labels), seed=warm_up_seed, data=(data.train_images, data.train_labels, data.test_images))
    for seed in seeds:
        run_data = data.reordered(training_order(seed, len(dataset.train_labels)))
        yield seed, speedrun.run(run_data.train_images, run_data.train_labels, run_data.test_images, seed)


def run_speedruns(
    component_set: ComponentSet,
    dataset: Dataset,
    settings: HarnessSettings,
    runs: int,
    on_sample: Callable[[RunSample], None] = lambda sample: None,
) -> list[RunSample]:
    """Train the set `runs` times; the harness computes each accuracy from the logits."""
    device_name, driver = None, None
    samples = []
    for run, (seed, out) in enumerate(iter_speedruns(component_set, dataset, settings, runs)):
        if device_name is None:
            device_name, driver = device_description(torch.device(settings.device))
        sample = RunSample(
            run=run,
            seed=seed,
            accuracy=accuracy(out.logits, dataset.test_labels),
            time_seconds=out.timing.host_seconds,
            device_time_seconds=out.timing.device_seconds,
            device_name=device_name,
            torch_version=torch.__version__,
            driver_version=driver,
        )
        samples.append(sample)
        on_sample(sample)
    return samples
