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

What the search learns from its own lineage, each part in its own module: a share of the proposals are component
merges (merge.py); a proposal that is a near-copy of a program already evaluated is skipped
before it is stored (novelty.py); a child whose changed component behaves exactly like its
parent's is skipped in the sandboxed CPU stage (evaluator/behaviour.py); the built-in mutator
never changes a site that cannot matter (liveness.py); with several models, a cost-aware bandit
chooses the model of each proposal (evolve/llm/bandit.py).

Everything the loop needs to continue is written before it acts on it (evolve/database/search_state.py):
every proposal's outcome, the promotion queue, the migrants and generations done, GPU seconds.

This module holds the loop only: it builds its collaborators, each of which takes what it needs
in its constructor and owns one piece of state (docs/ARCHITECTURE.md draws them):
- SearchState (state.py): the in-memory view of the lineage and the champion;
- Proposals (proposals.py): requests, merges, replies, and their count;
- Evaluations (evaluations.py): pending candidates to jobs, results to the database;
- Promotions (promotions.py): the gate, the queue, paired comparisons, champion changes,
  under the PromotionPolicy (evaluator/promotion_policy/);
- Generations (generations.py): generations done and migrations;
- Scheduler (scheduler.py): the jobs in flight on the executor;
- Learning (learning.py): the novelty archive, dead sites and the model bandit;
- Panel (panel.py): event lines, counters and the estimate of what is left.
"""

from concurrent.futures import FIRST_COMPLETED, Future, wait

import numpy as np

from components import set_description
from evaluator.promotion_policy.policy import PromotionPolicy
from evolve.config import ExperimentConfig
from evolve.database.records import ExperimentInfo, NewCandidate
from evolve.database.status import experiment_status
from evolve.database.store import Store
from evolve.llm.client import Budget
from evolve.search.evaluations import Evaluations, SeedFailed
from evolve.search.executor import Executor
from evolve.search.generations import Generations
from evolve.search.identity import set_identity
from evolve.search.interrupts import Interrupts
from evolve.search.learning import Learning
from evolve.search.panel import Panel
from evolve.search.progress import Progress
from evolve.search.promotions import Promotions
from evolve.search.proposals import Proposals
from evolve.search.proposer import Proposer
from evolve.search.scheduler import Scheduler
from evolve.search.state import SearchState

__all__ = ["EvolutionLoop", "SeedFailed"]

# Verdicts a reader should see as what they are: the behaviour check rejects a child that trains exactly like its parent.
NO_OP_WORDS = {"rejected at behaviour": "rejected as no-ops (they train exactly like their parent)"}


class EvolutionLoop:
    def __init__(self, config: ExperimentConfig, store: Store, experiment: ExperimentInfo, executor: Executor, proposer: Proposer,
                 progress: Progress, budget: Budget, rng: np.random.Generator, interrupts: Interrupts | None = None):
        self.config, self.store, self.experiment, self.budget = config, store, experiment, budget
        self.interrupts = interrupts or Interrupts()  # not installed: then Ctrl-C raises KeyboardInterrupt as usual
        self.progress, self.stats = progress, progress.stats
        self.panel = panel = Panel(progress, store, experiment)
        self.state = state = SearchState.load(store, experiment, config, panel.event)
        status = experiment_status(store, experiment)
        self.scheduler = Scheduler(executor, status.evaluation_seconds, status.promotion_seconds)
        self.learning = Learning.load(config, store, experiment.id, state.index, state.seed_sources, proposer, rng, panel.event)
        self.promotions = Promotions(config, store, experiment.id, state, PromotionPolicy(config.promotion, config.score), budget, panel)
        self.generations = Generations(config, store, experiment, state, panel)
        self.evaluations = Evaluations(config, store, experiment.id, state, self.promotions, self.learning, self.generations,
                                       budget, panel)
        self.proposals = Proposals(config, store, experiment.id, state, proposer, self.learning, self.generations, budget, panel, rng)
        panel.champion_changed(state)
        # proposals wait on the network: enough run ahead that a slow model still keeps every slot fed
        self.lookahead = executor.slots + config.llm.concurrent_calls
        self.stop_reason: str | None = None

    @property
    def attempts(self) -> int:
        return self.proposals.attempts

    @property
    def bandit(self):
        return self.learning.bandit

    # the seed

    def ensure_seed(self) -> None:
        """The seed set as candidate 0 (its first component's source stands for the whole set)."""
        if self.state.seed_row() is not None:
            return
        component, seed_sources = self.config.components[0], self.state.seed_sources
        candidate, _ = self.store.add_candidate(
            NewCandidate(experiment_id=self.experiment.id, component=component, source=seed_sources[component],
                         origin="seed", set_hash=set_identity(seed_sources, self.config.harness),
                         description=set_description(self.config.seed_set))
        )
        self.state.add(candidate)
        if self.learning.novelty is not None:
            self.learning.novelty.add_seed(candidate.id, seed_sources)
        self.panel.event(f"seed: {set_description(self.config.seed_set)} (evaluated first; it is the first champion)")

    # the main loop

    def run(self) -> str:
        self.ensure_seed()
        self.promotions.ensure_first_champion()
        try:
            while True:
                if self.interrupts.abandon.is_set():
                    self._abandon()
                    break
                if self.interrupts.stop_requested and not self.stop_reason:
                    self._stopping()
                self.stop_reason = self.stop_reason or self.budget.exhausted_reason()
                if not self.stop_reason:
                    self._start_evaluations()
                    self.proposals.start(self.lookahead)
                if not self._in_flight() and (self.stop_reason or not self._more_to_do()):
                    break
                done, _ = wait(self._in_flight(), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    if self.interrupts.abandon.is_set():
                        break  # a killed job's result is no verdict on its candidate
                    self._finish(future)
                self._refresh()
        except KeyboardInterrupt:
            self._interrupted()
        finally:
            self.proposals.shutdown()
        self._refresh()
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

    def _in_flight(self) -> list[Future]:
        return [*self.scheduler.running, *self.proposals.in_flight]

    def _more_to_do(self) -> bool:
        return bool(self.state.index.count("pending")) or bool(self.promotions.queue) or self.proposals.more_to_propose()

    def _start_evaluations(self) -> None:
        """Fill the free slots: the pairs of a promotion first (one comparison at a time, its pairs on as many slots as
        its next look needs), then pending candidates, then, where none is pending, the comparison's later pairs."""
        while self.scheduler.has_free_slot():
            if self.promotions.due():
                job = self.promotions.next_job()
                if job is not None:
                    self.scheduler.submit("promotion", job.candidate_id, job)
                continue
            job = self.evaluations.next_job()
            if job is None:  # nothing to screen: a free slot measures later pairs of the comparison in progress
                if self.promotions.due(idle_slots=True) and (pair := self.promotions.next_job()) is not None:
                    self.scheduler.submit("promotion", pair.candidate_id, pair)
                    continue
                return
            self.scheduler.submit("evaluation", job.candidate_id, job)

    def _finish(self, future: Future) -> None:
        if future in self.proposals.in_flight:
            self.proposals.finished(future)
            return
        kind, candidate_id = self.scheduler.finished(future)
        if kind == "evaluation":
            self.evaluations.done(candidate_id, future.result())
        elif (seconds := self.promotions.done(candidate_id, future.result())) is not None:
            self.scheduler.measured["promotion"].append(seconds)  # a whole comparison: its pairs' slot-seconds

    def _refresh(self) -> None:
        config = self.config
        self.panel.refresh(self.state, self.scheduler, self.budget, self.proposals.attempts, self.proposals.total,
                           len(self.proposals.in_flight), config.candidates_per_generation, config.generations)

    # interrupts (evolve/search/interrupts.py)

    def _stopping(self) -> None:
        """First Ctrl-C: start nothing new; what runs finishes and is stored."""
        self.stop_reason = "stopped by Ctrl-C"
        self.stats.note = "stopping: running jobs finish; Ctrl-C again kills them (re-queued for --resume)"
        self.panel.event(
            f"stopping: finishing {len(self.scheduler.running)} running job(s) and {len(self.proposals.in_flight)} proposal(s); "
            "Ctrl-C again kills them now (they are re-queued for --resume)"
        )

    def _abandon(self) -> None:
        """Second Ctrl-C: every worker killed at once, the unfinished candidates back to pending."""
        killed = self.scheduler.abandon()
        requeued = self.store.requeue_unfinished(self.experiment.id)
        self.stop_reason = f"stopped by a second Ctrl-C: {killed} running job(s) killed, {requeued} candidate(s) re-queued"
        self.panel.event(self.stop_reason)
        self.proposals.drop_in_flight()

    def _interrupted(self) -> None:
        """Ctrl-C without an installed handler (KeyboardInterrupt): the same two steps."""
        self._stopping()
        try:
            while self._in_flight():
                done, _ = wait(self._in_flight(), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(future)
        except KeyboardInterrupt:
            self._abandon()
