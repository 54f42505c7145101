"""Check that an exported script reproduces the harness, running it as its users would.

The script runs in a fresh interpreter in isolated mode (no PYTHONPATH, no user site, not its own
folder on the path), from a temporary folder, with `-X importtime` so that every module it
imports is listed: it must import nothing from this project. On the CPU, with the same data,
seeds and hyperparameters, its test logits must equal the in-process harness's exactly. On a GPU
runs are not bit-reproducible, so its statistics are compared with those stored for the set.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from scipy import stats

from evaluator.component_set import ComponentSet
from evaluator.data import Dataset, load_dataset
from evaluator.runs import iter_speedruns
from evaluator.settings import HarnessSettings
from evolve.export.script import PROJECT_PACKAGES, ExportError, ExportStatistics, component_hashes


class Check(BaseModel):
    name: str
    passed: bool
    message: str


class Verification(BaseModel):
    script: str
    device: str
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def verify_export(
    script_path: Path,
    component_set: ComponentSet,
    *,
    device: str = "cpu",
    data: str = "synthetic",
    runs: int = 1,
    seed: int = 0,
    scale: str = "tiny",
    hyperparams: dict[str, float | int | bool] | None = None,
    statistics: ExportStatistics | None = None,
    time_tolerance: float = 0.05,
    timeout: float = 3600,
) -> Verification:
    """Run the script on `device` and compare it with the harness (cpu) or the stored statistics (cuda).

    On the CPU: `runs` runs from base seed `seed` at `scale` without compilation, hyperparameter
    overrides `hyperparams` on top. On CUDA: at least two runs at full scale, compiled, compared
    with `statistics` (mean accuracy: the confidence interval of the difference of the means
    contains zero; mean time: within `time_tolerance`, relative, on the same GPU).
    """
    if device == "cuda" and (statistics is None or runs < 2):
        raise ExportError("verifying on a GPU compares statistics: pass the stored statistics and at least 2 runs")
    dataset = load_dataset(data)
    with tempfile.TemporaryDirectory(prefix="evolve-export-") as folder:
        workdir = Path(folder)
        data_path = workdir / "data.npz"
        np.savez(
            data_path,
            train_images=dataset.train_images,
            train_labels=dataset.train_labels,
            test_images=dataset.test_images,
            test_labels=dataset.test_labels,
        )
        args = ["--device", device, "--data", str(data_path), "--runs", str(runs), "--json"]
        if device == "cpu":
            args += ["--seed", str(seed), "--scale", scale, "--no-compile", "--save-logits", str(workdir / "logits.npy")]
            args += [arg for key, value in (hyperparams or {}).items() for arg in ("--set", f"{key}={value}")]
        outcome = run_script(Path(script_path).resolve(), args, workdir, timeout)
        verification = Verification(script=str(script_path), device=device, checks=outcome.checks)
        if outcome.report is None:
            return verification
        checks = verification.checks
        hashes = component_hashes(component_set)
        checks.append(
            Check(
                name="components",
                passed=outcome.report["components"] == hashes,
                message="the embedded component texts are the set's" if outcome.report["components"] == hashes
                else "the embedded component texts differ from the set's: export it again",
            )
        )
        if device == "cpu":
            settings = HarnessSettings(device="cpu", data=data, scale=scale, compile=False, hyperparams=hyperparams or {}, seed=seed)
            checks += compare_logits(outcome.report, np.load(workdir / "logits.npy"), component_set, dataset, settings, runs)
        else:
            checks += compare_statistics(outcome.report, statistics, time_tolerance)
    return verification


class ScriptOutcome(BaseModel):
    checks: list[Check]
    report: dict | None  # the script's --json output; None when it failed


def run_script(script: Path, args: list[str], workdir: Path, timeout: float) -> ScriptOutcome:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    threads = str(torch.get_num_threads())  # the same reduction order on the CPU as in this process
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    command = [sys.executable, "-I", "-X", "importtime", str(script), *args]
    try:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ScriptOutcome(checks=[Check(name="runs", passed=False, message=f"the script ran past {timeout:.0f} s")], report=None)
    imported, errors = set(), []
    for line in done.stderr.splitlines():
        if line.startswith("import time:"):
            imported.add(line.rsplit("|", 1)[-1].strip().split(".")[0])
        else:
            errors.append(line)
    if done.returncode != 0:
        tail = "\n".join(errors[-15:])
        return ScriptOutcome(checks=[Check(name="runs", passed=False, message=f"exit code {done.returncode}:\n{tail}")], report=None)
    ours = sorted(imported & set(PROJECT_PACKAGES))
    checks = [
        Check(name="runs", passed=True, message=" ".join(["python", *command[1:]])),
        Check(
            name="standalone",
            passed=not ours,
            message=f"imported {', '.join(ours)} from this project" if ours else "imports nothing from this project",
        ),
    ]
    return ScriptOutcome(checks=checks, report=json.loads(done.stdout))


def compare_logits(
    report: dict, logits: np.ndarray, component_set: ComponentSet, dataset: Dataset, settings: HarnessSettings, runs: int
) -> list[Check]:
    """Each run's seed and test logits against the in-process harness's, exactly."""
    expected = list(iter_speedruns(component_set, dataset, settings, runs))
    seeds, expected_seeds = [s["seed"] for s in report["samples"]], [seed for seed, _ in expected]
    checks = [Check(name="seeds", passed=seeds == expected_seeds, message=f"script {seeds}, harness {expected_seeds}")]
    differences = []
    for run, (_, out) in enumerate(expected):
        if not torch.equal(torch.from_numpy(logits[run]), out.logits):
            diff = (torch.from_numpy(logits[run]) - out.logits).abs().max().item()
            differences.append(f"run {run}: largest difference {diff:.3g}")
    message = "; ".join(differences) or f"identical test logits in {runs} run(s) on the CPU"
    return checks + [Check(name="logits", passed=not differences, message=message)]


def compare_statistics(report: dict, stored: ExportStatistics, time_tolerance: float) -> list[Check]:
    """The script's accuracy and time on a GPU against the statistics the evaluator stored.

    The times are two measures: the script's in-process clock (from the reset, the data on the
    device) against the evaluator's parent clock around a worker's run, which also covers the
    data's handover and the logits' return; the tolerance must absorb that difference."""
    now = report["summary"]
    test = stats.ttest_ind_from_stats(
        now["accuracy_mean"], now["accuracy_std"], now["runs"], stored.accuracy_mean, stored.accuracy_std, stored.runs,
        equal_var=False,
    )
    # A std of zero on both sides gives NaN: then only equal means are consistent.
    consistent = now["accuracy_mean"] == stored.accuracy_mean if np.isnan(test.pvalue) else test.pvalue >= 1 - stored.confidence
    level = f"{100 * stored.confidence:.0f}%"
    accuracy = Check(
        name="accuracy",
        passed=bool(consistent),
        message=f"mean {100 * now['accuracy_mean']:.2f}% in {now['runs']} runs vs stored {100 * stored.accuracy_mean:.2f}% "
        f"in {stored.runs}: the {level} interval of the difference {'contains' if consistent else 'excludes'} zero",
    )
    if report["device"] != stored.device:
        time = Check(name="time", passed=False, message=f"ran on {report['device']}, stored on {stored.device}: compare on the same GPU")
    else:
        change = now["time_mean"] / stored.time_mean - 1
        time = Check(
            name="time",
            passed=abs(change) <= time_tolerance,
            message=f"mean {now['time_mean']:.4f} s vs stored {stored.time_mean:.4f} s ({100 * change:+.1f}%, "
            f"tolerance {100 * time_tolerance:.0f}%)",
        )
    return [accuracy, time]
