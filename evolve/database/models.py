"""The lineage database's tables: experiments, candidates and their ancestry, every cascade
verdict and run sample, every LLM call, the history of champions, every promotion decision
and every noise calibration; and the search's own
state (the seed set's sources, every proposal's outcome, the promotion queue, the migrants and
the generations done), so that a resumed search continues exactly where it stopped.

Raw samples are kept next to the summary columns so that any score can be recomputed later
(`evolve rescore`); the summary columns exist only to make the CLI's queries cheap.
"""

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so that migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EXPERIMENT_STATUSES = ("running", "stopped", "finished")
CANDIDATE_STATUSES = ("pending", "running", "rejected", "failed", "evaluated", "champion")
FINISHED_STATUSES = ("rejected", "failed", "evaluated", "champion")
ORIGINS = ("seed", "llm", "mutator", "crossover", "merge")
SAMPLE_STAGES = ("smoke", "timed", "confirm")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Experiment(Base):
    """One search: what it evolves, from which baseline, with which settings and code."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    components: Mapped[list[Any]] = mapped_column(doc="names of the components this search evolves")
    config: Mapped[dict[str, Any]] = mapped_column(doc="the full effective configuration")
    baseline: Mapped[str] = mapped_column(String(200), doc="the component set the seeds come from")
    code_version: Mapped[str] = mapped_column(String(200), doc="package version and git commit")
    device: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="running")
    completed_generations: Mapped[int] = mapped_column(Integer, default=0, doc="generations whose migration is done")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    candidates: Mapped[list["Candidate"]] = relationship(back_populates="experiment", passive_deletes=True)


class LLMCall(Base):
    """One request to a language model, kept whole for audit and cost accounting."""

    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(500), default="")
    prompt: Mapped[str] = mapped_column(Text)
    response: Mapped[Optional[str]] = mapped_column(Text)
    tokens_in: Mapped[Optional[int]] = mapped_column(Integer)
    tokens_out: Mapped[Optional[int]] = mapped_column(Integer)
    latency_seconds: Mapped[Optional[float]] = mapped_column(Float)
    cost: Mapped[Optional[float]] = mapped_column(Float, doc="in US dollars, when the endpoint reports prices")
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Candidate(Base):
    """One program: a component's module text, where it came from, and what the cascade said."""

    __tablename__ = "candidates"
    __table_args__ = (
        UniqueConstraint("experiment_id", "set_hash"),
        Index("ix_candidates_experiment_status", "experiment_id", "status"),
        Index("ix_candidates_experiment_score", "experiment_id", "score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    component: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(Text)
    diff: Mapped[str] = mapped_column(Text, default="", doc="unified diff against the parent's source")
    source_hash: Mapped[str] = mapped_column(String(64), doc="sha256 of the canonical source of `component`")
    set_hash: Mapped[str] = mapped_column(
        String(64), doc="identity: sha256 of the whole component set and the harness settings that change behaviour"
    )
    description: Mapped[str] = mapped_column(Text, default="", doc="what changed and why (mutator edit, LLM's summary)")
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("candidates.id"), index=True)
    second_parent_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("candidates.id"), index=True, doc="merges (and crossovers): the lineage the changed component comes from"
    )
    inspiration_ids: Mapped[list[Any]] = mapped_column(default=list, doc="programs shown to the LLM")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    island: Mapped[int] = mapped_column(Integer, default=0)
    origin: Mapped[str] = mapped_column(String(20), doc="seed, llm, mutator, merge or crossover")
    llm_call_id: Mapped[Optional[int]] = mapped_column(ForeignKey("llm_calls.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    verdict: Mapped[Optional[str]] = mapped_column(String(200))
    error: Mapped[Optional[str]] = mapped_column(Text)
    score: Mapped[Optional[float]] = mapped_column(Float)
    time_mean: Mapped[Optional[float]] = mapped_column(Float)
    accuracy_mean: Mapped[Optional[float]] = mapped_column(Float)
    accuracy_lower_bound: Mapped[Optional[float]] = mapped_column(Float)
    runs: Mapped[Optional[int]] = mapped_column(Integer)
    summary: Mapped[Optional[dict[str, Any]]] = mapped_column(doc="the evaluator's whole Summary")
    flags: Mapped[list[Any]] = mapped_column(default=list, doc="evaluator warnings such as clock disagreement")
    profile: Mapped[Optional[dict[str, Any]]] = mapped_column(doc="profiler summary, when there is one")
    behaviour: Mapped[Optional[dict[str, Any]]] = mapped_column(doc="component -> fingerprint on the probe inputs (behaviour.py)")
    claimed_by: Mapped[Optional[str]] = mapped_column(String(200), doc="the worker evaluating it")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    evaluated_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    experiment: Mapped[Experiment] = relationship(back_populates="candidates")
    stages: Mapped[list["StageResult"]] = relationship(order_by="StageResult.position", passive_deletes=True)
    samples: Mapped[list["Sample"]] = relationship(order_by="Sample.id", passive_deletes=True)
    llm_call: Mapped[Optional[LLMCall]] = relationship()


class StageResult(Base):
    """One cascade stage's verdict on a candidate and what it cost."""

    __tablename__ = "stage_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class Sample(Base):
    """One run of a candidate: raw enough to recompute any score."""

    __tablename__ = "samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(20), doc="smoke, timed or confirm")
    run: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    time_seconds: Mapped[float] = mapped_column(Float, doc="parent-measured host time")
    device_time_seconds: Mapped[Optional[float]] = mapped_column(Float, doc="device-event time")
    accuracy: Mapped[float] = mapped_column(Float)
    device_name: Mapped[str] = mapped_column(String(200))
    driver_version: Mapped[Optional[str]] = mapped_column(String(100))
    torch_version: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChampionChange(Base):
    """A candidate became champion, replacing an incumbent after a paired comparison."""

    __tablename__ = "champion_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    incumbent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("candidates.id"))
    statistics: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="the paired comparison's statistics")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PromotionDecisionRow(Base):
    """One paired comparison of a candidate with the champion, promoted or not: both sides'
    samples, the effect, the intervals and the share of the experiment's error budget it spent."""

    __tablename__ = "promotion_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    incumbent_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    attempt: Mapped[Optional[int]] = mapped_column(Integer, doc="the experiment's promotion attempt number")
    promoted: Mapped[bool] = mapped_column(Boolean)
    alpha_spent: Mapped[float] = mapped_column(Float, doc="error budget this decision spent (0: it could not test)")
    min_gain_seconds: Mapped[Optional[float]] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    decision: Mapped[dict[str, Any]] = mapped_column(doc="the evaluator's PromotionDecision: tests, summaries, samples")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Calibration(Base):
    """`evolve calibrate`: a set measured against itself in the paired protocol on one device."""

    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_name: Mapped[str] = mapped_column(String(200), index=True)
    subject: Mapped[str] = mapped_column(String(200), doc="what was measured: a shipped set or a candidate")
    pairs: Mapped[int] = mapped_column(Integer)
    time_noise_seconds: Mapped[float] = mapped_column(Float, doc="robust std of the paired time differences")
    accuracy_std: Mapped[float] = mapped_column(Float, doc="per-run accuracy std")
    result: Mapped[dict[str, Any]] = mapped_column(doc="the whole calibration report with its samples")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SeedComponent(Base):
    """One module of the set an experiment started from, stored when it starts: rebuilds and
    exports read the seed set from here, never from the installed package."""

    __tablename__ = "seed_components"
    __table_args__ = (UniqueConstraint("experiment_id", "component"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    component: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(Text)


class Proposal(Base):
    """One proposal the loop asked for, whatever came of it: a new candidate, a duplicate of a
    known one, or an unusable reply. Their count is the number of proposals made."""

    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("candidates.id"))
    component: Mapped[str] = mapped_column(String(100))
    generation: Mapped[int] = mapped_column(Integer)
    island: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20), doc="new, duplicate, near-copy or unusable")
    origin: Mapped[str] = mapped_column(String(20), default="", doc="llm, mutator or merge")
    second_parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("candidates.id"), doc="a merge's other parent")
    model: Mapped[Optional[str]] = mapped_column(String(200), doc="the model chosen for it (evolve/llm/bandit.py)")
    cost_usd: Mapped[Optional[float]] = mapped_column(Float, doc="what its LLM calls cost")
    candidate_id: Mapped[Optional[int]] = mapped_column(ForeignKey("candidates.id"), doc="the new or the duplicated one")
    reason: Mapped[str] = mapped_column(Text, default="", doc="why a reply was unusable, or of what it is a near-copy")
    llm_call_id: Mapped[Optional[int]] = mapped_column(ForeignKey("llm_calls.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PromotionRequest(Base):
    """A candidate that scored above the champion, waiting for (or in, or done with) its paired
    re-measurement; stored before the measurement starts so that a killed search redoes it."""

    __tablename__ = "promotion_queue"

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    status: Mapped[str] = mapped_column(String(20), default="queued", doc="queued, running or done")
    promoted: Mapped[Optional[bool]] = mapped_column(doc="the decision, once done")
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0, doc="device time of the paired runs")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class Migrant(Base):
    """A copy of an island's elite on the next island of the ring, after a migration."""

    __tablename__ = "migrants"
    __table_args__ = (UniqueConstraint("experiment_id", "candidate_id", "island"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    island: Mapped[int] = mapped_column(Integer, doc="the island it was copied to")
    generation: Mapped[int] = mapped_column(Integer, doc="the generation after which it migrated")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
