"""Every read the web UI makes of the lineage database, in one place.

The UI opens the database read-only (`open_read_only`) and goes through the Store where the Store
has the query; the few queries the Store lacks (light rows for thousands of candidates, a change
fingerprint for live refresh, the promotion's paired samples) are here. Data the schema does not
hold yet (a decision that did not promote, change descriptions) comes back as None, and the pages
say "not recorded".
"""

import math
import shlex
import sqlite3
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, create_engine, event, func, or_, select, true
from sqlalchemy.engine import URL
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from evolve.database.connection import Database, parse_url, sqlite_path
from evolve.database.errors import DatabaseError
from evolve.database.migrate import check_schema
from evolve.database.models import FINISHED_STATUSES, Candidate, ChampionChange, Experiment, Sample, StageResult
from evolve.database.reader import reading
from evolve.database.records import CandidateDetail, ChampionInfo, ExperimentOverview, StoredSample
from evolve.database.store import Store


class ReadOnlyDatabase(Database):
    """A Database whose connections cannot write: SQLite opened with mode=ro and query_only,
    PostgreSQL sessions in read-only transactions. No pragma that writes (journal_mode) is sent."""

    def __init__(self, url: URL, busy_timeout: float = 10.0) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        if url.get_backend_name() == "sqlite":
            path = sqlite_path(url).resolve()
            if not path.exists():
                raise DatabaseError(f"there is no database at {path}: run a search first, or pass --db URL of one")
            uri = f"{path.as_uri()}?mode=ro"
            engine = create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False),
                poolclass=QueuePool,
            )

            @event.listens_for(engine, "connect")
            def _read_only(dbapi_connection, _record) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA query_only=ON")
                cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
                cursor.close()
        else:
            engine = create_engine(
                url, pool_pre_ping=True, connect_args={"connect_timeout": 10}, execution_options={"postgresql_readonly": True}
            )
        self.engine = engine
        self._write_engine = engine  # writing is impossible: "write" sessions are read-only too
        self._read = self._write = sessionmaker(engine, expire_on_commit=False)


def open_read_only(url: str) -> Store:
    """The existing database at url, for reading only; refuses a missing, empty or foreign one."""
    database = ReadOnlyDatabase(parse_url(url))
    try:
        check_schema(database, create=False)
    except BaseException:
        database.dispose()
        raise
    return Store(database)


class ExperimentRow(BaseModel):
    """One experiment on the experiments page."""

    overview: ExperimentOverview
    llm_usd: float
    gpu_hours: float
    budget_usd: float | None
    budget_gpu_hours: float | None
    seed_set: str


class Node(BaseModel):
    """One candidate without its source: what the plot, the tree and the filters need."""

    id: int
    parent_id: int | None
    second_parent_id: int | None
    component: str
    origin: str
    status: str
    island: int
    generation: int
    score: float | None
    time_mean: float | None
    accuracy_mean: float | None
    verdict: str | None
    created_at: datetime
    evaluated_at: datetime | None


class Promotion(BaseModel):
    """A paired comparison this candidate took part in, with both sides' confirm samples."""

    role: str  # "candidate" (it was promoted) or "incumbent" (it was replaced)
    change: ChampionInfo
    candidate_samples: list[StoredSample]
    incumbent_samples: list[StoredSample]


class Comparison(BaseModel):
    """A paired comparison that did not promote: both sides' samples, the verdict not stored."""

    incumbent_id: int | None
    candidate_samples: list[StoredSample]
    incumbent_samples: list[StoredSample]


class CandidatePage(BaseModel):
    detail: CandidateDetail
    experiment_name: str
    children: list[Node]
    promotions: list[Promotion]
    comparison: Comparison | None
    export_command: str


def utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def experiments(store: Store) -> list[ExperimentRow]:
    rows = []
    for line in store.overview():
        usd, seconds = store.spending(line.experiment.id)
        config = line.experiment.config
        rows.append(
            ExperimentRow(
                overview=line,
                llm_usd=usd,
                gpu_hours=seconds / 3600,
                budget_usd=config.get("budget_usd"),
                budget_gpu_hours=config.get("budget_gpu_hours"),
                seed_set=str(config.get("seed_set") or line.experiment.baseline),
            )
        )
    return rows


