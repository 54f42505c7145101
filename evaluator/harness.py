"""The trusted training harness: one speedrun, timed, from a loaded component set.

The harness owns the data, the loop (loss, backward, step counting), the clock and the accuracy.
Components are called only through the interface in components/README.md. The network is built
and compiled once per evaluation and reset before every run, as airbench does, so that
compilation is paid in the untimed warm-up and never inside a timed run.
"""

import math
import types
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from components.interface import HARNESS_HYPERPARAMS, NUM_CLASSES
from evaluator.carryover import CarryoverError, CarryoverGuard
from evaluator.component_set import ComponentError, ComponentSet, load_components
from evaluator.data import Dataset
from evaluator.timing import Stopwatch, Timing
from evaluator.torch_flags import reset_torch_flags


class HarnessError(RuntimeError):
    """A run that cannot produce valid test logits."""


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
        self.model = self.modules["architecture"].build_network(dict(self.hp), self.device)
        orthogonalize = self.modules["newton_schulz"].orthogonalize
        if compile:
            self.model.compile(mode="max-autotune")
            orthogonalize = torch.compile(orthogonalize)
        self.orthogonalize = orthogonalize
        self.carryover: CarryoverGuard | None = None

    def warm_up(self, num_train: int, num_test: int, seed: int = 0, data: tuple[torch.Tensor, ...] = ()) -> None:
        """One untimed run on random images and labels: compiles, autotunes, allocates.

        Afterwards the model, the component modules and the harness's `data` tensors are
        fingerprinted; every later run must leave that fingerprint unchanged (evaluator/carryover.py).
        """
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (num_train, 32, 32, 3), dtype=torch.uint8, generator=g).to(self.device)
        labels = torch.randint(0, NUM_CLASSES, (num_train,), generator=g).to(self.device)
        test = torch.randint(0, 256, (num_test, 32, 32, 3), dtype=torch.uint8, generator=g).to(self.device)
        self.run(images, labels, test, seed)
        self.carryover = CarryoverGuard(self.model, self.modules, data)

    def run(self, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor, seed: int) -> RunOutput:
        """One timed speedrun on data already on the device; returns the test logits."""
        self.prepare(seed)
        return self.timed_run(train_images, train_labels, test_images)

    def prepare(self, seed: int) -> None:
        """Untimed: global flags back to the harness's values, the run's seed, a fresh network."""
        reset_torch_flags(self.device)
        torch.manual_seed(seed)
        self.model.reset()

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
        hp, model = self.hp, self.model
        augmentation, tta = self.modules["augmentation"], self.modules["tta"]

        train_inputs = augmentation.preprocess(train_images, dict(hp))
        model.init_whiten(train_inputs)
        batches = augmentation.BatchStream(train_inputs, train_labels, dict(hp))
        steps_per_epoch = len(batches)
        if steps_per_epoch < 1:
            raise HarnessError(f"batch_size {hp['batch_size']} exceeds the {len(train_labels)} training images")
        total_steps = math.ceil(hp["epochs"] * steps_per_epoch)
        optimizer = self.modules["optimizer"].build_optimizer(model, dict(hp), total_steps, steps_per_epoch, self.orthogonalize)

        model.train()
        step = 0
        while step < total_steps:
            for inputs, labels in batches:
                outputs = model(inputs)
                loss = F.cross_entropy(outputs, labels, label_smoothing=hp["label_smoothing"], reduction="sum")
                loss.backward()
                optimizer.step(step)
                optimizer.zero_grad()
                step += 1
                if step >= total_steps:
                    break

        model.eval()
        self._before_prediction = self._snapshot_model()
        with torch.no_grad():
            test_inputs = augmentation.preprocess(test_images, dict(hp))
            return tta.predict(model, test_inputs, dict(hp))


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
        index = torch.from_numpy(permutation).to(self.train_images.device)
        return DeviceData(self.train_images[index], self.train_labels[index], self.test_images)
