"""CPU contract tests of each component, runnable against any component set.

The test suite runs them on the shipped sets; the evaluator's cascade runs them on a candidate
before it may use a GPU. Each check raises ContractFailure with a message that says what the
component did and what the interface expects. They run at the 'tiny' scale, in seconds.
"""

import copy
import math
import types
from collections.abc import Callable

import torch
import torch.nn.functional as F

from components.interface import COMPONENT_NAMES, HARNESS_HYPERPARAMS, NUM_CLASSES
from evaluator.component_set import ComponentSet, load_components
from evaluator.harness import resolve_hyperparams
from evaluator.settings import SCALES

CPU = torch.device("cpu")
SINGULAR_VALUE_BAND = (0.3, 1.7)


class ContractFailure(AssertionError):
    """A component that breaks its documented contract."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractFailure(message)


def synthetic_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    return images, labels


def check_hyperparams(modules: dict[str, types.ModuleType], hp: dict) -> None:
    raw = modules["hyperparams"].HYPERPARAMS
    require(isinstance(raw, dict), "HYPERPARAMS must be a dict of name -> number or bool")
    for key, value in raw.items():
        require(isinstance(key, str), f"HYPERPARAMS key {key!r} must be a string")
        require(isinstance(value, (int, float, bool)), f"HYPERPARAMS[{key!r}] = {value!r} must be a number or bool")
    for key in HARNESS_HYPERPARAMS:
        require(key in raw, f"HYPERPARAMS must define {key!r}, which the harness reads")
    require(raw["batch_size"] >= 1 and raw["epochs"] > 0, "batch_size must be >= 1 and epochs > 0")


def check_newton_schulz(modules: dict[str, types.ModuleType], hp: dict) -> None:
    orthogonalize = modules["newton_schulz"].orthogonalize
    g = torch.Generator().manual_seed(0)
    low, high = SINGULAR_VALUE_BAND
    for shape in [(64, 144), (144, 64), (4, 32, 48)]:
        G = torch.randn(*shape, generator=g)
        X = orthogonalize(G, hp.get("newton_schulz_steps", 3))
        require(isinstance(X, torch.Tensor) and tuple(X.shape) == shape, f"orthogonalize{shape} returned shape {getattr(X, 'shape', None)}, expected {shape}")
        s = torch.linalg.svdvals(X.float())
        require(
            bool(torch.isfinite(s).all()) and low <= s.min().item() and s.max().item() <= high,
            f"orthogonalize{shape}: singular values in [{s.min().item():.3f}, {s.max().item():.3f}], "
            f"expected inside [{low}, {high}] (close to orthogonal)",
        )


def tiny_network(modules: dict[str, types.ModuleType], hp: dict, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = modules["architecture"].build_network(dict(hp), CPU)
    model.reset()
    return model


def training_loss(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, hp: dict) -> torch.Tensor:
    return F.cross_entropy(model(inputs), labels, label_smoothing=hp["label_smoothing"], reduction="sum")


def check_optimizer(modules: dict[str, types.ModuleType], hp: dict) -> None:
    """A few steps lower the loss on a fixed batch; the state round-trips through state_dict."""
    images, labels = synthetic_batch(64, seed=1)
    inputs = modules["augmentation"].preprocess(images, dict(hp))
    model = tiny_network(modules, hp)
    model.init_whiten(inputs)
    model.train()
    total_steps = 6
    build = modules["optimizer"].build_optimizer
    optimizer = build(model, dict(hp), total_steps, 2, modules["newton_schulz"].orthogonalize)
    for name in ("step", "zero_grad", "state_dict", "load_state_dict"):
        require(callable(getattr(optimizer, name, None)), f"the optimizer returned by build_optimizer must have {name}()")

    def train_step(model, optimizer, step):
        training_loss(model, inputs, labels, hp).backward()
        optimizer.step(step)
        optimizer.zero_grad()

    with torch.no_grad():
        loss_before = training_loss(model, inputs, labels, hp).item()
    for step in range(3):
        train_step(model, optimizer, step)
    # Round trip: a copy of the model with a fresh optimizer loaded from the state continues identically.
    twin = copy.deepcopy(model)
    twin_optimizer = build(twin, dict(hp), total_steps, 2, modules["newton_schulz"].orthogonalize)
    twin_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    for step in range(3, total_steps):
        train_step(model, optimizer, step)
        train_step(twin, twin_optimizer, step)
    with torch.no_grad():
        loss_after = training_loss(model, inputs, labels, hp).item()
    require(math.isfinite(loss_after) and loss_after < loss_before, f"{total_steps} optimizer steps on one batch did not lower the loss ({loss_before:.3f} -> {loss_after:.3f})")
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        require(torch.allclose(p, q, atol=1e-5), f"optimizer state did not round-trip through state_dict(): parameter {name} diverged")


def check_architecture(modules: dict[str, types.ModuleType], hp: dict) -> None:
    """Output shape, and reset() really re-initializes (same seed -> same weights)."""
    model = tiny_network(modules, hp, seed=2)
    images, _ = synthetic_batch(16, seed=3)
    inputs = modules["augmentation"].preprocess(images, dict(hp))
    model.init_whiten(inputs)
    model.eval()
    with torch.no_grad():
        out = model(inputs)
    require(tuple(out.shape) == (16, NUM_CLASSES), f"network output has shape {tuple(out.shape)}, expected (16, {NUM_CLASSES})")
    torch.manual_seed(4)
    model.reset()
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = [p.requires_grad for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
            p.requires_grad_(False)
        for b in model.buffers():
            if b.is_floating_point():
                b.add_(1.0)
    torch.manual_seed(4)
    model.reset()
    for name, value in model.state_dict().items():
        require(torch.equal(value, fresh[name]), f"reset() did not re-initialize {name}: it must restore a fresh initialization")
    require(
        [p.requires_grad for p in model.parameters()] == trainable,
        "reset() must restore which parameters train (requires_grad), e.g. after the optimizer froze one",
    )


def check_augmentation(modules: dict[str, types.ModuleType], hp: dict) -> None:
    """Every training image once per epoch; with flip on, each image's orientation alternates.

    Image i carries label i (so it can be followed through any pixel transform); its left half
    is brighter than its right half, so the sign of left minus right tells its orientation.
    """
    n = 4 * hp["batch_size"]
    pixels = torch.full((n, 32, 32, 3), 60, dtype=torch.uint8)
    pixels[:, :, :16] = 200
    labels = torch.arange(n)
    inputs = modules["augmentation"].preprocess(pixels, dict(hp))
    stream = modules["augmentation"].BatchStream(inputs, labels, dict(hp))
    require(len(stream) == n // hp["batch_size"], f"len(BatchStream) is {len(stream)}, expected {n // hp['batch_size']} full batches")
    orientations = []
    for epoch in range(3):
        seen, flipped = [], torch.zeros(n, dtype=torch.bool)
        for batch_inputs, batch_labels in stream:
            require(len(batch_inputs) == len(batch_labels), "a batch must have one label per image")
            seen.append(batch_labels)
            brightness = batch_inputs.float().mean(dim=(1, 2))  # per column
            flipped[batch_labels] = brightness[:, 0] < brightness[:, -1]
        seen = torch.cat(seen)
        require(
            len(seen) == n and torch.equal(seen.sort().values, labels),
            f"epoch {epoch}: the stream must yield every training image exactly once",
        )
        orientations.append(flipped)
    if hp.get("flip", False):
        for epoch in (1, 2):
            require(
                bool((orientations[epoch] != orientations[epoch - 1]).all()),
                f"alternating flip: every image must change orientation between epochs {epoch - 1} and {epoch}",
            )


def check_tta(modules: dict[str, types.ModuleType], hp: dict) -> None:
    model = tiny_network(modules, hp, seed=5)
    n = hp["tta_batch_size"] + 7 if "tta_batch_size" in hp else 37
    images, _ = synthetic_batch(n, seed=6)
    inputs = modules["augmentation"].preprocess(images, dict(hp))
    model.init_whiten(inputs)
    model.eval()
    with torch.no_grad():
        logits = modules["tta"].predict(model, inputs, dict(hp))
    require(isinstance(logits, torch.Tensor), "predict() must return a tensor of logits")
    require(tuple(logits.shape) == (n, NUM_CLASSES), f"predict() returned shape {tuple(logits.shape)} for {n} images, expected ({n}, {NUM_CLASSES})")
    require(bool(torch.isfinite(logits).all()), "predict() returned NaN or infinite logits")


CONTRACTS: dict[str, Callable[[dict[str, types.ModuleType], dict], None]] = {
    "hyperparams": check_hyperparams,
    "newton_schulz": check_newton_schulz,
    "optimizer": check_optimizer,
    "architecture": check_architecture,
    "augmentation": check_augmentation,
    "tta": check_tta,
}
assert set(CONTRACTS) == set(COMPONENT_NAMES)


def run_contract(component_set: ComponentSet, name: str) -> None:
    """Run one component's contract at the tiny scale; raises ContractFailure or ComponentError."""
    modules = load_components(component_set)
    check_hyperparams(modules, {})
    defined = modules["hyperparams"].HYPERPARAMS
    hp = resolve_hyperparams(modules, {k: v for k, v in SCALES["tiny"].items() if k in defined})
    CONTRACTS[name](modules, hp)
