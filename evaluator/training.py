"""One speedrun's training and prediction from the component modules, and the seeds of the runs.

This is the loop the harness times, and nothing else: the harness wraps it with its clock and
its checks. The module imports nothing from this project on purpose: `evolve export` copies it
verbatim into the standalone speedrun script, so an exported script trains and predicts exactly
as the harness does. `components` below maps each component name to its loaded module.
"""

import linecache
import math
import secrets
import types

import numpy as np
import torch
import torch.nn.functional as F

NUM_CLASSES = 10


class HarnessError(RuntimeError):
    """A run that cannot produce valid test logits."""


def module_from_source(name: str, source: str) -> types.ModuleType:
    """Execute one component's source text into a fresh module object of its own."""
    filename = f"<component {name}>"
    code = compile(source, filename, "exec")
    # Tracebacks and torch.compile read source lines through linecache.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(f"component_{name}")
    module.__file__ = filename
    exec(code, module.__dict__)  # noqa: S102  (a component is source text by design; the harness runs it)
    return module


def reset_torch_flags(device: torch.device) -> None:
    """Torch's global switches back to the harness's values (a component may have flipped one)."""
    torch.set_grad_enabled(True)
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(False)
    torch.set_float32_matmul_precision("highest")
    torch.autograd.set_detect_anomaly(False)
    torch.backends.cudnn.enabled = True
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = torch.device(device).type == "cuda"
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = False


SEED_LIMIT = 2**31 - 1  # every seed is below it: it fits a signed 32-bit integer


def evaluation_seeds(base_seed: int | None, runs: int, promotion_attempt: int | None = None) -> tuple[int, list[int]]:
    """The warm-up's seed and one seed per timed run: the one derivation of every timed run's seeds.

    Every timed run takes its seeds from here (evaluator/runs.py `scored_runs` and `iter_speedruns`,
    and the exported script, which copies this module). The contract:

    - `base_seed` None (HarnessSettings.seed unset): fresh randomness on every call; nothing repeats.
    - `base_seed` given: a pure function of (base_seed, runs, promotion_attempt).
    - The evaluation stream (`promotion_attempt` None) serves `evolve baseline`, `evolve eval`, every
      candidate's screening, the export's verification and the exported script: one base seed gives
      them all the same warm-up seed and the same seed for run i, whatever `runs` is (a screening
      stopped early ran the first seeds of a longer one).
    - `promotion_attempt` k (the experiment's k-th promotion attempt, from 1): the paired runs'
      stream of that attempt, a SeedSequence child of the base seed of its own for each k.
    - Evaluation seeds are even and promotion seeds odd, with or without a base seed: no promotion
      pair ever trains on a seed a screening ran on (the pairs must be fresh to the screening that
      selected the candidate, evaluator/promotion.py).
    - Every seed lies in [0, SEED_LIMIT).
    """
    entropy = secrets.randbits(63) if base_seed is None else base_seed
    stream = () if promotion_attempt is None else (promotion_attempt,)
    rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=stream))
    parity = 0 if promotion_attempt is None else 1
    seeds = [2 * int(draw) + parity for draw in rng.integers(0, SEED_LIMIT // 2, size=runs + 1)]
    return seeds[0], seeds[1:]


def training_order(seed: int, num_train: int) -> np.ndarray:
    """The run's permutation of the training set: every run sees the images in a fresh order."""
    return np.random.default_rng(seed).permutation(num_train)


def reordered(train_images: torch.Tensor, train_labels: torch.Tensor, permutation: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    index = torch.from_numpy(permutation).to(train_images.device)
    return train_images[index], train_labels[index]


def random_data(num_train: int, num_test: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random uint8 images and labels for the warm-up run, which compiles, autotunes and allocates."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (num_train, 32, 32, 3), dtype=torch.uint8, generator=g).to(device)
    labels = torch.randint(0, NUM_CLASSES, (num_train,), generator=g).to(device)
    test = torch.randint(0, 256, (num_test, 32, 32, 3), dtype=torch.uint8, generator=g).to(device)
    return images, labels, test


def build_model(components: dict, hp: dict, device: torch.device, compile: bool):
    """The network and the Newton-Schulz function, compiled once per evaluation when asked."""
    model = components["architecture"].build_network(dict(hp), device)
    orthogonalize = components["newton_schulz"].orthogonalize
    if compile:
        model.compile(mode="max-autotune")
        orthogonalize = torch.compile(orthogonalize)
    return model, orthogonalize


def speedrun(
    components: dict,
    model: torch.nn.Module,
    hp: dict,
    orthogonalize,
    seed: int,
    device: torch.device,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    after_training=None,
) -> torch.Tensor:
    """One whole run, all of it timed: the harness's flags, the run's seed, `model.reset()`,
    training and prediction; returns the test logits as prediction made them.

    Every call into a component happens in here, on the clock: a candidate that does work in
    `reset()` pays for it, and no candidate code runs untimed while the run's data is at hand.
    `after_training` (a harness hook, called with no arguments) lets the harness snapshot the
    network cheaply for its check that prediction leaves the network unchanged.
    """
    reset_torch_flags(device)
    torch.manual_seed(seed)
    model.reset()
    train(components, model, hp, orthogonalize, train_images, train_labels)
    if after_training is not None:
        after_training()
    return predict(components, model, hp, test_images)


def train(components: dict, model: torch.nn.Module, hp: dict, orthogonalize, train_images: torch.Tensor, train_labels: torch.Tensor) -> None:
    """Timed: preprocess, whiten, then ceil(epochs * batches per epoch) optimizer steps.

    Every component gets a fresh copy of the hyperparameters, so none can change another's.
    """
    augmentation = components["augmentation"]
    train_inputs = augmentation.preprocess(train_images, dict(hp))
    model.init_whiten(train_inputs)
    batches = augmentation.BatchStream(train_inputs, train_labels, dict(hp))
    steps_per_epoch = len(batches)
    if steps_per_epoch < 1:
        raise HarnessError(f"batch_size {hp['batch_size']} exceeds the {len(train_labels)} training images")
    total_steps = math.ceil(hp["epochs"] * steps_per_epoch)
    optimizer = components["optimizer"].build_optimizer(model, dict(hp), total_steps, steps_per_epoch, orthogonalize)

    model.train()
    step = 0
    while step < total_steps:  # a fractional epoch count ends partway through an epoch
        for inputs, labels in batches:
            outputs = model(inputs)
            loss = F.cross_entropy(outputs, labels, label_smoothing=hp["label_smoothing"], reduction="sum")
            loss.backward()
            optimizer.step(step)
            optimizer.zero_grad()
            step += 1
            if step >= total_steps:
                break


def predict(components: dict, model: torch.nn.Module, hp: dict, test_images: torch.Tensor) -> torch.Tensor:
    """Timed: the test logits, in eval mode and without gradients; the test labels are never seen."""
    model.eval()
    with torch.no_grad():
        test_inputs = components["augmentation"].preprocess(test_images, dict(hp))
        return components["tta"].predict(model, test_inputs, dict(hp))
