"""The lineage database: every candidate, its ancestry, every run sample and every LLM call.

The names below are imported from their modules on first use, not when the package is: the CLI
names `DEFAULT_URL` and `DatabaseError` in every command's signature, and `evolve --help` must
not pay for SQLAlchemy and pydantic (bench/cli_startup.py measures it).
"""

import importlib
from typing import TYPE_CHECKING, Any

from evolve.database.errors import DatabaseError, NotFound

DEFAULT_URL = "sqlite:///evolve.db"

# Each public name and the module that defines it.
_HOMES = {
    "CandidateDetail": "records",
    "CandidateInfo": "records",
    "ChampionInfo": "records",
    "ExperimentInfo": "records",
    "ExperimentOverview": "records",
    "LLMCallInfo": "records",
    "LLMCallRecord": "records",
    "NewCandidate": "records",
    "StoredSample": "records",
    "Store": "store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'evolve.database' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"evolve.database.{home}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from evolve.database.records import (
        CandidateDetail,
        CandidateInfo,
        ChampionInfo,
        ExperimentInfo,
        ExperimentOverview,
        LLMCallInfo,
        LLMCallRecord,
        NewCandidate,
        StoredSample,
    )
    from evolve.database.store import Store

__all__ = [
    "DEFAULT_URL",
    "DatabaseError",
    "CandidateDetail",
    "CandidateInfo",
    "ChampionInfo",
    "ExperimentInfo",
    "ExperimentOverview",
    "LLMCallInfo",
    "LLMCallRecord",
    "NewCandidate",
    "NotFound",
    "Store",
    "StoredSample",
]
