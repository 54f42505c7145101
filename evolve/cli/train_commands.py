"""`evolve baseline` and `evolve eval`: train a shipped set, or a hand-written candidate, in the sandboxed
worker a search's candidate gets. The options and their help are declared in evolve/cli/app.py."""

import json
import sys
from pathlib import Path

import typer

from evaluator.cascade import CascadeSettings, evaluate_candidate
from evaluator.component_set import ComponentError, ComponentSet
from evaluator.data import DatasetError, load_dataset
from evaluator.harness import HarnessError
from evaluator.runs import run_speedruns
from evaluator.sandbox.jail import JailUnavailable
from evaluator.sandbox.sandboxed_worker import WorkerLimits, check_jail
from evaluator.settings import HarnessSettings, ScoreSettings
from evaluator.statistics import summarize_with
from evolve.cli.arguments import candidate_set, parse_overrides
from evolve.cli.output import console, errors, fail
from evolve.cli.report import print_evaluation, print_sample, print_summary, sample_table
from evolve.search.liveness import change_warnings


def baseline(
    *, runs: int, device: str, data: str, components: str, target: float, confidence: float, scale: str | None,
    compile: bool | None, set_: list[str] | None, seed: int | None, threads: int, as_json: bool, unjailed_trusted_code: bool,
) -> None:
    """Train a shipped component set `runs` times and report accuracy, time and their statistics."""
    try:
        settings = HarnessSettings(
            device=device, data=data, scale=scale, compile=compile, hyperparams=parse_overrides(set_), seed=seed
        )
        score_settings = ScoreSettings(target=target, confidence=confidence)
        component_set = ComponentSet.shipped(components)
        limits = WorkerLimits(threads=threads, unjailed_trusted_code=unjailed_trusted_code)
        dataset = load_dataset(settings.data)
        check_jail(limits, settings.data)
    except (ValueError, DatasetError, ComponentError, JailUnavailable) as e:
        fail(str(e))
    if not as_json:
        console.print(
            f"{components} on {dataset.describe()}, device {settings.device}, scale {settings.effective_scale()}, "
            f"compile {settings.effective_compile()}, {runs} runs, {threads} thread(s)",
            highlight=False, markup=False,
        )
        console.print("warming up on random data (untimed)...")
    table = sample_table()
    try:
        samples = run_speedruns(
            component_set, dataset, settings, runs,
            on_sample=lambda s: None if as_json else print_sample(console, table, s), limits=limits,
        )
    except (ComponentError, HarnessError, RuntimeError) as e:  # WorkerFailure is a RuntimeError
        fail(str(e))
    summary = summarize_with(samples, score_settings)
    if as_json:
        json.dump(
            {"samples": [s.model_dump() for s in samples], "summary": summary.model_dump()}, sys.stdout, indent=2
        )
        sys.stdout.write("\n")
    else:
        print_summary(console, table, summary)


def eval_(
    *, candidate: Path, component: str | None, runs: int, min_runs: int, device: str, data: str, components: str,
    target: float, confidence: float, scale: str | None, compile: bool | None, set_: list[str] | None, seed: int | None,
    threads: int, profile: bool, unjailed_trusted_code: bool, as_json: bool,
) -> None:
    """Evaluate a candidate through the sandboxed cascade, print every verdict; exit 1 unless it passed."""
    try:
        component_set, changed = candidate_set(candidate, component, components)
        settings = HarnessSettings(
            device=device, data=data, scale=scale, compile=compile, hyperparams=parse_overrides(set_), seed=seed
        )
        score_settings = ScoreSettings(target=target, confidence=confidence)
        limits = WorkerLimits(threads=threads, unjailed_trusted_code=unjailed_trusted_code)
        cascade = CascadeSettings(
            runs=runs, min_runs=min(min_runs, runs) if runs >= 2 else 2, profile=profile, limits=limits
        )
        check_jail(limits, settings.data)
        dataset = load_dataset(settings.data)
    except (ValueError, DatasetError, ComponentError, JailUnavailable) as e:
        fail(str(e))
    if not as_json:
        console.print(f"evaluating {', '.join(changed)} from {candidate} on {dataset.describe()}, device {device}, "
                      f"{threads} thread(s) per worker", highlight=False, markup=False)
    for warning in change_warnings(component_set, changed, ComponentSet.shipped(components), settings):
        errors.print(f"warning: {warning}", highlight=False, markup=False)
    evaluation = evaluate_candidate(component_set, changed, dataset, settings, score_settings, cascade)
    if as_json:
        sys.stdout.write(evaluation.model_dump_json(indent=2) + "\n")
    else:
        print_evaluation(console, evaluation)
    if evaluation.status != "evaluated":
        raise typer.Exit(code=1)