TIMES = ("created_at", "evaluated_at")


def epoch_ms(column: str, backend: str) -> str:
    """SQL for a stored time in milliseconds since the epoch (to the millisecond), computed by the database
    (SQLite keeps UTC text, PostgreSQL timestamps with their zone)."""
    if backend == "sqlite":
        return f"CAST(round((julianday({column}) - 2440587.5) * 86400000.0) AS INTEGER) AS {column}"
    return f"CAST(round(extract(epoch from {column}) * 1000) AS BIGINT) AS {column}"


def node_table(store: Store, experiment_id: int, parent_id: int | None = None,
               times_in_ms: bool = False) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Light rows (no source, no diff), column names and tuples as the driver returns them, in plain SQL
    (reader.py): at 10,000 candidates the ORM and a pydantic model per row took 0.4 s of every poll, this
    a few tens of ms. `times_in_ms`: created_at and evaluated_at as epoch milliseconds."""
    with reading(store) as reader:
        columns = ", ".join(epoch_ms(name, reader.backend) if times_in_ms and name in TIMES else name for name in Node.model_fields)
        sql = f"SELECT {columns} FROM candidates WHERE experiment_id = ?"
        params: list[int] = [experiment_id]
        if parent_id is not None:
            sql, params = sql + " AND parent_id = ?", params + [parent_id]
        return reader.table(sql + " ORDER BY id", *params)


def nodes(store: Store, experiment_id: int, parent_id: int | None = None) -> list[Node]:
    """The candidates as Node records (the candidate page's children)."""
    names, rows = node_table(store, experiment_id, parent_id)
    result = []
    for row in rows:
        node = Node.model_validate(dict(zip(names, row)))
        node.created_at, node.evaluated_at = utc(node.created_at), utc(node.evaluated_at)
        result.append(node)
    return result


def finite_row(row: tuple[Any, ...]) -> tuple[Any, ...] | list[Any]:
    """The row with infinite numbers (a single run's bound) as null, which strict JSON can carry."""
    if all(not isinstance(v, float) or math.isfinite(v) for v in row):
        return row
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in row]


def experiment_data(store: Store, experiment_id: int) -> dict[str, Any]:
    """The experiment page's live data, JSON-ready: every candidate as a row of `columns` (times in epoch
    milliseconds, infinite numbers as null; rows rather than objects halve the response, 1.5 MB at
    10,000 candidates), the champion history and the champion's path."""
    names, rows = node_table(store, experiment_id, times_in_ms=True)
    rows = [finite_row(row) for row in rows]
    champions = store.champion_history(experiment_id)
    at, parent = names.index("id"), names.index("parent_id")
    parents = {row[at]: row[parent] for row in rows}
    path: list[int] = []
    current = champions[-1].candidate_id if champions else None
    while current is not None and current in parents and current not in path:
        path.append(current)
        current = parents[current]
    for change in champions:
        change.created_at = utc(change.created_at)
    return {"columns": names, "nodes": rows, "champions": [c.model_dump(mode="json") for c in champions], "champion_path": path}


