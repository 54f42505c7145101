"""The built-in offline mutator: one small, valid, live program edit per change.

When no LLM is configured (or its reply is unusable) the loop still searches: this mutator
makes a child by applying one of the component's edit operators (operators/: numbers and listed
choices everywhere, and per component the moves that change what the code does: the optimizer's
momentum and Nesterov form, update scale and Newton-Schulz steps; the iteration's count and
dtype; activations, pooling and flags of the network; cutout and padding of the augmentation;
the test-time views), through a concrete-syntax tree, so comments and layout survive.

How an edit is chosen, per change:
1. the operator: with probability `choice_probability` the `choice` operator (the component's
   ALTERNATIVES) when it has live edits; otherwise a uniformly drawn one of the others that has;
2. the edit: uniformly among the operator's sites, each drawn once;
3. an edit is skipped, and the next one tried, when its site is `dead` (liveness.py: a default
   every caller overrides, a key the harness sets, a site whose children behaved as their parent),
   when it leaves the code canonically unchanged, or when the static check refuses the child for a
   reason it did not refuse the parent for (a parent's own findings are the evaluator's to report).
The first edit that passes wins. When none does, MutatorError says in one line why, per operator.

Deterministic given the numpy Generator. Each change is described as `site: old -> new`
(liveness.site_of reads the site back), which the loop stores as the candidate's description.
"""

from collections.abc import Mapping

import libcst as cst
import numpy as np
from pydantic import BaseModel

from evaluator.static_check import check_source
from evolve.config import MutatorSettings
from evolve.database.canonical import source_hash
from evolve.search.mutation_sites import (  # noqa: F401 (the mutator's names: liveness.py and the tests use them here)
    ALTERNATIVES_NAME,
    HYPERPARAMS_NAME,
    MutatorError,
    Site,
    mutation_sites,
)
from evolve.search.operators import Edit, Operator, Tree, operators_for

MAX_REASONS = 3  # dead sites named per operator in a MutatorError


class Change(BaseModel):
    operator: str
    site: str
    line: int
    old: str
    new: str


class Mutation(BaseModel):
    """The child's source and what changed."""

    source: str
    description: str
    changes: list[Change]


def mutate(
    component: str, source: str, rng: np.random.Generator, settings: MutatorSettings | None = None,
    dead: Mapping[str, str] | None = None,
) -> Mutation:
    """A child of `source` with `settings.changes` live edits; raises MutatorError if not even one can be made.

    `dead`: site name -> why changing it cannot matter (liveness.py); those sites are never chosen."""
    settings = settings or MutatorSettings()
    mutation_sites(component, source)  # an unknown component, bad syntax or malformed ALTERNATIVES: one clear error
    dead = dict(dead or {})
    changes: list[Change] = []
    child = source
    for _ in range(settings.changes):
        edit = _one_edit(component, child, rng, settings, dead, raise_if_none=not changes)
        if edit is None:
            break
        changes.append(Change(operator=edit.operator, site=edit.site, line=edit.line, old=edit.old, new=edit.new))
        dead[edit.site] = "already changed in this mutation"
        child = edit.source
    description = "; ".join(f"{c.site}: {c.old} -> {c.new}" for c in changes)
    return Mutation(source=child, description=description, changes=changes)


def _one_edit(component: str, source: str, rng: np.random.Generator, settings: MutatorSettings,
              dead: Mapping[str, str], raise_if_none: bool) -> Edit | None:
    try:
        tree = Tree(component, source)
    except cst.ParserSyntaxError as e:
        raise MutatorError(f"line {e.raw_line}: {e.message}: the mutator needs valid Python") from e
    parent_hash = source_hash(source)
    parent_findings = _findings(component, source)
    operators = operators_for(component, settings)
    choice = next(op for op in operators if op.name == "choice")
    others = [op for op in operators if op is not choice]
    order = [others[i] for i in rng.permutation(len(others))]
    order = [choice, *order] if rng.random() < settings.choice_probability else [*order, choice]
    why: dict[str, str] = {}
    for operator in order:
        edit, reason = _first_live_edit(operator, tree, rng, dead, parent_hash, parent_findings)
        if edit is not None:
            return edit
        if reason:
            why[operator.name] = reason
    if not raise_if_none:
        return None
    if not why:
        raise MutatorError(
            f"the {component} component has nothing the built-in mutator can change: no numeric literal in a "
            "module-level assignment, a parameter default or a keyword argument, no ALTERNATIVES, and none of the "
            f"patterns its operators edit ({', '.join(op.name for op in others)})")
    every_dead = all(r.startswith("dead:") for r in why.values())
    head = (f"every site of the {component} component the mutator could change cannot take effect here"
            if every_dead else f"no edit of the {component} component is live and valid")
    raise MutatorError(head + ": " + "; ".join(f"{name}: {reason.removeprefix('dead: ')}" for name, reason in why.items()))


def _findings(component: str, source: str) -> set[str]:
    """The static check's findings, without line numbers (an edit above a finding moves it)."""
    return {f"[{v.rule}] {v.message}" for v in check_source(component, source)}


def _first_live_edit(operator: Operator, tree: Tree, rng: np.random.Generator, dead: Mapping[str, str],
                     parent_hash: str, parent_findings: set[str]) -> tuple[Edit | None, str]:
    """The operator's first edit, in random order, that can matter; else why none can ("" when it has none)."""
    edits = operator.edits(tree, rng)
    dead_here, unchanged, refused = [], 0, []
    for index in rng.permutation(len(edits)):
        edit = edits[index]
        if edit.site in dead:
            dead_here.append(f"{edit.site}: {dead[edit.site]}")
        elif source_hash(edit.source) == parent_hash:
            unchanged += 1
        elif new_findings := sorted(_findings(tree.component, edit.source) - parent_findings):
            refused.append(f"{edit.site}: {new_findings[0]}")
        else:
            return edit, ""
    if not edits:
        return None, ""
    if dead_here and not unchanged and not refused:
        return None, "dead: " + "; ".join(dead_here[:MAX_REASONS]) + (f" (and {len(dead_here) - MAX_REASONS} more)" if len(dead_here) > MAX_REASONS else "")
    parts = [f"{len(dead_here)} site(s) cannot take effect"] if dead_here else []
    parts += [f"{unchanged} edit(s) change nothing"] if unchanged else []
    parts += [f"{len(refused)} refused by the static check (first: {refused[0]})"] if refused else []
    return None, ", ".join(parts)
