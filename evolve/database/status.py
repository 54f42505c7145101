"""Where a search stands, read from the database alone: for `evolve status` (a search running in
another terminal or on another machine) and for counters that continue across `--resume`.

Only what the database holds is shown: a running candidate's stage and run number live in the
process that runs it (the live panel has them), so from here a running job shows when it was claimed.
"""

from collections import Counter
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from evolve.database.reader import Reader, marks, reading
from evolve.database.records import ExperimentInfo

if TYPE_CHECKING:
    from evolve.database.store import Store

FINISHED = ("evaluated", "champion", "rejected", "failed")
DEVICE_STAGES = ("smoke", "timed", "profile")  # the cascade stages that run on the device (search_state.py)


class ClaimedJob(BaseModel):
    candidate_id: int
    component: str
    claimed_by: str | None
    claimed_at: datetime | None


class ChampionStep(BaseModel):
    candidate_id: int
    time_mean: float | None
    accuracy_mean: float | None
    at: datetime


class ExperimentStatus(BaseModel):
    experiment: ExperimentInfo
    counts: dict[str, int] = Field(description="candidates by status")
    proposed: int = Field(description="candidates proposed (the seed not counted)")
    evaluated: int = Field(description="candidates that passed the cascade, the seed included")
    rejections: dict[str, int] = Field(description="verdict -> count over rejected and failed candidates")
    generation: int = Field(description="highest generation proposed so far")
    running: list[ClaimedJob]
    champions: list[ChampionStep] = Field(description="every champion in order, the current one last")
    device_seconds: float = Field(description="seconds of device-side cascade stages (smoke, timed, profile)")
    usd: float
    tokens: int
    evaluation_seconds: list[float] = Field(description="wall seconds of each finished candidate's cascade, oldest first")
    promotion_seconds: list[float] = Field(description="seconds of each successful paired re-measurement")
    last_activity: datetime | None


def experiment_status(store: "Store | Reader", experiment: ExperimentInfo) -> ExperimentStatus:
    """One experiment's progress, spending and champion history, in a handful of queries (plain SQL: reader.py)."""
    with reading(store) as reader:
        rows = [SimpleNamespace(**row) for row in reader.rows(
            "SELECT id, component, origin, status, verdict, generation, claimed_by, claimed_at, evaluated_at, time_mean, "
            "accuracy_mean, created_at FROM candidates WHERE experiment_id = ? ORDER BY id", experiment.id)]
        stage_seconds = {row["candidate_id"]: row["seconds"] for row in reader.rows(
            "SELECT s.candidate_id, sum(s.seconds) AS seconds FROM stage_results s JOIN candidates c ON c.id = s.candidate_id "
            "WHERE c.experiment_id = ? GROUP BY s.candidate_id", experiment.id)}
        device_seconds = reader.value(
            "SELECT coalesce(sum(s.seconds), 0.0) FROM stage_results s JOIN candidates c ON c.id = s.candidate_id "
            f"WHERE c.experiment_id = ? AND s.stage IN ({marks(DEVICE_STAGES)})", experiment.id, *DEVICE_STAGES)
        usd, tokens_in, tokens_out, last_call = reader.rows(
            "SELECT coalesce(sum(cost), 0.0) AS usd, coalesce(sum(tokens_in), 0) AS tokens_in, "
            "coalesce(sum(tokens_out), 0) AS tokens_out, max(created_at) AS last_call FROM llm_calls WHERE experiment_id = ?",
            experiment.id)[0].values()
        changes = [(c.candidate_id, c.incumbent_id, c.statistics or {}, c.created_at) for c in reader.champion_history(experiment.id)]
    by_id = {r.id: r for r in rows}
    counts = Counter(r.status for r in rows)
    rejections = Counter(r.verdict or r.status for r in rows if r.status in ("rejected", "failed"))
    champions = [
        ChampionStep(candidate_id=cid, time_mean=by_id[cid].time_mean, accuracy_mean=by_id[cid].accuracy_mean, at=at)
        for cid, _, _, at in changes if cid in by_id
    ]
    promotion_seconds = [float(s["seconds"]) for _, incumbent, s, _ in changes
                         if incumbent is not None and isinstance(s.get("seconds"), (int, float))]
    # Datetimes come back as text from SQLite (one format, so the latest sorts last) and as datetimes from PostgreSQL.
    times = [t for r in rows for t in (r.created_at, r.claimed_at, r.evaluated_at) if t is not None]
    latest = max(times, default=None)
    latest = [stored_time(t) for t in (latest, last_call) if t is not None]
    return ExperimentStatus(
        experiment=experiment,
        counts=dict(counts),
        proposed=sum(1 for r in rows if r.origin != "seed"),
        evaluated=counts["evaluated"] + counts["champion"],
        rejections=dict(rejections),
        generation=max((r.generation for r in rows), default=0),
        running=[ClaimedJob(candidate_id=r.id, component=r.component, claimed_by=r.claimed_by, claimed_at=r.claimed_at)
                 for r in rows if r.status == "running"],
        champions=champions,
        device_seconds=float(device_seconds or 0.0),
        usd=float(usd or 0.0),
        tokens=int(tokens_in or 0) + int(tokens_out or 0),
        evaluation_seconds=[float(stage_seconds[r.id]) for r in rows if r.status in FINISHED and r.id in stage_seconds],
        promotion_seconds=promotion_seconds,
        last_activity=max(latest, default=None),
    )


def stored_time(value: datetime | str) -> datetime:
    """A stored time as an aware datetime (SQLite: text; both: UTC when naive)."""
    return aware(datetime.fromisoformat(value) if isinstance(value, str) else value)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def champion_line(champions: list[ChampionStep], limit: int = 6) -> str:
    """`#0 12.31 s 93.1% -> #7 11.90 s 93.4%`: the champion's history in one line (the oldest elided)."""
    steps = [
        f"#{c.candidate_id}" + (f" {c.time_mean:.2f} s" if c.time_mean is not None else "")
        + (f" {100 * c.accuracy_mean:.1f}%" if c.accuracy_mean is not None else "")
        for c in champions
    ]
    if len(steps) > limit:
        steps = [steps[0], "..."] + steps[-(limit - 1):]
    return " -> ".join(steps) or "-"
