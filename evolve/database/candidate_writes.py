"""The search loop's hot writes on candidates, part of the Store (store.py): store a proposed
program, claim it, record its evaluation.

The loop makes these once per proposal, tens of thousands of times in a long search, so they are
SQLAlchemy Core statements, built once, on a bare connection (one round trip each, RETURNING the
row) rather than ORM sessions and unit-of-work flushes, which cost several times more CPU for the
same SQL. The guarantees are
the ORM version's: each method is one transaction; a finished evaluation (status, verdicts,
samples, summary, a queued promotion) is committed at once or not at all; a program whose
identity is known is never stored twice, even when another process stores it meanwhile; claiming
is safe with several worker processes (FOR UPDATE SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on
SQLite).
"""

import hashlib
from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from evaluator.results import Evaluation, RunSample, Summary
from evolve.database.canonical import source_hash
from evolve.database.errors import DatabaseError, NotFound
from evolve.database.models import FINISHED_STATUSES, Candidate, Experiment, PromotionRequest, Proposal, Sample, StageResult, utcnow
from evolve.database.records import CandidateInfo, NewCandidate
from evolve.database.serialize import json_safe, unified_diff

CANDIDATES = Candidate.__table__
COLUMNS = tuple(CANDIDATES.c)
C = CANDIDATES.c

# Built once: building a statement costs more CPU than running it on SQLite.
BY_IDENTITY = select(*COLUMNS).where(C.experiment_id == bindparam("experiment"), C.set_hash == bindparam("identity"))
BY_IDS = select(*COLUMNS).where(C.id.in_(bindparam("ids", expanding=True)))
PARENTS = select(C.id, C.experiment_id, C.component, C.source).where(C.id.in_(bindparam("ids", expanding=True)))
STATUS = select(C.status).where(C.id == bindparam("candidate"))
EXPERIMENT = select(Experiment.__table__.c.id).where(Experiment.__table__.c.id == bindparam("experiment"))
INSERT_CANDIDATE = insert(CANDIDATES).returning(*COLUMNS)
INSERT_PROPOSAL = insert(Proposal.__table__)
INSERT_STAGES = insert(StageResult.__table__)
INSERT_SAMPLES = insert(Sample.__table__)
INSERT_PROMOTION = insert(PromotionRequest.__table__)
FINISH = (update(CANDIDATES).where(C.id == bindparam("candidate"), C.status.not_in(FINISHED_STATUSES)).returning(*COLUMNS))


@lru_cache(maxsize=16)
def oldest_pending(backend: str, limit: int):
    query = select(C.id).where(C.experiment_id == bindparam("experiment"), C.status == "pending").order_by(C.id).limit(limit)
    return query.with_for_update(skip_locked=True) if backend == "postgresql" else query


CLAIM = (update(CANDIDATES).where(C.id.in_(bindparam("ids", expanding=True)), C.status == "pending")
         .values(status="running", claimed_by=bindparam("worker"), claimed_at=bindparam("now")).returning(*COLUMNS))


def candidate_info(row) -> CandidateInfo:
    """A CandidateInfo from a Core row of every candidate column."""
    return CandidateInfo.model_validate(dict(row._mapping))


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


def summary_columns(summary: Summary) -> dict:
    """The summary columns the CLI's queries read, and the whole summary beside them."""
    return {"score": summary.score, "time_mean": summary.time_mean, "accuracy_mean": summary.accuracy_mean,
            "accuracy_lower_bound": summary.accuracy_lower_bound, "runs": summary.runs, "summary": json_safe(summary.model_dump())}


