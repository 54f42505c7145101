"""The operations the search loop and the CLI perform on the lineage database.

Every method is one transaction. A finished evaluation (status, verdicts, samples, summary) is
committed at once or not at all, so a search killed at any moment resumes with every finished
evaluation kept and the unfinished ones requeued (`requeue_unfinished`), none twice.
Claiming is safe with several worker processes: FOR UPDATE SKIP LOCKED on PostgreSQL, a
BEGIN IMMEDIATE transaction on SQLite.
"""

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evaluator.results import Evaluation, RunSample, StageVerdict, Summary
from evolve.code_version import code_version
from evolve.database.canonical import source_hash
from evolve.database import DEFAULT_URL
from evolve.database.connection import Database, parse_url, sqlite_path
from evolve.database.errors import DatabaseError
from evolve.database.migrate import check_schema
from evolve.database.champions import ChampionHistory
from evolve.database.models import (
    EXPERIMENT_STATUSES,
    FINISHED_STATUSES,
    Candidate,
    Experiment,
    LLMCall,
    PromotionRequest,
    Sample,
    SeedComponent,
    StageResult,
    utcnow,
)
from evolve.database.records import (
    CandidateDetail,
    CandidateInfo,
    ExperimentInfo,
    LLMCallInfo,
    LLMCallRecord,
    NewCandidate,
    StoredSample,
)
from evolve.database.search_state import SearchState
from evolve.database.serialize import json_safe, unified_diff


class NotFound(DatabaseError):
    """No experiment or candidate with that name or id."""


def verdict_of(evaluation: Evaluation) -> tuple[str, str | None]:
    """A one-line verdict and the error text: the first stage that did not pass decides."""
    stopped = next((s for s in evaluation.stages if s.status != "passed"), None)
    if stopped is None:
        return evaluation.status, None
    if evaluation.status == "evaluated":
        return f"evaluated, {stopped.stage} {stopped.status}", None
    return f"{evaluation.status} at {stopped.stage}", stopped.message or None


def single_component_key(component: str, digest: str) -> str:
    """The identity of a candidate stored without a full-set one: its component's text alone."""
    return hashlib.sha256(f"{component}:{digest}".encode()).hexdigest()


def set_summary(candidate: Candidate, summary: Summary) -> None:
    """The summary columns the CLI's queries read, and the whole summary beside them."""
    candidate.score = summary.score
    candidate.time_mean = summary.time_mean
    candidate.accuracy_mean = summary.accuracy_mean
    candidate.accuracy_lower_bound = summary.accuracy_lower_bound
    candidate.runs = summary.runs
    candidate.summary = json_safe(summary.model_dump())


