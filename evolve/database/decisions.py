"""Promotion decisions, champion records and noise calibrations in the lineage database.

Kept beside the Store rather than in it: these are the promotion rule's reads and writes
(evaluator/promotion_policy/rule.py), one transaction each like every Store method.

- Every paired comparison is stored, promoted or not, with both sides' samples, the tests and
  the error budget it spent; the count of those that spent budget numbers the next attempt.
- A candidate's record is all its samples (screening and confirmation): after a comparison both
  sides' stored summaries are recomputed from it, so the champion never keeps a lucky
  screening score and a loser's score includes the pairs it lost.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from evaluator.settings import ScoreSettings
from evolve.database.models import Calibration, Candidate, PromotionDecisionRow, Sample
from evolve.database.reader import reading
from evolve.database.records import DecisionInfo, StoredSample
from evolve.database.store import NotFound, Store, json_safe, set_summary

if TYPE_CHECKING:
    from evaluator.promotion_policy.rule import PromotionDecision

RECORD_STAGES = ("timed", "confirm")


class CalibrationInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_name: str
    subject: str
    pairs: int
    time_noise_seconds: float
    accuracy_std: float
    result: dict[str, Any]
    created_at: datetime


def record_decision(store: Store, experiment_id: int, candidate_id: int, incumbent_id: int, decision: "PromotionDecision") -> int:
    with store.db.session(write=True) as session:
        row = PromotionDecisionRow(
            experiment_id=experiment_id,
            candidate_id=candidate_id,
            incumbent_id=incumbent_id,
            attempt=decision.attempt,
            promoted=decision.promoted,
            alpha_spent=decision.alpha_spent,
            min_gain_seconds=decision.min_gain_seconds,
            reason=decision.reason,
            decision=json_safe(decision.model_dump()),
        )
        session.add(row)
        session.flush()
        return row.id


def decisions(store: Store, experiment_id: int | None = None, candidate_id: int | None = None) -> list[DecisionInfo]:
    """An experiment's decisions, or those a candidate took part in (on either side), oldest first (reader.py)."""
    with reading(store) as reader:
        return reader.decisions(experiment_id, candidate_id)


def attempts_made(store: Store, experiment_id: int) -> int:
    """Promotion attempts that spent error budget so far; the next one is this plus one."""
    with store.db.session() as session:
        return int(session.scalar(
            select(func.count()).select_from(PromotionDecisionRow)
            .where(PromotionDecisionRow.experiment_id == experiment_id, PromotionDecisionRow.alpha_spent > 0)
        ) or 0)


def lost_comparisons(store: Store, experiment_id: int) -> dict[int, DecisionInfo]:
    """Candidates whose latest paired comparison did not promote them, with that decision (reader.py)."""
    with reading(store) as reader:
        return reader.lost_comparisons(experiment_id)


def record_samples_of(store: Store, candidate_id: int, skip: int = 0) -> list[StoredSample]:
    """Every timed sample of the candidate: screening and every confirmation, oldest first (after the first `skip`)."""
    return store.samples(candidate_id, RECORD_STAGES, skip)


def refresh_record(store: Store, candidate_id: int, score: ScoreSettings, samples: list[StoredSample] | None = None) -> None:
    """Recompute the stored summary and score from the candidate's whole record (`samples`: that record, where the
    caller holds it already)."""
    samples = record_samples_of(store, candidate_id) if samples is None else samples
    if not samples:
        return
    from evaluator.statistics import summarize_with  # numpy, scipy: not for the views (read only)

    summary = summarize_with(samples, score)
    with store.db.session(write=True) as session:
        candidate = session.get(Candidate, candidate_id)
        if candidate is None:
            raise NotFound(f"no candidate with id {candidate_id} in the {store.db.describe()}")
        set_summary(candidate, summary)


def device_of(store: Store, candidate_id: int) -> str | None:
    with store.db.session() as session:
        return session.scalar(select(Sample.device_name).where(Sample.candidate_id == candidate_id).limit(1))


def record_calibration(store: Store, device_name: str, subject: str, pairs: int, time_noise_seconds: float,
                       accuracy_std: float, result: dict[str, Any] | BaseModel) -> int:
    with store.db.session(write=True) as session:
        row = Calibration(device_name=device_name, subject=subject, pairs=pairs, time_noise_seconds=time_noise_seconds,
                          accuracy_std=accuracy_std, result=json_safe(result))
        session.add(row)
        session.flush()
        return row.id


def latest_calibration(store: Store, device_name: str | None = None) -> CalibrationInfo | None:
    """The newest calibration, of that device when given."""
    query = select(Calibration).order_by(Calibration.id.desc()).limit(1)
    if device_name is not None:
        query = query.where(Calibration.device_name == device_name)
    with store.db.session() as session:
        row = session.scalar(query)
        return None if row is None else CalibrationInfo.model_validate(row)
