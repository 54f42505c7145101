"""The operations the search loop and the CLI perform on the lineage database.

Every method is one transaction. A finished evaluation (status, verdicts, samples, summary) is
committed at once or not at all, so a search killed at any moment resumes with every finished
evaluation kept and the unfinished ones requeued (`requeue_unfinished`), none twice.
Claiming is safe with several worker processes: FOR UPDATE SKIP LOCKED on PostgreSQL, a
BEGIN IMMEDIATE transaction on SQLite.
"""

import difflib
import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evaluator.results import Evaluation, RunSample, StageVerdict
from evolve.code_version import code_version
from evolve.database.canonical import source_hash
from evolve.database.connection import DEFAULT_URL, Database, parse_url, sqlite_path
from evolve.database.errors import DatabaseError
from evolve.database.migrate import check_schema
from evolve.database.models import (
    EXPERIMENT_STATUSES,
    FINISHED_STATUSES,
    Candidate,
    ChampionChange,
    Experiment,
    LLMCall,
    Sample,
    StageResult,
    utcnow,
)
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


class NotFound(DatabaseError):
    """No experiment or candidate with that name or id."""


def json_safe(value: Any) -> Any:
    """JSON that every backend accepts: pydantic models, paths and dates as JSON values, and
    infinities and NaN (e.g. the lower bound of a single run) as strings."""
    value = to_jsonable_python(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def unified_diff(before: str, after: str, before_name: str, after_name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile=before_name, tofile=after_name
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def verdict_of(evaluation: Evaluation) -> tuple[str, str | None]:
    """A one-line verdict and the error text: the first stage that did not pass decides."""
    stopped = next((s for s in evaluation.stages if s.status != "passed"), None)
    if stopped is None:
        return evaluation.status, None
    if evaluation.status == "evaluated":
        return f"evaluated, {stopped.stage} {stopped.status}", None
    return f"{evaluation.status} at {stopped.stage}", stopped.message or None


class Store:
    """The lineage database of every search: open it with `Store.open(url)`."""

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
    ) -> ExperimentInfo:
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
        """Store a candidate unless its canonical source is known; returns it and whether it is new."""
        digest = source_hash(new.source)
        with self.db.session(write=True) as session:
            existing = self._by_hash(session, new.experiment_id, new.component, digest)
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
                **new.model_dump(exclude={"diff"}), diff=diff, source_hash=digest, status="pending", flags=[], profile=None
            )
            try:
                with session.begin_nested():
                    session.add(candidate)
            except IntegrityError:
                # Another process stored the same program since we looked: return theirs.
                existing = self._by_hash(session, new.experiment_id, new.component, digest)
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

    def record_evaluation(self, candidate_id: int, evaluation: Evaluation) -> CandidateInfo:
        """Store the evaluator's verdicts, samples, summary and profile (when taken) in one transaction."""
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
            candidate.evaluated_at = utcnow()
            summary = evaluation.summary
            if summary is not None:
                candidate.score = summary.score
                candidate.time_mean = summary.time_mean
                candidate.accuracy_mean = summary.accuracy_mean
                candidate.accuracy_lower_bound = summary.accuracy_lower_bound
                candidate.runs = summary.runs
                candidate.summary = json_safe(summary.model_dump())
            for position, stage in enumerate(evaluation.stages):
                session.add(StageResult(candidate_id=candidate_id, position=position, **stage.model_dump()))
            self._add_samples(session, candidate_id, evaluation.samples, "timed")
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
        """On resume: candidates left running by a stopped search go back to pending."""
        with self.db.session(write=True) as session:
            result = session.execute(
                update(Candidate)
                .where(Candidate.experiment_id == experiment_id, Candidate.status == "running")
                .values(status="pending", claimed_by=None, claimed_at=None)
            )
            return result.rowcount

    def candidate(self, candidate_id: int) -> CandidateInfo:
        with self.db.session() as session:
            return CandidateInfo.model_validate(self._get(session, Candidate, candidate_id))

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

    # champions

    def record_champion(
        self, experiment_id: int, candidate_id: int, incumbent_id: int | None, statistics: dict[str, Any] | BaseModel
    ) -> ChampionInfo:
        """The candidate beat the incumbent (None for the first champion) in a paired comparison;
        `statistics` is that comparison (e.g. the evaluator's promotion decision), stored as JSON."""
        with self.db.session(write=True) as session:
            candidate = self._locked(session, candidate_id)
            if candidate.experiment_id != experiment_id:
                raise DatabaseError(f"candidate {candidate_id} belongs to another experiment than {experiment_id}")
            if candidate.status not in ("evaluated", "champion"):
                raise DatabaseError(f"candidate {candidate_id} is {candidate.status}: only an evaluated candidate can become champion")
            if incumbent_id is not None:
                incumbent = self._locked(session, incumbent_id)
                if incumbent.status == "champion":
                    incumbent.status = "evaluated"
            for other in session.scalars(
                select(Candidate).where(Candidate.experiment_id == experiment_id, Candidate.status == "champion")
            ):
                other.status = "evaluated"
            candidate.status = "champion"
            change = ChampionChange(
                experiment_id=experiment_id, candidate_id=candidate_id, incumbent_id=incumbent_id, statistics=json_safe(statistics)
            )
            session.add(change)
            session.flush()
            return ChampionInfo.model_validate(change)

    def current_champion(self, experiment_id: int) -> CandidateInfo | None:
        with self.db.session() as session:
            change = session.scalar(
                select(ChampionChange)
                .where(ChampionChange.experiment_id == experiment_id)
                .order_by(ChampionChange.id.desc())
                .limit(1)
            )
            return None if change is None else CandidateInfo.model_validate(session.get(Candidate, change.candidate_id))

    def champion_history(self, experiment_id: int) -> list[ChampionInfo]:
        query = select(ChampionChange).where(ChampionChange.experiment_id == experiment_id).order_by(ChampionChange.id)
        with self.db.session() as session:
            return [ChampionInfo.model_validate(c) for c in session.scalars(query)]

    # overview

    def spending(self, experiment_id: int) -> tuple[float, float]:
        """USD spent on LLM calls and seconds of device-side cascade stages so far, for budgets on resume."""
        device_stages = ("smoke", "timed", "profile")
        with self.db.session() as session:
            usd = session.scalar(select(func.coalesce(func.sum(LLMCall.cost), 0.0)).where(LLMCall.experiment_id == experiment_id))
            seconds = session.scalar(
                select(func.coalesce(func.sum(StageResult.seconds), 0.0))
                .join(Candidate, Candidate.id == StageResult.candidate_id)
                .where(Candidate.experiment_id == experiment_id, StageResult.stage.in_(device_stages))
            )
        return float(usd), float(seconds)

    def overview(self) -> list[ExperimentOverview]:
        """Each experiment with its candidates counted by status, best score and champion."""
        lines = []
        with self.db.session() as session:
            counts: dict[int, dict[str, int]] = {}
            for experiment_id, status, count in session.execute(
                select(Candidate.experiment_id, Candidate.status, func.count()).group_by(Candidate.experiment_id, Candidate.status)
            ):
                counts.setdefault(experiment_id, {})[status] = count
            best = {
                experiment_id: score
                for experiment_id, score in session.execute(
                    select(Candidate.experiment_id, func.max(Candidate.score)).group_by(Candidate.experiment_id)
                )
            }
            experiments = [ExperimentInfo.model_validate(e) for e in session.scalars(select(Experiment).order_by(Experiment.id))]
        for experiment in experiments:
            lines.append(
                ExperimentOverview(
                    experiment=experiment,
                    counts=counts.get(experiment.id, {}),
                    best_score=best.get(experiment.id),
                    champion=self.current_champion(experiment.id),
                )
            )
        return lines

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
    def _by_hash(session: Session, experiment_id: int, component: str, digest: str) -> Candidate | None:
        return session.scalar(
            select(Candidate).where(
                Candidate.experiment_id == experiment_id, Candidate.component == component, Candidate.source_hash == digest
            )
        )

    @staticmethod
    def _add_samples(session: Session, candidate_id: int, samples: Sequence[RunSample], stage: str) -> None:
        for sample in samples:
            session.add(Sample(candidate_id=candidate_id, stage=stage, **sample.model_dump()))
