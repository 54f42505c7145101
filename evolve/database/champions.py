"""The history of champions and the overview of experiments: part of the Store (store.py).

A champion changes only through `record_champion`, after a paired comparison (or as the first
evaluated candidate); the change and its statistics are kept, so the history can be audited.
"""

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from evolve.database.errors import DatabaseError
from evolve.database.models import Candidate, ChampionChange
from evolve.database.records import CandidateInfo, ChampionInfo, ExperimentOverview
from evolve.database.serialize import json_safe


class ChampionHistory:
    """Champion changes and per-experiment overviews; mixed into Store, which provides db and _locked."""

    # champions

    def record_champion(
        self, experiment_id: int, candidate_id: int, incumbent_id: int | None, statistics: dict[str, Any] | BaseModel
    ) -> ChampionInfo:
        """The candidate beat the incumbent (None for the first champion) in a paired comparison;
        `statistics` is that comparison (e.g. the evaluator's promotion decision), stored as JSON."""
        with self.db.session(write=True) as session:
            return self._change_champion(session, experiment_id, candidate_id, incumbent_id, statistics)

    def _change_champion(
        self, session: Session, experiment_id: int, candidate_id: int, incumbent_id: int | None, statistics: Any
    ) -> ChampionInfo:
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
        with self.db.reader() as reader:
            return reader.current_champion(experiment_id)

    def champion_history(self, experiment_id: int) -> list[ChampionInfo]:
        with self.db.reader() as reader:
            return reader.champion_history(experiment_id)

    def overview(self) -> list[ExperimentOverview]:
        """Each experiment with its candidates counted by status, best score and champion."""
        with self.db.reader() as reader:
            return reader.overview()
