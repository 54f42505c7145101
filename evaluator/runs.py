"""Timed speedruns of one component set: the one place that assembles a timed run.

A timed run always goes through a sandboxed worker (evaluator/sandbox/worker.py), whether it is
`evolve baseline`, a candidate's timed stage, or a promotion's paired runs, so that all of them
are measured the same way and their numbers compare:

1. `start_speedrun_worker`: set up, warm up on random data (the smoke test; it compiles, and
   records what reset() gives under each scheduled run seed), then load the training data. No
   candidate code is called after that except inside a timed run.
2. `timed_sample`: the run's test images in a fresh order only the parent knows, then "go" with
   a fresh nonce and the parent's clock until the logits carrying that nonce have arrived; the
   worker's checks follow off the clock and must pass; the parent puts the logits back in the
   canonical order and computes the accuracy with the labels only it holds.

`iter_speedruns` runs the same timed function in this process, for trusted sets only (export
verification compares an exported script's logits with it bit for bit).
"""

import platform
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from components.interface import NUM_CLASSES
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset
from evaluator.harness import DeviceData, RunOutput, Speedrun, accuracy
from evaluator.results import RunSample
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure, WorkerLimits
from evaluator.settings import HarnessSettings
from evaluator.training import evaluation_seeds, run_seeds, training_order

