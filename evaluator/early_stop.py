"""When a candidate's screening stops before its last timed run: its accuracy is clearly below the
target, or it is clearly slower than the champion's whole record. Apart from the cascade (which
starts workers) so that the simulated cascade (evolve/simulation/) stops by the same rule without
importing torch."""

from functools import lru_cache

import numpy as np
from scipy import stats

from evaluator.results import RunSample
from evaluator.settings import CascadeSettings, ScoreSettings
from evaluator.statistics import DEFAULT_ACCURACY_STD_FLOOR, floored_std, rank_test_pvalue


@lru_cache(maxsize=256)
def t_quantile(confidence: float, df: int) -> float:
    return float(stats.t.ppf(confidence, df))


def clearly_failing(accuracies: list[float], target: float, confidence: float, std_floor: float = DEFAULT_ACCURACY_STD_FLOOR) -> bool:
    """The upper confidence bound of the accuracy, std floored, is below the target."""
    x = np.asarray(accuracies, dtype=float)
    upper = x.mean() + t_quantile(confidence, len(x) - 1) * floored_std(x, std_floor) / np.sqrt(len(x))
    return bool(upper < target)


def clearly_slower(times: list[float], champion_times: list[float] | None, confidence: float) -> bool:
    """One-sided Mann-Whitney: these runs are slower than the champion's whole record."""
    if not champion_times or len(champion_times) < 2:
        return False
    return rank_test_pvalue(times, champion_times) < 1 - confidence


def early_stop(samples: list[RunSample], cascade: CascadeSettings, score: ScoreSettings, champion_times: list[float] | None) -> str:
    """Why the timed runs stop after these samples ("" to go on): only after `min_runs`, before the last."""
    done = len(samples)
    if done < cascade.min_runs or done >= cascade.runs:
        return ""
    if clearly_failing([s.accuracy for s in samples], score.target, score.confidence, score.accuracy_std_floor):
        return f"stopped after {done} runs: accuracy clearly below the target {score.target:.4f}"
    if clearly_slower([s.time_seconds for s in samples], champion_times, score.confidence):
        return f"stopped after {done} runs: clearly slower than the champion"
    return ""
