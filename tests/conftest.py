"""Session-wide fixtures, and how the suite shares the machine when it runs in parallel (pytest -n N).

Under pytest-xdist each worker process runs its share of the tests; every test already works in
its own tmp_path, PostgreSQL schema (tests/database_support.py), free port and environment
(monkeypatch), so the workers cannot meet. Two things still need the suite's help:
- torch threads: N workers on C cores use C // N threads each, so they do not fight over cores;
- order: the slowest modules are collected first, so that no worker is left with a long test at
  the end while the other idles (xdist hands out work in collection order; `--dist loadgroup`,
  set in pyproject.toml, keeps each module marked `xdist_group` on one worker).
"""

import os

import pytest
import torch

from components import SHIPPED_SETS
from evaluator.component_set import ComponentSet

WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // WORKERS)))

# Measured slowest first (docs/BENCHMARKS.md, "The test suite"): each is a real search, a promotion,
# a compile or a sandboxed red-team walk. Modules not named here follow in their usual order.
SLOW_MODULES = (
    "test_ui.py", "test_ray_executor.py", "test_sandbox_compile.py", "test_null_search.py", "test_loop.py",
    "test_interrupts.py", "test_redteam_jail.py", "test_redteam.py", "test_promotion.py", "test_frontier_components.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_MODULES)))  # stable: each module keeps its order


@pytest.fixture(scope="session")
def baseline_set() -> ComponentSet:
    return ComponentSet.shipped("baseline")


@pytest.fixture(scope="session", params=SHIPPED_SETS)
def shipped_set(request) -> ComponentSet:
    """Each shipped component set in turn: the tests that take it run once per set."""
    return ComponentSet.shipped(request.param)
