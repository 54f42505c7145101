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
the rule of evaluator/promotion_policy/rule.py: the loop numbers the attempts (each spends its share of the
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

This module holds the loop itself (its state, the main loop, interrupts, evaluations); its other
parts are mixed in from their own modules: proposals (proposal_steps.py), champions and
promotions (promotion_steps.py), generations and migration (generation_steps.py) and what the
panel shows (panel_steps.py).
"""

import math
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np

from components import set_description
from evaluator.cascade import ParentBehaviour
from evaluator.component_set import ComponentSet
from evaluator.results import Evaluation
from evolve.config import ExperimentConfig
from evolve.database.records import CandidateInfo, ExperimentInfo, NewCandidate
from evolve.database.store import Store
from evolve.llm.client import Budget
from evolve.search.executor import EvaluationJob, Executor
from evolve.search.identity import set_identity
from evolve.search.generation_steps import GenerationSteps
from evolve.search.index import PopulationIndex, index_row
from evolve.search.interrupts import Interrupts
from evolve.search.liveness import site_of
from evolve.search.merge import Merger
from evolve.search.novelty import NoveltyArchive
from evolve.search.panel_steps import PanelSteps
from evolve.search.progress import Progress
from evolve.search.promotion_steps import PromotionSteps
from evolve.search.proposal_steps import ProposalSteps
from evolve.search.proposer import ProposalRequest, Proposer
from evolve.search.requests import RequestBuilder
from evolve.search.smart_state import load_bandit, load_learned_dead_sites, load_novelty_archive

# Verdicts a reader should see as what they are: the behaviour check rejects a child that trains exactly like its parent.
NO_OP_WORDS = {"rejected at behaviour": "rejected as no-ops (they train exactly like their parent)"}


class SeedFailed(RuntimeError):
    """The seed set itself did not pass the evaluator: the search has nothing to start from."""


class EvolutionLoop(ProposalSteps, PromotionSteps, GenerationSteps, PanelSteps):
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
        self._noise: tuple | None = None  # (champion id, when read, its device's calibrated time noise): PromotionSteps
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
        # The stored seed set is the truth (a folder seed is read once, when the experiment is created: on a resume
        # the folder may have changed or gone); only an experiment created without one reads it here.
        if not self.store.seed_sources(experiment_id, required=False):
            self.store.store_seed_sources(experiment_id, ComponentSet.named(self.config.seed_set).sources)
            self.progress.event(f"stored {set_description(self.config.seed_set)} as this experiment's seed set")
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
        self.champion_branch = "accuracy"  # which half of the rule applies: evaluator/promotion_policy/rule.py branch_of
        self.champion_confirmed = False  # its record holds paired runs on fresh workers (the gate's time test needs them)
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
                         description=set_description(self.config.seed_set))
        )
        self.index.add(index_row(candidate))
        if self.novelty is not None:
            self.novelty.add_seed(candidate.id, self.seed_sources)
        self.progress.event(f"seed: {set_description(self.config.seed_set)} (evaluated first; it is the first champion)")

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
        return f"{self.stop_reason}; {self.outcomes()}" if self.stop_reason else f"all {self.outcomes()}"

    def outcomes(self) -> str:
        """What became of the proposals, from the database: "8 proposals: 6 evaluated, 2 rejected at behaviour (no-ops)"."""
        proposals = self.store.proposal_counts(self.experiment.id)
        verdicts = self.store.child_verdicts(self.experiment.id)
        parts = [f"{verdicts.pop('evaluated', 0)} evaluated"]
        parts += [f"{n} {NO_OP_WORDS.get(verdict, verdict)}" for verdict, n in sorted(verdicts.items(), key=lambda item: -item[1])]
        for outcome, words in (("unusable", "unusable (no live edit, or no usable reply)"), ("duplicate", "duplicates of earlier candidates"),
                               ("near-copy", "near-copies skipped")):
            if proposals.get(outcome):
                parts.append(f"{proposals[outcome]} {words}")
        return f"{sum(proposals.values())} proposals: " + ", ".join(parts)

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

    def _evaluation_done(self, candidate_id: int, evaluation: Evaluation) -> None:
        self.budget.add_gpu_seconds(sum(s.seconds for s in evaluation.stages if s.stage in ("smoke", "timed", "profile")))
        summary, champion = evaluation.summary, self.champion
        gate = None if summary is None or champion is None else self._gate(summary, champion, [s.time_seconds for s in evaluation.samples])
        promote = evaluation.status == "evaluated" and summary is not None and champion is not None and gate is None
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
        if gate is not None and gate.startswith("scores above"):
            self.progress.event(f"#{candidate_id} {gate}")
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

