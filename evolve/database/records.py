"""The values that cross the database's boundary: what the search loop hands in, and what the
store and the CLI hand back (never ORM objects, which die with their session)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evaluator.results import RunSample, StageVerdict

Origin = Literal["seed", "llm", "mutator", "crossover", "merge"]


class LLMCallRecord(BaseModel):
    """One request to a language model, as the search loop saw it."""

    experiment_id: int
    model: str
    endpoint: str = ""
    prompt: str
    response: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_seconds: float | None = None
    cost: float | None = Field(None, description="US dollars, when known")
    error: str | None = None


class NewCandidate(BaseModel):
    """A program to evaluate. The diff is computed from the parent's source when not given.

    `set_hash` is its identity (evolve/search/identity.py: the whole component set and the
    harness settings that change behaviour); without one, the store keys it on this component's
    text alone, which only suits single-component lineages such as tests of the store."""

    experiment_id: int
    component: str
    source: str
    origin: Origin
    parent_id: int | None = None
    second_parent_id: int | None = Field(None, description="the other parent of a merge: the lineage its changed component comes from")
    inspiration_ids: list[int] = Field(default_factory=list, description="programs shown to the LLM")
    generation: int = 0
    island: int = 0
    llm_call_id: int | None = None
    diff: str | None = None
    set_hash: str | None = None
    description: str = Field("", description="what changed and why: the mutator's edit, the LLM's own summary")


class ProposalRecord(BaseModel):
    """What came of one proposal: a new candidate, a duplicate of a known one, or nothing usable."""

    experiment_id: int
    parent_id: int | None
    component: str
    generation: int
    island: int
    outcome: Literal["new", "duplicate", "near-copy", "unusable"]
    candidate_id: int | None = None
    reason: str = ""
    llm_call_id: int | None = None
    origin: str = ""
    second_parent_id: int | None = None
    model: str | None = None
    cost_usd: float | None = None


class PromotionInfo(BaseModel):
    """A queued, running or finished paired re-measurement."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    experiment_id: int
    candidate_id: int
    status: str
    promoted: bool | None
    gpu_seconds: float


class MigrantInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    candidate_id: int
    island: int
    generation: int


class IndexRow(BaseModel):
    """A candidate as the loop's in-memory population index holds it: no source text."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    component: str
    parent_id: int | None
    island: int
    generation: int
    origin: str
    status: str
    score: float | None
    accuracy_lower_bound: float | None
    set_hash: str
    second_parent_id: int | None = None
    behaviour: dict[str, str] | None = None


class ExperimentInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    components: list[str]
    config: dict[str, Any]
    baseline: str
    code_version: str
    device: str
    status: str
    completed_generations: int = 0
    created_at: datetime
    finished_at: datetime | None = None


class CandidateInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    experiment_id: int
    component: str
    source: str
    diff: str
    source_hash: str
    set_hash: str
    description: str
    parent_id: int | None
    second_parent_id: int | None
    inspiration_ids: list[int]
    generation: int
    island: int
    origin: str
    llm_call_id: int | None
    status: str
    verdict: str | None
    error: str | None
    score: float | None
    time_mean: float | None
    accuracy_mean: float | None
    accuracy_lower_bound: float | None
    runs: int | None
    summary: dict[str, Any] | None
    flags: list[str]
    profile: dict[str, Any] | None
    behaviour: dict[str, Any] | None = None
    claimed_by: str | None
    created_at: datetime
    claimed_at: datetime | None
    evaluated_at: datetime | None


class StoredSample(RunSample):
    """A run sample as stored: which cascade stage produced it, and when."""

    model_config = ConfigDict(from_attributes=True)

    stage: str
    created_at: datetime


class LLMCallInfo(LLMCallRecord):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime


class ChampionInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    experiment_id: int
    candidate_id: int
    incumbent_id: int | None
    statistics: dict[str, Any]
    created_at: datetime


class CandidateDetail(BaseModel):
    """Everything known about one candidate, for `evolve show`."""

    candidate: CandidateInfo
    stages: list[StageVerdict]
    samples: list[StoredSample]
    llm_call: LLMCallInfo | None


class ExperimentOverview(BaseModel):
    """One line of `evolve experiments`."""

    experiment: ExperimentInfo
    counts: dict[str, int] = Field(description="candidates by status")
    best_score: float | None
    champion: CandidateInfo | None


class DecisionInfo(BaseModel):
    """One stored paired comparison (decisions.py writes them)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    experiment_id: int
    candidate_id: int
    incumbent_id: int
    attempt: int | None
    promoted: bool
    alpha_spent: float
    min_gain_seconds: float | None
    reason: str
    decision: dict[str, Any]
    created_at: datetime
