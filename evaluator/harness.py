"""The trusted training harness: one speedrun, timed, from a loaded component set.

The harness owns the data, the loop (loss, backward, step counting), the clock and the accuracy.
Components are called only through the interface in components/README.md. The network is built
and compiled once per evaluation and reset at the start of every run, as airbench does, so that
compilation is paid in the untimed warm-up and never inside a timed run. The loop itself lives
in evaluator/training.py, which exported scripts copy verbatim; the clock and the checks stay here.

A run is timed from the network's `reset()` to the test logits (`Speedrun.timed_run`), so every
candidate call of a run is on the clock. Its checks come after the clock stops
(`Speedrun.check_run`) and a failed check fails the run: prediction must not have changed the
network; the network right after `reset()` must equal what `reset()` gave under the same seed
in the warm-up, before any real data was in the process (so a network cannot skip its reset and
keep trained weights); and nothing may be carried over (evaluator/sandbox/carryover.py).
"""

import hashlib
import types
from dataclasses import dataclass

import numpy as np
import torch

from components.interface import HARNESS_HYPERPARAMS, NUM_CLASSES
from evaluator import training
from evaluator.component_set import ComponentError, ComponentSet, load_components
from evaluator.data import Dataset
from evaluator.sandbox.carryover import CarryoverError, CarryoverGuard
from evaluator.timing import Stopwatch, Timing
from evaluator.training import HarnessError, reset_torch_flags

__all__ = ["DeviceData", "HarnessError", "RunOutput", "Speedrun", "accuracy", "checked_logits", "resolve_hyperparams"]


@dataclass
class RunOutput:
    logits: torch.Tensor  # float32 (num_test, 10), on the CPU
    timing: Timing


def resolve_hyperparams(modules: dict[str, types.ModuleType], overrides: dict[str, object]) -> dict:
    hp = dict(modules["hyperparams"].HYPERPARAMS)
    missing = [k for k in HARNESS_HYPERPARAMS if k not in hp]
    if missing:
        raise ComponentError(f"HYPERPARAMS lacks {', '.join(missing)}, which the harness needs")
    unknown = [k for k in overrides if k not in hp]
    if unknown:
        raise ComponentError(f"cannot override unknown hyperparameters {', '.join(unknown)}; known: {', '.join(hp)}")
    hp.update(overrides)
    return hp


