"""The simulated cascade: static, contracts, smoke and timed stages, with simulated device seconds.

Static checks and contract tests always pass (the landscape's broken sites stand for code that
runs but no longer learns); the smoke stage is one untimed warm-up; the timed runs draw from the
noise model and stop early by the real cascade's rule (evaluator/cascade.py `early_stop`,
repeated here because that module imports torch through the sandbox; tests/test_simulation.py
checks that both stop on the same samples).
"""



from evaluator.early_stop import early_stop
from evaluator.results import Evaluation, StageVerdict
from evaluator.settings import CascadeSettings, ScoreSettings
from evaluator.statistics import summarize_with
from evolve.simulation.landscape import Truth
from evolve.simulation.noise import NoiseModel
from evolve.simulation_settings import DeviceCosts

SIMULATED_FLAG = "simulated: evolve/simulation drew these results, no code ran"
SLOW_HOST_FLAG = "simulated slow host: every run of this job was slowed"
SCREENING_SEED = 0  # screening runs on seeds SCREENING_SEED + run; promotions on seeds of their own (promotion.py)


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
