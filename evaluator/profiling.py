"""Profiler feedback: where one run of a candidate spends its time, for the prompts to use.

On request the evaluator makes one extra, untimed run under torch.profiler and condenses it into
a short summary: the most expensive kernels (CUDA kernels on a GPU, aten operators on the CPU)
and the time share of each phase of the speedrun. The harness marks the phases it can see from
outside the components (preprocessing and batches, optimizer steps, prediction) with profiler
ranges; backward is what the autograd engine runs; forward is the rest of training (the forward
pass and the loss). The profiled run is never one of the timed runs: profiling slows it down.
"""

import types
from collections.abc import Callable, Iterator

import torch
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile

from evaluator import training
from evaluator.results import KernelShare, ProfileSummary

PHASES = ("data and augmentation", "forward", "backward", "optimizer", "prediction")
RANGES = {"evolve:data": "data and augmentation", "evolve:optimizer": "optimizer", "evolve:prediction": "prediction"}
BACKWARD_PREFIX = "autograd::engine::evaluate_function"


def ranged(name: str, function: Callable) -> Callable:
    def call(*args, **kwargs):
        with record_function(name):
            return function(*args, **kwargs)

    return call


class RangedBatches:
    """A BatchStream whose batch production is marked as the data phase."""

    def __init__(self, stream):
        self.stream = stream

    def __len__(self) -> int:
        return len(self.stream)

    def __iter__(self) -> Iterator:
        iterator = iter(self.stream)
        while True:
            with record_function("evolve:data"):
                try:
                    batch = next(iterator)
                except StopIteration:
                    return
            yield batch


class RangedOptimizer:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.step = ranged("evolve:optimizer", optimizer.step)
        self.zero_grad = ranged("evolve:optimizer", optimizer.zero_grad)

    def __getattr__(self, name: str):
        return getattr(self.optimizer, name)


def instrumented(modules: dict[str, types.ModuleType]) -> dict[str, object]:
    """The component modules as the harness sees them, with the phases marked."""
    augmentation, optimizer, tta = modules["augmentation"], modules["optimizer"], modules["tta"]
    return {
        **modules,
        "augmentation": types.SimpleNamespace(
            preprocess=ranged("evolve:data", augmentation.preprocess),
            BatchStream=lambda *args: RangedBatches(augmentation.BatchStream(*args)),
        ),
        "optimizer": types.SimpleNamespace(build_optimizer=lambda *args: RangedOptimizer(optimizer.build_optimizer(*args))),
        "tta": types.SimpleNamespace(predict=ranged("evolve:prediction", tta.predict)),
    }


def phase_of(event) -> str:
    """The phase of an operator: the nearest marked range above it, else backward or forward."""
    node = event
    while node is not None:
        if node.name in RANGES:
            return RANGES[node.name]
        if node.name.startswith(BACKWARD_PREFIX):
            return "backward"
        node = node.cpu_parent
    return "forward"


def summarize_profile(prof: profile, device: torch.device, top: int = 8) -> ProfileSummary:
    on_gpu = device.type == "cuda"

    def self_time(event) -> float:  # microseconds
        return event.self_device_time_total if on_gpu else event.self_cpu_time_total

    phase_time = dict.fromkeys(PHASES, 0.0)
    for event in prof.events():
        if event.name in RANGES or event.name.startswith(BACKWARD_PREFIX):
            continue  # ranges themselves: their operators are counted
        phase_time[phase_of(event)] += self_time(event)
    total = sum(phase_time.values())
    kernels = sorted(
        (e for e in prof.key_averages() if e.key not in RANGES and not e.key.startswith(BACKWARD_PREFIX)),
        key=self_time,
        reverse=True,
    )[:top]
    return ProfileSummary(
        device=str(device),
        kernel_seconds=total / 1e6,
        phases={name: (t / total if total else 0.0) for name, t in phase_time.items()},
        top_kernels=[
            KernelShare(name=k.key[:120], seconds=self_time(k) / 1e6, share=self_time(k) / total if total else 0.0, calls=k.count)
            for k in kernels
        ],
    )


def profile_run(speedrun, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor, seed: int) -> ProfileSummary:
    """One untimed, profiled run of a warmed-up Speedrun (evaluator.harness), in a worker of its
    own that makes no timed run (evaluator/runs.py `fresh_profile`): it informs prompts, never a score."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if speedrun.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        training.speedrun(
            instrumented(speedrun.modules), speedrun.model, speedrun.hp, speedrun.orthogonalize, seed, speedrun.device,
            train_images, train_labels, test_images,
        )
        if speedrun.device.type == "cuda":
            torch.cuda.synchronize(speedrun.device)
    return summarize_profile(prof, speedrun.device)
