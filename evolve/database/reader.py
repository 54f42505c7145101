"""The lineage database's reads, in plain SQL on the DB-API driver (sqlite3 or psycopg).

One implementation of every read that the inspection commands make, shared with the Store (its
read methods call these through `Database.reader()`, on a connection of its SQLAlchemy pool),
so that the commands can open the database without SQLAlchemy: importing SQLAlchemy, its ORM and
the table models is about 0.3 s of a command's start-up, the reads themselves milliseconds
(docs/BENCHMARKS.md, "CLI start-up"). Rows come back as the pydantic records of records.py.

`Reader.open(url)` opens an existing database for reading only (SQLite `query_only`, a PostgreSQL
read-only session) and accepts it only at this package's schema revision; for anything else it
hands over to the Store's full check, whose message names the fix.
"""

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from evaluator.results import StageVerdict
from evolve.database.errors import DatabaseError, NotFound
from evolve.database.location import Location, explain, locate, missing_sqlite
from evolve.database.records import (
    CandidateDetail,
    CandidateInfo,
    ChampionInfo,
    DecisionInfo,
    ExperimentInfo,
    ExperimentOverview,
    LLMCallInfo,
    StoredSample,
)

if TYPE_CHECKING:
    from evolve.database.store import Store

HEAD_REVISION = "0005"  # the newest migration; migrate.py and tests/test_database.py check it against Alembic's head
JSON_COLUMNS = frozenset({"components", "config", "inspiration_ids", "summary", "flags", "profile", "behaviour",
                          "statistics", "decision"})
CANDIDATE_COLUMNS = ", ".join(CandidateInfo.model_fields)
EXPERIMENT_COLUMNS = ", ".join(ExperimentInfo.model_fields)
SAMPLE_COLUMNS = ", ".join(StoredSample.model_fields)
LLM_CALL_COLUMNS = ", ".join(LLMCallInfo.model_fields)
CHAMPION_COLUMNS = ", ".join(ChampionInfo.model_fields)
DECISION_COLUMNS = ", ".join(DecisionInfo.model_fields)


def marks(values: Sequence[object]) -> str:
    """`?, ?, ?`: one placeholder per value of an IN list."""
    return ", ".join("?" * len(values))


