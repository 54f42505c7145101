"""Proposers: where a child's source comes from, the LLM or the built-in mutator.

Both take the same request (the parent, its relatives, the evaluator's feedback) and return
either a Proposal (new source text for one component) or an Unusable reply (why nothing came
of it). The LLM proposer asks once, and when a SEARCH/REPLACE patch does not apply it sends the
exact mismatch back once for repair. Every LLM call made is returned for the database.
"""

from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field

from evaluator.settings import ScoreSettings
from evolve.config import MutatorSettings
from evolve.llm.client import LLMCall, LLMClient
from evolve.llm.prompt_builder import Feedback, PromptCandidate, PromptInputs, build_messages, build_repair_messages
from evolve.llm.reply import PatchError, ReplyError, apply_reply, explanation, parse_reply
from evolve.search.mutator import MutatorError, mutate


class ProposalRequest(BaseModel):
    component: str
    parent: PromptCandidate = Field(description="the parent's source of this component and its results")
    inspirations: list[PromptCandidate] = Field(default_factory=list)
    feedback: Feedback = Field(default_factory=Feedback)
    parent_id: int
    island: int
    generation: int
    hyperparams: dict | None = Field(None, description="the values in force: the set's HYPERPARAMS and the harness's overrides")
    siblings: dict[str, str] = Field(default_factory=dict, description="the set's other components -> their interfaces")
    dead_sites: dict[str, str] = Field(default_factory=dict, description="mutator site -> why changing it cannot matter (liveness.py)")
    model: str | None = Field(None, description="the model to ask (the bandit's choice); None: drawn by the configured weights")


class Proposal(BaseModel):
    request: ProposalRequest
    source: str
    origin: Literal["llm", "mutator", "merge"]
    description: str = Field(description="what changed and why: the mutator's edit, or the LLM's own one-line summary")
    llm_calls: list[LLMCall] = Field(default_factory=list)


class Unusable(BaseModel):
    request: ProposalRequest
    reason: str
    llm_calls: list[LLMCall] = Field(default_factory=list)


class Proposer(Protocol):
    name: str

    def propose(self, request: ProposalRequest) -> Proposal | Unusable: ...


class MutatorProposer:
    """The built-in offline mutator: program edits per component (evolve/search/operators), numbers and listed alternatives."""

    name = "built-in mutator (no LLM endpoint configured)"

    def __init__(self, settings: MutatorSettings, rng: np.random.Generator):
        self.settings, self.rng = settings, rng

    def propose(self, request: ProposalRequest) -> Proposal | Unusable:
        try:
            mutation = mutate(request.component, request.parent.source, self.rng, self.settings, request.dead_sites)
        except MutatorError as e:
            return Unusable(request=request, reason=str(e))
        return Proposal(request=request, source=mutation.source, origin="mutator", description=mutation.description)


class LLMProposer:
    """Asks a language model for a child, with one repair round for a patch that does not apply."""

    def __init__(
        self,
        client: LLMClient,
        score: ScoreSettings,
        output_format: Literal["diff", "full", "either"],
        gpu: str,
        templates_dir: Path | None = None,
        fallback: MutatorProposer | None = None,
    ):
        """`fallback`: who makes the child when the call fails or the reply stays unusable (none: the proposal is unusable)."""
        self.client, self.score, self.output_format, self.gpu, self.templates_dir = client, score, output_format, gpu, templates_dir
        self.fallback = fallback
        self.name = "LLM: " + ", ".join(f"{m.name} (weight {m.weight:g})" for m in client.settings.models)

    def propose(self, request: ProposalRequest) -> Proposal | Unusable:
        outcome = self._ask(request)
        if isinstance(outcome, Proposal) or self.fallback is None:
            return outcome
        fallback = self.fallback.propose(request)
        if isinstance(fallback, Unusable):
            return outcome.model_copy(update={"reason": f"{outcome.reason}; the built-in mutator could not stand in: {fallback.reason}"})
        return fallback.model_copy(update={
            "description": f"{fallback.description} (built-in mutator: {outcome.reason[:160]})", "llm_calls": outcome.llm_calls,
        })

    def _ask(self, request: ProposalRequest) -> Proposal | Unusable:
        inputs = PromptInputs(
            component=request.component,
            parent=request.parent,
            inspirations=request.inspirations,
            feedback=request.feedback,
            gpu=self.gpu,
            score=self.score,
            output_format=self.output_format,
            hyperparams=request.hyperparams,
            siblings=request.siblings,
        )
        messages = build_messages(inputs, self.templates_dir)
        calls = [self.client.complete(messages, model=request.model)]
        if not calls[-1].ok:
            return Unusable(request=request, reason=f"the LLM call failed: {calls[-1].error}", llm_calls=calls)
        try:
            return self._proposal(request, calls[-1], calls)
        except (PatchError, ReplyError) as first_error:
            repair = build_repair_messages(
                messages, calls[-1].response or "", str(first_error), request.component, self.output_format, self.templates_dir
            )
            calls.append(self.client.complete(repair, model=calls[-1].model))
            if not calls[-1].ok:
                return Unusable(request=request, reason=f"the repair call failed: {calls[-1].error}", llm_calls=calls)
            try:
                return self._proposal(request, calls[-1], calls)
            except (PatchError, ReplyError) as e:
                return Unusable(request=request, reason=f"the reply was unusable after one repair: {e}", llm_calls=calls)

    def _proposal(self, request: ProposalRequest, call: LLMCall, calls: list[LLMCall]) -> Proposal:
        parsed = parse_reply(call.response or "")
        source = apply_reply(request.parent.source, parsed)
        description = explanation(call.response or "") or (
            "a SEARCH/REPLACE patch" if parsed.format == "diff" else "a full module"
        ) + " (the reply gave no description)"
        return Proposal(request=request, source=source, origin="llm", description=description, llm_calls=calls)
