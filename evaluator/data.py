"""CIFAR-10 for the harness: downloaded through torchvision, a local .npz, or synthetic.

Every source yields the same thing: uint8 images (N, 32, 32, 3) and integer labels in [0, 10).
The evaluator alone holds the test labels; components never see them.
"""

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.interface import NUM_CLASSES

NPZ_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
IMAGE_SHAPE = (32, 32, 3)


class DatasetError(ValueError):
    """A dataset that is missing, unreadable or of the wrong shape; the message names the fix."""


@dataclass(frozen=True)
class Dataset:
    train_images: np.ndarray  # uint8 (N, 32, 32, 3)
    train_labels: np.ndarray  # int64 (N,)
    test_images: np.ndarray  # uint8 (M, 32, 32, 3)
    test_labels: np.ndarray  # int64 (M,)
    name: str

    def describe(self) -> str:
        return f"{self.name}: {len(self.train_labels)} training and {len(self.test_labels)} test images"


def cache_dir() -> Path:
    return Path(os.environ.get("EVOLVE_CACHE", Path.home() / ".cache" / "evolve"))


def load_dataset(spec: str) -> Dataset:
    """'cifar10' (download once, then cached), 'synthetic', or a path to a .npz file."""
    if spec == "synthetic":
        return synthetic_dataset()
    if spec == "cifar10":
        return download_cifar10(cache_dir())
    return load_npz(Path(spec))


def load_npz(path: Path, name: str | None = None) -> Dataset:
    if not path.exists():
        raise DatasetError(f"dataset file {path} does not exist: pass --data cifar10, --data synthetic or an existing .npz")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise DatasetError(
                    f"{path} lacks the arrays {', '.join(missing)}: a dataset .npz needs uint8 "
                    f"{', '.join(NPZ_KEYS)} (the JPEG pack in shared/data must be decoded first)"
                )
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{path} is not a readable .npz file ({e}): re-create or re-download it") from e
    return validated(name or path.name, **arrays)


def validated(name: str, train_images, train_labels, test_images, test_labels) -> Dataset:
    """Check dtypes, shapes and label range; convert labels to int64."""
    for split, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8:
            raise DatasetError(f"{name}: {split}_images has dtype {images.dtype}, expected uint8 pixels in [0, 255]")
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise DatasetError(f"{name}: {split}_images has shape {images.shape}, expected (N, 32, 32, 3) (NHWC)")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DatasetError(f"{name}: {split}_labels has shape {labels.shape}, expected ({len(images)},), one label per image")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
            raise DatasetError(f"{name}: {split}_labels must be integers in [0, {NUM_CLASSES})")
        if len(images) == 0:
            raise DatasetError(f"{name}: {split} split is empty")
    return Dataset(
        train_images=np.ascontiguousarray(train_images),
        train_labels=np.asarray(train_labels, dtype=np.int64),
        test_images=np.ascontiguousarray(test_images),
        test_labels=np.asarray(test_labels, dtype=np.int64),
        name=name,
    )


def download_cifar10(directory: Path) -> Dataset:
    """Download CIFAR-10 with torchvision once and cache it as one uint8 .npz."""
    cached = directory / "cifar10_uint8.npz"
    if cached.exists():
        return load_npz(cached, name="cifar10")
    try:
        import torchvision  # lazily: only the download needs it, and some installs cannot import it
    except Exception as e:
        raise DatasetError(
            f"downloading CIFAR-10 needs torchvision, which did not import ({e}): install the "
            "torchvision build that matches your torch (pip install torchvision, or 'cifar-evolve[download]'), "
            "or pass --data PATH.npz"
        ) from e
    directory.mkdir(parents=True, exist_ok=True)
    splits = {}
    for train in (True, False):
        dset = torchvision.datasets.CIFAR10(str(directory / "torchvision"), train=train, download=True)
        splits[train] = (np.asarray(dset.data, dtype=np.uint8), np.asarray(dset.targets, dtype=np.int64))
    (tri, trl), (tei, tel) = splits[True], splits[False]
    tmp = cached.with_suffix(".tmp.npz")
    np.savez(tmp, train_images=tri, train_labels=trl, test_images=tei, test_labels=tel)
    tmp.replace(cached)  # atomic: an interrupted download never leaves a half-written cache
    return validated("cifar10", tri, trl, tei, tel)


def synthetic_dataset(n_train: int = 2000, n_test: int = 500, seed: int = 0) -> Dataset:
    """A learnable CIFAR-shaped dataset: ten smooth colour prototypes, jittered and noised.

    Each image is its class prototype shifted by up to three pixels, with random brightness and
    contrast and strong pixel noise, so that a small network needs a few epochs to separate the
    classes and accuracy lands well above chance but below 100%.
    """
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, size=(NUM_CLASSES, 4, 4, 3))
    prototypes = coarse.repeat(8, axis=1).repeat(8, axis=2)  # (10, 32, 32, 3) blocks of 8x8 pixels

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, NUM_CLASSES, size=n)
        shifts = rng.integers(-3, 4, size=(n, 2))
        images = np.stack([np.roll(prototypes[y], tuple(s), axis=(0, 1)) for y, s in zip(labels, shifts)])
        contrast = rng.uniform(0.2, 1.0, size=(n, 1, 1, 1))
        brightness = rng.uniform(-0.3, 0.3, size=(n, 1, 1, 1))
        noise = rng.normal(0, 1.5, size=images.shape)
        pixels = 128 + 60 * (contrast * images + brightness + noise)
        return np.clip(pixels, 0, 255).astype(np.uint8), labels.astype(np.int64)

    train_images, train_labels = sample(n_train)
    test_images, test_labels = sample(n_test)
    return validated("synthetic", train_images, train_labels, test_images, test_labels)
