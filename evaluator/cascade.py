"""Cheap before expensive: static check, CPU contract tests, smoke run, timed runs.

1. static: each replaced component's text is checked without running it.
2. contracts: the replaced components' CPU contract tests, in a sandboxed CPU worker, which also
   measures every component's behavioural fingerprint (behaviour.py); when the candidate's parent
   is known (ParentBehaviour) and the changed component behaves exactly like the parent's, the
   `behaviour` stage rejects it: the change cannot matter, and no device time is spent on it.
3. smoke: in the sandboxed worker on the evaluation device, the untimed warm-up: one full run on
   random data that must train and predict (it also compiles, so it is never wasted).
4. timed: up to N runs on fresh seeds in the same worker, timed by the parent from "go" to the
   receipt of the logits. After `min_runs`, stop early when the candidate is clearly failing the
   accuracy target (its upper confidence bound is below it) or clearly slower than the champion
   (one-sided Welch test).
Every stage records its verdict and cost, so the GPU time the cascade saves can be reported.
"""

import secrets
import time

import numpy as np
import torch
from pydantic import BaseModel, Field
from scipy import stats

from components.interface import NUM_CLASSES
from evaluator.behaviour import identical_behaviour, valid_fingerprints
from evaluator.component_set import ComponentSet
from evaluator.data import Dataset
from evaluator.harness import accuracy
from evaluator.results import Evaluation, ProfileSummary, RunSample, StageVerdict
from evaluator.runs import device_description
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure, WorkerLimits
from evaluator.sandbox.static_check import check_source
from evaluator.settings import HarnessSettings, ScoreSettings
from evaluator.statistics import summarize


class CascadeSettings(BaseModel):
    runs: int = Field(5, ge=1, description="most timed runs of a candidate")
    min_runs: int = Field(3, ge=2, description="timed runs before early stopping may stop a candidate")
    clock_tolerance: float = Field(0.05, description="flag a run whose device-event time differs from the parent's by more")
    limits: WorkerLimits = Field(default_factory=WorkerLimits)
    profile: bool = Field(False, description="after the timed runs, one extra profiled run summarized for the prompts")


class ParentBehaviour(BaseModel):
    """The parent a candidate changes one component of, and that parent's stored fingerprints."""

    parent_id: int
    component: str = Field(description="the component the candidate changes against its parent")
    fingerprints: dict[str, str]


def fresh_seed() -> int:
    return secrets.randbelow(2**31 - 1)


def worker_setup(component_set: ComponentSet, device: str, compile: bool, overrides: dict, worker: SandboxedWorker) -> dict:
    return {
        "type": "setup",
        "sources": component_set.sources,
        "device": device,
        "compile": compile,
        "hyperparams": overrides,
        "threads": worker.limits.threads,
        "gpu_memory_fraction": worker.limits.gpu_memory_fraction,
        "writable_dirs": [str(worker.workdir), worker.env_cache_dir],
    }


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


def logits_from(answer: dict, payload: bytes, num_test: int) -> np.ndarray:
    """Parse the worker's logits without trusting it: exact size, finite float32 values."""
    expected = num_test * NUM_CLASSES * 4
    if answer.get("shape") != [num_test, NUM_CLASSES] or len(payload) != expected:
        raise WorkerFailure(f"the worker returned logits of shape {answer.get('shape')}, expected [{num_test}, {NUM_CLASSES}]", "error")
    logits = np.frombuffer(payload, dtype=np.float32).reshape(num_test, NUM_CLASSES)
    if not np.isfinite(logits).all():
        raise WorkerFailure("the worker returned NaN or infinite logits", "error")
    return logits


def clearly_failing(accuracies: list[float], target: float, confidence: float) -> bool:
    x = np.asarray(accuracies)
    if x.std() == 0:
        return bool(x.mean() < target)
    upper = x.mean() + stats.t.ppf(confidence, len(x) - 1) * stats.sem(x)
    return bool(upper < target)


def clearly_slower(times: list[float], champion_times: list[float] | None, confidence: float) -> bool:
    if not champion_times or len(champion_times) < 2:
        return False
    result = stats.ttest_ind(times, champion_times, equal_var=False, alternative="greater")
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
    parent: ParentBehaviour | None = None,
) -> Evaluation:
    """Walk one candidate through the cascade; never raises for anything the candidate does."""
    cascade = cascade or CascadeSettings()
    evaluation = Evaluation(changed=changed, status="evaluated")
    overrides = harness.effective_overrides()

    for stage in (
        lambda: static_stage(component_set, changed),
        lambda: contracts_stage(component_set, changed, cascade.limits, evaluation.behaviour, overrides),
        lambda: behaviour_stage(evaluation.behaviour, parent),
    ):
        verdict = stage()
        if verdict is None:
            continue
        evaluation.stages.append(verdict)
        if verdict.status != "passed":
            evaluation.status = verdict.status
            return evaluation

    timed_runs(component_set, dataset, harness, score, cascade, champion_times, evaluation, gpu)
    if evaluation.status == "evaluated" and evaluation.samples:
        evaluation.summary = summarize(evaluation.samples, score.confidence, score.target, score.penalty_base)
    return evaluation