class Reader:
    """Reads over one DB-API connection; every method one or a few queries."""

    def __init__(self, connection: Any, backend: str, where: str, busy_timeout: float = 30.0) -> None:
        self.connection = connection
        self.backend = backend
        self.where = where  # the database, described for messages
        self.busy_timeout = busy_timeout

    @classmethod
    @contextmanager
    def open(cls, url: str, busy_timeout: float = 30.0) -> Iterator["Reader"]:
        """The existing database at url, read-only, at this package's schema; closed after the block."""
        location = locate(url)
        reader = cls(connect(location, busy_timeout), location.backend, location.describe(), busy_timeout)
        try:
            reader.check_schema(url)
            yield reader
        finally:
            reader.connection.close()

    # the connection

    def table(self, sql: str, *params: object) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The column names and rows of one query, as the driver returns them; `?` placeholders on both backends."""
        if self.backend == "postgresql":
            sql = sql.replace("?", "%s")
        with self.translated():
            cursor = self.connection.cursor()
            try:
                cursor.execute(sql, params)
                return [column[0] for column in cursor.description], cursor.fetchall()
            finally:
                cursor.close()

    def rows(self, sql: str, *params: object) -> list[dict[str, Any]]:
        """The rows of one query as dicts, JSON columns decoded."""
        names, found = self.table(sql, *params)
        result = [dict(zip(names, row)) for row in found]
        for name in JSON_COLUMNS.intersection(names):  # SQLite hands back JSON columns as text, psycopg as values
            for row in result:
                if isinstance(row[name], str):
                    row[name] = json.loads(row[name])
        return result

    def value(self, sql: str, *params: object) -> Any:
        """The first column of the first row, None without rows."""
        found = self.rows(sql, *params)
        return next(iter(found[0].values())) if found else None

    @contextmanager
    def translated(self) -> Iterator[None]:
        """The driver's errors as one DatabaseError naming the fix (location.explain)."""
        errors = driver_errors(self.backend)
        try:
            yield
        except errors as e:
            original = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise explain(original, self.backend, self.where, self.busy_timeout, is_operational(e)) from e

    def check_schema(self, url: str) -> None:
        """Accept a database at HEAD_REVISION; anything else goes through the Store's full check (migrate.py)."""
        if self.backend == "sqlite":
            tables = self.rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
        else:
            tables = self.rows("SELECT table_name FROM information_schema.tables "
                               "WHERE table_schema = current_schema() AND table_name = 'alembic_version'")
        if tables and self.value("SELECT version_num FROM alembic_version") == HEAD_REVISION:
            return
        from evolve.database.store import Store  # the unusual case: its message says what is wrong and the fix

        Store.open(url, create=False).close()
        raise DatabaseError(f"the {self.where} is not at schema revision {HEAD_REVISION}")

    # experiments

    def experiment(self, name: str | None = None) -> ExperimentInfo:
        """The experiment of that name (or numeric id); the most recent one when None."""
        select = f"SELECT {EXPERIMENT_COLUMNS} FROM experiments"
        if name is None:
            found = self.rows(f"{select} ORDER BY id DESC LIMIT 1")
            if not found:
                raise NotFound(f"the {self.where} holds no experiment yet: run a search first")
            return ExperimentInfo.model_validate(found[0])
        found = self.rows(f"{select} WHERE name = ?", name)
        if not found and name.isdigit():
            found = self.rows(f"{select} WHERE id = ?", int(name))
        if not found:
            raise NotFound(f"no experiment named {name!r} in the {self.where}: `evolve experiments` lists them")
        return ExperimentInfo.model_validate(found[0])

    def experiments(self) -> list[ExperimentInfo]:
        return [ExperimentInfo.model_validate(row) for row in self.rows(f"SELECT {EXPERIMENT_COLUMNS} FROM experiments ORDER BY id")]

    def overview(self) -> list[ExperimentOverview]:
        """Each experiment with its candidates counted by status, best score and champion."""
        counts: dict[int, dict[str, int]] = {}
        for row in self.rows("SELECT experiment_id, status, count(*) AS n FROM candidates GROUP BY experiment_id, status"):
            counts.setdefault(row["experiment_id"], {})[row["status"]] = row["n"]
        best = {row["experiment_id"]: row["best"]
                for row in self.rows("SELECT experiment_id, max(score) AS best FROM candidates GROUP BY experiment_id")}
        return [ExperimentOverview(experiment=e, counts=counts.get(e.id, {}), best_score=best.get(e.id),
                                   champion=self.current_champion(e.id)) for e in self.experiments()]

    def seed_sources(self, experiment_id: int, *, required: bool = True) -> dict[str, str]:
        """Component -> module text of the set the experiment started from; empty, when not
        `required`, for an experiment created without one (views of databases made before)."""
        sources = {row["component"]: row["source"] for row in self.rows(
            "SELECT component, source FROM seed_components WHERE experiment_id = ? ORDER BY id", experiment_id)}
        if not sources and required:
            raise DatabaseError(
                f"experiment {experiment_id} has no stored seed set: it was created without one (Store.create_experiment "
                "takes seed_sources); start the search again with `evolve start`"
            )
        return sources

    # candidates

    def candidate(self, candidate_id: int) -> CandidateInfo:
        found = self.rows(f"SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE id = ?", candidate_id)
        if not found:
            raise NotFound(f"no candidate with id {candidate_id} in the {self.where}")
        return CandidateInfo.model_validate(found[0])

    def candidates(self, experiment_id: int, status: str | Sequence[str] | None = None) -> list[CandidateInfo]:
        statuses = [] if status is None else [status] if isinstance(status, str) else list(status)
        where = f" AND status IN ({marks(statuses)})" if statuses else ""
        return [CandidateInfo.model_validate(row) for row in self.rows(
            f"SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE experiment_id = ?{where} ORDER BY id", experiment_id, *statuses)]

    def top(self, experiment_id: int, k: int = 10) -> list[CandidateInfo]:
        """The k best scored candidates, best first."""
        return [CandidateInfo.model_validate(row) for row in self.rows(
            f"SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE experiment_id = ? AND score IS NOT NULL "
            "ORDER BY score DESC, id LIMIT ?", experiment_id, k)]

    def ancestry(self, candidate_id: int) -> list[CandidateInfo]:
        """The candidate and its first parents back to the seed, the candidate first."""
        chain: list[CandidateInfo] = []
        current: int | None = candidate_id
        while current is not None:
            chain.append(self.candidate(current))
            current = chain[-1].parent_id
        return chain

    def component_set_sources(self, candidate_id: int) -> dict[str, str]:
        """The candidate's whole set: its experiment's stored seed set with, for each component,
        the most recent change along its ancestry."""
        chain = self.ancestry(candidate_id)
        sources = self.seed_sources(chain[0].experiment_id)
        for ancestor in reversed(chain):
            if ancestor.origin != "seed":
                sources[ancestor.component] = ancestor.source
        return sources

    def stages(self, candidate_id: int) -> list[StageVerdict]:
        return [StageVerdict.model_validate(row) for row in self.rows(
            "SELECT stage, status, message, seconds FROM stage_results WHERE candidate_id = ? ORDER BY position", candidate_id)]

    def samples(self, candidate_id: int, stages: Sequence[str] | None = None, skip: int = 0) -> list[StoredSample]:
        """The candidate's samples in the order they were stored; `skip`: the first ones, read before (samples are
        only ever added)."""
        stages = list(stages) if stages is not None else []
        where = f" AND stage IN ({marks(stages)})" if stages else ""
        found = self.rows(f"SELECT {SAMPLE_COLUMNS} FROM samples WHERE candidate_id = ?{where} ORDER BY id", candidate_id, *stages)
        return [StoredSample.model_validate(row) for row in found[skip:]]

    def samples_by_candidate(self, experiment_id: int, stages: Sequence[str] = ("timed",)) -> dict[int, list[StoredSample]]:
        """Every raw sample of an experiment's candidates, for rescoring without training."""
        stages = list(stages)
        grouped: dict[int, list[StoredSample]] = {}
        for row in self.rows(
            f"SELECT s.candidate_id, {', '.join('s.' + c for c in StoredSample.model_fields)} FROM samples s "
            f"JOIN candidates c ON c.id = s.candidate_id WHERE c.experiment_id = ? AND s.stage IN ({marks(stages)}) "
            "ORDER BY s.id", experiment_id, *stages,
        ):
            grouped.setdefault(row.pop("candidate_id"), []).append(StoredSample.model_validate(row))
        return grouped

    def llm_call(self, call_id: int) -> LLMCallInfo:
        found = self.rows(f"SELECT {LLM_CALL_COLUMNS} FROM llm_calls WHERE id = ?", call_id)
        if not found:
            raise NotFound(f"no LLM call with id {call_id} in the {self.where}")
        return LLMCallInfo.model_validate(found[0])

    def detail(self, candidate_id: int) -> CandidateDetail:
        candidate = self.candidate(candidate_id)
        return CandidateDetail(
            candidate=candidate, stages=self.stages(candidate_id), samples=self.samples(candidate_id),
            llm_call=self.llm_call(candidate.llm_call_id) if candidate.llm_call_id is not None else None,
        )

    def proposals_from(self, parent_id: int) -> dict[str, int]:
        """What came of the proposals made from this parent, by outcome (new, duplicate, near-copy, unusable)."""
        return {row["outcome"]: row["n"] for row in self.rows(
            "SELECT outcome, count(*) AS n FROM proposals WHERE parent_id = ? GROUP BY outcome", parent_id)}

    # champions and promotion decisions

    def champion_history(self, experiment_id: int) -> list[ChampionInfo]:
        return [ChampionInfo.model_validate(row) for row in self.rows(
            f"SELECT {CHAMPION_COLUMNS} FROM champion_changes WHERE experiment_id = ? ORDER BY id", experiment_id)]

    def current_champion(self, experiment_id: int) -> CandidateInfo | None:
        champion = self.value("SELECT candidate_id FROM champion_changes WHERE experiment_id = ? ORDER BY id DESC LIMIT 1",
                              experiment_id)
        return None if champion is None else self.candidate(champion)

    def decisions(self, experiment_id: int | None = None, candidate_id: int | None = None) -> list[DecisionInfo]:
        """An experiment's decisions, or those a candidate took part in (on either side), oldest first."""
        conditions, params = [], []
        if experiment_id is not None:
            conditions.append("experiment_id = ?")
            params.append(experiment_id)
        if candidate_id is not None:
            conditions.append("(candidate_id = ? OR incumbent_id = ?)")
            params += [candidate_id, candidate_id]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return [DecisionInfo.model_validate(row) for row in self.rows(
            f"SELECT {DECISION_COLUMNS} FROM promotion_decisions{where} ORDER BY id", *params)]

    def lost_comparisons(self, experiment_id: int) -> dict[int, DecisionInfo]:
        """Candidates whose latest paired comparison did not promote them, with that decision."""
        latest = {d.candidate_id: d for d in self.decisions(experiment_id)}
        return {cid: d for cid, d in latest.items() if not d.promoted}


