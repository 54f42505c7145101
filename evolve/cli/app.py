"""The `evolve` command. It only parses arguments and calls functions that tests call too.

Start-up stays fast: this module and the modules it registers import torch, scipy and openai
only inside the commands that need them (bench/cli_startup.py measures it).
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from components import COMPONENT_NAMES
from evolve.cli.calibrate_command import calibrate
from evolve.cli.config_command import config_app
from evolve.cli.diff_command import diff
from evolve.cli.export_command import export
from evolve.cli.inspect_commands import register_inspect_commands
from evolve.cli.output import console, errors, fail  # noqa: F401  (errors: used by the commands registered here)
from evolve.cli.start_command import start
from evolve.cli.status_command import status
from evolve.cli.ui_command import ui

app = typer.Typer(
    help="LLM-driven evolutionary search over the CIFAR-10 training speedrun.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def evolve() -> None:
    """LLM-driven evolutionary search over the CIFAR-10 training speedrun."""


def parse_overrides(pairs: list[str]) -> dict[str, float | int | bool]:
    """KEY=VALUE strings into typed hyperparameter overrides (int, float or bool)."""
    overrides: dict[str, float | int | bool] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE (example: --set batch_size=1000)", param_hint="--set")
        lowered = raw.strip().lower()
        if lowered in ("true", "false"):
            overrides[key] = lowered == "true"
            continue
        try:
            overrides[key] = int(raw)
        except ValueError:
            try:
                overrides[key] = float(raw)
            except ValueError:
                raise typer.BadParameter(f"{pair!r}: the value must be a number, true or false", param_hint="--set")
    return overrides


# Options shared by the commands that train.
DeviceOption = Annotated[str, typer.Option(metavar="cuda|cpu", help="where to train")]
DataOption = Annotated[str, typer.Option(metavar="cifar10|synthetic|PATH.npz", help="cifar10 (downloaded once), synthetic, or a .npz")]
TargetOption = Annotated[float, typer.Option(metavar="FRACTION", help="accuracy target of the score")]
ConfidenceOption = Annotated[float, typer.Option(metavar="FRACTION", help="one-sided confidence of the accuracy lower bound")]
ScaleOption = Annotated[
    Optional[str], typer.Option(metavar="full|tiny", help="training scale \\[default: full on cuda, tiny on cpu]")
]
SetOption = Annotated[list[str], typer.Option("--set", metavar="KEY=VALUE", help="override a hyperparameter (repeatable)")]
SeedOption = Annotated[Optional[int], typer.Option(metavar="N", help="base seed of the runs \\[default: fresh random seeds]")]
ThreadsOption = Annotated[int, typer.Option(min=1, metavar="N", help="CPU threads of torch per training process")]
CompileOption = Annotated[
    Optional[bool], typer.Option("--compile/--no-compile", metavar="", help="torch.compile \\[default: on for cuda, off for cpu]")
]
JsonFlag = Annotated[bool, typer.Option("--json", metavar="", help="print JSON instead of text")]
UnjailedOption = Annotated[
    bool,
    typer.Option(
        "--unjailed-trusted-code",
        help="where the kernel offers no jail (Landlock, a PID namespace), run workers without it: "
        "for a trusted single user only",
    ),
]


@app.command()
def baseline(
    runs: Annotated[int, typer.Option(min=1, metavar="N", help="number of timed runs")] = 5,
    device: DeviceOption = "cuda",
    data: DataOption = "cifar10",
    components: Annotated[str, typer.Option(metavar="baseline|record|frontier", help="shipped component set to train")] = "baseline",
    target: TargetOption = 0.94,
    confidence: ConfidenceOption = 0.95,
    scale: ScaleOption = None,
    compile: CompileOption = None,
    set_: SetOption = [],
    seed: SeedOption = None,
    threads: ThreadsOption = 1,
    as_json: JsonFlag = False,
    unjailed_trusted_code: UnjailedOption = False,
) -> None:
    """Train a shipped component set N times, in the sandboxed worker a candidate gets, and report
    accuracy, time and their statistics."""
    from evaluator.component_set import ComponentError, ComponentSet
    from evaluator.data import DatasetError, load_dataset
    from evaluator.sandbox.jail import JailUnavailable
    from evaluator.sandbox.sandboxed_worker import WorkerLimits, check_jail
    from evaluator.settings import HarnessSettings, ScoreSettings

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
    from evaluator.harness import HarnessError
    from evaluator.runs import run_speedruns
    from evaluator.statistics import summarize_with
    from evolve.cli.report import print_sample, print_summary, sample_table

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


def candidate_set(path: Path, component: Optional[str], base: str):
    """The shipped set with the candidate's module(s) in place: a file for --component, or a folder."""
    from evaluator.component_set import ComponentError, ComponentSet

    base_set = ComponentSet.shipped(base)
    if path.is_dir():
        return base_set.with_folder(path, only=component)
    if not path.exists():
        raise ComponentError(f"{path} does not exist: pass a component file with --component NAME, or a folder")
    if not component:
        stem = path.stem
        if stem not in COMPONENT_NAMES:
            raise ComponentError(f"say which component {path.name} replaces: --component one of {', '.join(COMPONENT_NAMES)}")
        component = stem
    return base_set.with_component(component, path.read_text()), [component]


