"""The trusted training harness: one speedrun, timed, from a loaded component set.

The harness owns the data, the loop (loss, backward, step counting), the clock and the accuracy.
Components are called only through the interface in components/README.md. The network is built
and compiled once per evaluation and reset before every run, as airbench does, so that
compilation is paid in the untimed warm-up and never inside a timed run. The loop itself lives in
evaluator/training.py, which exported scripts copy verbatim; the clock and the checks stay here.
"""

import math
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

    def warm_up(self, num_train: int, num_test: int, seed: int = 0, data: tuple[torch.Tensor, ...] = ()) -> None:
        """One untimed run on random images and labels: compiles, autotunes, allocates.

        Afterwards the model, the component modules and the harness's `data` tensors are
        fingerprinted; every later run must leave that fingerprint unchanged (evaluator/sandbox/carryover.py).
        """
        self.run(*training.random_data(num_train, num_test, seed, self.device), seed)
        self.carryover = CarryoverGuard(self.model, self.modules, data)

    def run(self, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor, seed: int) -> RunOutput:
        """One timed speedrun on data already on the device; returns the test logits."""
        self.prepare(seed)
        return self.timed_run(train_images, train_labels, test_images)

    def prepare(self, seed: int) -> None:
        """Untimed: global flags back to the harness's values, the run's seed, a fresh network."""
        training.prepare_run(self.model, seed, self.device)

    def timed_run(self, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor) -> RunOutput:
        stopwatch = Stopwatch(self.device)
        stopwatch.start()
        logits = self._train_and_predict(train_images, train_labels, test_images)
        timing = stopwatch.stop()
        self._check_prediction_left_model_unchanged()
        self._check_nothing_carried_over()
        return RunOutput(logits=checked_logits(logits, len(test_images)), timing=timing)

    def _snapshot_model(self) -> list[tuple[str, int, float]]:
        """Version counter and checksum of every parameter and buffer (cheap: no copies)."""
        tensors = [*self.model.named_parameters(), *self.model.named_buffers()]
        sums = torch.stack([t.detach().double().sum() for _, t in tensors]).tolist() if tensors else []
        return [(name, t._version, s) for (name, t), s in zip(tensors, sums)]

    def _check_prediction_left_model_unchanged(self) -> None:
        after = self._snapshot_model()
        for (name, version, checksum), (_, version_after, checksum_after) in zip(self._before_prediction, after):
            same_values = checksum == checksum_after or (math.isnan(checksum) and math.isnan(checksum_after))
            if version != version_after or not same_values:
                raise HarnessError(
                    f"prediction changed the model ({name}): test-time augmentation may not train or update "
                    "batch-norm statistics on test images"
                )

    def _check_nothing_carried_over(self) -> None:
        if self.carryover is not None:
            try:
                self.carryover.check()
            except CarryoverError as e:
                raise HarnessError(str(e)) from None

    def _train_and_predict(self, train_images, train_labels, test_images) -> torch.Tensor:
        training.train(self.modules, self.model, self.hp, self.orthogonalize, train_images, train_labels)
        self._before_prediction = self._snapshot_model()
        return training.predict(self.modules, self.model, self.hp, test_images)


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
