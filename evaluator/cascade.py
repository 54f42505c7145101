"""Cheap before expensive: static check, CPU contract tests, smoke run, timed runs.

1. static: each replaced component's text is checked without running it.
2. contracts: the replaced components' CPU contract tests, in a sandboxed CPU worker, which also
   measures every component's behavioural fingerprint (behaviour.py); when the candidate's parent
   is known (ParentBehaviour) and the changed component behaves exactly like the parent's, the
   `behaviour` stage rejects it: the change cannot matter, and no device time is spent on it.
3. smoke: in a sandboxed worker on the evaluation device, the untimed warm-up: one full run on
   random data that must train and predict (it also compiles, so it is never wasted).
4. timed: up to N runs on fresh seeds, each in a fresh worker that warms up and makes that one
   run (the smoke test's worker makes the first), timed by the parent from handing over the
   data to the receipt of the logits (evaluator/runs.py assembles every timed run), so no run's
   state reaches another's sample. After `min_runs`, stop early when the candidate is clearly failing the
   accuracy target (its upper confidence bound, std floored at the prior noise, is below it) or
   clearly slower than the champion's whole record (one-sided Mann-Whitney test, so that one run
   slowed by a burst of background load does not stop it).
Every stage records its verdict and cost, so the GPU time the cascade saves can be reported.
"""

import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, Field

from evaluator.component_set import ComponentSet
from evaluator.data import Dataset
from evaluator.results import Evaluation, StageVerdict
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure, WorkerLimits
from evaluator.static_check import check_source
from evaluator.settings import CascadeSettings, HarnessSettings, ScoreSettings  # noqa: F401  (CascadeSettings re-exported)
from evaluator.statistics import DEFAULT_ACCURACY_STD_FLOOR, floored_std, summarize_with

# torch and scipy are imported inside the functions that use them (CascadeSettings lives in
# evaluator/settings.py, which loads without either).

# Called as report(stage, run, runs) when a stage (or a timed run, numbered from 1) begins, for live views.
StageReport = Callable[[str, int | None, int | None], None]


def no_report(stage: str, run: int | None = None, runs: int | None = None) -> None:
    pass


class ParentBehaviour(BaseModel):
    """The parent a candidate changes one component of, and that parent's stored fingerprints."""

    parent_id: int
    component: str = Field(description="the component the candidate changes against its parent")
    fingerprints: dict[str, str]


def static_stage(component_set: ComponentSet, changed: list[str]) -> StageVerdict:
    start = time.perf_counter()
    problems = [f"{name}: {v}" for name in changed for v in check_source(name, component_set.sources[name])]
    status = "rejected" if problems else "passed"
    return StageVerdict(stage="static", status=status, message="\n".join(problems), seconds=time.perf_counter() - start)


def contracts_stage(
    component_set: ComponentSet, changed: list[str], limits: WorkerLimits, behaviour: dict[str, str] | None = None,
    overrides: dict | None = None,
) -> StageVerdict:
    """The contract tests; with a `behaviour` dict, also the fingerprints (under the run's `overrides`) into it."""
    from evaluator.behaviour import valid_fingerprints  # imported here: the settings above load without torch
    from evaluator.runs import worker_setup

    start = time.perf_counter()
    try:
        with SandboxedWorker(limits, "cpu") as worker:
            worker.request(worker_setup(component_set, "cpu", False, {}, worker), "ready", limits.setup_seconds)
            answer, _ = worker.request({"type": "contracts", "components": changed}, "contracts", limits.setup_seconds)
            if behaviour is not None and all(r["passed"] for r in answer["results"].values()):
                probed, _ = worker.request({"type": "behaviour", "hyperparams": overrides or {}}, "behaviour", limits.setup_seconds)
                behaviour.update(valid_fingerprints(probed.get("fingerprints")))
    except WorkerFailure as e:
        return StageVerdict(stage="contracts", status="failed", message=str(e), seconds=time.perf_counter() - start)
    failures = [f"{name}: {r['message']}" for name, r in answer["results"].items() if not r["passed"]]
    status = "rejected" if failures else "passed"
    return StageVerdict(stage="contracts", status=status, message="\n".join(failures), seconds=time.perf_counter() - start)


def behaviour_stage(fingerprints: dict[str, str], parent: ParentBehaviour | None) -> StageVerdict | None:
    """Rejects a candidate whose changed component behaves exactly like its parent's; None when unknown."""
    from evaluator.behaviour import identical_behaviour

    if parent is None or not identical_behaviour(parent.component, fingerprints, parent.fingerprints):
        return None if parent is None else StageVerdict(stage="behaviour", status="passed")
    return StageVerdict(
        stage="behaviour", status="rejected",
        message=f"{parent.component} behaves exactly like parent #{parent.parent_id}'s on the probe inputs, with the "
        "hyperparameters in force: the change cannot take effect (e.g. a default its caller always overrides, or a "
        "key the scale overrides)",
    )


