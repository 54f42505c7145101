"""The operations the search loop and the CLI perform on the lineage database.

Every method is one transaction (the loop's hot writes on candidates are in
candidate_writes.py). A finished evaluation (status, verdicts, samples, summary) is committed at
once or not at all, so a search killed at any moment resumes with every finished evaluation kept
and the unfinished ones requeued (`requeue_unfinished`), none twice. Claiming is safe with
several worker processes: FOR UPDATE SKIP LOCKED on PostgreSQL, a BEGIN IMMEDIATE transaction
on SQLite.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evaluator.results import StageVerdict, Summary
from evolve.code_version import code_version
from evolve.database import DEFAULT_URL
from evolve.database.connection import Database, parse_url, sqlite_path
from evolve.database.errors import DatabaseError, NotFound
from evolve.database.migrate import check_schema
from evolve.database.champions import ChampionHistory
from evolve.database.models import (
    EXPERIMENT_STATUSES,
    Candidate,
    Experiment,
    LLMCall,
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
    StoredSample,
)
from evolve.database.candidate_writes import BY_IDS, CandidateWrites, candidate_info
from evolve.database.search_state import SearchState
from evolve.database.serialize import json_safe


def set_summary(candidate: Candidate, summary: Summary) -> None:
    """The summary columns the CLI's queries read, and the whole summary beside them."""
    candidate.score = summary.score
    candidate.time_mean = summary.time_mean
    candidate.accuracy_mean = summary.accuracy_mean
    candidate.accuracy_lower_bound = summary.accuracy_lower_bound
    candidate.runs = summary.runs
    candidate.summary = json_safe(summary.model_dump())


SOURCES = select(Candidate.id, Candidate.source).where(Candidate.id.in_(bindparam("ids", expanding=True)))
STAGES = (select(StageResult.stage, StageResult.status, StageResult.message, StageResult.seconds)
          .where(StageResult.candidate_id == bindparam("candidate")).order_by(StageResult.position))


class Store(CandidateWrites, SearchState, ChampionHistory):
    """The lineage database of every search: open it with `Store.open(url)`.

    Candidates and experiments here; the loop's writes on candidates in candidate_writes.py; the search's own state (seed set, proposals, promotion
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
        with self.db.reader() as reader:
            return reader.experiment(name)

    def experiments(self) -> list[ExperimentInfo]:
        with self.db.reader() as reader:
            return reader.experiments()

    def set_experiment_status(self, experiment_id: int, status: str) -> None:
        if status not in EXPERIMENT_STATUSES:
            raise ValueError(f"experiment status {status!r}: choose one of {', '.join(EXPERIMENT_STATUSES)}")
        with self.db.session(write=True) as session:
            experiment = self._get(session, Experiment, experiment_id)
            experiment.status = status
            experiment.finished_at = None if status == "running" else utcnow()

    # candidates (their writes: candidate_writes.py)

    def candidate(self, candidate_id: int) -> CandidateInfo:
        with self.db.reader() as reader:
            return reader.candidate(candidate_id)

    def prompt_material(
        self, ids: Sequence[int], source_ids: Sequence[int], stages_of: int | None
    ) -> tuple[dict[int, CandidateInfo], dict[int, str], list[StageVerdict]]:
        """What one proposal's prompt needs, in one transaction: the candidates shown, the module
        texts their sets take from other candidates (none when `source_ids` is empty), and the
        parent's cascade verdicts (none when `stages_of` is None: the loop keeps finished ones)."""
        with self.db.connect() as connection:
            candidates = {row.id: candidate_info(row) for row in connection.execute(BY_IDS, {"ids": list(ids)})}
            texts = dict(connection.execute(SOURCES, {"ids": list(source_ids)}).all()) if source_ids else {}
            stages = [StageVerdict.model_validate(row._asdict()) for row in connection.execute(STAGES, {"candidate": stages_of})] \
                if stages_of is not None else []
        return candidates, texts, stages

    def stages(self, candidate_id: int) -> list[StageVerdict]:
        with self.db.reader() as reader:
            return reader.stages(candidate_id)

    def component_set_sources(self, candidate_id: int) -> dict[str, str]:
        """The candidate's whole set: its stored seed set with the latest change along its ancestry (reader.py)."""
        with self.db.reader() as reader:
            return reader.component_set_sources(candidate_id)

    def candidates(self, experiment_id: int, status: str | Sequence[str] | None = None) -> list[CandidateInfo]:
        with self.db.reader() as reader:
            return reader.candidates(experiment_id, status)

    def top(self, experiment_id: int, k: int = 10) -> list[CandidateInfo]:
        """The k best scored candidates, best first."""
        with self.db.reader() as reader:
            return reader.top(experiment_id, k)

    def samples(self, candidate_id: int, stages: Sequence[str] | None = None, skip: int = 0) -> list[StoredSample]:
        """The candidate's samples in the order they were stored; `skip`: the first ones, read before."""
        with self.db.reader() as reader:
            return reader.samples(candidate_id, stages, skip)

    def samples_by_candidate(self, experiment_id: int, stages: Sequence[str] = ("timed",)) -> dict[int, list[StoredSample]]:
        """Every raw sample of an experiment's candidates, for rescoring without training."""
        with self.db.reader() as reader:
            return reader.samples_by_candidate(experiment_id, stages)

    def detail(self, candidate_id: int) -> CandidateDetail:
        with self.db.reader() as reader:
            return reader.detail(candidate_id)

    def ancestry(self, candidate_id: int) -> list[CandidateInfo]:
        """The candidate and its first parents back to the seed, the candidate first."""
        with self.db.reader() as reader:
            return reader.ancestry(candidate_id)

    # LLM calls

    def record_llm_call(self, record: LLMCallRecord) -> int:
        with self.db.session(write=True) as session:
            self._get(session, Experiment, record.experiment_id)
            call = LLMCall(**record.model_dump())
            session.add(call)
            session.flush()
            return call.id

    def llm_call(self, call_id: int) -> LLMCallInfo:
        with self.db.reader() as reader:
            return reader.llm_call(call_id)

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
