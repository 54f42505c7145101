"""Timed speedruns of one component set: the one place that assembles a timed run.

A scored run always goes through a sandboxed worker (evaluator/sandbox/worker.py), whether it is
`evolve baseline`, a candidate's timed stage, or a promotion's paired runs, so that all of them
are measured the same way and their numbers compare. Every scored sample comes from a fresh
worker process that makes exactly one timed run on real data and is then killed
(`fresh_run`):

1. `warm_up_worker`: set up, then one untimed run on random data (the smoke test; it compiles).
   No real image or label is in the process yet.
2. `timed_sample`: the parent builds the run's data (the training set in the run's order, the
   test images in a fresh order only it knows; never the test labels) as a sealed memory file
   (evaluator/sandbox/run_data.py), starts its clock, hands the file over with "go" and a fresh
   nonce, and stops the clock when the logits carrying that nonce have arrived. It kills the
   worker at once: nothing the worker does or says afterwards is heard, and no state of this run
   can reach another scored run, whatever native code the candidate ran (README, "Threat
   model"). The parent puts the logits back in the canonical order and computes the accuracy
   with the labels only it holds.

`scored_runs` is the one loop over scored samples: `evolve baseline` (`run_speedruns`), every
candidate's screening (evaluator/cascade.py) and the promotion's pairs (evaluator/promotion.py)
all run it, with the seeds of evaluator/training.py `evaluation_seeds`. `iter_speedruns` runs the
same timed function on the same seeds in this process, for trusted sets only (export verification
compares an exported script's logits with it bit for bit).

The clocks: a sample's `time_seconds` is the parent's clock above, the one that scores.
`device_time_seconds` is the worker's CUDA-event time of its own part of the run (from the
receipt of "go" to the logits on its host: not the handover of the data nor the return of the
logits), a check on the parent's clock only. The in-process clock (evaluator/harness.py
`Speedrun.timed_run`, the exported script's) starts with the data already on the device.
"""

import os
import platform
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from components.interface import NUM_CLASSES
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset
from evaluator.harness import DeviceData, RunOutput, Speedrun, accuracy
from evaluator.results import ProfileSummary, RunSample
from evaluator.sandbox.run_data import RunDataLayout, sealed_run_data
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure, WorkerLimits
from evaluator.settings import HarnessSettings
from evaluator.training import evaluation_seeds, training_order

__all__ = [
    "device_description", "fresh_profile", "fresh_run", "fresh_seed", "iter_speedruns", "logits_from", "run_speedruns",
    "scored_runs", "side_order", "timed_sample", "warm_up_worker", "worker_setup",
]


def fresh_seed() -> int:
    return secrets.randbelow(2**31 - 1)


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


def worker_setup(component_set: ComponentSet, device: str, compile: bool, overrides: dict, worker: SandboxedWorker) -> dict:
    return {
        "type": "setup",
        "sources": component_set.sources,
        "device": device,
        "compile": compile,
        "hyperparams": overrides,
        "threads": worker.limits.threads,
        "gpu_memory_fraction": worker.limits.gpu_memory_fraction,
        "writable_dirs": [str(worker.workdir), worker.env_cache_dir],
    }


def warm_up_worker(worker: SandboxedWorker, component_set: ComponentSet, dataset: Dataset, harness: HarnessSettings,
                   warm_up_seed: int | None = None) -> None:
    """Set up an entered worker and warm it up on random data of the dataset's size (the smoke test)."""
    limits = worker.limits
    worker.request(worker_setup(component_set, harness.device, harness.effective_compile(), harness.effective_overrides(), worker),
                   "ready", limits.setup_seconds)
    warmup = {"type": "warmup", "seed": fresh_seed() if warm_up_seed is None else warm_up_seed,
              "num_train": len(dataset.train_labels), "num_test": len(dataset.test_images)}
    started = time.perf_counter()
    worker.request(warmup, "warm", limits.warmup_seconds)
    # The parent's clock of the warm-up, request to answer (never a score): the timed run's limit
    # follows it (WorkerLimits.run_limit). The worker's own "seconds" in its answer is not read.
    worker.warmup_seconds = time.perf_counter() - started


