"""The trusted training harness: one speedrun, timed, from a loaded component set.

The harness owns the data, the loop (loss, backward, step counting), the clock and the accuracy.
Components are called only through the interface in components/README.md. The network is built
and compiled once per process and reset at the start of the run, as airbench does, so that
compilation is paid in the untimed warm-up on random data and never inside a timed run. The loop
itself lives in evaluator/training.py, which exported scripts copy verbatim; the clock stays here.

A run is timed from the network's `reset()` to the test logits (`Speedrun.timed_run`), so every
candidate call of a run is on the clock, and so is its one check: prediction must not have
changed the network (test-time augmentation may not train on test images). A sandboxed worker
makes exactly one timed run and is then killed (evaluator/runs.py), so nothing a run leaves in
its process can reach another scored run; no check after the logits is needed, and none runs.
"""

import types
from dataclasses import dataclass

import numpy as np
import torch

from components.interface import HARNESS_HYPERPARAMS, NUM_CLASSES
from evaluator import training
from evaluator.component_set import ComponentError, ComponentSet, load_components
from evaluator.data import Dataset
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
    component class could override (an overridden `named_parameters` could hide a changed one)."""
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
        self._trained_snapshot: list[tuple[str, int, torch.Tensor, torch.Tensor]] = []

    def warm_up(self, num_train: int, num_test: int, seed: int = 0) -> None:
        """Untimed, before any real data is in the process: one run on random images and labels
        (compiles, autotunes, allocates; the smoke test of a candidate)."""
        images, labels, test_images = training.random_data(num_train, num_test, seed, self.device)
        checked_logits(self.predictions(images, labels, test_images, seed), len(test_images))

    def run(self, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor, seed: int) -> RunOutput:
        """One timed speedrun on data already on the device; for trusted in-process use."""
        out = self.timed_run(train_images, train_labels, test_images, seed)
        return RunOutput(logits=checked_logits(out.logits, len(test_images)), timing=out.timing)

    def timed_run(self, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor, seed: int) -> RunOutput:
        """The in-process clock (evaluator/timing.py) around `predictions`: reset, train, predict, and
        the run's check, with the data already on the device. It is not the scored time, which
        the parent's clock takes around a worker's whole run (evaluator/runs.py `timed_sample`)."""
        stopwatch = Stopwatch(self.device)
        stopwatch.start()
        logits = self.predictions(train_images, train_labels, test_images, seed)
        return RunOutput(logits=logits, timing=stopwatch.stop())

    def predictions(self, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor, seed: int) -> object:
        """`training.speedrun`, then the check that prediction left the network as training did,
        all on the caller's clock; the logits as prediction made them (`checked_logits` validates)."""
        logits = training.speedrun(
            self.modules, self.model, self.hp, self.orthogonalize, seed, self.device, train_images, train_labels, test_images,
            after_training=self._snapshot_after_training,
        )
        self._check_prediction_left_model_unchanged()
        return logits

    # On the clock, and cheap: device copies (no synchronization) and version counters.
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
