"""The `evolve` command. It only parses arguments and calls functions that tests call too."""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from components import COMPONENT_NAMES
from evaluator.cascade import CascadeSettings, evaluate_candidate
from evaluator.component_set import ComponentError, ComponentSet
from evaluator.data import DatasetError, load_dataset
from evaluator.harness import HarnessError
from evaluator.runs import run_speedruns
from evaluator.settings import HarnessSettings, ScoreSettings
from evaluator.statistics import summarize
from evolve.cli.export_command import export
from evolve.cli.inspect_commands import register_inspect_commands
from evolve.cli.report import print_evaluation, print_sample, print_summary, sample_table
from evolve.cli.start_command import start
from evolve.search.liveness import change_warnings

app = typer.Typer(
    help="LLM-driven evolutionary search over the CIFAR-10 training speedrun.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=False)
errors = Console(stderr=True)


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


def fail(message: str) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


# Options shared by the commands that train.
DeviceOption = Annotated[str, typer.Option(help="cuda or cpu")]
DataOption = Annotated[str, typer.Option(help="cifar10 (download), synthetic, or a .npz path")]
TargetOption = Annotated[float, typer.Option(help="accuracy target of the score (fraction)")]
ConfidenceOption = Annotated[float, typer.Option(help="one-sided confidence of the accuracy lower bound")]
ScaleOption = Annotated[Optional[str], typer.Option(help="full or tiny; default full on cuda, tiny on cpu")]
SetOption = Annotated[list[str], typer.Option("--set", help="override a hyperparameter, KEY=VALUE (repeatable)")]


@app.command()
def baseline(
    runs: Annotated[int, typer.Option(min=1, help="number of timed runs")] = 5,
    device: DeviceOption = "cuda",
    data: DataOption = "cifar10",
    components: Annotated[str, typer.Option(help="shipped component set to train: baseline or record")] = "baseline",
    target: TargetOption = 0.94,
    confidence: ConfidenceOption = 0.95,
    scale: ScaleOption = None,
    compile: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile; default on for cuda")] = None,
    set_: SetOption = [],
    seed: Annotated[Optional[int], typer.Option(help="base seed; default fresh random seeds")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print samples and summary as JSON")] = False,
) -> None:
    """Train a shipped component set N times and report accuracy, time and their statistics."""
    try:
        settings = HarnessSettings(
            device=device, data=data, scale=scale, compile=compile, hyperparams=parse_overrides(set_), seed=seed
        )
        score_settings = ScoreSettings(target=target, confidence=confidence)
        component_set = ComponentSet.shipped(components)
        dataset = load_dataset(settings.data)
    except (ValueError, DatasetError, ComponentError) as e:
        fail(str(e))
    if not as_json:
        console.print(
            f"[bold]{components}[/] on {dataset.describe()}, device {settings.device}, "
            f"scale {settings.effective_scale()}, compile {settings.effective_compile()}, {runs} runs"
        )
        console.print("warming up on random data (untimed)...")
    table = sample_table()
    try:
        samples = run_speedruns(
            component_set, dataset, settings, runs, on_sample=lambda s: None if as_json else print_sample(console, table, s)
        )
    except (ComponentError, HarnessError, RuntimeError) as e:
        fail(str(e))
    summary = summarize(samples, score_settings.confidence, score_settings.target, score_settings.penalty_base)
    if as_json:
        json.dump(
            {"samples": [s.model_dump() for s in samples], "summary": summary.model_dump()}, sys.stdout, indent=2
        )
        sys.stdout.write("\n")
    else:
        print_summary(console, table, summary)


def candidate_set(path: Path, component: Optional[str], base: str) -> tuple[ComponentSet, list[str]]:
    """The shipped set with the candidate's module(s) in place: a file for --component, or a folder."""
    base_set = ComponentSet.shipped(base)
    if path.is_dir():
        found = [name for name in COMPONENT_NAMES if (path / f"{name}.py").exists()]
        if component:
            found = [component] if component in found else []
        if not found:
            raise ComponentError(f"{path} holds no component module named like {', '.join(n + '.py' for n in COMPONENT_NAMES)}")
        for name in found:
            base_set = base_set.with_component(name, (path / f"{name}.py").read_text())
        return base_set, found
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
    candidate: Annotated[Path, typer.Argument(help="a component file, or a folder of component modules")],
    component: Annotated[Optional[str], typer.Option(help="which component the file replaces")] = None,
    runs: Annotated[int, typer.Option(min=1, help="most timed runs")] = 5,
    min_runs: Annotated[int, typer.Option(min=2, help="runs before early stopping")] = 3,
    device: DeviceOption = "cuda",
    data: DataOption = "cifar10",
    components: Annotated[str, typer.Option(help="shipped set the candidate modifies: baseline or record")] = "baseline",
    target: TargetOption = 0.94,
    confidence: ConfidenceOption = 0.95,
    scale: ScaleOption = None,
    set_: SetOption = [],
    profile: Annotated[bool, typer.Option(help="one extra profiled run: top kernels and the time share of each phase")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the evaluation as JSON")] = False,
) -> None:
    """Evaluate a hand-written candidate through the sandboxed cascade and print every verdict."""
    try:
        component_set, changed = candidate_set(candidate, component, components)
        settings = HarnessSettings(device=device, data=data, scale=scale, hyperparams=parse_overrides(set_))
        score_settings = ScoreSettings(target=target, confidence=confidence)
        cascade = CascadeSettings(runs=runs, min_runs=min(min_runs, runs) if runs >= 2 else 2, profile=profile)
        dataset = load_dataset(settings.data)
    except (ValueError, DatasetError, ComponentError) as e:
        fail(str(e))
    if not as_json:
        console.print(f"evaluating {', '.join(changed)} from {candidate} on {dataset.describe()}, device {device}")
    for warning in change_warnings(component_set, changed, ComponentSet.shipped(components), settings):
        Console(stderr=True).print(f"[yellow]warning:[/] {escape(warning)}")
    evaluation = evaluate_candidate(component_set, changed, dataset, settings, score_settings, cascade)
    if as_json:
        sys.stdout.write(evaluation.model_dump_json(indent=2) + "\n")
    else:
        print_evaluation(console, evaluation)
    if evaluation.status != "evaluated":
        raise typer.Exit(code=1)


register_inspect_commands(app)
app.command("export")(export)
app.command("start")(start)


def main() -> None:
    app()


from evolve.cli.config_command import config_app  # noqa: E402

app.add_typer(config_app, name="config")