def logits_from(answer: dict, payload: bytes, num_test: int) -> np.ndarray:
    """Parse the worker's logits without trusting it: exact size, finite float32 values."""
    expected = num_test * NUM_CLASSES * 4
    if answer.get("shape") != [num_test, NUM_CLASSES] or len(payload) != expected:
        raise WorkerFailure(f"the worker returned logits of shape {answer.get('shape')}, expected [{num_test}, {NUM_CLASSES}]", "error")
    logits = np.frombuffer(payload, dtype=np.float32).reshape(num_test, NUM_CLASSES)
    if not np.isfinite(logits).all():
        raise WorkerFailure("the worker returned NaN or infinite logits", "error")
    return logits


def run_data_file(dataset: Dataset, seed: int, test_order: np.ndarray) -> tuple[int, RunDataLayout]:
    """The run's sealed data: the training set in the run's order, the test images in `test_order`."""
    order = training_order(seed, len(dataset.train_labels))
    return sealed_run_data(dataset.train_images[order], dataset.train_labels[order], dataset.test_images[test_order])


def timed_sample(worker: SandboxedWorker, run: int, seed: int, dataset: Dataset, clock_tolerance: float, flags: list[str]) -> RunSample:
    """The worker's one timed run: the parent's clock from handing over the data to the logits
    bound to this run; then the worker is killed, before anything else it might say is read."""
    rng = np.random.default_rng(secrets.randbits(128))
    permutation = rng.permutation(len(dataset.test_images))  # never leaves the parent
    fd, layout = run_data_file(dataset, seed, permutation)
    limit = worker.limits.run_limit(worker.warmup_seconds)
    nonce = secrets.token_hex(16)
    try:
        go = {"type": "go", "nonce": nonce, "seed": seed, "layout": layout.model_dump()}
        answer, payload, parent_seconds = worker.timed_request(go, "logits", limit, nonce, descriptor=fd)
    finally:
        os.close(fd)
        worker.kill()  # its work is done: the parent stops listening, and no process of it lives on
    permuted = logits_from(answer, payload, len(dataset.test_labels))
    logits = np.empty_like(permuted)
    logits[permutation] = permuted  # row i of the worker's answer is test image permutation[i]
    device_seconds = answer.get("device_seconds")
    device_seconds = float(device_seconds) if isinstance(device_seconds, (int, float)) else None
    if device_seconds is not None and abs(device_seconds - parent_seconds) > clock_tolerance * parent_seconds:
        flags.append(f"run {run}: device-event time {device_seconds:.4f} s differs from the parent's {parent_seconds:.4f} s")
    device = torch.device(worker.device)
    device_name, driver = device_description(device) if device.type == "cpu" or torch.cuda.is_available() else (worker.device, None)
    return RunSample(
        run=run,
        seed=seed,
        accuracy=accuracy(torch.from_numpy(logits), dataset.test_labels),
        time_seconds=parent_seconds,
        device_time_seconds=device_seconds,
        device_name=device_name,
        torch_version=torch.__version__,
        driver_version=driver,
    )


def fresh_run(
    component_set: ComponentSet, dataset: Dataset, harness: HarnessSettings, limits: WorkerLimits, run: int, seed: int,
    flags: list[str], clock_tolerance: float = 0.05, gpu: int | None = None, warm_up_seed: int | None = None,
    on_warm: Callable[[], None] = lambda: None,
) -> RunSample:
    """One scored sample: a fresh worker, warmed up on random data, one timed run, killed.

    `on_warm` is called between the warm-up and the timed run (the cascade's smoke verdict)."""
    with SandboxedWorker(limits, harness.device, gpu) as worker:
        warm_up_worker(worker, component_set, dataset, harness, warm_up_seed)
        on_warm()
        return timed_sample(worker, run, seed, dataset, clock_tolerance, flags)


def fresh_profile(component_set: ComponentSet, dataset: Dataset, harness: HarnessSettings, limits: WorkerLimits,
                  gpu: int | None = None) -> ProfileSummary:
    """An untimed, profiled run in a worker of its own (it informs the next proposal, never a score)."""
    with SandboxedWorker(limits, harness.device, gpu) as worker:
        warm_up_worker(worker, component_set, dataset, harness)
        seed = fresh_seed()
        fd, layout = run_data_file(dataset, seed, np.arange(len(dataset.test_images)))
        try:
            worker.send({"type": "profile", "seed": seed, "layout": layout.model_dump()})
            worker.send_descriptor(fd)
            answer, _ = worker.receive("profile", limits.warmup_seconds)
        finally:
            os.close(fd)
        return ProfileSummary.model_validate(answer["summary"])


