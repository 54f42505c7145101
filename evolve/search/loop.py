"""The evolution loop: propose, deduplicate, evaluate, promote; everything through the database.

One thread (this one) owns the decisions and the database writes. Proposals (LLM calls, which
are slow) run in a small thread pool and evaluations in the executor, so that while a candidate
trains the next ones are already being written and statically checked: the GPU does not wait
for the LLM. A candidate's lifecycle in the database is pending -> running -> evaluated |
rejected | failed (| champion); a crash or SIGKILL leaves at most some `running` ones, which
`--resume` puts back to pending.

Scheme: the seed set is candidate 0 of the experiment (its first component's source stands for
the whole set). Each further candidate changes one component of its parent's set; the full set
of a candidate is the seed set with the latest change of each component along its ancestry.
The experiment proposes `generations * candidates_per_generation` children; the k-th belongs to
generation k // candidates_per_generation + 1 and to island `island_for(slot, generation)`.
Promotion goes through the evaluator's paired confirmation only (evaluator/promotion.py).
"""

import json
import math
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np

from evaluator.component_set import ComponentSet
from evaluator.promotion import PromotionDecision, better_score
from evaluator.results import Evaluation, ProfileSummary, Summary
from evolve.config import ExperimentConfig
from evolve.database.records import CandidateInfo, ExperimentInfo, LLMCallRecord, NewCandidate
from evolve.database.status import champion_line, experiment_status
from evolve.database.store import Store
from evolve.llm.client import Budget, LLMCall
from evolve.llm.prompt_builder import Feedback, PromptCandidate
from evolve.search.executor import EvaluationJob, Executor, PromotionJob
from evolve.search.population import (
    Individual,
    island_for,
    migration_due,
    plan_migration,
    select_inspirations,
    select_parent,
)
from evolve.search.estimate import Costs, Remaining, duration, mean, remaining
from evolve.search.interrupts import Interrupts
from evolve.search.progress import Progress
from evolve.search.proposer import Proposal, ProposalRequest, Proposer, Unusable


class SeedFailed(RuntimeError):
    """The seed set itself did not pass the evaluator: the search has nothing to start from."""


def component_set_of(store: Store, candidate: CandidateInfo, seed_set: str) -> ComponentSet:
    """The seed set with, for each component, the most recent change along the ancestry."""
    sources = dict(ComponentSet.shipped(seed_set).sources)
    for ancestor in reversed(store.ancestry(candidate.id)):
        if ancestor.origin != "seed":
            sources[ancestor.component] = ancestor.source
    return ComponentSet(sources=sources)


def changed_components(store: Store, candidate: CandidateInfo) -> list[str]:
    """What the candidate's set changes against the seed set (all of it for the seed itself)."""
    return sorted({c.component for c in store.ancestry(candidate.id) if c.origin != "seed"}) or [candidate.component]


