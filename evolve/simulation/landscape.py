"""The landscape: each component set's hidden true time and accuracy (the model is LandscapeSettings').

A site is a line of a component module that the shipped baseline's module lacks (its text
stripped; a deleted line is no site). Its effect is drawn from a hash of (landscape seed,
component, line), so a child that keeps its parent's changed lines keeps their effects, and a
mutation that rewrites one constant replaces one site. The truth depends only on the seed and the
set: the same set always has the same truth, in any search, in any order.
"""

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from statistics import NormalDist

from evaluator.component_set import ComponentSet
from evolve.simulation_settings import LandscapeSettings

STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True)
class Effect:
    """One site's effect: on the log of the time above the floor, on the accuracy, and whether it breaks learning."""

    kind: str  # neutral, helpful, harmful or broken
    log_time: float = 0.0
    accuracy: float = 0.0


@dataclass(frozen=True)
class Truth:
    """A set's hidden true time (seconds) and accuracy (fraction), and the sites it was computed from."""

    time_seconds: float
    accuracy: float
    sites: int = 0


def uniforms(*parts: object, count: int = 3) -> list[float]:
    """`count` uniforms in (0, 1) from a hash of the parts: deterministic, independent across parts."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8 * count).digest()
    return [(int.from_bytes(digest[8 * i:8 * i + 8], "big") + 0.5) / 2**64 for i in range(count)]


@lru_cache(maxsize=1)
def baseline_lines() -> dict[str, frozenset[str]]:
    """Each component of the shipped baseline: the stripped lines of its module."""
    return {name: frozenset(line.strip() for line in text.splitlines())
            for name, text in ComponentSet.shipped("baseline").sources.items()}


def changed_lines(component: str, text: str) -> list[str]:
    """The module's sites: its stripped, non-empty lines the baseline's module lacks, each once, in order."""
    base = baseline_lines().get(component, frozenset())
    return list(dict.fromkeys(s for line in text.splitlines() if (s := line.strip()) and s not in base))


class Landscape:
    """Hidden truth from the sites of a set: a sum of per-site effects and pairwise interactions."""

    def __init__(self, settings: LandscapeSettings, seed: int = 0):
        self.settings, self.seed = settings, seed
        self._effect = lru_cache(maxsize=200_000)(self._draw_effect)
        self._truth = lru_cache(maxsize=100_000)(self._compute)
        self._interaction = lru_cache(maxsize=2_000_000)(self._draw_interaction)  # a child shares most pairs with its parent

    def effect(self, component: str, line: str) -> Effect:
        """The effect of one site (a line of `component`'s module)."""
        return self._effect(component, line)

    def _draw_effect(self, component: str, line: str) -> Effect:
        s = self.settings
        u, a, b = uniforms(self.seed, "site", component, line)
        accuracy = s.accuracy_effect_mean + s.accuracy_effect_std * STANDARD_NORMAL.inv_cdf(b)
        if u < s.helpful_share:
            return Effect("helpful", -s.helpful_log_gain * -math.log(a), accuracy)
        if u < s.helpful_share + s.harmful_share:
            return Effect("harmful", s.harmful_log_loss * -math.log(a), accuracy)
        if u < s.helpful_share + s.harmful_share + s.broken_share:
            return Effect("broken")
        return Effect("neutral")

    def interaction(self, first: tuple[str, str], second: tuple[str, str]) -> float:
        """The log-effect of two sites together beyond their sum (0 for most pairs), symmetric in its arguments."""
        s = self.settings
        if s.interaction_share == 0 or s.interaction_log_std == 0:
            return 0.0
        return self._interaction(*sorted((first, second)))

    def _draw_interaction(self, low: tuple[str, str], high: tuple[str, str]) -> float:
        s = self.settings
        u, a, _ = uniforms(self.seed, "pair", *low, *high)
        return s.interaction_log_std * STANDARD_NORMAL.inv_cdf(a) if u < s.interaction_share else 0.0

    def truth(self, component_set: ComponentSet | dict[str, str]) -> Truth:
        """The set's hidden true time and accuracy; the shipped baseline's are the settings' baseline values."""
        sources = component_set.sources if isinstance(component_set, ComponentSet) else component_set
        return self._truth(tuple(sorted(sources.items())))

    def _compute(self, items: tuple[tuple[str, str], ...]) -> Truth:
        s = self.settings
        if s.null:
            return Truth(s.baseline_time_seconds, s.baseline_accuracy)
        sites = [(name, line) for name, text in items for line in changed_lines(name, text)]
        effects = [self.effect(*site) for site in sites]
        log_time = sum(e.log_time for e in effects) + sum(self.interaction(x, y) for x, y in combinations(sites, 2))
        time = s.floor_time_seconds + (s.baseline_time_seconds - s.floor_time_seconds) * math.exp(log_time)
        if any(e.kind == "broken" for e in effects):
            return Truth(time, s.chance_accuracy, len(sites))
        accuracy = min(1.0, max(0.0, s.baseline_accuracy + sum(e.accuracy for e in effects)))
        return Truth(time, accuracy, len(sites))
