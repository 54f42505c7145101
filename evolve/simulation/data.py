"""The dataset a simulated search is given: none is read, so an empty one that says so."""

import numpy as np

from evaluator.data import Dataset

SIMULATED_DATA = "none (simulated executor: no data is read)"


def simulated_dataset() -> Dataset:
    """An empty dataset named for the simulation, in place of the one `harness.data` names."""
    empty = np.zeros((0, 32, 32, 3), dtype=np.uint8)
    labels = np.zeros(0, dtype=np.int64)
    return Dataset(train_images=empty, train_labels=labels, test_images=empty, test_labels=labels, name=SIMULATED_DATA)