class Store(SearchState, ChampionHistory):
    """The lineage database of every search: open it with `Store.open(url)`.

    Candidates and experiments here; the search's own state (seed set, proposals, promotion
    queue, migrants, generations, spending) in search_state.py; champions in champions.py."""

    def __init__(self, database: Database) -> None:
        self.db = database

    @classmethod
    def open(cls, url: str = DEFAULT_URL, *, create: bool = True, busy_timeout: float = 30.0) -> "Store":
        """Connect, creating the schema in a new database when `create`; refuse unknown schemas."""
        parsed = parse_url(url)
        if parsed.get_backend_name() == "sqlite" and not create and not sqlite_path(parsed).exists():
            raise DatabaseError(
                f"there is no database at {sqlite_path(parsed).resolve()}: run a search first, or pass --db URL of one"
            )
        database = Database(parsed, busy_timeout)
        try:
            check_schema(database, create)
        except BaseException:
            database.dispose()
            raise
        return cls(database)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # experiments

    def create_experiment(
        self,
        name: str,
        components: Sequence[str],
        config: dict[str, Any] | BaseModel,
        baseline: str,
        device: str,
        version: str | None = None,
        seed_sources: Mapping[str, str] | None = None,
    ) -> ExperimentInfo:
        """A new experiment; `seed_sources` (component -> module text) is the set it starts from,
        stored with it so that its lineage never depends on the installed package."""
        exists = DatabaseError(f"an experiment named {name!r} exists already: resume it, or choose another name")
        with self.db.session(write=True) as session:
            if session.scalar(select(Experiment.id).where(Experiment.name == name)) is not None:
                raise exists
            experiment = Experiment(
                name=name,
                components=list(components),
                config=json_safe(config),
                baseline=baseline,
                code_version=version or code_version(),
                device=device,
                status="running",
            )
            try:
                with session.begin_nested():
                    session.add(experiment)
            except IntegrityError:
                raise exists from None  # created by another process since we looked
            for component, source in (seed_sources or {}).items():
                session.add(SeedComponent(experiment_id=experiment.id, component=component, source=source))
            return ExperimentInfo.model_validate(experiment)

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        with self.db.session() as session:
            experiment = session.scalar(select(Experiment).where(Experiment.name == name))
            return None if experiment is None else ExperimentInfo.model_validate(experiment)

    def experiment(self, name: str | None = None) -> ExperimentInfo:
        """The experiment of that name (or numeric id); the most recent one when None."""
        with self.db.session() as session:
            if name is None:
                experiment = session.scalar(select(Experiment).order_by(Experiment.id.desc()).limit(1))
                if experiment is None:
                    raise NotFound(f"the {self.db.describe()} holds no experiment yet: run a search first")
                return ExperimentInfo.model_validate(experiment)
            experiment = session.scalar(select(Experiment).where(Experiment.name == name))
            if experiment is None and name.isdigit():
                experiment = session.get(Experiment, int(name))
            if experiment is None:
                raise NotFound(f"no experiment named {name!r} in the {self.db.describe()}: `evolve experiments` lists them")
            return ExperimentInfo.model_validate(experiment)

    def experiments(self) -> list[ExperimentInfo]:
        with self.db.session() as session:
            return [ExperimentInfo.model_validate(e) for e in session.scalars(select(Experiment).order_by(Experiment.id))]

    def set_experiment_status(self, experiment_id: int, status: str) -> None:
        if status not in EXPERIMENT_STATUSES:
            raise ValueError(f"experiment status {status!r}: choose one of {', '.join(EXPERIMENT_STATUSES)}")
        with self.db.session(write=True) as session:
            experiment = self._get(session, Experiment, experiment_id)
            experiment.status = status
            experiment.finished_at = None if status == "running" else utcnow()

    # candidates

    def add_candidate(self, new: NewCandidate) -> tuple[CandidateInfo, bool]:
        """Store a candidate unless its identity is known; returns it and whether it is new."""
        with self.db.session(write=True) as session:
            return self._insert_candidate(session, new)

    def _insert_candidate(self, session: Session, new: NewCandidate) -> tuple[CandidateInfo, bool]:
        digest = source_hash(new.source)
        identity = new.set_hash or single_component_key(new.component, digest)
        existing = self._by_identity(session, new.experiment_id, identity)
        if existing is not None:
            return CandidateInfo.model_validate(existing), False
        self._get(session, Experiment, new.experiment_id)
        diff = new.diff
        for parent_id in (new.parent_id, new.second_parent_id):
            if parent_id is not None:
                parent = self._get(session, Candidate, parent_id)
                if parent.experiment_id != new.experiment_id:
                    raise DatabaseError(f"candidate {parent_id} belongs to another experiment: it cannot be a parent")
        if diff is None:
            parent = session.get(Candidate, new.parent_id) if new.parent_id is not None else None
            same = parent is not None and parent.component == new.component
            diff = unified_diff(parent.source, new.source, f"{new.component} #{parent.id}", f"{new.component} (new)") if same else ""
        candidate = Candidate(
            **new.model_dump(exclude={"diff", "set_hash"}), diff=diff, source_hash=digest, set_hash=identity,
            status="pending", flags=[], profile=None,
        )
        try:
            with session.begin_nested():
                session.add(candidate)
        except IntegrityError:
            # Another process stored the same program since we looked: return theirs.
            existing = self._by_identity(session, new.experiment_id, identity)
            if existing is None:
                raise
            return CandidateInfo.model_validate(existing), False
        return CandidateInfo.model_validate(candidate), True

    def claim_pending(self, experiment_id: int, limit: int = 1, worker: str = "") -> list[CandidateInfo]:
        """Mark up to `limit` pending candidates running, oldest first, for this worker only."""
        with self.db.session(write=True) as session:
            query = (
                select(Candidate)
                .where(Candidate.experiment_id == experiment_id, Candidate.status == "pending")
                .order_by(Candidate.id)
                .limit(limit)
            )
            if self.db.backend == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed = list(session.scalars(query))
            now = utcnow()
            for candidate in claimed:
                candidate.status = "running"
                candidate.claimed_by = worker or None
                candidate.claimed_at = now
            session.flush()
            return [CandidateInfo.model_validate(c) for c in claimed]

    def record_evaluation(self, candidate_id: int, evaluation: Evaluation, queue_promotion: bool = False) -> CandidateInfo:
        """Store the evaluator's verdicts, samples, summary and profile (when taken) in one transaction;
        with `queue_promotion`, the candidate's paired re-measurement is queued in the same one."""
        profile = evaluation.profile
        if evaluation.status not in ("evaluated", "rejected", "failed"):
            raise ValueError(f"evaluation status {evaluation.status!r}: expected evaluated, rejected or failed")
        with self.db.session(write=True) as session:
            candidate = self._locked(session, candidate_id)
            if candidate.status in FINISHED_STATUSES:
                raise DatabaseError(
                    f"candidate {candidate_id} was already evaluated ({candidate.status}): an evaluation is recorded once"
                )
            candidate.status = evaluation.status
            candidate.verdict, candidate.error = verdict_of(evaluation)
            candidate.flags = list(evaluation.flags)
            candidate.profile = json_safe(profile) if profile is not None else None
            candidate.behaviour = dict(evaluation.behaviour) or None
            candidate.evaluated_at = utcnow()
            summary = evaluation.summary
            if summary is not None:
                set_summary(candidate, summary)
            if evaluation.stages:  # bulk inserts: the loop records one evaluation per proposal
                session.execute(insert(StageResult), [
                    {"candidate_id": candidate_id, "position": position, **stage.model_dump()}
                    for position, stage in enumerate(evaluation.stages)
                ])
            self._add_samples(session, candidate_id, evaluation.samples, "timed")
            if queue_promotion:
                session.add(PromotionRequest(experiment_id=candidate.experiment_id, candidate_id=candidate_id, status="queued"))
            session.flush()
            return CandidateInfo.model_validate(candidate)

    def record_samples(self, candidate_id: int, samples: Sequence[RunSample], stage: str = "confirm") -> None:
        """Extra runs of an evaluated candidate, e.g. the paired runs against the champion."""
        if stage not in ("smoke", "timed", "confirm"):
            raise ValueError(f"sample stage {stage!r}: choose smoke, timed or confirm")
        with self.db.session(write=True) as session:
            self._get(session, Candidate, candidate_id)
            self._add_samples(session, candidate_id, samples, stage)

    def requeue_unfinished(self, experiment_id: int) -> int:
        """On resume: candidates and paired re-measurements left running by a stopped search go back
        to the queue; returns how many candidates."""
        with self.db.session(write=True) as session:
            result = session.execute(
                update(Candidate)
                .where(Candidate.experiment_id == experiment_id, Candidate.status == "running")
                .values(status="pending", claimed_by=None, claimed_at=None)
            )
            session.execute(
                update(PromotionRequest)
                .where(PromotionRequest.experiment_id == experiment_id, PromotionRequest.status == "running")
                .values(status="queued", started_at=None)
            )
            return result.rowcount

    def candidate(self, candidate_id: int) -> CandidateInfo:
        with self.db.session() as session:
            return CandidateInfo.model_validate(self._get(session, Candidate, candidate_id))

    def candidates_by_id(self, ids: Sequence[int]) -> dict[int, CandidateInfo]:
        """Several candidates in one query (the loop's prompts need a parent and its relatives)."""
        if not ids:
            return {}
        with self.db.session() as session:
            return {c.id: CandidateInfo.model_validate(c) for c in session.scalars(select(Candidate).where(Candidate.id.in_(list(ids))))}

    def prompt_material(
        self, ids: Sequence[int], source_ids: Sequence[int], stages_of: int
    ) -> tuple[dict[int, CandidateInfo], dict[int, str], list[StageVerdict]]:
        """What one proposal's prompt needs, in one transaction: the candidates shown, the module
        texts their sets take from other candidates, and the parent's cascade verdicts."""
        with self.db.session() as session:
            candidates = {c.id: CandidateInfo.model_validate(c) for c in session.scalars(select(Candidate).where(Candidate.id.in_(list(ids))))}
            texts = dict(session.execute(select(Candidate.id, Candidate.source).where(Candidate.id.in_(list(source_ids)))).all())
            query = select(StageResult).where(StageResult.candidate_id == stages_of).order_by(StageResult.position)
            stages = [StageVerdict(stage=s.stage, status=s.status, message=s.message, seconds=s.seconds) for s in session.scalars(query)]
        return candidates, texts, stages

    def stages(self, candidate_id: int) -> list[StageVerdict]:
        query = select(StageResult).where(StageResult.candidate_id == candidate_id).order_by(StageResult.position)
        with self.db.session() as session:
            return [StageVerdict(stage=s.stage, status=s.status, message=s.message, seconds=s.seconds) for s in session.scalars(query)]

    def component_set_sources(self, candidate_id: int) -> dict[str, str]:
        """The candidate's whole set: its experiment's stored seed set with, for each component,
        the most recent change along its ancestry."""
        chain = self.ancestry(candidate_id)
        sources = self.seed_sources(chain[0].experiment_id)
        for ancestor in reversed(chain):
            if ancestor.origin != "seed":
                sources[ancestor.component] = ancestor.source
        return sources

    def candidates(self, experiment_id: int, status: str | Sequence[str] | None = None) -> list[CandidateInfo]:
        query = select(Candidate).where(Candidate.experiment_id == experiment_id).order_by(Candidate.id)
        if status is not None:
            query = query.where(Candidate.status.in_([status] if isinstance(status, str) else list(status)))
        with self.db.session() as session:
            return [CandidateInfo.model_validate(c) for c in session.scalars(query)]

    def top(self, experiment_id: int, k: int = 10) -> list[CandidateInfo]:
        """The k best scored candidates, best first."""
        query = (
            select(Candidate)
            .where(Candidate.experiment_id == experiment_id, Candidate.score.is_not(None))
            .order_by(Candidate.score.desc(), Candidate.id)
            .limit(k)
        )
        with self.db.session() as session:
            return [CandidateInfo.model_validate(c) for c in session.scalars(query)]

    def samples(self, candidate_id: int, stages: Sequence[str] | None = None) -> list[StoredSample]:
        query = select(Sample).where(Sample.candidate_id == candidate_id).order_by(Sample.id)
        if stages is not None:
            query = query.where(Sample.stage.in_(list(stages)))
        with self.db.session() as session:
            return [StoredSample.model_validate(s) for s in session.scalars(query)]

    def samples_by_candidate(self, experiment_id: int, stages: Sequence[str] = ("timed",)) -> dict[int, list[StoredSample]]:
        """Every raw sample of an experiment's candidates, for rescoring without training."""
        query = (
            select(Sample)
            .join(Candidate, Sample.candidate_id == Candidate.id)
            .where(Candidate.experiment_id == experiment_id, Sample.stage.in_(list(stages)))
            .order_by(Sample.id)
        )
        grouped: dict[int, list[StoredSample]] = {}
        with self.db.session() as session:
            for sample in session.scalars(query):
                grouped.setdefault(sample.candidate_id, []).append(StoredSample.model_validate(sample))
        return grouped

    def detail(self, candidate_id: int) -> CandidateDetail:
        with self.db.session() as session:
            candidate = self._get(session, Candidate, candidate_id)
            return CandidateDetail(
                candidate=CandidateInfo.model_validate(candidate),
                stages=[StageVerdict(stage=s.stage, status=s.status, message=s.message, seconds=s.seconds) for s in candidate.stages],
                samples=[StoredSample.model_validate(s) for s in candidate.samples],
                llm_call=LLMCallInfo.model_validate(candidate.llm_call) if candidate.llm_call else None,
            )

    def ancestry(self, candidate_id: int) -> list[CandidateInfo]:
        """The candidate and its first parents back to the seed, the candidate first."""
        chain: list[CandidateInfo] = []
        with self.db.session() as session:
            current: int | None = candidate_id
            while current is not None:
                candidate = self._get(session, Candidate, current)
                chain.append(CandidateInfo.model_validate(candidate))
                current = candidate.parent_id
        return chain

    # LLM calls

    def record_llm_call(self, record: LLMCallRecord) -> int:
        with self.db.session(write=True) as session:
            self._get(session, Experiment, record.experiment_id)
            call = LLMCall(**record.model_dump())
            session.add(call)
            session.flush()
            return call.id

    def llm_call(self, call_id: int) -> LLMCallInfo:
        with self.db.session() as session:
            return LLMCallInfo.model_validate(self._get(session, LLMCall, call_id))

    # helpers

    def _get(self, session: Session, model: type, key: int):
        row = session.get(model, key)
        if row is None:
            what = {Candidate: "candidate", Experiment: "experiment", LLMCall: "LLM call"}.get(model, model.__name__)
            raise NotFound(f"no {what} with id {key} in the {self.db.describe()}")
        return row

    def _locked(self, session: Session, candidate_id: int) -> Candidate:
        """The candidate row, locked against other writers until the transaction ends."""
        candidate = session.get(Candidate, candidate_id, with_for_update=self.db.backend == "postgresql")
        if candidate is None:
            raise NotFound(f"no candidate with id {candidate_id} in the {self.db.describe()}")
        return candidate

    @staticmethod
    def _by_identity(session: Session, experiment_id: int, identity: str) -> Candidate | None:
        return session.scalar(select(Candidate).where(Candidate.experiment_id == experiment_id, Candidate.set_hash == identity))

    @staticmethod
    def _add_samples(session: Session, candidate_id: int, samples: Sequence[RunSample], stage: str) -> None:
        if samples:
            now = utcnow()
            session.execute(insert(Sample), [
                {"candidate_id": candidate_id, "stage": stage, "created_at": now, **sample.model_dump()} for sample in samples
            ])
