"""The evolution loop: propose, deduplicate, evaluate, promote; everything through the database.

One thread (this one) owns the decisions and the database writes. Proposals (LLM calls, which
are slow) run in a small thread pool and evaluations in the executor, so that while a candidate
trains the next ones are already being written and statically checked: the GPU does not wait
for the LLM. A candidate's lifecycle in the database is pending -> running -> evaluated |
rejected | failed (| champion); a crash or SIGKILL leaves at most some `running` ones, which
`--resume` puts back to pending.

Scheme: the experiment's seed set is stored with it and is candidate 0 (its first component's
source stands for the whole set). Each further candidate changes one component of its parent's
set; the full set of a candidate is the seed set with the latest change of each component along
its ancestry, and its identity is the hash of that set (identity.py): a known identity is a
duplicate. The experiment proposes `generations * candidates_per_generation` children; the k-th
belongs to generation k // candidates_per_generation + 1 and to island `island_for(slot, generation)`.
Promotion goes through the evaluator's paired confirmation only (evaluator/promotion.py), under
the rule of evaluator/decision.py: the loop numbers the attempts (each spends its share of the
experiment's error budget), hands the champion's whole record to the rule, stores every decision
and refolds both sides' samples into their records (evolve/database/decisions.py).

A smarter search (issue 19), each part in its own module: a share of the proposals are component
merges (merge.py); a proposal that is a near-copy of a program already evaluated is skipped
before it is stored (novelty.py); a child whose changed component behaves exactly like its
parent's is skipped in the sandboxed CPU stage (evaluator/behaviour.py); the built-in mutator
never changes a site that cannot matter (liveness.py); with several models, a cost-aware bandit
chooses the model of each proposal (evolve/llm/bandit.py).

Everything the loop needs to continue is written before it acts on it (search_state.py): every
proposal's outcome, the promotion queue, the migrants and generations done, GPU seconds. The
population is read once into an in-memory index (index.py) and updated as results arrive.
"""

import json
import math
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np

from evaluator.cascade import ParentBehaviour
from evaluator.component_set import ComponentSet
from evaluator.decision import DecisionContext, attempt_alpha, minimum_gain, pairs_for
from evaluator.promotion import PromotionDecision, better_score
from evaluator.results import Evaluation, RunSample
from evolve.config import ExperimentConfig
from evolve.database import decisions as promotion_records
from evolve.database.records import CandidateInfo, ExperimentInfo, IndexRow, LLMCallRecord, NewCandidate, ProposalRecord
from evolve.database.serialize import unified_diff
from evolve.database.status import champion_line, experiment_status
from evolve.database.store import Store
from evolve.llm.client import Budget, LLMCall
from evolve.search.estimate import Costs, Remaining, duration, mean, remaining
from evolve.search.executor import EvaluationJob, Executor, PromotionJob
from evolve.search.identity import set_identity
from evolve.search.index import PopulationIndex
from evolve.search.interrupts import Interrupts
from evolve.search.liveness import dead_sites, site_of
from evolve.search.merge import Merger, merge_due
from evolve.search.novelty import NoveltyArchive, context_key
from evolve.search.population import (
    island_for,
    migration_due,
    plan_migration_from,
    select_inspirations_from,
    select_parent_from,
)
from evolve.search.progress import Progress
from evolve.search.proposer import Proposal, ProposalRequest, Proposer, Unusable
from evolve.search.requests import RequestBuilder, skip_notes
from evolve.search.smart_state import load_bandit, load_learned_dead_sites, load_novelty_archive


CALIBRATION_REFRESH_SECONDS = 60.0


class SeedFailed(RuntimeError):
    """The seed set itself did not pass the evaluator: the search has nothing to start from."""


