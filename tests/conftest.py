import pytest
import torch

from components import SHIPPED_SETS
from evaluator.component_set import ComponentSet

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def baseline_set() -> ComponentSet:
    return ComponentSet.shipped("baseline")


@pytest.fixture(scope="session", params=SHIPPED_SETS)
def shipped_set(request) -> ComponentSet:
    """Each shipped component set in turn: the tests that take it run once per set."""
    return ComponentSet.shipped(request.param)
