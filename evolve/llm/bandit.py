"""A cost-aware bandit over the configured [[llm.models]]: which model to ask for the next proposal.

The rule (documented in README.md too). For each model m, over the proposals it made:
- n_m: its proposals; gain_m: the sum over its evaluated children of max(0, child score - parent
  score) (score is in seconds, higher is better; a rejected, failed, duplicate or unusable
  proposal gains 0);
- cost_m: in US dollars, what its calls cost plus the device time of the evaluations they caused,
  priced at `search.gpu_usd_per_hour`.
With n0 = 2 pseudo-proposals of prior, w_m the model's configured weight over the mean weight, and
g, c the mean gain and cost per proposal over all models (a small floor while nothing is known):

    value_m = [(gain_m + n0 w_m g) / (n_m + n0)] / [(cost_m + n0 c) / (n_m + n0)]
            = improvement per dollar, with the fixed weights as the prior

Each choice takes, with probability `search.bandit_exploration`, a model drawn by the fixed
weights; otherwise the model with the highest value_m * (1 + sqrt(2 ln(N + 1) / (n_m + n0)))
(N: all proposals), an optimism bonus that shrinks as a model is tried. Before any outcome every
value is w_m g / c, so the bandit starts as the weights say.

Its state is the lineage itself: each proposal stores the model chosen and what its calls cost
(proposals.model, proposals.cost_usd), the candidates their scores and device seconds; the loop
rebuilds the arms from them on start, so a resumed search keeps what it learned.
"""

import math

import numpy as np
from pydantic import BaseModel

from evolve.config import ModelSpec

PRIOR_PROPOSALS = 2.0
FLOOR = 1e-9


class Arm(BaseModel):
    model: str
    weight: float
    proposals: int = 0
    gain: float = 0.0
    usd: float = 0.0
    gpu_seconds: float = 0.0


class ModelOutcome(BaseModel):
    """One stored proposal, as the bandit counts it."""

    model: str
    cost_usd: float = 0.0
    candidate_id: int | None = None  # the new candidate, when the proposal made one
    gain: float | None = None  # None until the candidate is evaluated
    gpu_seconds: float = 0.0


class ModelBandit:
    def __init__(self, models: list[ModelSpec], gpu_usd_per_hour: float, exploration: float, rng: np.random.Generator):
        mean = sum(m.weight for m in models) / len(models)
        self.arms = {m.name: Arm(model=m.name, weight=m.weight / mean) for m in models}
        self.gpu_usd_per_second = gpu_usd_per_hour / 3600
        self.exploration, self.rng = exploration, rng
        self.pending: dict[int, str] = {}  # candidate id -> model, until it is evaluated

    def restore(self, outcomes: list[ModelOutcome]) -> None:
        """The arms as the stored proposals left them (models no longer configured are ignored)."""
        for outcome in outcomes:
            if outcome.model not in self.arms:
                continue
            self.proposed(outcome.model, outcome.cost_usd, outcome.candidate_id)
            if outcome.candidate_id is not None and outcome.gain is not None:
                self.evaluated(outcome.candidate_id, outcome.gain, outcome.gpu_seconds)

    # updates

    def proposed(self, model: str, cost_usd: float, candidate_id: int | None) -> None:
        arm = self.arms.get(model)
        if arm is None:
            return
        arm.proposals += 1
        arm.usd += cost_usd
        if candidate_id is not None:
            self.pending[candidate_id] = model

    def evaluated(self, candidate_id: int, gain: float, gpu_seconds: float) -> None:
        model = self.pending.pop(candidate_id, None)
        if model is None:
            return
        arm = self.arms[model]
        arm.gain += max(0.0, gain)
        arm.gpu_seconds += gpu_seconds

    # the choice

    def cost(self, arm: Arm) -> float:
        return arm.usd + self.gpu_usd_per_second * arm.gpu_seconds

    def values(self) -> dict[str, float]:
        """Estimated improvement per dollar of each model (prior included)."""
        total = sum(a.proposals for a in self.arms.values())
        mean_gain = max(FLOOR, sum(a.gain for a in self.arms.values()) / total) if total else FLOOR
        mean_cost = max(FLOOR, sum(self.cost(a) for a in self.arms.values()) / total) if total else FLOOR
        values = {}
        for name, arm in self.arms.items():
            gain = arm.gain + PRIOR_PROPOSALS * arm.weight * mean_gain
            cost = max(FLOOR, self.cost(arm) + PRIOR_PROPOSALS * mean_cost)
            values[name] = gain / cost
        return values

    def choose(self) -> str:
        names = list(self.arms)
        if self.rng.random() < self.exploration:
            weights = np.array([self.arms[n].weight for n in names])
            return names[int(self.rng.choice(len(names), p=weights / weights.sum()))]
        total = sum(a.proposals for a in self.arms.values())
        values = self.values()
        bonus = {n: 1 + math.sqrt(2 * math.log(total + 1) / (self.arms[n].proposals + PRIOR_PROPOSALS)) for n in names}
        return max(names, key=lambda n: (values[n] * bonus[n], self.arms[n].weight, -names.index(n)))

    def summary(self) -> str:
        values = self.values()
        return ", ".join(f"{a.model}: {a.proposals} proposals, gain {a.gain:.4f}, ${self.cost(a):.4f}, value {values[a.model]:.3g}"
                         for a in self.arms.values())
