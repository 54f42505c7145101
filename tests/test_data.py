import numpy as np
import pytest

from evaluator.data import DatasetError, download_cifar10, load_dataset, load_npz, synthetic_dataset


def write_npz(path, **overrides):
    rng = np.random.default_rng(0)
    arrays = dict(
        train_images=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
        train_labels=rng.integers(0, 10, 20).astype(np.uint8),
        test_images=rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8),
        test_labels=rng.integers(0, 10, 5),
    )
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_npz_loads(tmp_path):
    dataset = load_dataset(str(write_npz(tmp_path / "d.npz")))
    assert dataset.train_images.shape == (20, 32, 32, 3)
    assert dataset.train_labels.dtype == np.int64 and dataset.test_labels.shape == (5,)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(train_images=np.zeros((20, 3, 32, 32), np.uint8)), "expected (N, 32, 32, 3)"),
        (dict(test_images=np.zeros((5, 32, 32, 3), np.float32)), "expected uint8"),
        (dict(train_labels=np.zeros(19, np.int64)), "one label per image"),
        (dict(test_labels=np.full(5, 10)), "integers in [0, 10)"),
        (dict(test_labels=None), "lacks the arrays test_labels"),
    ],
)
def test_bad_npz_gets_one_clear_error(tmp_path, overrides, message):
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_npz(write_npz(tmp_path / "d.npz", **overrides))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.npz"))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_dataset(str(corrupt))


def test_download_without_torchvision_says_how_to_fix(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name == "torchvision":
            raise ImportError("torchvision is not importable here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    with pytest.raises(DatasetError, match="--data PATH.npz"):
        download_cifar10(tmp_path)


def test_download_uses_the_cache(tmp_path):
    write_npz(tmp_path / "cifar10_uint8.npz")
    assert download_cifar10(tmp_path).name == "cifar10"


def test_synthetic_is_deterministic_and_balanced():
    a, b = synthetic_dataset(500, 100, seed=3), synthetic_dataset(500, 100, seed=3)
    assert np.array_equal(a.train_images, b.train_images)
    assert set(np.unique(a.train_labels)) == set(range(10))
