"""Cheap before expensive: static check, CPU contract tests, smoke run, timed runs.

1. static: each replaced component's text is checked without running it.
2. contracts: the replaced components' CPU contract tests, in a sandboxed CPU worker, which also
   measures every component's behavioural fingerprint (behaviour.py); when the candidate's parent
   is known (ParentBehaviour) and the changed component behaves exactly like the parent's, the
   `behaviour` stage rejects it: the change cannot matter, and no device time is spent on it.
3. smoke: in a sandboxed worker on the evaluation device, the untimed warm-up: one full run on
   random data that must train and predict (it also compiles, so it is never wasted).
4. timed: up to N runs, each in a fresh worker that warms up and makes that one run (the smoke
   test's worker makes the first), timed by the parent from handing over the data to the receipt
   of the logits (evaluator/runs.py `scored_runs`, the loop of every scored sample, on the seeds
   `evolve baseline` uses for the same --seed), so no run's state reaches another's sample.
   After `min_runs`, stop early when the candidate is clearly failing the
   accuracy target (its upper confidence bound, std floored at the prior noise, is below it) or
   clearly slower than the champion's whole record (one-sided Mann-Whitney test, so that one run
   slowed by a burst of background load does not stop it).
Every stage records its verdict and cost, so the GPU time the cascade saves can be reported.
"""

import time
from collections.abc import Callable

from pydantic import BaseModel, Field

from evaluator.behaviour import identical_behaviour, valid_fingerprints
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset
from evaluator.early_stop import early_stop
from evaluator.results import Evaluation, StageVerdict
from evaluator.runs import fresh_profile, scored_runs, worker_setup
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure, WorkerLimits
from evaluator.settings import CascadeSettings, HarnessSettings, ScoreSettings
from evaluator.static_check import check_source
from evaluator.statistics import summarize_with

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
    if parent is None or not identical_behaviour(parent.component, fingerprints, parent.fingerprints):
        return None if parent is None else StageVerdict(stage="behaviour", status="passed")
    return StageVerdict(
        stage="behaviour", status="rejected",
        message=f"{parent.component} behaves exactly like parent #{parent.parent_id}'s on the probe inputs, with the "
        "hyperparameters in force: the change cannot take effect (e.g. a default its caller always overrides, or a "
        "key the scale overrides)",
    )


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
    """The smoke and timed stages: `scored_runs` of the candidate alone, stopped early when it is
    clearly failing or slower (`early_stop`); the first worker's warm-up is the smoke test."""
    stage_start = time.perf_counter()
    stage = "smoke"

    def on_warm(run: int, side: str) -> None:  # the worker is warm: its timed run begins
        nonlocal stage, stage_start
        if stage == "smoke":
            evaluation.stages.append(StageVerdict(stage="smoke", status="passed", seconds=time.perf_counter() - stage_start))
            stage, stage_start = "timed", time.perf_counter()
        report("timed", run + 1, cascade.runs)

    try:
        report("smoke", None, None)
        stop_reason = ""
        for _, sample in scored_runs({"candidate": component_set}, dataset, harness, cascade.limits, cascade.runs,
                                     evaluation.flags, clock_tolerance=cascade.clock_tolerance, gpu=gpu, on_warm=on_warm):
            evaluation.samples.append(sample)
            stop_reason = early_stop(evaluation.samples, cascade, score, champion_times)
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
    start = time.perf_counter()
    try:
        evaluation.profile = fresh_profile(component_set, dataset, harness, cascade.limits, gpu)
        verdict = StageVerdict(stage="profile", status="passed", seconds=time.perf_counter() - start)
    except (WorkerFailure, ValueError) as e:
        verdict = StageVerdict(stage="profile", status="failed", message=str(e)[:2000], seconds=time.perf_counter() - start)
        evaluation.flags.append("the profiled run failed; the timed runs stand")
    evaluation.stages.append(verdict)
