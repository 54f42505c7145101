"""Behavioural fingerprints: what each component does on fixed probe inputs, hashed.

A child that changes one component of its parent's set, where that component's outputs on the
probe inputs are bit-for-bit its parent's, cannot train differently: a mutated default that the
caller always overrides, a HYPERPARAMS key the scale overrides (batch_size, the widths or
whiten_init_images on the CPU's tiny scale), dead code. The cascade measures every component's
fingerprint in its sandboxed CPU stage (the same worker as the contract tests, with the
hyperparameter overrides of the real runs) and skips such a child before any device time, with
the reason stored. Each probe seeds every generator first, so equal code gives equal bytes.

What is probed, with the hyperparameters in force:
- hyperparams: the resolved values (the set's HYPERPARAMS with the scale's and the run's overrides);
- newton_schulz: orthogonalize() of fixed matrices;
- architecture: a seeded network's logits on probe images, in eval and in train mode;
- optimizer: a seeded network's parameters after three steps of the built optimizer;
- augmentation: preprocess() of the probe images and two epochs of the BatchStream;
- tta: predict() of a seeded network on the probe images.

Trust: the fingerprints come from candidate code, so they are used only to skip; a candidate
that lies about its own gains nothing but its skipping. Two equal fingerprints from different
worker processes need equal thread counts (the cascade's workers share one setting); a
difference from anything else only means the child is evaluated, never wrongly skipped.
"""

import hashlib
import json
import random
import types

import numpy as np
import torch
import torch.nn.functional as F

from components.interface import COMPONENT_NAMES, NUM_CLASSES
from evaluator.component_set import ComponentSet, load_components
from evaluator.harness import resolve_hyperparams

CPU = torch.device("cpu")
PROBE_IMAGES = 16
MAX_STREAM_IMAGES = 4096
FINGERPRINT_LENGTH = 32


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def probe_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g)
    return images, torch.randint(0, NUM_CLASSES, (n,), generator=g)


class Digest:
    """sha256 over tensors and plain values, in the order they are added."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def add(self, value) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().to(CPU).contiguous()
            self.hash.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
            self.hash.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif isinstance(value, (list, tuple)):
            for item in value:
                self.add(item)
        else:
            self.hash.update(json.dumps(value, sort_keys=True, default=repr).encode())

    def hexdigest(self) -> str:
        return self.hash.hexdigest()[:FINGERPRINT_LENGTH]


def network(modules: dict[str, types.ModuleType], hp: dict, inputs: torch.Tensor, seed: int) -> torch.nn.Module:
    seed_everything(seed)
    model = modules["architecture"].build_network(dict(hp), CPU)
    model.reset()
    model.init_whiten(inputs)
    return model


def probe_inputs(modules: dict[str, types.ModuleType], hp: dict) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = probe_images(PROBE_IMAGES, seed=11)
    seed_everything(12)
    return modules["augmentation"].preprocess(images, dict(hp)), labels


def probe_hyperparams(modules, hp, digest: Digest) -> None:
    digest.add(sorted((k, repr(v)) for k, v in hp.items()))


def probe_newton_schulz(modules, hp, digest: Digest) -> None:
    g = torch.Generator().manual_seed(13)
    for shape in [(16, 36), (36, 16), (4, 8, 12)]:
        digest.add(modules["newton_schulz"].orthogonalize(torch.randn(*shape, generator=g), hp.get("newton_schulz_steps", 3)))


def probe_architecture(modules, hp, digest: Digest) -> None:
    inputs, _ = probe_inputs(modules, hp)
    model = network(modules, hp, inputs, seed=14)
    with torch.no_grad():
        model.eval()
        digest.add(model(inputs))
        model.train()
        digest.add(model(inputs))


def probe_optimizer(modules, hp, digest: Digest) -> None:
    inputs, labels = probe_inputs(modules, hp)
    model = network(modules, hp, inputs, seed=15)
    model.train()
    optimizer = modules["optimizer"].build_optimizer(model, dict(hp), 6, 2, modules["newton_schulz"].orthogonalize)
    for step in range(3):
        F.cross_entropy(model(inputs), labels, label_smoothing=hp["label_smoothing"], reduction="sum").backward()
        optimizer.step(step)
        optimizer.zero_grad()
    digest.add(list(model.parameters()))


def probe_augmentation(modules, hp, digest: Digest) -> None:
    n = min(MAX_STREAM_IMAGES, 2 * int(hp["batch_size"]))
    images, labels = probe_images(n, seed=16)
    seed_everything(17)
    inputs = modules["augmentation"].preprocess(images, dict(hp))
    digest.add(inputs)
    stream = modules["augmentation"].BatchStream(inputs, labels, dict(hp))
    for _ in range(2):
        for batch_inputs, batch_labels in stream:
            digest.add([batch_inputs, batch_labels])


def probe_tta(modules, hp, digest: Digest) -> None:
    inputs, _ = probe_inputs(modules, hp)
    model = network(modules, hp, inputs, seed=18)
    model.eval()
    with torch.no_grad():
        digest.add(modules["tta"].predict(model, inputs, dict(hp)))


PROBES = {
    "hyperparams": probe_hyperparams,
    "newton_schulz": probe_newton_schulz,
    "architecture": probe_architecture,
    "optimizer": probe_optimizer,
    "augmentation": probe_augmentation,
    "tta": probe_tta,
}
assert set(PROBES) == set(COMPONENT_NAMES)


def fingerprints(component_set: ComponentSet, overrides: dict) -> dict[str, str]:
    """Each component's fingerprint; a component whose probe raised gets none (it is then never skipped)."""
    modules = load_components(component_set)
    defined = modules["hyperparams"].HYPERPARAMS
    hp = resolve_hyperparams(modules, {k: v for k, v in overrides.items() if k in defined})
    found = {}
    for name, probe in PROBES.items():
        digest = Digest()
        try:
            probe(modules, hp, digest)
        except Exception:  # the contract tests report what is wrong; a fingerprint only decides skipping
            continue
        found[name] = digest.hexdigest()
    return found


def valid_fingerprints(answer: object) -> dict[str, str]:
    """The worker's answer, checked: known component names and short strings only."""
    if not isinstance(answer, dict):
        return {}
    return {k: v for k, v in answer.items() if k in PROBES and isinstance(v, str) and len(v) == FINGERPRINT_LENGTH}


def identical_behaviour(component: str, child: dict[str, str], parent: dict[str, str] | None) -> bool:
    return bool(parent) and component in child and child.get(component) == parent.get(component)