class CandidateWrites:
    """Mixed into Store, which provides db."""

    def add_candidate(self, new: NewCandidate) -> tuple[CandidateInfo, bool]:
        """Store a candidate unless its identity is known; returns it and whether it is new."""
        with self.db.connect(write=True) as connection:
            return self._insert_candidate(connection, new)

    def _insert_candidate(self, connection: Connection, new: NewCandidate) -> tuple[CandidateInfo, bool]:
        digest = source_hash(new.source)
        identity = new.set_hash or single_component_key(new.component, digest)
        existing = self._by_identity(connection, new.experiment_id, identity)
        if existing is not None:
            return existing, False
        parent_ids = [p for p in (new.parent_id, new.second_parent_id) if p is not None]
        parents = {row.id: row for row in connection.execute(PARENTS, {"ids": parent_ids})} if parent_ids else {}
        for parent_id in parent_ids:
            if parent_id not in parents:
                raise NotFound(f"no candidate with id {parent_id} in the {self.db.describe()}")
            if parents[parent_id].experiment_id != new.experiment_id:
                raise DatabaseError(f"candidate {parent_id} belongs to another experiment: it cannot be a parent")
        if not parents and connection.execute(EXPERIMENT, {"experiment": new.experiment_id}).first() is None:
            raise NotFound(f"no experiment with id {new.experiment_id} in the {self.db.describe()}")
        diff = new.diff
        if diff is None:
            parent = parents.get(new.parent_id)
            same = parent is not None and parent.component == new.component
            diff = unified_diff(parent.source, new.source, f"{new.component} #{parent.id}", f"{new.component} (new)") if same else ""
        values = {**new.model_dump(exclude={"diff", "set_hash"}), "diff": diff, "source_hash": digest, "set_hash": identity,
                  "status": "pending", "flags": [], "profile": None, "created_at": utcnow()}
        if self.db.backend == "sqlite":  # BEGIN IMMEDIATE: no other writer between the look-up and the insert
            return candidate_info(connection.execute(INSERT_CANDIDATE, values).one()), True
        try:
            with connection.begin_nested():
                return candidate_info(connection.execute(INSERT_CANDIDATE, values).one()), True
        except IntegrityError:
            # Another process stored the same program since we looked: return theirs.
            existing = self._by_identity(connection, new.experiment_id, identity)
            if existing is None:
                raise
            return existing, False

    def claim_pending(self, experiment_id: int, limit: int = 1, worker: str = "") -> list[CandidateInfo]:
        """Mark up to `limit` pending candidates running, oldest first, for this worker only."""
        with self.db.connect(write=True) as connection:
            # Two statements: on PostgreSQL, UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) may run
            # its subquery more than once and claim more than n rows. The select locks the rows it returns.
            ids = list(connection.execute(oldest_pending(self.db.backend, limit), {"experiment": experiment_id}).scalars())
            if not ids:
                return []
            rows = connection.execute(CLAIM, {"ids": ids, "worker": worker or None, "now": utcnow()})
            return sorted((candidate_info(row) for row in rows), key=lambda c: c.id)

    def record_evaluation(self, candidate_id: int, evaluation: Evaluation, queue_promotion: bool = False) -> CandidateInfo:
        """Store the evaluator's verdicts, samples, summary and profile (when taken) in one transaction;
        with `queue_promotion`, the candidate's paired re-measurement is queued in the same one."""
        profile = evaluation.profile
        if evaluation.status not in ("evaluated", "rejected", "failed"):
            raise ValueError(f"evaluation status {evaluation.status!r}: expected evaluated, rejected or failed")
        verdict, error = verdict_of(evaluation)
        values = {
            "candidate": candidate_id, "status": evaluation.status, "verdict": verdict, "error": error,
            "flags": list(evaluation.flags), "profile": json_safe(profile) if profile is not None else None,
            "behaviour": dict(evaluation.behaviour) or None, "evaluated_at": utcnow(),
        }
        if evaluation.summary is not None:
            values.update(summary_columns(evaluation.summary))
        with self.db.connect(write=True) as connection:
            # The update locks the row (PostgreSQL; SQLite: BEGIN IMMEDIATE) and leaves a finished one alone.
            row = connection.execute(FINISH, values).one_or_none()
            if row is None:
                status = connection.execute(STATUS, {"candidate": candidate_id}).scalar()
                if status is None:
                    raise NotFound(f"no candidate with id {candidate_id} in the {self.db.describe()}")
                raise DatabaseError(f"candidate {candidate_id} was already evaluated ({status}): an evaluation is recorded once")
            if evaluation.stages:
                connection.execute(INSERT_STAGES, [
                    {"candidate_id": candidate_id, "position": position, **stage.model_dump()}
                    for position, stage in enumerate(evaluation.stages)
                ])
            self._add_samples(connection, candidate_id, evaluation.samples, "timed")
            candidate = candidate_info(row)
            if queue_promotion:
                connection.execute(INSERT_PROMOTION, {"experiment_id": candidate.experiment_id, "candidate_id": candidate_id,
                                                      "status": "queued", "gpu_seconds": 0.0, "created_at": utcnow()})
            return candidate

    def record_samples(self, candidate_id: int, samples: Sequence[RunSample], stage: str = "confirm") -> None:
        """Extra runs of an evaluated candidate, e.g. the paired runs against the champion."""
        if stage not in ("smoke", "timed", "confirm"):
            raise ValueError(f"sample stage {stage!r}: choose smoke, timed or confirm")
        with self.db.connect(write=True) as connection:
            if connection.execute(STATUS, {"candidate": candidate_id}).first() is None:
                raise NotFound(f"no candidate with id {candidate_id} in the {self.db.describe()}")
            self._add_samples(connection, candidate_id, samples, stage)

    def requeue_unfinished(self, experiment_id: int) -> int:
        """On resume: candidates and paired re-measurements left running by a stopped search go back
        to the queue; returns how many candidates."""
        with self.db.connect(write=True) as connection:
            result = connection.execute(
                update(CANDIDATES)
                .where(C.experiment_id == experiment_id, C.status == "running")
                .values(status="pending", claimed_by=None, claimed_at=None)
            )
            promotions = PromotionRequest.__table__
            connection.execute(
                update(promotions)
                .where(promotions.c.experiment_id == experiment_id, promotions.c.status == "running")
                .values(status="queued", started_at=None)
            )
            return result.rowcount

    def candidates_by_id(self, ids: Sequence[int]) -> dict[int, CandidateInfo]:
        """Several candidates in one query (the loop's prompts need a parent and its relatives)."""
        if not ids:
            return {}
        with self.db.connect() as connection:
            return {row.id: candidate_info(row) for row in connection.execute(BY_IDS, {"ids": list(ids)})}

    @staticmethod
    def _by_identity(connection: Connection, experiment_id: int, identity: str) -> CandidateInfo | None:
        row = connection.execute(BY_IDENTITY, {"experiment": experiment_id, "identity": identity}).one_or_none()
        return None if row is None else candidate_info(row)

    @staticmethod
    def _add_samples(connection, candidate_id: int, samples: Sequence[RunSample], stage: str) -> None:
        """On a Connection or a Session (the promotion's writes are ORM ones)."""
        if samples:
            now = utcnow()
            connection.execute(INSERT_SAMPLES, [
                {"candidate_id": candidate_id, "stage": stage, "created_at": now, **sample.model_dump()} for sample in samples
            ])
