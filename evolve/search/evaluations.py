"""Evaluations: a pending candidate claimed and handed to the executor as a job, and what its result
means (stored first, then the state, the learners, the promotion queue and the panel told)."""

from evaluator.cascade import ParentBehaviour
from evaluator.promotion_policy.policy import Standing
from evaluator.results import Evaluation
from evolve.config import ExperimentConfig
from evolve.database.records import CandidateInfo
from evolve.database.store import Store
from evolve.llm.client import Budget
from evolve.search.executor import EvaluationJob
from evolve.search.generations import Generations
from evolve.search.learning import Learning
from evolve.search.panel import Panel
from evolve.search.promotions import Promotions
from evolve.search.state import SearchState

DEVICE_STAGES = ("smoke", "timed", "profile")  # the stages whose seconds are device time


class SeedFailed(RuntimeError):
    """The seed set itself did not pass the evaluator: the search has nothing to start from."""


class Evaluations:
    def __init__(self, config: ExperimentConfig, store: Store, experiment_id: int, state: SearchState, promotions: Promotions,
                 learning: Learning, generations: Generations, budget: Budget, panel: Panel):
        self.config, self.store, self.experiment_id, self.state = config, store, experiment_id, state
        self.promotions, self.learning, self.generations, self.budget, self.panel = promotions, learning, generations, budget, panel

    def next_job(self) -> EvaluationJob | None:
        """The oldest pending candidate, claimed in the database, as a job; None when none is pending."""
        if not self.state.index.count("pending"):
            return None
        claimed = self.store.claim_pending(self.experiment_id, limit=1, worker="loop")
        if not claimed:
            return None
        candidate = claimed[0]
        self.state.index.set_status(candidate.id, "running")
        cascade = self.config.cascade
        record = self.state.champion_record
        return EvaluationJob(
            candidate_id=candidate.id,
            component_set=self.state.component_set(candidate.id),
            changed=self.state.requests.changed(candidate.id),
            harness=self.config.harness,
            score=self.config.score,
            cascade=cascade.model_copy(update={"limits": self.state.run_limits(cascade.limits)}),
            champion_times=record.times if record is not None else None,
            parent=self._parent_behaviour(candidate),
        )

    def _parent_behaviour(self, candidate: CandidateInfo) -> ParentBehaviour | None:
        parent = self.state.index.rows.get(candidate.parent_id) if candidate.parent_id is not None else None
        if not self.config.search.behaviour_check or parent is None or not parent.behaviour:
            return None
        return ParentBehaviour(parent_id=parent.id, component=candidate.component, fingerprints=parent.behaviour)

    def done(self, candidate_id: int, evaluation: Evaluation) -> None:
        """Store the result (queueing a promotion where the gate lets it through), then tell the others."""
        device_seconds = sum(s.seconds for s in evaluation.stages if s.stage in DEVICE_STAGES)
        self.budget.add_gpu_seconds(device_seconds)
        summary, champion = evaluation.summary, self.state.champion
        gate = None
        if summary is not None and champion is not None:
            standing = Standing(score=summary.score, accuracy_lower_bound=summary.accuracy_lower_bound)
            gate = self.promotions.gate(standing, [s.time_seconds for s in evaluation.samples])
        promote = evaluation.status == "evaluated" and summary is not None and champion is not None and gate is None
        candidate = self.store.record_evaluation(candidate_id, evaluation, queue_promotion=promote)  # the profile comes along
        self.state.add(candidate)
        parent = self.state.index.rows.get(candidate.parent_id) if candidate.parent_id is not None else None
        self.learning.evaluated(candidate, parent, device_seconds)
        if promote:
            self.promotions.queued(candidate_id)
        if candidate.origin == "seed":
            self.state.seed_warmup = next((s.seconds for s in evaluation.stages if s.stage == "smoke" and s.status == "passed"), None)
        if evaluation.status != "evaluated":
            self._rejected(candidate, evaluation)
        else:
            self._evaluated(candidate_id, evaluation, gate)
        self.generations.advance()

    def _rejected(self, candidate: CandidateInfo, evaluation: Evaluation) -> None:
        last = evaluation.stages[-1]
        self.panel.rejected(f"{last.stage} {last.status}")
        self.panel.event(f"#{candidate.id} {evaluation.status} at {last.stage}: {last.message.splitlines()[0][:200] if last.message else ''}")
        if candidate.origin == "seed":
            raise SeedFailed(f"the seed set failed the evaluator at {last.stage}: {last.message[:2000]}")

    def _evaluated(self, candidate_id: int, evaluation: Evaluation, gate: str | None) -> None:
        summary = evaluation.summary
        self.panel.count("evaluated")
        self.panel.event(
            f"#{candidate_id} evaluated: {summary.time_mean:.4f} s, {summary.accuracy_mean:.2%} (lower bound "
            f"{summary.accuracy_lower_bound:.2%}), score {summary.score:.4f}"
        )
        if gate is not None and gate.startswith("scores above"):
            self.panel.event(f"#{candidate_id} {gate}")
        if self.state.champion is None:
            self.promotions.crown_first(candidate_id)
            self.panel.event(f"#{candidate_id} is the first champion")