__all__ = [
    "device_description", "finish_runs", "fresh_seed", "iter_speedruns", "logits_from", "run_seeds", "run_speedruns",
    "start_speedrun_worker", "start_speedrun_workers", "timed_sample", "worker_setup",
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


def start_speedrun_worker(
    worker: SandboxedWorker, component_set: ComponentSet, dataset: Dataset, harness: HarnessSettings,
    seeds: list[int], warm_up_seed: int | None = None,
) -> None:
    """Set up an entered worker, warm it up (the smoke test) and only then give it the training data.

    `seeds` are the seeds of every timed run this worker will make: the warm-up records what
    reset() gives under each, before any real data is in the worker.
    """
    start_speedrun_workers([(worker, component_set)], dataset, harness, seeds, warm_up_seed)


def start_speedrun_workers(
    workers: list[tuple[SandboxedWorker, ComponentSet]], dataset: Dataset, harness: HarnessSettings,
    seeds: list[int], warm_up_seed: int | None = None,
) -> None:
    """`start_speedrun_worker` for several workers at once: each step is sent to all before any answer is read.

    A promotion's two workers then set up, compile and warm up side by side (nothing is timed yet),
    instead of one after the other, and both wait the same short while before the first pair: the
    one set up first no longer starts the pairs with cold caches while the other has just loaded.
    """
    def step(headers: list[dict], expected: str, timeout: float) -> list[float]:
        started = time.perf_counter()
        for (worker, _), header in zip(workers, headers):
            worker.send(header)
        seconds = []
        for worker, _ in workers:  # each answer within its limit of the step's start
            worker.receive(expected, max(1.0, timeout - (time.perf_counter() - started)))
            seconds.append(time.perf_counter() - started)
        return seconds

    limits = workers[0][0].limits
    compile, overrides = harness.effective_compile(), harness.effective_overrides()
    step([worker_setup(s, harness.device, compile, overrides, w) for w, s in workers], "ready", limits.setup_seconds)
    warmups = [{
        "type": "warmup", "seed": fresh_seed() if warm_up_seed is None else warm_up_seed, "seeds": list(seeds),
        "num_train": len(dataset.train_labels), "num_test": len(dataset.test_images),
    } for _ in workers]
    for (worker, _), seconds in zip(workers, step(warmups, "warm", limits.warmup_seconds)):
        worker.warmup_seconds = seconds  # the timed runs' limit follows it (WorkerLimits.run_limit)
    step([{"type": "load", "data_path": str(w.write_data(dataset))} for w, _ in workers], "loaded", limits.setup_seconds)


def logits_from(answer: dict, payload: bytes, num_test: int) -> np.ndarray:
    """Parse the worker's logits without trusting it: exact size, finite float32 values."""
    expected = num_test * NUM_CLASSES * 4
    if answer.get("shape") != [num_test, NUM_CLASSES] or len(payload) != expected:
        raise WorkerFailure(f"the worker returned logits of shape {answer.get('shape')}, expected [{num_test}, {NUM_CLASSES}]", "error")
    logits = np.frombuffer(payload, dtype=np.float32).reshape(num_test, NUM_CLASSES)
    if not np.isfinite(logits).all():
        raise WorkerFailure("the worker returned NaN or infinite logits", "error")
    return logits


def timed_sample(worker: SandboxedWorker, run: int, seed: int, dataset: Dataset, clock_tolerance: float, flags: list[str]) -> RunSample:
    """One timed run: the parent's clock from "go" to the logits bound to it, then the worker's checks."""
    rng = np.random.default_rng(secrets.randbits(128))
    permutation = rng.permutation(len(dataset.test_images))  # never leaves the parent
    test_images = np.ascontiguousarray(dataset.test_images[permutation])
    limit = worker.limits.run_limit(worker.warmup_seconds)
    prepare = {"type": "prepare", "seed": seed, "shape": list(test_images.shape)}
    worker.request(prepare, "prepared", limit, payload=test_images.tobytes())
    nonce = secrets.token_hex(16)
    answer, payload, parent_seconds = worker.timed_request({"type": "go", "nonce": nonce}, "logits", limit, nonce)
    permuted = logits_from(answer, payload, len(dataset.test_labels))
    worker.receive("checked", limit, nonce)  # off the clock; a failed check fails the run
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


def finish_runs(worker: SandboxedWorker) -> None:
    """After the last timed run: the worker confirms, so a reply forged during the last run,
    which would otherwise go unread, arrives where "finished" is due and fails the runs."""
    worker.request({"type": "finish"}, "finished", worker.limits.run_limit(worker.warmup_seconds))


def run_speedruns(
    component_set: ComponentSet,
    dataset: Dataset,
    settings: HarnessSettings,
    runs: int,
    on_sample: Callable[[RunSample], None] = lambda sample: None,
    limits: WorkerLimits | None = None,
    clock_tolerance: float = 0.05,
) -> list[RunSample]:
    """Train the set `runs` times in a sandboxed worker, timed as a candidate's runs are
    (`evolve baseline`); raises WorkerFailure when a run fails."""
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA GPU: use --device cpu, or install a CUDA build of torch")
    warm_up_seed, seeds = evaluation_seeds(settings.seed, runs)
    samples: list[RunSample] = []
    flags: list[str] = []
    with SandboxedWorker(limits or WorkerLimits(), settings.device) as worker:
        start_speedrun_worker(worker, component_set, dataset, settings, seeds, warm_up_seed)
        for run, seed in enumerate(seeds):
            sample = timed_sample(worker, run, seed, dataset, clock_tolerance, flags)
            samples.append(sample)
            on_sample(sample)
        finish_runs(worker)
    return samples


def iter_speedruns(
    component_set: ComponentSet, dataset: Dataset, settings: HarnessSettings, runs: int
) -> Iterator[tuple[int, RunOutput]]:
    """In this process, for trusted sets: warm up, then yield (seed, output) of each run, with
    the same timed function and checks as the worker (the test images in canonical order)."""
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA GPU: use --device cpu, or install a CUDA build of torch")
    device = torch.device(settings.device)
    speedrun = Speedrun(component_set, settings.device, settings.effective_compile(), settings.effective_overrides())
    warm_up_seed, seeds = evaluation_seeds(settings.seed, runs)
    speedrun.warm_up(len(dataset.train_labels), len(dataset.test_labels), seed=warm_up_seed, seeds=seeds)
    data = DeviceData.from_dataset(dataset, device)  # the real data arrives after the warm-up
    speedrun.watch((data.train_images, data.train_labels, data.test_images))
    for seed in seeds:
        run_data = data.reordered(training_order(seed, len(dataset.train_labels)))
        yield seed, speedrun.run(run_data.train_images, run_data.train_labels, run_data.test_images, seed)