def index_row(candidate: CandidateInfo) -> IndexRow:
    return IndexRow.model_validate(candidate, from_attributes=True)


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
        self.proposing: dict[Future, tuple[ProposalRequest, dict[str, str]]] = {}
        self.running: dict[Future, tuple[str, int]] = {}
        self.promotion_running = None  # the PromotionInfo being measured (one at a time)
        self.stop_reason: str | None = None
        self._load()
        self.interrupts = interrupts or Interrupts()  # not installed: then Ctrl-C raises KeyboardInterrupt as usual
        self.started: dict[Future, float] = {}  # when each running job was submitted (time.monotonic())
        self._continue_counters()

    @property
    def total_attempts(self) -> int:
        return self.config.generations * self.config.candidates_per_generation

    # what the database holds

    def _load(self) -> None:
        """The loop's state, read once: the seed set, the population, the queue, the counts."""
        experiment_id = self.experiment.id
        if self.store.store_seed_sources(experiment_id, ComponentSet.shipped(self.config.seed_set).sources):
            self.progress.event(f"stored the {self.config.seed_set} set as this experiment's seed set")
        self.seed_sources = self.store.seed_sources(experiment_id)
        self.index = PopulationIndex(self.store.index_rows(experiment_id), self.store.migrants(experiment_id))
        self.requests = RequestBuilder(self.store, self.index, self.seed_sources, self.config, experiment_id)
        self.promotion_queue = self.store.promotions(experiment_id, "queued")
        counts = self.store.proposal_counts(experiment_id)
        children = sum(1 for row in self.index.rows.values() if row.origin != "seed")
        self.attempts = max(sum(counts.values()), children)  # experiments from before proposals were stored
        self.completed_generations = self.store.experiment(self.experiment.name).completed_generations
        self.stats.proposed, self.stats.duplicates = self.attempts, counts.get("duplicate", 0)
        if counts.get("unusable"):
            self.stats.rejections["unusable"] = counts["unusable"]
        self.stats.evaluated = self.index.count("evaluated", "champion")
        self.champion: CandidateInfo | None = None
        self.champion_times: list[float] | None = None
        champion = self.store.current_champion(experiment_id)
        if champion is not None:
            self._set_champion(champion.id)
        seed = next((row for row in self.index.rows.values() if row.origin == "seed"), None)
        self.seed_warmup = self._warmup_of(seed.id) if seed is not None else None
        self.stats.near_copies = counts.get("near-copy", 0)
        self.merges_made = self.stats.merges = sum(1 for row in self.index.rows.values() if row.origin == "merge")
        self.novelty: NoveltyArchive | None = load_novelty_archive(self.config, self.store, experiment_id, self.index,
                                                                   self.seed_sources, self.proposer, self.progress)
        self.learned_dead = load_learned_dead_sites(self.store, experiment_id)
        self.bandit = load_bandit(self.config, self.store, experiment_id, self.proposer, self.rng)
        self.merger = Merger(self.store, self.index, self.requests, self.config, experiment_id, self.novelty)

    def _warmup_of(self, candidate_id: int) -> float | None:
        return next((s.seconds for s in self.store.stages(candidate_id) if s.stage == "smoke" and s.status == "passed"), None)

    # the seed

    def ensure_seed(self) -> None:
        if any(row.origin == "seed" for row in self.index.rows.values()):
            return
        component = self.config.components[0]
        candidate, _ = self.store.add_candidate(
            NewCandidate(experiment_id=self.experiment.id, component=component, source=self.seed_sources[component],
                         origin="seed", set_hash=set_identity(self.seed_sources, self.config.harness),
                         description=f"the {self.config.seed_set} set")
        )
        self.index.add(index_row(candidate))
        if self.novelty is not None:
            self.novelty.add_seed(candidate.id, self.seed_sources)
        self.progress.event(f"seed: the {self.config.seed_set} set (evaluated first; it is the first champion)")

    # the main loop

    def run(self) -> str:
        self.ensure_seed()
        self._ensure_first_champion()
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
        return bool(self.index.count("pending")) or bool(self.promotion_queue) or (
            self.attempts < self.total_attempts and self.index.has_parents()
        )

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

    def _limits(self, limits):
        """The run limit follows the seed's measured warm-up once there is one (WorkerLimits.run_limit)."""
        if self.seed_warmup is None or limits.reference_warmup_seconds is not None:
            return limits
        return limits.model_copy(update={"reference_warmup_seconds": self.seed_warmup})

    def _start_evaluations(self) -> None:
        while len(self.running) < self.executor.slots and not self.stop_reason:
            if self.promotion_queue and self.promotion_running is None:
                self._start_promotion(self.promotion_queue.pop(0))
                continue
            if not self.index.count("pending"):
                return
            claimed = self.store.claim_pending(self.experiment.id, limit=1, worker="loop")
            if not claimed:
                return
            candidate = claimed[0]
            self.index.set_status(candidate.id, "running")
            job = EvaluationJob(
                candidate_id=candidate.id,
                component_set=ComponentSet(sources=self.requests.sets([candidate.id])[candidate.id]),
                changed=self.requests.changed(candidate.id),
                harness=self.config.harness,
                score=self.config.score,
                cascade=self.config.cascade.model_copy(update={"limits": self._limits(self.config.cascade.limits)}),
                champion_times=self.champion_times,
                parent=self._parent_behaviour(candidate),
            )
            future = self.executor.submit(job)
            self.running[future] = ("evaluation", candidate.id)
            self.started[future] = time.monotonic()

    def _parent_behaviour(self, candidate: CandidateInfo) -> ParentBehaviour | None:
        parent = self.index.rows.get(candidate.parent_id) if candidate.parent_id is not None else None
        if not self.config.search.behaviour_check or parent is None or not parent.behaviour:
            return None
        return ParentBehaviour(parent_id=parent.id, component=candidate.component, fingerprints=parent.behaviour)

    def _start_promotion(self, promotion) -> None:
        champion, candidate = self.champion, self.index.rows[promotion.candidate_id]
        if champion is None or champion.id == candidate.id or not self._beats(candidate, champion):
            reason = "the champion changed since it was queued, and it no longer scores above it"
            self.store.finish_promotion(promotion.id, None, [], [], False, {"reason": reason}, 0.0)
            return
        context = self._decision_context(champion)
        pairs = max(self.promotion.pairs, pairs_for(context.alpha))  # fewer pairs can never reach the attempt's alpha
        self.store.start_promotion(promotion.id)  # before the measurement: a killed search redoes it on resume
        sets = self.requests.sets([candidate.id, champion.id])
        job = PromotionJob(
            candidate_id=candidate.id,
            incumbent_id=champion.id,
            candidate_set=ComponentSet(sources=sets[candidate.id]),
            incumbent_set=ComponentSet(sources=sets[champion.id]),
            harness=self.config.harness,
            score=self.config.score,
            promotion=self.promotion.model_copy(update={"pairs": pairs, "limits": self._limits(self.promotion.limits)}),
            context=context,
        )
        self.progress.event(f"#{candidate.id} scored above champion #{champion.id}: paired re-measurement ({pairs} pairs, "
                            f"attempt {context.attempt}, alpha {context.alpha:.2g})")
        self.promotion_running = promotion
        future = self.executor.submit(job)
        self.running[future] = ("promotion", candidate.id)
        self.started[future] = time.monotonic()

    def _start_proposals(self) -> None:
        while (
            not self.stop_reason
            and self.attempts < self.total_attempts
            and len(self.proposing) + self.index.count("pending") < self.lookahead
            and self.index.has_parents()
        ):
            if merge_due(self.merges_made, self.attempts, self.config.search.merge_share) and self._propose_merge():
                continue
            request, parent_set = self._next_request()
            self.attempts += 1
            self.stats.proposed = self.attempts
            self.proposing[self.proposal_pool.submit(self.proposer.propose, request)] = (request, parent_set)

    def _propose_merge(self) -> bool:
        """The best merge not tried yet, stored as this proposal (merge.py); False when there is none."""
        generation = self.attempts // self.config.candidates_per_generation + 1
        candidate = self.merger.propose(generation)
        if candidate is None:
            return False
        self.attempts += 1
        self.merges_made += 1
        self.stats.proposed, self.stats.merges = self.attempts, self.merges_made
        self.progress.event(f"#{candidate.id} {candidate.description}")
        return True

    def _next_request(self) -> tuple[ProposalRequest, dict[str, str]]:
        settings = self.config.population
        generation = self.attempts // self.config.candidates_per_generation + 1
        island = island_for(self.attempts % self.config.candidates_per_generation, generation, settings)
        parent = select_parent_from(self.index.pool(island), self.rng, settings)
        inspirations = select_inspirations_from(self.index.best(), self.index.elites(settings.elites_per_island), parent, self.rng, settings)
        component = self.config.components[int(self.rng.integers(len(self.config.components)))]
        request, parent_set = self.requests.request(int(parent.origin), [int(i.origin) for i in inspirations], component, island, generation)
        dead = {**dead_sites(component, parent_set[component], parent_set, self.config.harness.effective_overrides()),
                **self.learned_dead.get(component, {})}
        model = self.bandit.choose() if self.bandit is not None else None
        feedback = request.feedback.model_copy(update={"skips": skip_notes(self.requests.proposals_from(request.parent_id), dead)})
        return request.model_copy(update={"dead_sites": dead, "model": model, "feedback": feedback}), parent_set

    # finishing work

    def _finish(self, future: Future) -> None:
        if future in self.proposing:
            request, parent_set = self.proposing.pop(future)
            self._proposal_done(request, parent_set, future.result())
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

    def _proposal_done(self, request: ProposalRequest, parent_set: dict[str, str], outcome: Proposal | Unusable) -> None:
        call_id = self._record_calls(outcome.llm_calls)
        cost = sum(call.cost_usd for call in outcome.llm_calls) if outcome.llm_calls else None
        record = ProposalRecord(
            experiment_id=self.experiment.id, parent_id=request.parent_id, component=request.component,
            generation=request.generation, island=request.island, outcome="unusable", llm_call_id=call_id,
            origin=getattr(outcome, "origin", ""), model=request.model, cost_usd=cost,
        )
        if isinstance(outcome, Unusable):
            self.store.record_proposal(record.model_copy(update={"reason": outcome.reason}))
            self.requests.proposed(request.parent_id, "unusable")
            if self.bandit is not None and request.model:
                self.bandit.proposed(request.model, cost or 0.0, None)
            self.stats.rejections["unusable"] += 1
            self.progress.event(f"proposal from #{request.parent_id} unusable: {outcome.reason[:300]}")
            return
        component = request.component
        context = context_key(parent_set, component)
        near = self.novelty.near_copy(component, context, outcome.source) if self.novelty is not None else None
        if near is not None:
            reason = near.reason(self.novelty.threshold if near.measure == "structural" else self.novelty.embedding_threshold)
            self.store.record_proposal(record.model_copy(update={"outcome": "near-copy", "candidate_id": near.candidate_id,
                                                                 "reason": reason}))
            self.requests.proposed(request.parent_id, "near-copy")
            self.stats.near_copies += 1
            if self.bandit is not None and request.model:
                self.bandit.proposed(request.model, cost or 0.0, None)
            self.progress.event(f"proposal from #{request.parent_id} skipped: {reason}")
            return
        candidate, result = self.store.record_proposal(
            record,
            NewCandidate(
                experiment_id=self.experiment.id,
                component=component,
                source=outcome.source,
                origin=outcome.origin,
                parent_id=request.parent_id,
                inspiration_ids=[i.id for i in request.inspirations],
                generation=request.generation,
                island=request.island,
                llm_call_id=call_id,
                set_hash=set_identity({**parent_set, component: outcome.source}, self.config.harness),
                description=outcome.description,
                diff=unified_diff(request.parent.source, outcome.source, f"{component} #{request.parent_id}", f"{component} (new)"),
            ),
        )
        self.requests.proposed(request.parent_id, result)
        if self.bandit is not None and request.model:
            self.bandit.proposed(request.model, cost or 0.0, candidate.id if result == "new" else None)
        if result == "duplicate":
            self.stats.duplicates += 1
            self.progress.event(f"proposal from #{request.parent_id} duplicates #{candidate.id}; skipped")
            return
        self.requests.stored(candidate.id, outcome.source)
        self.index.add(index_row(candidate))
        if self.novelty is not None:
            self.novelty.add(component, context, candidate.id, outcome.source)
        self.progress.event(f"#{candidate.id} proposed from #{request.parent_id} ({component}, island {request.island}): {outcome.description[:200]}")

    def _evaluation_done(self, candidate_id: int, evaluation: Evaluation) -> None:
        self.budget.add_gpu_seconds(sum(s.seconds for s in evaluation.stages if s.stage in ("smoke", "timed", "profile")))
        summary, champion = evaluation.summary, self.champion
        promote = evaluation.status == "evaluated" and summary is not None and champion is not None and self._beats(summary, champion)
        candidate = self.store.record_evaluation(candidate_id, evaluation, queue_promotion=promote)  # the profile comes along
        self.index.add(index_row(candidate))
        self._learn(candidate, evaluation)
        if promote:
            self.promotion_queue = self.store.promotions(self.experiment.id, "queued")
        if candidate.origin == "seed":
            self.seed_warmup = next((s.seconds for s in evaluation.stages if s.stage == "smoke" and s.status == "passed"), None)
        if evaluation.status != "evaluated":
            last = evaluation.stages[-1]
            self.stats.rejections[f"{last.stage} {last.status}"] += 1
            self.progress.event(f"#{candidate_id} {evaluation.status} at {last.stage}: {last.message.splitlines()[0][:200] if last.message else ''}")
            if candidate.origin == "seed":
                raise SeedFailed(f"the seed set failed the evaluator at {last.stage}: {last.message[:2000]}")
            self._after_generation()
            return
        self.stats.evaluated += 1
        self.progress.event(
            f"#{candidate_id} evaluated: {summary.time_mean:.4f} s, {summary.accuracy_mean:.2%} (lower bound "
            f"{summary.accuracy_lower_bound:.2%}), score {summary.score:.4f}"
        )
        if champion is None:
            self.store.record_champion(self.experiment.id, candidate_id, None, {"reason": "the first evaluated candidate"})
            self._set_champion(candidate_id)
            self.progress.event(f"#{candidate_id} is the first champion")
        self._after_generation()

    def _learn(self, candidate: CandidateInfo, evaluation: Evaluation) -> None:
        """What the bandit and the mutator learn from an evaluation."""
        if self.bandit is not None:
            parent = self.index.rows.get(candidate.parent_id) if candidate.parent_id is not None else None
            gain = (candidate.score - parent.score) if candidate.score is not None and parent and parent.score is not None else 0.0
            device = sum(s.seconds for s in evaluation.stages if s.stage in ("smoke", "timed", "profile"))
            self.bandit.evaluated(candidate.id, gain if math.isfinite(gain) else 0.0, device)
        if candidate.origin == "mutator" and candidate.verdict == "rejected at behaviour":
            for site in site_of(candidate.description):
                self.learned_dead.setdefault(candidate.component, {})[site] = f"#{candidate.id} changed it and behaved like its parent"

    def _ensure_first_champion(self) -> None:
        """A search killed between the seed's evaluation and its crowning: crown the best now."""
        best = self.index.best()
        if self.champion is None and best is not None:
            self.store.record_champion(self.experiment.id, int(best.origin), None, {"reason": "the first evaluated candidate"})
            self._set_champion(int(best.origin))

    def _min_gain(self, champion: CandidateInfo) -> tuple[float, str]:
        """The promotion's minimum gain: a setting, else the champion's device's calibration, else the default.
        The calibration is read again for a new champion and at most every CALIBRATION_REFRESH_SECONDS
        (`evolve calibrate` may run beside a search), not for every evaluation."""
        now = time.monotonic()
        cached = getattr(self, "_noise", None)
        if cached is None or cached[0] != champion.id or now - cached[1] > CALIBRATION_REFRESH_SECONDS:
            device = promotion_records.device_of(self.store, champion.id)
            calibration = promotion_records.latest_calibration(self.store, device) if device else None
            cached = self._noise = (champion.id, now, calibration.time_noise_seconds if calibration else None)
        return minimum_gain(self.promotion, champion.time_mean or 0.0, cached[2])

    def _decision_context(self, champion: CandidateInfo) -> DecisionContext:
        attempt = promotion_records.attempts_made(self.store, self.experiment.id) + 1
        gain, source = self._min_gain(champion)
        record = [RunSample.model_validate(s.model_dump()) for s in promotion_records.record_samples_of(self.store, champion.id)]
        return DecisionContext(attempt=attempt, alpha=attempt_alpha(self.promotion.experiment_alpha, attempt), min_gain_seconds=gain,
                               min_gain_source=source, accuracy_margin=self.promotion.accuracy_margin, incumbent_record=record)

    def _beats(self, candidate, champion: CandidateInfo) -> bool:
        """Worth a paired comparison: a screening score above the champion's record by the minimum gain
        (a gate, not a test). `candidate` is anything with score and accuracy_lower_bound (a candidate,
        an index row, a Summary)."""
        if candidate.score is None or champion.score is None:
            return candidate.score is not None
        gain, _ = self._min_gain(champion)
        return better_score(candidate.score, champion.score + gain, candidate.accuracy_lower_bound or 0, champion.accuracy_lower_bound or 0)

    def _promotion_done(self, candidate_id: int, decision: PromotionDecision) -> None:
        self.budget.add_gpu_seconds(decision.seconds)
        promotion, self.promotion_running = self.promotion_running, None
        champion = self.champion
        promoted = decision.promoted and champion is not None
        if champion is not None:  # first: a decision lost to a crash would hand the next attempt too much alpha
            promotion_records.record_decision(self.store, self.experiment.id, candidate_id, champion.id, decision)
        self.store.finish_promotion(
            promotion.id, champion.id if champion else None, decision.candidate_samples, decision.incumbent_samples, promoted,
            decision.model_dump(exclude={"candidate_samples", "incumbent_samples"}), decision.seconds,
        )
        if champion is not None:
            for side in (candidate_id, champion.id):  # one record per candidate: all its samples make its statistics
                promotion_records.refresh_record(self.store, side, self.config.score)
                self.index.add(index_row(self.store.candidate(side)))
        if promoted:
            self._set_champion(candidate_id)
            self.progress.event(f"#{candidate_id} is the new champion: {decision.reason}")
        else:
            if champion is not None:
                self._set_champion(champion.id)  # its record grew: its statistics and times follow
            self.progress.event(f"#{candidate_id} not promoted: {decision.reason}")

    def _set_champion(self, candidate_id: int) -> None:
        if self.champion is not None and self.champion.id != candidate_id:
            self.index.set_status(self.champion.id, "evaluated")
        self.index.set_status(candidate_id, "champion")
        self.champion = self.store.candidate(candidate_id)
        # early stopping compares with the champion's whole record: screening and every confirmation
        self.champion_times = [s.time_seconds for s in promotion_records.record_samples_of(self.store, candidate_id)]
        if self.stats.champion_id != self.champion.id:
            self.stats.champion_history = champion_line(experiment_status(self.store, self.experiment).champions)
        self.stats.champion_id = self.champion.id
        self.stats.champion_time = self.champion.time_mean
        self.stats.champion_accuracy = self.champion.accuracy_mean

    def _after_generation(self) -> None:
        """Once a generation's candidates are all finished: its migration and its count, stored together."""
        generations = self.index.finished_children // self.config.candidates_per_generation
        while self.completed_generations < generations:
            generation = self.completed_generations + 1
            moves = []
            if migration_due(generation, self.config.population):
                settings = self.config.population
                elites = self.index.elites(settings.elites_per_island)
                members = {str(i.id): i for pool in elites.values() for i in pool}
                moves = [(int(members[str(m.individual_id)].origin), m.target)
                         for m in plan_migration_from(elites, self.index.on_island, settings)]
            self.store.record_generation(self.experiment.id, generation, moves)
            self.completed_generations = generation
            for candidate_id, island in moves:
                self.index.add_migrant(candidate_id, island)
            if moves:
                self.progress.event(f"migration after generation {generation}: {len(moves)} elite(s) moved")

    def _update_stats(self) -> None:
        self.stats.generation = self.attempts // self.config.candidates_per_generation + (1 if self.attempts else 0)
        self.stats.running = len(self.running)
        self.stats.queued = self.index.count("pending") + len(self.proposing)
        self.stats.best_score = self.index.best_score
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
        left = (self.total_attempts - self.attempts) + self.index.count("pending") + len(self.running)
        device_left = None if self.budget.gpu_hours_limit is None else (self.budget.gpu_hours_limit - self.budget.gpu_hours_spent) * 3600
        usd_left = None if self.budget.usd_limit is None else self.budget.usd_limit - self.budget.usd_spent
        return remaining(costs, left, self.executor.slots, device_left, usd_left)
