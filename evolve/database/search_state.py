"""The search's own state, part of the Store (store.py): what a resumed search needs to continue.

The loop writes each piece before it acts on it, so that a SIGKILL at any moment loses nothing:
- the seed set's sources, stored when the experiment starts (rebuilds and exports read them here);
- every proposal's outcome, new, duplicate or unusable (their count is the proposals made);
- the promotion queue: a candidate that scored above the champion is queued in the same
  transaction as its evaluation, marked running before its paired re-measurement starts, and done
  in the same transaction as the decision and its samples; a running one is requeued on resume;
- the migrants and the count of generations done, written together in one transaction;
- the GPU seconds of every cascade stage and every paired re-measurement (the budget on resume).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from evaluator.results import RunSample
from evolve.database.candidate_writes import INSERT_PROPOSAL
from evolve.database.errors import DatabaseError, NotFound
from evolve.database.models import (
    Candidate,
    Experiment,
    LLMCall,
    Migrant,
    PromotionRequest,
    Proposal,
    SeedComponent,
    StageResult,
    utcnow,
)
from evolve.database.records import (
    CandidateInfo,
    IndexRow,
    MigrantInfo,
    NewCandidate,
    PromotionInfo,
    ProposalRecord,
)
from evolve.database.serialize import json_safe

DEVICE_STAGES = ("smoke", "timed", "profile")


class SearchState:
    """Mixed into Store, which provides db, _get, _insert_candidate and _add_samples."""

    # the seed set

    def seed_sources(self, experiment_id: int, *, required: bool = True) -> dict[str, str]:
        """Component -> module text of the set the experiment started from; empty, when not
        `required`, for an experiment created without one (views of databases made before)."""
        with self.db.reader() as reader:
            return reader.seed_sources(experiment_id, required=required)

    def store_seed_sources(self, experiment_id: int, sources: Mapping[str, str]) -> bool:
        """Record the seed set of an experiment created without one; False when one is stored already."""
        with self.db.session(write=True) as session:
            self._get(session, Experiment, experiment_id)
            if session.scalar(select(SeedComponent.id).where(SeedComponent.experiment_id == experiment_id).limit(1)):
                return False
            for component, source in sources.items():
                session.add(SeedComponent(experiment_id=experiment_id, component=component, source=source))
            return True

    def update_experiment_config(self, experiment_id: int, config: dict[str, Any] | BaseModel) -> None:
        """The settings a resumed search continues with (a flag given again overrides a stored one)."""
        with self.db.session(write=True) as session:
            self._get(session, Experiment, experiment_id).config = json_safe(config)

    # proposals

    def record_proposal(self, record: ProposalRecord, new: NewCandidate | None = None) -> tuple[CandidateInfo | None, str]:
        """A proposal and, when it brought a program, that candidate (unless its identity is known),
        in one transaction; returns the new or duplicated candidate and the outcome. Without a
        program the outcome is `unusable`, or `near-copy` when the record says so."""
        with self.db.connect(write=True) as connection:  # the loop's hot path: Core (candidate_writes.py)
            candidate, outcome, candidate_id = None, "unusable", None
            if new is not None:
                candidate, created = self._insert_candidate(connection, new)
                outcome, candidate_id = ("new" if created else "duplicate"), candidate.id
            elif record.outcome == "near-copy":  # skipped by the novelty check: candidate_id is the program it copies
                outcome, candidate_id = "near-copy", record.candidate_id
            values = record.model_dump(exclude={"outcome", "candidate_id"})
            connection.execute(INSERT_PROPOSAL, {**values, "outcome": outcome, "candidate_id": candidate_id, "created_at": utcnow()})
            return candidate, outcome

    def proposal_counts(self, experiment_id: int) -> dict[str, int]:
        """Proposals made so far, by outcome (new, duplicate, unusable)."""
        query = select(Proposal.outcome, func.count()).where(Proposal.experiment_id == experiment_id).group_by(Proposal.outcome)
        with self.db.session() as session:
            return {outcome: count for outcome, count in session.execute(query)}

    def child_verdicts(self, experiment_id: int) -> dict[str, int]:
        """The children's statuses and verdicts ("evaluated", "rejected at behaviour", "pending"...), counted:
        what `evolve start` says became of its proposals."""
        label = func.coalesce(Candidate.verdict, Candidate.status)
        query = (select(Candidate.status, label, func.count())
                 .where(Candidate.experiment_id == experiment_id, Candidate.origin != "seed").group_by(Candidate.status, label))
        counts: dict[str, int] = {}
        with self.db.session() as session:
            for status, verdict, count in session.execute(query):
                key = "evaluated" if status in ("evaluated", "champion") else verdict
                counts[key] = counts.get(key, 0) + count
        return counts

    def model_outcomes(self, experiment_id: int) -> list[dict[str, Any]]:
        """Every proposal a chosen model made: model, cost, its new candidate's status, score, parent score
        and device seconds (the model bandit's state, evolve/llm/bandit.py)."""
        parent = aliased(Candidate)
        device = (
            select(StageResult.candidate_id, func.sum(StageResult.seconds).label("seconds"))
            .where(StageResult.stage.in_(DEVICE_STAGES)).group_by(StageResult.candidate_id).subquery()
        )
        query = (
            select(Proposal.model, Proposal.cost_usd, Proposal.outcome, Candidate.id, Candidate.status, Candidate.score,
                   parent.score.label("parent_score"), device.c.seconds)
            .outerjoin(Candidate, Candidate.id == Proposal.candidate_id)
            .outerjoin(parent, parent.id == Candidate.parent_id)
            .outerjoin(device, device.c.candidate_id == Candidate.id)
            .where(Proposal.experiment_id == experiment_id, Proposal.model.is_not(None))
            .order_by(Proposal.id)
        )
        with self.db.session() as session:
            return [row._asdict() for row in session.execute(query)]

    def proposal_reasons(self, experiment_id: int, outcome: str) -> list[str]:
        query = select(Proposal.reason).where(Proposal.experiment_id == experiment_id, Proposal.outcome == outcome).order_by(Proposal.id)
        with self.db.session() as session:
            return list(session.scalars(query))

    def proposals_from(self, parent_id: int) -> dict[str, int]:
        """What came of the proposals made from this parent, by outcome (new, duplicate, near-copy, unusable)."""
        with self.db.reader() as reader:
            return reader.proposals_from(parent_id)

    def proposal_outcomes_by_parent(self, experiment_id: int) -> list[tuple[int, str, int]]:
        """(parent id, outcome, count) of every proposal of the experiment: the loop counts on in memory."""
        query = (select(Proposal.parent_id, Proposal.outcome, func.count())
                 .where(Proposal.experiment_id == experiment_id, Proposal.parent_id.is_not(None))
                 .group_by(Proposal.parent_id, Proposal.outcome))
        with self.db.session() as session:
            return [tuple(row) for row in session.execute(query)]

    # promotions

    def queue_promotion(self, experiment_id: int, candidate_id: int) -> PromotionInfo:
        with self.db.session(write=True) as session:
            request = PromotionRequest(experiment_id=experiment_id, candidate_id=candidate_id, status="queued")
            session.add(request)
            session.flush()
            return PromotionInfo.model_validate(request)

    def promotions(self, experiment_id: int, status: str | Sequence[str] | None = None,
                   candidate_id: int | None = None) -> list[PromotionInfo]:
        query = select(PromotionRequest).where(PromotionRequest.experiment_id == experiment_id).order_by(PromotionRequest.id)
        if candidate_id is not None:
            query = query.where(PromotionRequest.candidate_id == candidate_id)
        if status is not None:
            query = query.where(PromotionRequest.status.in_([status] if isinstance(status, str) else list(status)))
        with self.db.session() as session:
            return [PromotionInfo.model_validate(p) for p in session.scalars(query)]

    def start_promotion(self, promotion_id: int) -> None:
        with self.db.session(write=True) as session:
            request = self._get(session, PromotionRequest, promotion_id)
            request.status, request.started_at = "running", utcnow()

    def finish_promotion(
        self,
        promotion_id: int,
        incumbent_id: int | None,
        candidate_samples: Sequence[RunSample],
        incumbent_samples: Sequence[RunSample],
        promoted: bool,
        statistics: dict[str, Any] | BaseModel,
        gpu_seconds: float,
    ) -> None:
        """The decision, both sides' confirmation samples, the GPU time and (when promoted) the
        champion change, in one transaction."""
        with self.db.session(write=True) as session:
            request = self._get(session, PromotionRequest, promotion_id)
            if request.status == "done":
                raise DatabaseError(f"promotion {promotion_id} of candidate {request.candidate_id} is done already")
            self._add_samples(session, request.candidate_id, candidate_samples, "confirm")
            if incumbent_id is not None:
                self._add_samples(session, incumbent_id, incumbent_samples, "confirm")
            request.status, request.promoted, request.gpu_seconds, request.finished_at = "done", promoted, gpu_seconds, utcnow()
            if promoted and incumbent_id is not None:
                self._change_champion(session, request.experiment_id, request.candidate_id, incumbent_id, statistics)

    def refuse_promotions(self, promotion_ids: Sequence[int]) -> None:
        """Queued promotions that will not be compared (no longer above the champion, or too many better ones queued):
        done and not promoted, in one statement, however many."""
        if not promotion_ids:
            return
        statement = (update(PromotionRequest)
                     .where(PromotionRequest.id.in_(list(promotion_ids)), PromotionRequest.status == "queued")
                     .values(status="done", promoted=False, finished_at=utcnow()))
        with self.db.session(write=True) as session:
            session.execute(statement)

    # generations and migrants

    def record_generation(self, experiment_id: int, generation: int, migrants: Sequence[tuple[int, int]]) -> None:
        """Generation `generation` is done, with its migrants (candidate id, target island), at once."""
        experiments = Experiment.__table__
        with self.db.connect(write=True) as connection:  # the loop's hot path: Core (candidate_writes.py)
            done = connection.execute(select(experiments.c.completed_generations).where(experiments.c.id == experiment_id)).scalar()
            if done is None:
                raise NotFound(f"no experiment with id {experiment_id} in the {self.db.describe()}")
            if generation <= done:
                raise DatabaseError(
                    f"generation {generation} of experiment {experiment_id} is recorded already "
                    f"({done} done): a migration happens once"
                )
            connection.execute(update(experiments).where(experiments.c.id == experiment_id).values(completed_generations=generation))
            if migrants:
                try:
                    connection.execute(insert(Migrant.__table__), [
                        {"experiment_id": experiment_id, "candidate_id": candidate_id, "island": island, "generation": generation}
                        for candidate_id, island in migrants
                    ])
                except IntegrityError:  # the whole transaction is rolled back: the generation is not counted either
                    raise DatabaseError(f"a migrant of generation {generation} is already on its target island") from None

    def migrants(self, experiment_id: int) -> list[MigrantInfo]:
        query = select(Migrant).where(Migrant.experiment_id == experiment_id).order_by(Migrant.id)
        with self.db.session() as session:
            return [MigrantInfo.model_validate(m) for m in session.scalars(query)]

    # the loop's index and the budget

    def index_rows(self, experiment_id: int) -> list[IndexRow]:
        """Every candidate of the experiment without its text, for the loop's in-memory index."""
        columns = [getattr(Candidate, name) for name in IndexRow.model_fields]
        query = select(*columns).where(Candidate.experiment_id == experiment_id).order_by(Candidate.id)
        with self.db.session() as session:
            return [IndexRow.model_validate(row._asdict()) for row in session.execute(query)]

    def sources(self, candidate_ids: Sequence[int]) -> dict[int, str]:
        """The module text of several candidates in one query."""
        if not candidate_ids:
            return {}
        with self.db.session() as session:
            return dict(session.execute(select(Candidate.id, Candidate.source).where(Candidate.id.in_(list(candidate_ids)))).all())

    def spending(self, experiment_id: int) -> tuple[float, float]:
        """USD spent on LLM calls, and GPU seconds of device-side cascade stages and paired re-measurements."""
        with self.db.session() as session:
            usd = session.scalar(select(func.coalesce(func.sum(LLMCall.cost), 0.0)).where(LLMCall.experiment_id == experiment_id))
            stages = session.scalar(
                select(func.coalesce(func.sum(StageResult.seconds), 0.0))
                .join(Candidate, Candidate.id == StageResult.candidate_id)
                .where(Candidate.experiment_id == experiment_id, StageResult.stage.in_(DEVICE_STAGES))
            )
            promotions = session.scalar(
                select(func.coalesce(func.sum(PromotionRequest.gpu_seconds), 0.0)).where(PromotionRequest.experiment_id == experiment_id)
            )
        return float(usd), float(stages) + float(promotions)