def model_tensors(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every parameter and buffer, found through torch's own dicts, never through methods a
    component class could override (the checks run off the clock, where candidate code must not)."""
    found, stack, seen = [], [("", model)], set()
    while stack:
        prefix, module = stack.pop()
        if id(module) in seen or not isinstance(module, torch.nn.Module):
            continue
        seen.add(id(module))
        inner = object.__getattribute__(module, "__dict__")
        for kind in ("_parameters", "_buffers"):
            found += [(prefix + name, t) for name, t in dict.items(inner.get(kind, {})) if isinstance(t, torch.Tensor)]
        stack += [(f"{prefix}{name}.", m) for name, m in reversed(list(dict.items(inner.get("_modules", {}))))]
    return found


def state_digest(entries: list[tuple[str, bool, torch.Tensor]]) -> list[tuple[str, bool, str, tuple[int, ...], str]]:
    """Name, requires_grad, dtype, shape and sha256 of the bytes of each tensor (off the clock)."""
    digest = []
    for name, requires_grad, t in entries:
        data = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        digest.append((name, bool(requires_grad), str(t.dtype), tuple(t.shape), hashlib.sha256(data.tobytes()).hexdigest()))
    return digest


class Speedrun:
    """A component set ready to train on one device: loaded, built, compiled and warmed up."""

    def __init__(
        self,
        component_set: ComponentSet,
        device: str = "cpu",
        compile: bool = False,
        hyperparam_overrides: dict[str, object] | None = None,
    ):
        self.device = torch.device(device)
        reset_torch_flags(self.device)
        self.modules = load_components(component_set)
        self.hp = resolve_hyperparams(self.modules, hyperparam_overrides or {})
        self.model, self.orthogonalize = training.build_model(self.modules, self.hp, self.device, compile)
        self.carryover: CarryoverGuard | None = None
        self.after_reset: dict[int, list] = {}  # seed -> state_digest of the network after reset()
        self._reset_snapshot: list[tuple[str, bool, torch.Tensor]] = []
        self._trained_snapshot: list[tuple[str, int, torch.Tensor, torch.Tensor]] = []

    def warm_up(self, num_train: int, num_test: int, seed: int = 0, seeds: list[int] | tuple[int, ...] = ()) -> None:
        """Untimed, before any real data is in the process: one run on random images and labels
        (compiles, autotunes, allocates), then the network after `reset()` under each of the
        evaluation's run seeds, the reference every timed run's reset is checked against."""
        images, labels, test_images = training.random_data(num_train, num_test, seed, self.device)
        out = self.timed_run(images, labels, test_images, seed)
        self.check_run(out, len(test_images), seed=None)
        for s in seeds:
            self.record_reset(s)

    def record_reset(self, seed: int) -> None:
        """What `reset()` gives under `seed`: the reference for the timed run on that seed."""
        reset_torch_flags(self.device)
        torch.manual_seed(seed)
        self.model.reset()
        self.after_reset[seed] = state_digest([(n, t.requires_grad, t) for n, t in model_tensors(self.model)])

    def watch(self, data: tuple[torch.Tensor, ...] = ()) -> None:
        """Fingerprint every place a run could leave state (evaluator/sandbox/carryover.py), the
        harness's `data` tensors included; every later run must leave it unchanged."""
        self.carryover = CarryoverGuard(self.model, self.modules, data)

    def run(self, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor, seed: int) -> RunOutput:
        """One timed speedrun on data already on the device, then its checks; for trusted
        in-process use (the reset reference is taken here when the warm-up did not)."""
        if seed not in self.after_reset:
            self.record_reset(seed)
        out = self.timed_run(train_images, train_labels, test_images, seed)
        return RunOutput(logits=self.check_run(out, len(test_images), seed), timing=out.timing)

    def timed_run(self, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor, seed: int) -> RunOutput:
        """The clock around `training.speedrun`: reset, train, predict. The logits it returns are
        as prediction made them; `check_run` validates them and the run, off the clock."""
        stopwatch = Stopwatch(self.device)
        stopwatch.start()
        logits = training.speedrun(
            self.modules, self.model, self.hp, self.orthogonalize, seed, self.device, train_images, train_labels, test_images,
            after_reset=self._snapshot_after_reset, after_training=self._snapshot_after_training,
        )
        timing = stopwatch.stop()
        return RunOutput(logits=logits, timing=timing)

    def check_run(self, out: RunOutput, num_test: int, seed: int | None) -> torch.Tensor:
        """After the clock: the logits (float32, on the CPU), and the run's checks; raises
        HarnessError when one fails. `seed` None skips the reset check (the warm-up's run)."""
        logits = checked_logits(out.logits, num_test)
        self.check_state(seed)
        return logits

    def check_state(self, seed: int | None, inputs: tuple[tuple[torch.Tensor, int], ...] = ()) -> None:
        """`inputs`: the run's own data tensors with their version counters before it; the run
        may neither write into them nor set attributes on them."""
        for tensor, version in inputs:
            if tensor._version != version or vars(tensor):
                raise HarnessError("a run wrote into or marked the harness's data tensors: components may only read their inputs")
        self._check_prediction_left_model_unchanged()
        if seed is not None:
            self._check_reset_was_fresh(seed)
        if self.carryover is not None:
            try:
                self.carryover.check()
            except CarryoverError as e:
                raise HarnessError(str(e)) from None

    # On the clock, and cheap: device copies (no synchronization) and version counters.
    def _snapshot_after_reset(self) -> None:
        self._reset_snapshot = [(name, t.requires_grad, t.detach().clone()) for name, t in model_tensors(self.model)]

    def _snapshot_after_training(self) -> None:
        self._trained_snapshot = [(name, t._version, t, t.detach().clone()) for name, t in model_tensors(self.model)]

    def _check_prediction_left_model_unchanged(self) -> None:
        now = {name: t for name, t in model_tensors(self.model)}
        for name, version, tensor, copy in self._trained_snapshot:
            if now.get(name) is not tensor or tensor._version != version or not same_values(tensor.detach(), copy):
                raise HarnessError(
                    f"prediction changed the model ({name}): test-time augmentation may not train or update "
                    "batch-norm statistics on test images"
                )
        if set(now) != {name for name, *_ in self._trained_snapshot}:
            raise HarnessError("prediction changed the model's parameters or buffers: test-time augmentation may not")

    def _check_reset_was_fresh(self, seed: int) -> None:
        expected = self.after_reset.get(seed)
        if expected is None:
            raise HarnessError(f"no reference of reset() for seed {seed}: the harness schedules every run's seed in the warm-up")
        got = state_digest(self._reset_snapshot)
        differ = [e[0] for e, g in zip(expected, got) if e != g]
        if len(expected) != len(got):
            differ.append("(the set of parameters and buffers)")
        if differ:
            shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
            raise HarnessError(
                f"after reset() the network differs from a fresh one under the same seed ({shown}): reset() must "
                "restore every parameter, buffer and requires_grad flag from the seed alone, never keep trained weights"
            )


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality (NaN equals NaN), off the clock."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(
        a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8)
    )


def checked_logits(logits: object, num_test: int) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise HarnessError(f"prediction returned {type(logits).__name__}, expected a tensor of logits")
    if tuple(logits.shape) != (num_test, NUM_CLASSES):
        raise HarnessError(f"prediction returned shape {tuple(logits.shape)}, expected ({num_test}, {NUM_CLASSES})")
    if not logits.is_floating_point():
        raise HarnessError(f"prediction returned dtype {logits.dtype}, expected floating-point logits")
    logits = logits.detach().float().cpu()
    if not torch.isfinite(logits).all():
        raise HarnessError("prediction returned NaN or infinite logits")
    return logits


def accuracy(logits: torch.Tensor, labels: np.ndarray) -> float:
    """Fraction of correct top-1 predictions; only the harness ever holds the labels."""
    return float((logits.argmax(1).numpy() == labels).mean())


@dataclass
class DeviceData:
    """Training images and labels and test images on the device; never the test labels."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor

    @classmethod
    def from_dataset(cls, dataset: Dataset, device: torch.device) -> "DeviceData":
        return cls(
            train_images=torch.from_numpy(dataset.train_images).to(device),
            train_labels=torch.from_numpy(dataset.train_labels).to(device),
            test_images=torch.from_numpy(dataset.test_images).to(device),
        )

    def reordered(self, permutation: np.ndarray) -> "DeviceData":
        """The training set in a new order: each run gets a fresh one, chosen by the harness."""
        return DeviceData(*training.reordered(self.train_images, self.train_labels, permutation), self.test_images)
