"""The built-in offline mutator: small, valid changes to a component's constants.

When no LLM is configured the loop still searches: this mutator proposes a child by changing one
(or `changes`) of the component's tunable constants, found through the AST and rewritten in place
in the source text, so comments and layout survive and the diff is one line.

Where it looks (constants elsewhere may be indices, dimensions or shapes, so they are left alone):

- module-level assignments of literals: `LR = 0.24`, `COEFFS = (3.4, -4.7, 2.0)`, and the values of
  module-level dict literals such as HYPERPARAMS;
- default values of function and method parameters: `def orthogonalize(G, steps=3, eps=1e-7)`;
- keyword arguments with a literal value: `nn.Conv2d(..., kernel_size=3)`, except structural ones
  (`dim`, `axis`, `groups`, channel counts; see STRUCTURAL_KEYWORDS);
- float literals anywhere in functions (`0.5 * model(x)`): a float is a coefficient, never an index
  or a size; except the exponent of `**` (`x ** 0.5` is a square root). Ints inside code are left
  alone: they are as often indices, dimensions or counts.

How a number changes:

- bools are never perturbed (only switched through ALTERNATIVES, below);
- ints: 0 and 1 are left alone (flags, identities, counts of one); negative ints too (usually
  indices); other ints move by a relative step with standard deviation `int_sigma`, by at least 1,
  stay >= 2 (a value the mutator writes must be one it can change again: a 2 turned into 1 would
  freeze that site in every descendant, e.g. a conv's kernel_size), and ints of 16 or more stay
  multiples of their power-of-two factor up to 8 (so 2000 and 64 stay multiples of 8), which keeps
  sizes friendly to the hardware;
- floats: 0.0 is left alone; the sign is kept; a magnitude in (0, 1) (a momentum, a fraction, a
  small rate) moves on the logit scale, so it stays in (0, 1) and small values change by a factor;
  larger magnitudes are multiplied by exp(N(0, float_sigma)); the result has 3 significant digits;
- the harness's own HYPERPARAMS keys keep their meaning: batch_size stays an int multiple of 8 and
  at least 8, epochs stays positive, label_smoothing stays in [0, 1).

ALTERNATIVES: a component may list the values a setting may take, as a module-level dict literal
`ALTERNATIVES = {"NAME": [option, ...]}`, where NAME is a module-level name assigned a literal
(`NAME = option`) or, in the hyperparams component, a key of HYPERPARAMS. With probability
`choice_probability` (when the component lists any) the mutator switches one of them to another
listed option instead of perturbing a number; a listed setting is never perturbed numerically, which
is how a component protects an index such as `tta_level` from taking a value it does not support.

Deterministic given the numpy Generator. Each change is described as `site: old -> new`, which
the loop stores as the candidate's "prompt".
"""

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel

from evaluator.python_parse import parse_python
from evolve.config import MutatorSettings
from evolve.search.mutation_sites import (  # noqa: F401 (the mutator's names: liveness.py and the tests use them here)
    ALTERNATIVES_NAME,
    HYPERPARAMS_NAME,
    MutatorError,
    Site,
    mutation_sites,
)

INT_GRANULARITY_FROM = 16  # ints this large keep their power-of-two factor (up to MAX_GRANULARITY)
MAX_GRANULARITY = 8
SIGNIFICANT_DIGITS = 3


class Change(BaseModel):
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
    """A child of `source` with `settings.changes` constants changed; raises MutatorError if none can be.

    `dead`: site name -> why changing it cannot matter (liveness.py); those sites are never chosen."""
    settings = settings or MutatorSettings()
    sites = mutation_sites(component, source)
    if dead and sites and all(s.name in dead for s in sites):
        raise MutatorError(f"every site of the {component} component the mutator could change cannot take effect here: "
                           + "; ".join(f"{s.name}: {dead[s.name]}" for s in sites[:5]))
    sites = [s for s in sites if not dead or s.name not in dead]
    numbers = [s for s in sites if s.kind == "number"]
    choices = [s for s in sites if s.kind == "choice"]
    if not sites:
        raise MutatorError(
            f"the {component} component has nothing the built-in mutator can change: no numeric literal in a "
            "module-level assignment, a parameter default or a keyword argument, and no ALTERNATIVES"
        )
    chosen: list[Site] = []
    for _ in range(min(settings.changes, len(sites))):
        use_choice = bool(choices) and (not numbers or rng.random() < settings.choice_probability)
        pool = choices if use_choice else numbers
        chosen.append(pool.pop(int(rng.integers(len(pool)))))
    edits = []
    changes = []
    for site in chosen:
        new_text = _choose(site, rng) if site.kind == "choice" else _perturb(site, rng, settings)
        old_text = source[site.start : site.end]
        edits.append((site.start, site.end, new_text))
        changes.append(Change(site=site.name, line=site.line, old=old_text, new=new_text))
    child = source
    for start, end, text in sorted(edits, reverse=True):
        child = child[:start] + text + child[end:]
    parse_python(child)  # the splice of literals cannot break the syntax; fail loudly if it ever did
    description = "; ".join(f"{c.site}: {c.old} -> {c.new}" for c in changes)
    return Mutation(source=child, description=description, changes=changes)


# ---------------------------------------------------------------------------------------------
# Changing a value.


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # True and 1 differ here


def _choose(site: Site, rng: np.random.Generator) -> str:
    others = [o for o in site.options if not _same(o, site.value)]
    return repr(others[int(rng.integers(len(others)))])


def _perturb(site: Site, rng: np.random.Generator, settings: MutatorSettings) -> str:
    value = site.value
    if isinstance(value, int):
        return repr(_perturb_int(value, rng, settings.int_sigma, site.rule.get("granularity")))
    return repr(_perturb_float(value, rng, settings.float_sigma, site.rule.get("below_one", False)))


def _granularity(value: int) -> int:
    if value < INT_GRANULARITY_FROM:
        return 1
    return min(value & -value, MAX_GRANULARITY)


MIN_INT = 2  # 0 and 1 are not sites (flags, identities), so the mutator never writes them


def _perturb_int(value: int, rng: np.random.Generator, sigma: float, granularity: int | None) -> int:
    g = granularity or _granularity(value)
    floor = g * math.ceil(MIN_INT / g)  # the least multiple of g that is still a site
    proposed = value * math.exp(sigma * rng.standard_normal())
    new = max(floor, int(round(proposed / g)) * g)
    if new == value:
        new = value + g if (rng.random() < 0.5 or value - g < floor) else value - g
    return new


def _perturb_float(value: float, rng: np.random.Generator, sigma: float, below_one: bool) -> float:
    sign, magnitude = math.copysign(1.0, value), abs(value)
    for _ in range(100):
        step = sigma * rng.standard_normal()
        if magnitude < 1 or below_one:
            logit = math.log(magnitude / (1 - magnitude)) + step
            new = 1 / (1 + math.exp(-logit))
        else:
            new = magnitude * math.exp(step)
        new = float(f"{new:.{SIGNIFICANT_DIGITS}g}")
        if new != magnitude and new > 0 and (new < 1 or not (magnitude < 1 or below_one)):
            return sign * new
    raise MutatorError(f"could not find a different value near {value} (float_sigma {sigma} is too small)")