class EvolutionLoop:
    def __init__(
        self,
        config: ExperimentConfig,
        store: Store,
        experiment: ExperimentInfo,
        executor: Executor,
        proposer: Proposer,
        progress: Progress,
        budget: Budget,
        rng: np.random.Generator,
        interrupts: Interrupts | None = None,
    ):
        self.config, self.store, self.experiment, self.executor = config, store, experiment, executor
        self.proposer, self.progress, self.budget = proposer, progress, budget
        self.promotion = config.promotion
        self.stats = progress.stats
        self.rng = rng
        # LLM calls wait on the network: several run at once, so that a slow model still keeps every GPU fed.
        self.lookahead = executor.slots + config.llm.concurrent_calls
        self.proposal_pool = ThreadPoolExecutor(max_workers=config.llm.concurrent_calls, thread_name_prefix="proposal")
        self.proposing: dict[Future, ProposalRequest] = {}
        self.running: dict[Future, tuple[str, int]] = {}
        self.promotion_queue: list[int] = []
        self.migrants: list[Individual] = []
        self.stop_reason: str | None = None
        self.attempts = sum(1 for c in store.candidates(experiment.id) if c.origin != "seed")
        self.completed_generations = 0
        self.interrupts = interrupts or Interrupts()  # not installed: then Ctrl-C raises KeyboardInterrupt as usual
        self.started: dict[Future, float] = {}  # when each running job was submitted (time.monotonic())
        self._continue_counters()

    @property
    def total_attempts(self) -> int:
        return self.config.generations * self.config.candidates_per_generation

    # the seed

    def ensure_seed(self) -> None:
        if any(c.origin == "seed" for c in self.store.candidates(self.experiment.id)):
            return
        component = self.config.components[0]
        seed_source = ComponentSet.shipped(self.config.seed_set).sources[component]
        self.store.add_candidate(
            NewCandidate(experiment_id=self.experiment.id, component=component, source=seed_source, origin="seed")
        )
        self.progress.event(f"seed: the {self.config.seed_set} set (evaluated first; it is the first champion)")

    # the main loop

    def run(self) -> str:
        self.ensure_seed()
        self._refresh_champion()
        try:
            while True:
                if self.interrupts.abandon.is_set():
                    self._abandon()
                    break
                if self.interrupts.stop_requested and not self.stop_reason:
                    self._stopping()
                self.stop_reason = self.stop_reason or self.budget.exhausted_reason()
                self._start_evaluations()
                self._start_proposals()
                if not self.running and not self.proposing and (self.stop_reason or not self._more_to_do()):
                    break
                done, _ = wait([*self.running, *self.proposing], timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    if self.interrupts.abandon.is_set():
                        break  # a killed job's result is no verdict on its candidate
                    self._finish(future)
                self._update_stats()
                self.progress.refresh()
        except KeyboardInterrupt:
            self._interrupted()
        finally:
            self.proposal_pool.shutdown(wait=False, cancel_futures=True)
        return self.stop_reason or f"all {self.total_attempts} proposals made and evaluated"

    def _more_to_do(self) -> bool:
        pending = self.store.candidates(self.experiment.id, "pending")
        return bool(pending) or bool(self.promotion_queue) or (self.attempts < self.total_attempts and self._population_has_parents())

    def _population_has_parents(self) -> bool:
        return any(i.status == "evaluated" and i.score is not None for i in self._population())

    def _stopping(self) -> None:
        """First Ctrl-C: start nothing new; what runs finishes and is stored (evolve/search/interrupts.py)."""
        self.stop_reason = "stopped by Ctrl-C"
        self.stats.note = "stopping: running jobs finish; Ctrl-C again kills them (re-queued for --resume)"
        self.progress.event(
            f"stopping: finishing {len(self.running)} running job(s) and {len(self.proposing)} proposal(s); "
            "Ctrl-C again kills them now (they are re-queued for --resume)"
        )

    def _abandon(self) -> None:
        """Second Ctrl-C: every worker killed at once, the unfinished candidates back to pending."""
        abandon = getattr(self.executor, "abandon", None)  # optional in the Executor protocol
        if abandon is not None:
            abandon()
        requeued = self.store.requeue_unfinished(self.experiment.id)
        self.stop_reason = f"stopped by a second Ctrl-C: {len(self.running)} running job(s) killed, {requeued} candidate(s) re-queued"
        self.progress.event(self.stop_reason)
        self.running.clear()
        self.proposing.clear()  # an LLM call in flight is dropped; its reply, if it comes, is not stored

    def _interrupted(self) -> None:
        """Ctrl-C without an installed handler (KeyboardInterrupt): the same two steps."""
        self._stopping()
        try:
            while self.running or self.proposing:
                done, _ = wait([*self.running, *self.proposing], timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(future)
        except KeyboardInterrupt:
            self._abandon()

    # starting work

    def _start_evaluations(self) -> None:
        while len(self.running) < self.executor.slots and not self.stop_reason:
            if self.promotion_queue and not any(kind == "promotion" for kind, _ in self.running.values()):
                self._start_promotion(self.promotion_queue.pop(0))
                continue
            claimed = self.store.claim_pending(self.experiment.id, limit=1, worker="loop")
            if not claimed:
                return
            candidate = claimed[0]
            champion = self.store.current_champion(self.experiment.id)
            champion_times = [s.time_seconds for s in self.store.samples(champion.id, ["timed"])] if champion else None
            job = EvaluationJob(
                candidate_id=candidate.id,
                component_set=component_set_of(self.store, candidate, self.config.seed_set),
                changed=changed_components(self.store, candidate),
                harness=self.config.harness,
                score=self.config.score,
                cascade=self.config.cascade,
                champion_times=champion_times,
            )
            future = self.executor.submit(job)
            self.running[future] = ("evaluation", candidate.id)
            self.started[future] = time.monotonic()

    def _start_promotion(self, candidate_id: int) -> None:
        champion = self.store.current_champion(self.experiment.id)
        candidate = self.store.candidate(candidate_id)
        if champion is None or champion.id == candidate_id or not self._beats(candidate, champion):
            return
        job = PromotionJob(
            candidate_id=candidate_id,
            incumbent_id=champion.id,
            candidate_set=component_set_of(self.store, candidate, self.config.seed_set),
            incumbent_set=component_set_of(self.store, champion, self.config.seed_set),
            harness=self.config.harness,
            score=self.config.score,
            promotion=self.promotion,
        )
        self.progress.event(f"#{candidate_id} scored above champion #{champion.id}: paired re-measurement ({self.promotion.pairs} pairs)")
        future = self.executor.submit(job)
        self.running[future] = ("promotion", candidate_id)
        self.started[future] = time.monotonic()

    def _start_proposals(self) -> None:
        lookahead = self.lookahead
        while (
            not self.stop_reason
            and self.attempts < self.total_attempts
            and len(self.proposing) + len(self.store.candidates(self.experiment.id, "pending")) < lookahead
            and self._population_has_parents()
        ):
            request = self._next_request()
            self.attempts += 1
            self.stats.proposed = self.attempts
            self.proposing[self.proposal_pool.submit(self.proposer.propose, request)] = request

    def _population(self) -> list[Individual]:
        individuals = [
            Individual(id=c.id, island=c.island, score=c.score, status="evaluated" if c.status == "champion" else c.status,
                       generation=c.generation, parent_id=c.parent_id)
            for c in self.store.candidates(self.experiment.id)
        ]
        return individuals + self.migrants  # islands without members draw from everyone (population.py)

    def _next_request(self) -> ProposalRequest:
        generation = self.attempts // self.config.candidates_per_generation + 1
        island = island_for(self.attempts % self.config.candidates_per_generation, generation, self.config.population)
        population = self._population()
        parent = select_parent(population, island, self.rng, self.config.population)
        inspirations = select_inspirations(population, parent, self.rng, self.config.population)
        parent_info = self.store.candidate(int(parent.origin))
        component = self.config.components[int(self.rng.integers(len(self.config.components)))]
        parent_set = component_set_of(self.store, parent_info, self.config.seed_set)
        return ProposalRequest(
            component=component,
            parent=self._prompt_candidate(parent_info, parent_set.sources[component], component),
            inspirations=[self._inspiration(int(i.origin), component) for i in inspirations],
            feedback=self._feedback(parent_info),
            parent_id=parent_info.id,
            island=island,
            generation=generation,
            hyperparams=None,
        )

    def _prompt_candidate(self, candidate: CandidateInfo, source: str, component: str) -> PromptCandidate:
        summary = Summary.model_validate(candidate.summary) if candidate.summary else None
        return PromptCandidate(id=candidate.id, source=source, summary=summary, status=candidate.status,
                               description=candidate.verdict or "")

    def _inspiration(self, candidate_id: int, component: str) -> PromptCandidate:
        candidate = self.store.candidate(candidate_id)
        return self._prompt_candidate(candidate, component_set_of(self.store, candidate, self.config.seed_set).sources[component], component)

    def _feedback(self, parent: CandidateInfo) -> Feedback:
        detail = self.store.detail(parent.id)
        children = [c for c in self.store.candidates(self.experiment.id, ["rejected", "failed"]) if c.parent_id == parent.id]
        profile = ProfileSummary.model_validate(parent.profile).as_text() if parent.profile else None
        return Feedback(
            stages=detail.stages,
            flags=parent.flags,
            recent_failures=[f"child #{c.id} ({c.component}): {c.status}: {(c.error or c.verdict or '')[:400]}" for c in children[-3:]],
            profile=profile,
        )

    # finishing work

    def _finish(self, future: Future) -> None:
        if future in self.proposing:
            request = self.proposing.pop(future)
            self._proposal_done(request, future.result())
            return
        kind, candidate_id = self.running.pop(future)
        self.measured[kind].append(time.monotonic() - self.started.pop(future, time.monotonic()))
        if kind == "evaluation":
            self._evaluation_done(candidate_id, future.result())
        else:
            self._promotion_done(candidate_id, future.result())

    def _record_calls(self, calls: list[LLMCall]) -> int | None:
        last = None
        for call in calls:
            self.budget.add_call(call)
            self.stats.tokens += (call.tokens_in or 0) + (call.tokens_out or 0)
            last = self.store.record_llm_call(
                LLMCallRecord(
                    experiment_id=self.experiment.id,
                    model=call.model,
                    endpoint=call.endpoint,
                    prompt=json.dumps(call.messages, indent=1),
                    response=call.response,
                    tokens_in=call.tokens_in,
                    tokens_out=call.tokens_out,
                    latency_seconds=call.latency_seconds,
                    cost=call.cost_usd,
                    error=call.error,
                )
            )
        return last

    def _proposal_done(self, request: ProposalRequest, outcome: Proposal | Unusable) -> None:
        call_id = self._record_calls(outcome.llm_calls)
        if isinstance(outcome, Unusable):
            self.stats.rejections["unusable reply" if outcome.llm_calls else "no mutation"] += 1
            self.progress.event(f"proposal from #{request.parent_id} unusable: {outcome.reason[:300]}")
            return
        candidate, new = self.store.add_candidate(
            NewCandidate(
                experiment_id=self.experiment.id,
                component=request.component,
                source=outcome.source,
                origin=outcome.origin,
                parent_id=request.parent_id,
                inspiration_ids=[i.id for i in request.inspirations],
                generation=request.generation,
                island=request.island,
                llm_call_id=call_id,
            )
        )
        if not new:
            self.stats.duplicates += 1
            self.progress.event(f"proposal from #{request.parent_id} duplicates #{candidate.id}; skipped")
            return
        self.progress.event(f"#{candidate.id} proposed from #{request.parent_id} ({request.component}, island {request.island}): {outcome.description[:200]}")

    def _evaluation_done(self, candidate_id: int, evaluation: Evaluation) -> None:
        self.budget.add_gpu_seconds(sum(s.seconds for s in evaluation.stages if s.stage in ("smoke", "timed", "profile")))
        candidate = self.store.record_evaluation(candidate_id, evaluation)  # the profile, when taken, comes along
        if evaluation.status != "evaluated":
            last = evaluation.stages[-1]
            self.stats.rejections[f"{last.stage} {last.status}"] += 1
            self.progress.event(f"#{candidate_id} {evaluation.status} at {last.stage}: {last.message.splitlines()[0][:200] if last.message else ''}")
            if candidate.origin == "seed":
                raise SeedFailed(f"the seed set failed the evaluator at {last.stage}: {last.message[:2000]}")
            return
        self.stats.evaluated += 1
        summary = evaluation.summary
        self.progress.event(
            f"#{candidate_id} evaluated: {summary.time_mean:.4f} s, {summary.accuracy_mean:.2%} (lower bound "
            f"{summary.accuracy_lower_bound:.2%}), score {summary.score:.4f}"
        )
        champion = self.store.current_champion(self.experiment.id)
        if champion is None:
            self.store.record_champion(self.experiment.id, candidate_id, None, {"reason": "the first evaluated candidate"})
            self.progress.event(f"#{candidate_id} is the first champion")
        elif self._beats(candidate, champion):
            self.promotion_queue.append(candidate_id)
        self._after_generation()
        self._refresh_champion()

    def _beats(self, candidate: CandidateInfo, champion: CandidateInfo) -> bool:
        if candidate.score is None or champion.score is None:
            return candidate.score is not None
        return better_score(candidate.score, champion.score, candidate.accuracy_lower_bound or 0, champion.accuracy_lower_bound or 0)

    def _promotion_done(self, candidate_id: int, decision: PromotionDecision) -> None:
        self.budget.add_gpu_seconds(decision.seconds)
        champion = self.store.current_champion(self.experiment.id)
        self.store.record_samples(candidate_id, decision.candidate_samples, "confirm")
        if champion is not None:
            self.store.record_samples(champion.id, decision.incumbent_samples, "confirm")
        if decision.promoted and champion is not None:
            self.store.record_champion(self.experiment.id, candidate_id, champion.id, decision.model_dump(exclude={"candidate_samples", "incumbent_samples"}))
            self.progress.event(f"#{candidate_id} is the new champion: {decision.reason}")
        else:
            self.progress.event(f"#{candidate_id} not promoted: {decision.reason}")
        self._refresh_champion()

    def _after_generation(self) -> None:
        finished = sum(1 for c in self.store.candidates(self.experiment.id, ["evaluated", "rejected", "failed", "champion"]) if c.origin != "seed")
        generations = finished // self.config.candidates_per_generation
        while self.completed_generations < generations:
            self.completed_generations += 1
            if migration_due(self.completed_generations, self.config.population):
                moves = plan_migration(self._population(), self.config.population)
                population = {str(i.id): i for i in self._population()}
                for move in moves:
                    source = population[str(move.individual_id)]
                    self.migrants.append(source.model_copy(update={
                        "id": f"{source.origin}@{move.target}", "island": move.target, "migrated_from": source.origin}))
                if moves:
                    self.progress.event(f"migration after generation {self.completed_generations}: {len(moves)} elite(s) moved")

    def _refresh_champion(self) -> None:
        champion = self.store.current_champion(self.experiment.id)
        if champion is not None:
            if champion.id != self.stats.champion_id:
                self.stats.champion_history = champion_line(experiment_status(self.store, self.experiment).champions)
            self.stats.champion_id = champion.id
            self.stats.champion_time = champion.time_mean
            self.stats.champion_accuracy = champion.accuracy_mean
        scores = [c.score for c in self.store.candidates(self.experiment.id) if c.score is not None and not math.isnan(c.score)]
        self.stats.best_score = max(scores) if scores else None

    def _update_stats(self) -> None:
        self.stats.generation = self.attempts // self.config.candidates_per_generation + (1 if self.attempts else 0)
        self.stats.running = len(self.running)
        self.stats.queued = len(self.store.candidates(self.experiment.id, "pending")) + len(self.proposing)
        self.stats.gpu_hours = self.budget.gpu_hours_spent
        self.stats.usd = self.budget.usd_spent
        self.stats.generations = self.config.generations
        self.stats.jobs = self._job_lines()
        self.stats.remaining = self._remaining().text()

    # what the panel shows

    def _continue_counters(self) -> None:
        """Counters and measured costs from the database, so that they continue across --resume."""
        status = experiment_status(self.store, self.experiment)
        self.stats.proposed, self.stats.evaluated = status.proposed, status.evaluated
        self.stats.rejections.update(status.rejections)
        self.stats.tokens = status.tokens
        self.stats.champion_history = champion_line(status.champions)
        self.measured: dict[str, list[float]] = {
            "evaluation": status.evaluation_seconds[-50:], "promotion": status.promotion_seconds[-20:]}

    def _job_lines(self) -> list[str]:
        progress = {p.candidate_id: p for p in getattr(self.executor, "job_progress", list)()}
        lines = []
        for future, (kind, candidate_id) in self.running.items():
            p = progress.get(candidate_id)
            stage = "waiting for a worker" if p is None else p.stage + (f" {p.run}/{p.runs}" if p.run is not None else "")
            label = f"#{candidate_id}" + (" promotion" if kind == "promotion" else "")
            elapsed = time.monotonic() - (p.started if p is not None else self.started.get(future, time.monotonic()))
            lines.append(f"{label}: {stage}, {duration(elapsed)}")
        return lines

    def _remaining(self) -> Remaining:
        evaluations = self.measured["evaluation"]
        promotions_started = len(self.measured["promotion"]) + sum(1 for kind, _ in self.running.values() if kind == "promotion")
        costs = Costs(
            evaluation_seconds=mean(evaluations),
            promotion_seconds=mean(self.measured["promotion"]),
            promotion_rate=promotions_started / len(evaluations) if evaluations else 0.0,
            usd_per_proposal=self.budget.usd_spent / self.stats.proposed if self.stats.proposed and self.budget.usd_spent else None,
        )
        left = (self.total_attempts - self.attempts) + len(self.store.candidates(self.experiment.id, "pending")) + len(self.running)
        device_left = None if self.budget.gpu_hours_limit is None else (self.budget.gpu_hours_limit - self.budget.gpu_hours_spent) * 3600
        usd_left = None if self.budget.usd_limit is None else self.budget.usd_limit - self.budget.usd_spent
        return remaining(costs, left, self.executor.slots, device_left, usd_left)
