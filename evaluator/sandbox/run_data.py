"""The real data of one timed run, handed to its worker only once the parent's clock runs.

Timing starts when the training data is first touched. A worker may run arbitrary native code
(a thread started in the untimed warm-up, say), so "no candidate code runs between loading the
data and the clock's start" cannot be promised from inside it. It is promised from the parent:
before "go" the worker holds no real image and no label. The parent writes the run's data (the
training set in the run's order, its labels, the test images in the run's secret order) into a
memory file, seals it (no writes, no resizing, ever, by anyone: F_SEAL_WRITE and friends), and
passes its descriptor over a socket (SCM_RIGHTS) right after starting the clock. The worker maps
it copy-on-write: its own writes stay private, and the file every later reader sees cannot
change, so it cannot carry state from one run to another either.
"""

import fcntl
import mmap
import os

import numpy as np
from pydantic import BaseModel

SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
ARRAYS = ("train_images", "train_labels", "test_images")


class ArrayLayout(BaseModel):
    """Where one array lies in the run's memory file."""

    offset: int
    shape: list[int]
    dtype: str


class RunDataLayout(BaseModel):
    """The run's arrays, by name, and the file's size: sent with "go"."""

    size: int
    arrays: dict[str, ArrayLayout]


def sealed_run_data(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray) -> tuple[int, RunDataLayout]:
    """A sealed memory file holding the three arrays, and their layout; the caller closes the descriptor."""
    fd = os.memfd_create("evolve-run-data", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        arrays, offset = {}, 0
        with os.fdopen(os.dup(fd), "wb") as f:
            for name, array in zip(ARRAYS, (train_images, train_labels, test_images)):
                array = np.ascontiguousarray(array)
                arrays[name] = ArrayLayout(offset=offset, shape=list(array.shape), dtype=array.dtype.str)
                f.write(memoryview(array).cast("B"))
                offset += array.nbytes
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd, RunDataLayout(size=offset, arrays=arrays)


def map_run_data(fd: int, layout: RunDataLayout) -> dict[str, np.ndarray]:
    """The worker's side: the arrays, mapped copy-on-write from the sealed file (writable, private)."""
    size = os.fstat(fd).st_size
    if size != layout.size:
        raise ValueError(f"the run's data file holds {size} bytes, the layout says {layout.size}")
    if size == 0:
        raise ValueError("the run's data file is empty")
    memory = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    found = {}
    for name in ARRAYS:
        spec = layout.arrays[name]
        dtype = np.dtype(spec.dtype)
        count = int(np.prod(spec.shape))
        found[name] = np.frombuffer(memory, dtype=dtype, count=count, offset=spec.offset).reshape(spec.shape)
    return found