def start_speedrun_worker(worker: SandboxedWorker, component_set: ComponentSet, dataset: Dataset, harness: HarnessSettings) -> None:
    """Set up an entered worker and run its untimed warm-up (the smoke test; it also compiles)."""
    limits = worker.limits
    setup = worker_setup(component_set, harness.device, harness.effective_compile(), harness.effective_overrides(), worker)
    worker.request(setup, "ready", limits.setup_seconds)
    data_path = worker.write_data(dataset)
    started = time.perf_counter()
    worker.request({"type": "warmup", "data_path": str(data_path), "seed": fresh_seed()}, "warm", limits.warmup_seconds)
    worker.warmup_seconds = time.perf_counter() - started  # the timed runs' limit follows it (WorkerLimits.run_limit)


def timed_sample(worker: SandboxedWorker, run: int, seed: int, dataset: Dataset, clock_tolerance: float, flags: list[str]) -> RunSample:
    """One timed run: untimed preparation, then the parent's clock from "go" to the logits."""
    limit = worker.limits.run_limit(worker.warmup_seconds)
    worker.request({"type": "prepare", "seed": seed}, "prepared", limit)
    answer, payload, parent_seconds = worker.timed_request({"type": "go"}, "logits", limit)
    logits = logits_from(answer, payload, len(dataset.test_labels))
    device_seconds = answer.get("device_seconds")
    device_seconds = float(device_seconds) if isinstance(device_seconds, (int, float)) else None
    if device_seconds is not None and abs(device_seconds - parent_seconds) > clock_tolerance * parent_seconds:
        flags.append(f"run {run}: device-event time {device_seconds:.4f} s differs from the parent's {parent_seconds:.4f} s")
    device = torch.device(worker.device)
    device_name, driver = device_description(device) if device.type == "cpu" or torch.cuda.is_available() else (worker.device, None)
    return RunSample(
        run=run,
        seed=seed,
        accuracy=accuracy(torch.from_numpy(logits.copy()), dataset.test_labels),
        time_seconds=parent_seconds,
        device_time_seconds=device_seconds,
        device_name=device_name,
        torch_version=torch.__version__,
        driver_version=driver,
    )


def timed_runs(component_set, dataset, harness, score, cascade, champion_times, evaluation: Evaluation, gpu: int | None) -> None:
    stage_start = time.perf_counter()
    stage = "smoke"
    try:
        with SandboxedWorker(cascade.limits, harness.device, gpu) as worker:
            start_speedrun_worker(worker, component_set, dataset, harness)
            evaluation.stages.append(StageVerdict(stage="smoke", status="passed", seconds=time.perf_counter() - stage_start))

            stage, stage_start = "timed", time.perf_counter()
            stop_reason = ""
            for run in range(cascade.runs):
                evaluation.samples.append(timed_sample(worker, run, fresh_seed(), dataset, cascade.clock_tolerance, evaluation.flags))
                if run + 1 >= cascade.min_runs and run + 1 < cascade.runs:
                    accs = [s.accuracy for s in evaluation.samples]
                    times = [s.time_seconds for s in evaluation.samples]
                    if clearly_failing(accs, score.target, score.confidence):
                        stop_reason = f"stopped after {run + 1} runs: accuracy clearly below the target {score.target:.4f}"
                    elif clearly_slower(times, champion_times, score.confidence):
                        stop_reason = f"stopped after {run + 1} runs: clearly slower than the champion"
                    if stop_reason:
                        break
            status = "stopped" if stop_reason else "passed"
            evaluation.stages.append(StageVerdict(stage="timed", status=status, message=stop_reason, seconds=time.perf_counter() - stage_start))
            if cascade.profile and not stop_reason:
                profile_stage(worker, evaluation)
    except WorkerFailure as e:
        evaluation.stages.append(StageVerdict(stage=stage, status="failed", message=str(e), seconds=time.perf_counter() - stage_start))
        evaluation.status = "failed"


def profile_stage(worker: SandboxedWorker, evaluation: Evaluation) -> None:
    """One extra, untimed, profiled run; its failure is noted, not held against the timed runs."""
    start = time.perf_counter()
    try:
        answer, _ = worker.request({"type": "profile", "seed": fresh_seed()}, "profile", worker.limits.warmup_seconds)
        evaluation.profile = ProfileSummary.model_validate(answer["summary"])
        verdict = StageVerdict(stage="profile", status="passed", seconds=time.perf_counter() - start)
    except (WorkerFailure, ValueError) as e:
        verdict = StageVerdict(stage="profile", status="failed", message=str(e)[:2000], seconds=time.perf_counter() - start)
        evaluation.flags.append("the profiled run failed; the timed runs stand")
    evaluation.stages.append(verdict)