def clearly_failing(accuracies: list[float], target: float, confidence: float, std_floor: float = DEFAULT_ACCURACY_STD_FLOOR) -> bool:
    from scipy import stats  # imported here: the CLI starts without scipy

    x = np.asarray(accuracies, dtype=float)
    upper = x.mean() + stats.t.ppf(confidence, len(x) - 1) * floored_std(x, std_floor) / np.sqrt(len(x))
    return bool(upper < target)


def clearly_slower(times: list[float], champion_times: list[float] | None, confidence: float) -> bool:
    from scipy import stats

    if not champion_times or len(champion_times) < 2:
        return False

    result = stats.mannwhitneyu(times, champion_times, alternative="greater")
    return bool(result.pvalue < 1 - confidence)


def evaluate_candidate(
    component_set: ComponentSet,
    changed: list[str],
    dataset: Dataset,
    harness: HarnessSettings,
    score: ScoreSettings,
    cascade: CascadeSettings | None = None,
    champion_times: list[float] | None = None,
    gpu: int | None = None,
    report: StageReport = no_report,
    parent: ParentBehaviour | None = None,
) -> Evaluation:
    """Walk one candidate through the cascade; never raises for anything the candidate does."""
    cascade = cascade or CascadeSettings()
    evaluation = Evaluation(changed=changed, status="evaluated")
    overrides = harness.effective_overrides()

    for name, stage in (
        ("static", lambda: static_stage(component_set, changed)),
        ("contracts", lambda: contracts_stage(component_set, changed, cascade.limits, evaluation.behaviour, overrides)),
        ("behaviour", lambda: behaviour_stage(evaluation.behaviour, parent)),
    ):
        report(name, None, None)
        verdict = stage()
        if verdict is None:
            continue
        evaluation.stages.append(verdict)
        if verdict.status != "passed":
            evaluation.status = verdict.status
            return evaluation

    timed_runs(component_set, dataset, harness, score, cascade, champion_times, evaluation, gpu, report)
    if evaluation.status == "evaluated" and evaluation.samples:
        evaluation.summary = summarize_with(evaluation.samples, score)
    return evaluation


def timed_runs(
    component_set, dataset, harness, score, cascade, champion_times, evaluation: Evaluation, gpu: int | None,
    report: StageReport = no_report,
) -> None:
    from evaluator.runs import fresh_run  # imported here: the settings above load without torch
    from evaluator.training import run_seeds

    stage_start = time.perf_counter()
    stage = "smoke"

    def smoke_passed() -> None:
        nonlocal stage, stage_start
        if stage == "smoke":
            evaluation.stages.append(StageVerdict(stage="smoke", status="passed", seconds=time.perf_counter() - stage_start))
            stage, stage_start = "timed", time.perf_counter()

    try:
        report("smoke", None, None)
        # harness.seed: the same seeds for every candidate; else fresh.
        seeds = run_seeds(harness.seed, cascade.runs)
        stop_reason = ""
        for run in range(cascade.runs):
            def on_warm(run: int = run) -> None:  # the worker is warm: its timed run begins
                smoke_passed()
                report("timed", run + 1, cascade.runs)

            sample = fresh_run(component_set, dataset, harness, cascade.limits, run, seeds[run], evaluation.flags,
                               cascade.clock_tolerance, gpu, on_warm=on_warm)
            evaluation.samples.append(sample)
            if run + 1 >= cascade.min_runs and run + 1 < cascade.runs:
                accs = [s.accuracy for s in evaluation.samples]
                times = [s.time_seconds for s in evaluation.samples]
                if clearly_failing(accs, score.target, score.confidence, score.accuracy_std_floor):
                    stop_reason = f"stopped after {run + 1} runs: accuracy clearly below the target {score.target:.4f}"
                elif clearly_slower(times, champion_times, score.confidence):
                    stop_reason = f"stopped after {run + 1} runs: clearly slower than the champion"
                if stop_reason:
                    break
        status = "stopped" if stop_reason else "passed"
        evaluation.stages.append(StageVerdict(stage="timed", status=status, message=stop_reason, seconds=time.perf_counter() - stage_start))
    except WorkerFailure as e:
        evaluation.stages.append(StageVerdict(stage=stage, status="failed", message=str(e), seconds=time.perf_counter() - stage_start))
        evaluation.status = "failed"
        return
    if cascade.profile and not stop_reason:
        report("profile", None, None)
        profile_stage(component_set, dataset, harness, cascade, gpu, evaluation)


def profile_stage(component_set, dataset, harness, cascade, gpu: int | None, evaluation: Evaluation) -> None:
    """One extra, untimed, profiled run in a worker of its own; its failure is noted, not held
    against the timed runs."""
    from evaluator.runs import fresh_profile  # imported here: the settings above load without torch

    start = time.perf_counter()
    try:
        evaluation.profile = fresh_profile(component_set, dataset, harness, cascade.limits, gpu)
        verdict = StageVerdict(stage="profile", status="passed", seconds=time.perf_counter() - start)
    except (WorkerFailure, ValueError) as e:
        verdict = StageVerdict(stage="profile", status="failed", message=str(e)[:2000], seconds=time.perf_counter() - start)
        evaluation.flags.append("the profiled run failed; the timed runs stand")
    evaluation.stages.append(verdict)