@app.command("eval")
def eval_(
    candidate: Annotated[Path, typer.Argument(metavar="PATH", help="a component file, or a folder of component modules")],
    component: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="which component the file replaces \\[default: the file's name]")
    ] = None,
    runs: Annotated[int, typer.Option(min=1, metavar="N", help="most timed runs")] = 5,
    min_runs: Annotated[int, typer.Option(min=2, metavar="N", help="runs before early stopping")] = 3,
    device: DeviceOption = "cuda",
    data: DataOption = "cifar10",
    components: Annotated[str, typer.Option(metavar="baseline|record|frontier", help="shipped set the candidate modifies")] = "baseline",
    target: TargetOption = 0.94,
    confidence: ConfidenceOption = 0.95,
    scale: ScaleOption = None,
    compile: CompileOption = None,
    set_: SetOption = [],
    seed: SeedOption = None,
    threads: ThreadsOption = 1,
    profile: Annotated[bool, typer.Option(metavar="", help="one extra profiled run: top kernels and the time share of each phase")] = False,
    unjailed_trusted_code: UnjailedOption = False,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a hand-written candidate through the sandboxed cascade and print every verdict."""
    from evaluator.cascade import CascadeSettings, evaluate_candidate
    from evaluator.component_set import ComponentError
    from evaluator.data import DatasetError, load_dataset
    from evaluator.sandbox.jail import JailUnavailable
    from evaluator.sandbox.sandboxed_worker import WorkerLimits, check_jail
    from evaluator.settings import HarnessSettings, ScoreSettings
    from evolve.cli.report import print_evaluation

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
    from evaluator.component_set import ComponentSet as Shipped
    from evolve.search.liveness import change_warnings

    for warning in change_warnings(component_set, changed, Shipped.shipped(components), settings):
        errors.print(f"warning: {warning}", highlight=False, markup=False)
    evaluation = evaluate_candidate(component_set, changed, dataset, settings, score_settings, cascade)
    if as_json:
        sys.stdout.write(evaluation.model_dump_json(indent=2) + "\n")
    else:
        print_evaluation(console, evaluation)
    if evaluation.status != "evaluated":
        raise typer.Exit(code=1)


register_inspect_commands(app)
app.command("status")(status)
app.command("diff")(diff)
app.command("export")(export)
app.command("start")(start)
app.add_typer(config_app, name="config")
app.command("ui")(ui)
app.command("calibrate")(calibrate)


def main() -> None:
    app()
