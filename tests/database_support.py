"""Fixtures and fake-but-real evaluations for the database tests (imported by test modules).

The database tests run against SQLite and PostgreSQL. PostgreSQL comes from
EVOLVE_TEST_POSTGRES_URL (`. .ci/postgres.sh` starts a throwaway server and sets it); without it
those tests skip locally and fail under CI, where .ci/run always provides one.
"""

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from evaluator.results import Evaluation, RunSample, StageVerdict
from evaluator.statistics import summarize

BACKENDS = ("sqlite", "postgresql")


def postgres_base_url() -> str:
    url = os.environ.get("EVOLVE_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail("CI is set but EVOLVE_TEST_POSTGRES_URL is not: .ci/run starts PostgreSQL with .ci/postgres.sh")
    pytest.skip("no PostgreSQL server: run `. .ci/postgres.sh` (sets EVOLVE_TEST_POSTGRES_URL) to test PostgreSQL too")


def fresh_url(backend: str, tmp_dir) -> Iterator[str]:
    """A new, empty database: an SQLite file, or a PostgreSQL schema of its own (dropped after)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir}/evolve.db"
        return
    base = make_url(postgres_base_url())
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    yield from fresh_url(request.param, tmp_path)


def sample(run: int, accuracy: float, seconds: float, seed: int | None = None) -> RunSample:
    return RunSample(
        run=run,
        seed=1000 + run if seed is None else seed,
        accuracy=accuracy,
        time_seconds=seconds,
        device_time_seconds=seconds * 0.99,
        device_name="NVIDIA A100-SXM4-40GB",
        torch_version="2.13.0",
        driver_version="550.54",
    )


def evaluation(accuracies: list[float], times: list[float], changed: str = "optimizer") -> Evaluation:
    """An evaluated candidate with these runs, summarized by the real statistics."""
    samples = [sample(i, a, t) for i, (a, t) in enumerate(zip(accuracies, times))]
    return Evaluation(
        changed=[changed],
        status="evaluated",
        stages=[
            StageVerdict(stage="static", status="passed", seconds=0.01),
            StageVerdict(stage="contracts", status="passed", seconds=1.5),
            StageVerdict(stage="smoke", status="passed", seconds=20.0),
            StageVerdict(stage="timed", status="passed", seconds=sum(times)),
        ],
        samples=samples,
        summary=summarize(samples),
    )


def rejection(rule: str = "line 3: imports os (only torch, numpy, math, typing)") -> Evaluation:
    return Evaluation(
        changed=["optimizer"],
        status="rejected",
        stages=[StageVerdict(stage="static", status="rejected", message=rule, seconds=0.01)],
    )