@contextmanager
def reading(source: "Reader | Store") -> Iterator[Reader]:
    """A Reader over `source`: itself, or one on a connection of the Store's pool."""
    if isinstance(source, Reader):
        yield source
        return
    with source.db.reader() as reader:
        yield reader


def connect(location: Location, busy_timeout: float) -> Any:
    """A read-only DB-API connection to an existing database."""
    where = location.describe()
    if location.backend == "sqlite":
        path = location.sqlite_path
        if not path.exists():
            raise missing_sqlite(path)
        try:  # mode=rw: never creates a file (one deleted since the check fails instead)
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=busy_timeout)
            connection.execute("PRAGMA query_only=ON")
            connection.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        except sqlite3.Error as e:
            raise explain(str(e), "sqlite", where, busy_timeout, isinstance(e, sqlite3.OperationalError)) from e
        return connection
    import psycopg  # only for PostgreSQL URLs (about 0.1 s)

    try:
        connection = psycopg.connect(location.libpq_uri, connect_timeout=10)
    except psycopg.Error as e:
        original = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise explain(original, "postgresql", where, busy_timeout, isinstance(e, psycopg.OperationalError)) from e
    connection.read_only = True
    return connection


def driver_errors(backend: str) -> tuple[type[Exception], ...]:
    if backend == "sqlite":
        return (sqlite3.Error,)
    import psycopg

    return (psycopg.Error,)


def is_operational(error: Exception) -> bool:
    if isinstance(error, sqlite3.Error):
        return isinstance(error, sqlite3.OperationalError)
    import psycopg

    return isinstance(error, psycopg.OperationalError)
