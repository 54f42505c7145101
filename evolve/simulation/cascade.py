"""The simulated cascade: static, contracts, smoke and timed stages, with simulated device seconds.

Static checks and contract tests always pass (the landscape's broken sites stand for code that
runs but no longer learns); the smoke stage is one untimed warm-up; the timed runs draw from the
noise model and stop early by the real cascade's rule (evaluator/cascade.py `early_stop`,
repeated here because that module imports torch through the sandbox; tests/test_simulation.py
checks that both stop on the same samples).
"""

from functools import lru_cache

import numpy as np
from scipy import stats

from evaluator.results import Evaluation, RunSample, StageVerdict
from evaluator.settings import CascadeSettings, ScoreSettings
from evaluator.statistics import floored_std, summarize_with
from evolve.simulation.landscape import Truth
from evolve.simulation.noise import NoiseModel
from evolve.simulation.settings import DeviceCosts

SIMULATED_FLAG = "simulated: evolve/simulation drew these results, no code ran"
SLOW_HOST_FLAG = "simulated slow host: every run of this job was slowed"
SCREENING_SEED = 0  # screening runs on seeds SCREENING_SEED + run; promotions on seeds of their own (promotion.py)


@lru_cache(maxsize=256)
def t_quantile(confidence: float, df: int) -> float:
    return float(stats.t.ppf(confidence, df))


def clearly_failing(accuracies: list[float], target: float, confidence: float, std_floor: float) -> bool:
    """evaluator/cascade.py clearly_failing: the upper confidence bound, std floored, below the target."""
    x = np.asarray(accuracies, dtype=float)
    upper = x.mean() + t_quantile(confidence, len(x) - 1) * floored_std(x, std_floor) / np.sqrt(len(x))
    return bool(upper < target)


def clearly_slower(times: list[float], champion_times: list[float] | None, confidence: float) -> bool:
    """evaluator/cascade.py clearly_slower: one-sided Mann-Whitney against the champion's whole record."""
    if not champion_times or len(champion_times) < 2:
        return False
    return bool(stats.mannwhitneyu(times, champion_times, alternative="greater").pvalue < 1 - confidence)


def early_stop(samples: list[RunSample], cascade: CascadeSettings, score: ScoreSettings, champion_times: list[float] | None) -> str:
    """evaluator/cascade.py early_stop: why the timed runs stop after these samples ("" to go on)."""
    done = len(samples)
    if done < cascade.min_runs or done >= cascade.runs:
        return ""
    if clearly_failing([s.accuracy for s in samples], score.target, score.confidence, score.accuracy_std_floor):
        return f"stopped after {done} runs: accuracy clearly below the target {score.target:.4f}"
    if clearly_slower([s.time_seconds for s in samples], champion_times, score.confidence):
        return f"stopped after {done} runs: clearly slower than the champion"
    return ""


def simulated_evaluation(
    truth: Truth, changed: list[str], score: ScoreSettings, cascade: CascadeSettings, champion_times: list[float] | None,
    noise: NoiseModel, costs: DeviceCosts,
) -> Evaluation:
    """One candidate through the simulated cascade, every result labelled simulated."""
    host = noise.host_factor()
    evaluation = Evaluation(changed=changed, status="evaluated", flags=[SIMULATED_FLAG] + ([SLOW_HOST_FLAG] if host > 1 else []))
    evaluation.stages += [StageVerdict(stage="static", status="passed"),
                          StageVerdict(stage="contracts", status="passed", seconds=costs.contracts_seconds),
                          StageVerdict(stage="smoke", status="passed", seconds=costs.worker_seconds)]
    stop_reason, seconds = "", 0.0
    for run in range(cascade.runs):
        sample = noise.sample(truth, run, SCREENING_SEED + run, host)
        evaluation.samples.append(sample)
        seconds += sample.time_seconds + (costs.worker_seconds if run else 0.0)  # the smoke test's worker makes run 1
        stop_reason = early_stop(evaluation.samples, cascade, score, champion_times)
        if stop_reason:
            break
    evaluation.stages.append(StageVerdict(stage="timed", status="stopped" if stop_reason else "passed", message=stop_reason,
                                          seconds=seconds))
    evaluation.summary = summarize_with(evaluation.samples, score)
    return evaluation