def fingerprint(store: Store, experiment_id: int | None = None, candidate_id: int | None = None) -> str:
    """Changes whenever anything a page shows changes: new candidates, claims, verdicts, samples,
    champions, experiments and their status; scoped to one experiment, or to one candidate and its
    children, so that a page refreshes only for its own news. One cheap query, polled by every page."""
    def count_where(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    if candidate_id is not None:
        scope = or_(Candidate.id == candidate_id, Candidate.parent_id == candidate_id)
    elif experiment_id is not None:
        scope = Candidate.experiment_id == experiment_id
    else:
        scope = true()
    in_scope = select(Candidate.id).where(scope)
    changes = select(func.max(ChampionChange.id))
    if experiment_id is not None:
        changes = changes.where(ChampionChange.experiment_id == experiment_id)
    query = select(
        select(func.count(Candidate.id)).where(scope).scalar_subquery(),
        select(func.max(Candidate.id)).where(scope).scalar_subquery(),
        select(count_where(Candidate.status.in_(FINISHED_STATUSES))).where(scope).scalar_subquery(),
        select(count_where(Candidate.status == "running")).where(scope).scalar_subquery(),
        select(func.max(Sample.id)).where(Sample.candidate_id.in_(in_scope)).scalar_subquery(),
        select(func.max(StageResult.id)).where(StageResult.candidate_id.in_(in_scope)).scalar_subquery(),
        changes.scalar_subquery(),
        select(func.count(Experiment.id)).scalar_subquery(),
        select(count_where(Experiment.status == "running")).scalar_subquery(),
    )
    with store.db.session() as session:
        values = session.execute(query).one()
    return "-".join(str(v if v is not None else 0) for v in values)


def export_command(candidate_id: int, db_url: str) -> str:
    """The command that writes this candidate as a standalone script (the password left out)."""
    url = parse_url(db_url).render_as_string(hide_password=True)
    db = "" if db_url == "sqlite:///evolve.db" else f" --db {shlex.quote(url)}"
    return f"evolve export --candidate {candidate_id}{db} -o speedrun_{candidate_id}.py"


def paired_samples(store: Store, candidate_id: int, incumbent_id: int | None) -> tuple[list[StoredSample], list[StoredSample]]:
    """Both sides' confirm samples of one paired comparison.

    The loop stores the candidate's paired runs, then the incumbent's: the incumbent's samples of
    this comparison are its first confirm samples stored after the candidate's last one.
    (A promotion-decisions table, once there is one, should replace this reconstruction.)"""
    candidate = store.samples(candidate_id, ["confirm"])
    if incumbent_id is None or not candidate:
        return candidate, []
    with store.db.session() as session:
        last = session.scalar(select(func.max(Sample.id)).where(Sample.candidate_id == candidate_id, Sample.stage == "confirm"))
        rows = session.scalars(
            select(Sample)
            .where(Sample.candidate_id == incumbent_id, Sample.stage == "confirm", Sample.id > last)
            .order_by(Sample.id)
            .limit(len(candidate))
        )
        incumbent = [StoredSample.model_validate(s) for s in rows]
    return candidate, incumbent


def unpromoted_comparison(store: Store, detail: CandidateDetail) -> Comparison | None:
    """The paired runs of a candidate that was compared and not promoted, against the champion of
    that moment (the last champion change before its paired runs)."""
    confirm = [s for s in detail.samples if s.stage == "confirm"]
    if not confirm:
        return None
    with store.db.session() as session:
        incumbent = session.scalar(
            select(ChampionChange.candidate_id)
            .where(ChampionChange.experiment_id == detail.candidate.experiment_id,
                   ChampionChange.created_at <= confirm[0].created_at,
                   ChampionChange.candidate_id != detail.candidate.id)
            .order_by(ChampionChange.id.desc())
            .limit(1)
        )
    ours, theirs = paired_samples(store, detail.candidate.id, incumbent)
    return Comparison(incumbent_id=incumbent, candidate_samples=ours, incumbent_samples=theirs)


def candidate_page(store: Store, candidate_id: int, db_url: str) -> CandidatePage:
    detail = store.detail(candidate_id)
    candidate = detail.candidate
    with store.db.session() as session:
        name = session.scalar(select(Experiment.name).where(Experiment.id == candidate.experiment_id)) or ""
    promotions = []
    for change in store.champion_history(candidate.experiment_id):
        if candidate_id not in (change.candidate_id, change.incumbent_id):
            continue
        ours, theirs = paired_samples(store, change.candidate_id, change.incumbent_id)
        role = "candidate" if change.candidate_id == candidate_id else "incumbent"
        promotions.append(Promotion(role=role, change=change, candidate_samples=ours, incumbent_samples=theirs))
    return CandidatePage(
        detail=detail,
        experiment_name=name,
        children=nodes(store, candidate.experiment_id, parent_id=candidate_id),
        promotions=promotions,
        comparison=None if any(p.role == "candidate" for p in promotions) else unpromoted_comparison(store, detail),
        export_command=export_command(candidate_id, db_url),
    )

