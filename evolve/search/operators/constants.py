"""Numbers and listed choices: the mutator's first operators, now two among many.

`constant` perturbs one tunable number (a module-level literal, a parameter default, a keyword
argument, a float coefficient in code); `choice` switches a setting listed in the component's
ALTERNATIVES to another listed value. Where the sites are and why is in mutation_sites.py; how
a number moves is below. Both splice the new literal into the source text at the site's offsets
(found through the AST), so the child differs from its parent in exactly that literal.

How a number changes:
- ints: 0, 1 and negative ints are not sites; others move by a relative step with standard
  deviation `int_sigma`, by at least 1, stay >= 2 (a 2 turned into 1 would freeze that site in
  every descendant), and ints of 16 or more stay multiples of their power-of-two factor up to 8
  (so 2000 and 64 stay multiples of 8), which keeps sizes friendly to the hardware;
- floats: the sign is kept; a magnitude in (0, 1) moves on the logit scale, so it stays in (0, 1)
  and small values change by a factor; larger magnitudes are multiplied by exp(N(0, float_sigma));
  the result has 3 significant digits;
- the harness's HYPERPARAMS keys keep their meaning (mutation_sites.HARNESS_RULES).
"""

import math
from typing import Any

import numpy as np

from evaluator.python_parse import parse_python
from evolve.config import MutatorSettings
from evolve.search.mutation_sites import MutatorError, Site, mutation_sites
from evolve.search.operators.edit import Edit, Tree

INT_GRANULARITY_FROM = 16  # ints this large keep their power-of-two factor (up to MAX_GRANULARITY)
MAX_GRANULARITY = 8
SIGNIFICANT_DIGITS = 3
MIN_INT = 2  # 0 and 1 are not sites (flags, identities), so the mutator never writes them


class Constants:
    """Perturb one number (kind "number") or switch one listed choice (kind "choice")."""

    def __init__(self, kind: str, settings: MutatorSettings):
        self.kind, self.settings = kind, settings
        self.name = "constant" if kind == "number" else "choice"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for site in mutation_sites(tree.component, tree.source):
            if site.kind != self.kind:
                continue
            new = _choose(site, rng) if site.kind == "choice" else _perturb(site, rng, self.settings)
            child = tree.source[: site.start] + new + tree.source[site.end :]
            parse_python(child)  # the splice of a literal cannot break the syntax; fail loudly if it ever did
            found.append(Edit(operator=self.name, site=site.name, line=site.line,
                              old=tree.source[site.start : site.end], new=new, source=child))
        return found


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


def _perturb_int(value: int, rng: np.random.Generator, sigma: float, granularity: int | None) -> int:
    g = granularity or _granularity(value)
    floor = g * math.ceil(MIN_INT / g)  # the least multiple of g that is still a site
    proposed = value * math.exp(sigma * rng.standard_normal())
    new = max(floor, round(proposed / g) * g)
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
