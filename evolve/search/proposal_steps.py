"""The loop's proposals: the next request (parent, inspirations, component, model, what would be
wasted), merges, and what comes of a reply (unusable, a near-copy, a duplicate or a new candidate).

Part of the evolution loop (loop.py), split from it because this is the half of a proposal's
life that runs before any evaluation: choosing from the in-memory index and storing the outcome
before the loop acts on it. Every outcome is stored, so `--resume` counts it.
"""

import json

from evolve.database.records import LLMCallRecord, NewCandidate, ProposalRecord
from evolve.database.serialize import unified_diff
from evolve.llm.client import LLMCall
from evolve.search.identity import set_identity
from evolve.search.index import index_row
from evolve.search.liveness import dead_sites
from evolve.search.merge import merge_due
from evolve.search.novelty import context_key
from evolve.search.population import island_for, select_inspirations_from, select_parent_from
from evolve.search.proposer import Proposal, ProposalRequest, Unusable
from evolve.search.requests import skip_notes

class ProposalSteps:
    """Mixed into EvolutionLoop: its proposal half."""

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
