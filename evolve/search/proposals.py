"""Proposals: the next request (parent, inspirations, component, model, what would be wasted), merges,
and what comes of a reply (unusable, a near-copy, a duplicate or a new candidate).

This is the half of a candidate's life before any evaluation: it chooses from the in-memory state
and stores every outcome before the loop acts on it, so `--resume` counts it. LLM calls wait on
the network: several run at once in a small thread pool, so a slow model still keeps every slot fed.
"""

import json
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from evolve.config import ExperimentConfig
from evolve.database.records import LLMCallRecord, NewCandidate, ProposalRecord
from evolve.database.serialize import unified_diff
from evolve.database.store import Store
from evolve.llm.client import Budget, LLMCall
from evolve.search.generations import Generations
from evolve.search.identity import set_identity
from evolve.search.learning import Learning
from evolve.search.merge import Merger, merge_due
from evolve.search.novelty import context_key
from evolve.search.panel import Panel
from evolve.search.population import island_for, select_inspirations_from, select_parent_from
from evolve.search.proposer import Proposal, ProposalRequest, Proposer, Unusable
from evolve.search.requests import skip_notes
from evolve.search.state import SearchState


class Proposals:
    """Makes the experiment's `generations * candidates_per_generation` proposals; owns their count and the calls in flight."""

    def __init__(self, config: ExperimentConfig, store: Store, experiment_id: int, state: SearchState, proposer: Proposer,
                 learning: Learning, generations: Generations, budget: Budget, panel: Panel, rng: np.random.Generator):
        self.config, self.store, self.experiment_id, self.state, self.generations = config, store, experiment_id, state, generations
        self.proposer, self.learning, self.budget, self.panel, self.rng = proposer, learning, budget, panel, rng
        self.total = config.generations * config.candidates_per_generation
        self.pool = ThreadPoolExecutor(max_workers=config.llm.concurrent_calls, thread_name_prefix="proposal")
        self.in_flight: dict[Future, tuple[ProposalRequest, dict[str, str]]] = {}
        index = state.index
        children = sum(1 for row in index.rows.values() if row.origin != "seed")
        self.attempts = max(sum(store.proposal_counts(experiment_id).values()), children)  # experiments from before proposals were stored
        self.merges_made = sum(1 for row in index.rows.values() if row.origin == "merge")
        panel.stats.merges = self.merges_made
        self.merger = Merger(store, index, state.requests, config, experiment_id, learning.novelty)

    def more_to_propose(self) -> bool:
        return self.attempts < self.total and self.state.index.has_parents()

    def start(self, lookahead: int) -> None:
        """Proposals until `lookahead` are waiting (in flight or pending evaluation)."""
        index = self.state.index
        while self.more_to_propose() and len(self.in_flight) + index.count("pending") < lookahead:
            if merge_due(self.merges_made, self.attempts, self.config.search.merge_share) and self._propose_merge():
                continue
            request, parent_set = self._next_request()
            self.attempts += 1
            self.in_flight[self.pool.submit(self.proposer.propose, request)] = (request, parent_set)

    def finished(self, future: Future) -> None:
        request, parent_set = self.in_flight.pop(future)
        self.done(request, parent_set, future.result())

    def drop_in_flight(self) -> None:
        """An LLM call in flight is dropped; its reply, if it comes, is not stored."""
        self.in_flight.clear()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _propose_merge(self) -> bool:
        """The best merge not tried yet, stored as this proposal (merge.py); False when there is none."""
        generation = self.attempts // self.config.candidates_per_generation + 1
        candidate = self.merger.propose(generation)
        if candidate is None:
            return False
        self.attempts += 1
        self.merges_made += 1
        self.panel.count("merges")
        self.panel.event(f"#{candidate.id} {candidate.description}")
        return True

    def _next_request(self) -> tuple[ProposalRequest, dict[str, str]]:
        settings, index = self.config.population, self.state.index
        generation = self.attempts // self.config.candidates_per_generation + 1
        island = island_for(self.attempts % self.config.candidates_per_generation, generation, settings)
        parent = select_parent_from(index.pool(island), self.rng, settings)
        inspirations = select_inspirations_from(index.best(), index.elites(settings.elites_per_island), parent, self.rng, settings)
        component = self.config.components[int(self.rng.integers(len(self.config.components)))]
        requests = self.state.requests
        request, parent_set = requests.request(int(parent.origin), [int(i.origin) for i in inspirations], component, island, generation)
        dead = self.learning.dead_sites(component, parent_set, self.config.harness.effective_overrides())
        model = self.learning.bandit.choose() if self.learning.bandit is not None else None
        feedback = request.feedback.model_copy(update={"skips": skip_notes(requests.proposals_from(request.parent_id), dead)})
        return request.model_copy(update={"dead_sites": dead, "model": model, "feedback": feedback}), parent_set

    def _record_calls(self, calls: list[LLMCall]) -> int | None:
        last = None
        for call in calls:
            self.budget.add_call(call)
            self.panel.count("tokens", (call.tokens_in or 0) + (call.tokens_out or 0))
            last = self.store.record_llm_call(LLMCallRecord(
                experiment_id=self.experiment_id, model=call.model, endpoint=call.endpoint,
                prompt=json.dumps(call.messages, indent=1), response=call.response, tokens_in=call.tokens_in,
                tokens_out=call.tokens_out, latency_seconds=call.latency_seconds, cost=call.cost_usd, error=call.error,
            ))
        return last

    def done(self, request: ProposalRequest, parent_set: dict[str, str], outcome: Proposal | Unusable) -> None:
        """Store what came of a reply, then tell the state and the learners."""
        call_id = self._record_calls(outcome.llm_calls)
        cost = sum(call.cost_usd for call in outcome.llm_calls) if outcome.llm_calls else None
        record = ProposalRecord(
            experiment_id=self.experiment_id, parent_id=request.parent_id, component=request.component,
            generation=request.generation, island=request.island, outcome="unusable", llm_call_id=call_id,
            origin=getattr(outcome, "origin", ""), model=request.model, cost_usd=cost,
        )
        if isinstance(outcome, Unusable):
            self.store.record_proposal(record.model_copy(update={"reason": outcome.reason}))
            self._outcome(request, "unusable", cost, None)
            self.panel.rejected("unusable")
            self.panel.event(f"proposal from #{request.parent_id} unusable: {outcome.reason[:300]}")
            return
        component, novelty = request.component, self.learning.novelty
        context = context_key(parent_set, component)
        near = novelty.near_copy(component, context, outcome.source) if novelty is not None else None
        if near is not None:
            reason = near.reason(novelty.threshold if near.measure == "structural" else novelty.embedding_threshold)
            self.store.record_proposal(record.model_copy(update={"outcome": "near-copy", "candidate_id": near.candidate_id, "reason": reason}))
            self._outcome(request, "near-copy", cost, None)
            self.panel.count("near_copies")
            self.panel.event(f"proposal from #{request.parent_id} skipped: {reason}")
            return
        candidate, result = self.store.record_proposal(record, self._new_candidate(request, parent_set, outcome, call_id))
        self._outcome(request, result, cost, candidate.id if result == "new" else None)
        if result == "duplicate":
            self.panel.count("duplicates")
            self.panel.event(f"proposal from #{request.parent_id} duplicates #{candidate.id}; skipped")
            return
        self.state.requests.stored(candidate.id, outcome.source)
        self.state.add(candidate)
        if novelty is not None:
            novelty.add(component, context, candidate.id, outcome.source)
        self.panel.event(f"#{candidate.id} proposed from #{request.parent_id} ({component}, island {request.island}): "
                         f"{outcome.description[:200]}")

    def _outcome(self, request: ProposalRequest, outcome: str, cost: float | None, candidate_id: int | None) -> None:
        self.state.requests.proposed(request.parent_id, outcome)
        self.learning.proposed(request.model, cost or 0.0, candidate_id)
        if candidate_id is None:
            self.generations.proposal_without_candidate()

    def _new_candidate(self, request: ProposalRequest, parent_set: dict[str, str], outcome: Proposal, call_id: int | None) -> NewCandidate:
        component = request.component
        return NewCandidate(
            experiment_id=self.experiment_id, component=component, source=outcome.source, origin=outcome.origin,
            parent_id=request.parent_id, inspiration_ids=[i.id for i in request.inspirations], generation=request.generation,
            island=request.island, llm_call_id=call_id,
            set_hash=set_identity({**parent_set, component: outcome.source}, self.config.harness),
            description=outcome.description,
            diff=unified_diff(request.parent.source, outcome.source, f"{component} #{request.parent_id}", f"{component} (new)"),
        )