def side_order(sides: Sequence[str], first: int) -> tuple[str, ...]:
    """The order of one seed's sides: `first` (drawn by a fair die for every seed) goes first."""
    return tuple(sides[first:]) + tuple(sides[:first])


def scored_runs(
    sides: Mapping[str, ComponentSet], dataset: Dataset, harness: HarnessSettings, limits: WorkerLimits, runs: int,
    flags: list[str], *, clock_tolerance: float = 0.05, gpu: int | None = None, promotion_attempt: int | None = None,
    on_seed: Callable[[int], None] = lambda run: None, on_warm: Callable[[int, str], None] = lambda run, side: None,
    first: int = 0,
) -> Iterator[tuple[str, RunSample]]:
    """The one loop over scored samples: yields (side, sample) for seeds `first` to `runs` - 1, every side on each
    (`first` > 0: the rest of a series whose first seeds ran elsewhere, a promotion's pairs spread over slots).

    The seeds are `evaluation_seeds(harness.seed, runs, promotion_attempt)`: every worker warms up
    on the warm-up seed, and seed i is run i of every side. One side (a baseline, a screening) runs
    its seeds in turn; several sides (a promotion's pairs) each run on every seed, in an order
    drawn afresh for each seed (`side_order`). Every sample is a `fresh_run`, whose worker is dead
    before the next one starts, so a caller may stop iterating at any sample (the screening's early
    stop) and nothing is left running. `on_seed(run)` is called before a seed's first worker starts,
    `on_warm(run, side)` between a worker's warm-up and its timed run; a WorkerFailure propagates.
    """
    warm_up_seed, seeds = evaluation_seeds(harness.seed, runs, promotion_attempt)
    names = tuple(sides)
    for run, seed in enumerate(seeds[first:], start=first):
        on_seed(run)
        order = names if len(names) == 1 else side_order(names, secrets.randbelow(len(names)))
        for side in order:
            sample = fresh_run(sides[side], dataset, harness, limits, run, seed, flags, clock_tolerance, gpu, warm_up_seed,
                               on_warm=lambda run=run, side=side: on_warm(run, side))
            yield side, sample


def require_device(settings: HarnessSettings) -> None:
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA GPU: use --device cpu, or install a CUDA build of torch")


def run_speedruns(
    component_set: ComponentSet,
    dataset: Dataset,
    settings: HarnessSettings,
    runs: int,
    on_sample: Callable[[RunSample], None] = lambda sample: None,
    limits: WorkerLimits | None = None,
    clock_tolerance: float = 0.05,
) -> list[RunSample]:
    """Train the set `runs` times, a fresh sandboxed worker for each, timed as a candidate's runs
    are (`evolve baseline`); raises WorkerFailure when a run fails."""
    require_device(settings)
    samples: list[RunSample] = []
    for _, sample in scored_runs({"set": component_set}, dataset, settings, limits or WorkerLimits(), runs, [],
                                 clock_tolerance=clock_tolerance):
        samples.append(sample)
        on_sample(sample)
    return samples


def iter_speedruns(
    component_set: ComponentSet, dataset: Dataset, settings: HarnessSettings, runs: int
) -> Iterator[tuple[int, RunOutput]]:
    """In this process, for trusted sets: warm up, then yield (seed, output) of each run, on the
    seeds `scored_runs` uses, with the same timed function and checks as the worker (the test
    images in canonical order; `output.timing` is the in-process clock, module docstring)."""
    require_device(settings)
    device = torch.device(settings.device)
    speedrun = Speedrun(component_set, settings.device, settings.effective_compile(), settings.effective_overrides())
    warm_up_seed, seeds = evaluation_seeds(settings.seed, runs)
    speedrun.warm_up(len(dataset.train_labels), len(dataset.test_labels), seed=warm_up_seed)
    data = DeviceData.from_dataset(dataset, device)  # the real data arrives after the warm-up
    for seed in seeds:
        run_data = data.reordered(training_order(seed, len(dataset.train_labels)))
        yield seed, speedrun.run(run_data.train_images, run_data.train_labels, run_data.test_images, seed)
