"""The lineage database: every candidate, its ancestry, every run sample and every LLM call."""

from evolve.database.connection import DEFAULT_URL
from evolve.database.errors import DatabaseError
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
from evolve.database.store import NotFound, Store

__all__ = [
    "DEFAULT_URL",
    "CandidateDetail",
    "CandidateInfo",
    "ChampionInfo",
    "DatabaseError",
    "ExperimentInfo",
    "ExperimentOverview",
    "LLMCallInfo",
    "LLMCallRecord",
    "NewCandidate",
    "NotFound",
    "Store",
    "StoredSample",
]
