import pytest
import torch

from evaluator.component_set import ComponentSet

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def baseline_set() -> ComponentSet:
    return ComponentSet.shipped("baseline")
