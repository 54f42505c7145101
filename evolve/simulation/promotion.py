"""The simulated paired re-measurement, decided by the real promotion policy.

Each pair is two fresh workers on one seed, both sides on the job's host (evaluator/promotion.py);
the samples come from the noise model around each side's truth, and
`PromotionPolicy(settings, score).decide` rules on them with the attempt's context, as
`confirm_promotion` does on measured pairs.
"""

from evaluator.promotion_policy.policy import PromotionPolicy
from evaluator.promotion_policy.rule import DecisionContext, PromotionDecision
from evaluator.settings import PromotionSettings, ScoreSettings
from evolve.simulation.cascade import SIMULATED_FLAG, SLOW_HOST_FLAG
from evolve.simulation.landscape import Truth
from evolve.simulation.noise import NoiseModel
from evolve.simulation_settings import DeviceCosts

PROMOTION_SEED = 1_000_000  # pair p of attempt k runs on seed PROMOTION_SEED + 1000 k + p, apart from the screening's


def simulated_promotion(
    candidate: Truth, incumbent: Truth, score: ScoreSettings, settings: PromotionSettings, context: DecisionContext | None,
    noise: NoiseModel, costs: DeviceCosts,
) -> PromotionDecision:
    """Simulated pairs, tested as they come by the real policy's sequential plan (at most `settings.pairs`), then
    the real rule at the look where they stopped; every result labelled simulated."""
    host = noise.host_factor()
    attempt = context.attempt if context else 1
    policy = PromotionPolicy(settings, score)
    plan = policy.plan(context, settings.pairs) if context is not None else None  # as confirm_promotion: a lone one runs all
    candidate_samples, incumbent_samples = [], []
    stopped = None
    for pair in range(settings.pairs):
        seed = PROMOTION_SEED + 1000 * attempt + pair
        candidate_samples.append(noise.sample(candidate, pair, seed, host))
        incumbent_samples.append(noise.sample(incumbent, pair, seed, host))
        if plan is not None and (stopped := policy.stop_reason(candidate_samples, incumbent_samples, context, plan)):
            break
    context = context or policy.lone_context(incumbent_samples)
    decision = policy.decide(candidate_samples, incumbent_samples, context, plan or policy.plan(context, settings.pairs), stopped)
    decision.flags = [SIMULATED_FLAG] + ([SLOW_HOST_FLAG] if host > 1 else [])
    decision.seconds = sum(s.time_seconds + costs.worker_seconds for s in candidate_samples + incumbent_samples)
    return decision
