"""The `evolve` command: every subcommand's options and help, and where its work is done.

Each command below is a declaration: its signature is what typer parses and prints, and its body is
the function of the same name in the module `@runs_in` names, imported when the command runs. That
import is the CLI's one on-demand import, and the reason is start-up time: `evolve --help` and
`evolve COMMAND --help` load typer and rich alone (about 0.15 s), whereas the modules that do the
work import, at their tops, what they need. What those cost, each imported on its own on the
development machine (2 CPUs, `time python -c "import X"`; docs/BENCHMARKS.md, "CLI start-up"):
torch 1.25 s, scipy.stats 0.75 s, openai 0.5 s, alembic 0.4 s, sqlalchemy 0.25 s, numpy 0.15 s.
The inspection commands (experiments, lineage, show, top, status, diff) import none of these: they
read through the DB-API driver (evolve/database/reader.py); bench/cli_startup.py measures every
command and the heavy modules it loads.

This module imports nothing heavier than typer: the defaults its options show (DEFAULT_URL, the
score's defaults) come from modules that import nothing.
"""

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from evaluator.score_defaults import DEFAULT_CONFIDENCE, DEFAULT_PENALTY_BASE, DEFAULT_TARGET
from evolve.database import DEFAULT_URL

Command = TypeVar("Command", bound=Callable[..., None])


def runs_in(module: str) -> Callable[[Command], Command]:
    """The decorated function declares a command; running it runs `module`'s function of the same
    name with the parsed arguments, as keywords, importing `module` only then."""

    def declare(declaration: Command) -> Command:
        @functools.wraps(declaration)  # typer reads the declaration's signature and docstring through __wrapped__
        def command(**arguments: object) -> None:
            getattr(importlib.import_module(module), declaration.__name__)(**arguments)

        return command  # type: ignore[return-value]

    return declare


app = typer.Typer(
    help="LLM-driven evolutionary search over the CIFAR-10 training speedrun.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the experiment configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the lineage database.", no_args_is_help=True)


@app.callback()
def evolve() -> None:
    """LLM-driven evolutionary search over the CIFAR-10 training speedrun."""


# Options of the commands that train.
DeviceOption = Annotated[str, typer.Option(metavar="cuda|cpu", help="where to train")]
DataOption = Annotated[str, typer.Option(metavar="cifar10|synthetic|PATH.npz", help="cifar10 (downloaded once), synthetic, or a .npz")]
TargetOption = Annotated[float, typer.Option(metavar="FRACTION", help="accuracy target of the score")]
ConfidenceOption = Annotated[float, typer.Option(metavar="FRACTION", help="one-sided confidence of the accuracy lower bound")]
ScaleOption = Annotated[
    str | None, typer.Option(metavar="full|tiny", help="training scale \\[default: full on cuda, tiny on cpu]")
]
SetOption = Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="override a hyperparameter (repeatable)")]
SeedOption = Annotated[int | None, typer.Option(metavar="N", help="base seed of the runs \\[default: fresh random seeds]")]
ThreadsOption = Annotated[int, typer.Option(min=1, metavar="N", help="CPU threads of torch per training process")]
CompileOption = Annotated[
    bool | None, typer.Option("--compile/--no-compile", metavar="", help="torch.compile \\[default: on for cuda, off for cpu]")
]
JsonFlag = Annotated[bool, typer.Option("--json", metavar="", help="print JSON instead of text")]
UNJAILED_HELP = ("where the kernel offers no jail (Landlock, a PID namespace), run workers without it: "
                 "for a trusted single user only")
UnjailedOption = Annotated[bool, typer.Option("--unjailed-trusted-code", help=UNJAILED_HELP)]
ComponentOption = Annotated[
    str | None, typer.Option(metavar="NAME", help="which component the file replaces \\[default: the file's name]")
]

# Options of the commands that read the lineage database.
DbOption = Annotated[str, typer.Option("--db", metavar="URL", help="database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")]
ExperimentArgument = Annotated[str | None, typer.Argument(metavar="[EXPERIMENT]", help="experiment name or id \\[default: the most recent]")]


@app.command()
@runs_in("evolve.cli.train_commands")
def baseline(
    runs: Annotated[int, typer.Option(min=1, metavar="N", help="number of timed runs")] = 5,
    device: DeviceOption = "cuda",
    data: DataOption = "cifar10",
    components: Annotated[str, typer.Option(metavar="baseline|record|frontier", help="shipped component set to train")] = "baseline",
    target: TargetOption = DEFAULT_TARGET,
    confidence: ConfidenceOption = DEFAULT_CONFIDENCE,
    scale: ScaleOption = None,
    compile: CompileOption = None,
    set_: SetOption = None,
    seed: SeedOption = None,
    threads: ThreadsOption = 1,
    as_json: JsonFlag = False,
    unjailed_trusted_code: UnjailedOption = False,
) -> None:
    """Train a shipped component set N times, in the sandboxed worker a candidate gets, and report
    accuracy, time and their statistics."""


@app.command("eval")
@runs_in("evolve.cli.train_commands")
def eval_(
    candidate: Annotated[Path, typer.Argument(metavar="PATH", help="a component file, or a folder of component modules")],
    component: ComponentOption = None,
    runs: Annotated[int, typer.Option(min=1, metavar="N", help="most timed runs")] = 5,
    min_runs: Annotated[int, typer.Option(min=2, metavar="N", help="runs before early stopping")] = 3,
    device: DeviceOption = "cuda",
    data: DataOption = "cifar10",
    components: Annotated[str, typer.Option(metavar="baseline|record|frontier", help="shipped set the candidate modifies")] = "baseline",
    target: TargetOption = DEFAULT_TARGET,
    confidence: ConfidenceOption = DEFAULT_CONFIDENCE,
    scale: ScaleOption = None,
    compile: CompileOption = None,
    set_: SetOption = None,
    seed: SeedOption = None,
    threads: ThreadsOption = 1,
    profile: Annotated[bool, typer.Option(metavar="", help="one extra profiled run: top kernels and the time share of each phase")] = False,
    unjailed_trusted_code: UnjailedOption = False,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a hand-written candidate through the sandboxed cascade and print every verdict."""


@app.command()
@runs_in("evolve.cli.inspect_commands")
def experiments(db: DbOption = DEFAULT_URL, as_json: JsonFlag = False) -> None:
    """One line per experiment: status, best score, champion time and accuracy, candidates by status."""


@app.command()
@runs_in("evolve.cli.inspect_commands")
def lineage(
    experiment: ExperimentArgument = None,
    candidate: Annotated[int | None, typer.Option(metavar="ID", help="show this candidate's chain back to its seed")] = None,
    depth: Annotated[int | None, typer.Option(min=0, metavar="N", help="levels below the seeds (or ancestors of --candidate) shown")] = None,
    db: DbOption = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """The ancestry tree: each candidate's island, status, score, time, accuracy, change and promotion outcome."""


@app.command()
@runs_in("evolve.cli.inspect_commands")
def show(
    candidate: Annotated[int, typer.Argument(metavar="ID", help="candidate id")],
    db: DbOption = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """A candidate's source, diff, cascade verdicts, samples, and the LLM prompt and reply behind it."""


@app.command()
@runs_in("evolve.cli.inspect_commands")
def top(
    experiment: ExperimentArgument = None,
    k: Annotated[int, typer.Option("-k", min=1, metavar="N", help="how many")] = 10,
    db: DbOption = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """The champion, then the k best candidates by score (evolve/cli/ranking.py says why in that order)."""


@app.command()
@runs_in("evolve.cli.rescore_command")
def rescore(
    experiment: ExperimentArgument = None,
    a: Annotated[float, typer.Option("--a", min=1.0, metavar="A", help="penalty base: a shortfall of s points costs a**s - 1 seconds")] = DEFAULT_PENALTY_BASE,
    target: Annotated[float, typer.Option(min=0.0, max=1.0, metavar="FRACTION", help="accuracy target")] = DEFAULT_TARGET,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.9999, metavar="FRACTION", help="one-sided confidence of the lower bound")] = DEFAULT_CONFIDENCE,
    k: Annotated[int | None, typer.Option("-k", min=1, metavar="N", help="show only the k best \\[default: all]")] = None,
    db: DbOption = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Recompute every candidate's score from its raw timed samples (screening and confirmations) with other parameters (no training).

    The stored scores stay as they are; this only prints the new ranking."""


app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@runs_in("evolve.cli.database_command")
def db_upgrade(db: DbOption = DEFAULT_URL, as_json: JsonFlag = False) -> None:
    """Bring a database made by an older cifar-evolve to this version's schema (back it up first)."""


QUIET_MINUTES = 15.0  # a "running" search silent this long has probably died


@app.command()
@runs_in("evolve.cli.status_command")
def status(
    experiment: ExperimentArgument = None,
    db: DbOption = DEFAULT_URL,
    as_json: JsonFlag = False,
    quiet_minutes: Annotated[
        float | None, typer.Option(metavar="MINUTES", help="warn when a running search has written nothing for this long")
    ] = QUIET_MINUTES,
) -> None:
    """Progress of a search (running here or elsewhere): generation, jobs, champion history, spending, time left."""


@app.command()
@runs_in("evolve.cli.diff_command")
def diff(
    a: Annotated[int, typer.Argument(metavar="A", help="candidate id (the 'before' side)")],
    b: Annotated[int, typer.Argument(metavar="B", help="candidate id (the 'after' side)")],
    component: Annotated[str | None, typer.Option(metavar="NAME", help="compare only this component \\[default: all]")] = None,
    db: DbOption = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Unified diff between the full component sets of two candidates (any two, of any experiment)."""


@app.command()
@runs_in("evolve.cli.export_command")
def export(
    candidate: Annotated[
        str | None,
        typer.Argument(
            help="an experiment in the lineage database (exports its champion, or --candidate), or a component file "
            "or folder to export in place of the set's modules",
            metavar="[EXPERIMENT|CANDIDATE_PATH]",
        ),
    ] = None,
    candidate_id: Annotated[int | None, typer.Option("--candidate", metavar="ID", help="export this evaluated candidate of the database")] = None,
    db: Annotated[str, typer.Option(metavar="URL", help="SQLAlchemy URL of the lineage database")] = DEFAULT_URL,
    component: ComponentOption = None,
    components: Annotated[str, typer.Option(metavar="baseline|record", help="shipped component set to export (or that the candidate modifies)")] = "baseline",
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="the script to write")] = Path("speedrun.py"),
    verify: Annotated[
        bool, typer.Option("--verify", metavar="", help="run the script on the CPU and check its logits equal the harness's")
    ] = False,
    seed: Annotated[int, typer.Option(metavar="N", help="base seed of the verification run")] = 0,
) -> None:
    """Write a component set as one runnable script with its provenance; --verify checks it against the harness."""


@app.command()
@runs_in("evolve.cli.start_command")
def start(
    component: Annotated[
        list[str] | None, typer.Option("--component", metavar="NAME", help="component to evolve (repeatable, or 'all') \\[default: all]")
    ] = None,
    config_file: Annotated[Path | None, typer.Option("--config", metavar="PATH", help="TOML configuration file")] = None,
    preset: Annotated[
        str | None, typer.Option(metavar="NAME", help="starting configuration: 'quick' is a few-minute CPU search")
    ] = None,
    generations: Annotated[int | None, typer.Option(min=1, metavar="N", help="generations to run \\[default: 20]")] = None,
    runs: Annotated[int | None, typer.Option(min=1, metavar="N", help="most timed runs per candidate \\[default: 5]")] = None,
    seed: Annotated[int | None, typer.Option(metavar="N", help="seed of the search's random choices \\[default: fresh]")] = None,
    threads: Annotated[int | None, typer.Option(min=1, metavar="N", help="CPU threads of torch per worker \\[default: 1]")] = None,
    budget_gpu_hours: Annotated[
        float | None, typer.Option(metavar="HOURS", help="stop after this much device time \\[default: no limit]")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(metavar="USD", help="stop after this much LLM spending \\[default: no limit]")
    ] = None,
    gpus: Annotated[str | None, typer.Option(metavar="0,1", help="CUDA devices to evaluate on \\[default: 0]")] = None,
    executor: Annotated[
        str | None, typer.Option(metavar="local|ray|simulated", help="where evaluations run: this machine, a Ray cluster, or a simulation (nothing runs) \\[default: local]")
    ] = None,
    ray_address: Annotated[str | None, typer.Option(metavar="HOST:PORT", help="Ray head, or auto (with --executor ray)")] = None,
    device: Annotated[str | None, typer.Option(metavar="cuda|cpu", help="where to train \\[default: cuda]")] = None,
    data: Annotated[
        str | None, typer.Option(metavar="cifar10|synthetic|PATH.npz", help="training data \\[default: cifar10]")
    ] = None,
    components: Annotated[
        str | None, typer.Option("--components", metavar="SET|FOLDER",
                                    help="shipped set (baseline, record, frontier) or a folder of component modules to start from \\[default: baseline]")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", metavar="NAME", help="LLM model (repeatable; env EVOLVE_MODEL); needs OPENAI_API_KEY or OPENAI_BASE_URL")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option("--prompts", metavar="DIR", help="your own prompt templates \\[default: the shipped prompts/]")
    ] = None,
    db: Annotated[str | None, typer.Option(metavar="URL", help=f"lineage database \\[default: {DEFAULT_URL}]")] = None,
    name: Annotated[str | None, typer.Option(metavar="NAME", help="experiment name \\[default: components and time]")] = None,
    resume: Annotated[str | None, typer.Option(metavar="NAME", help="continue this experiment where it stopped")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="any setting, dotted, e.g. population.islands=2 (repeatable)")
    ] = None,
    unjailed_trusted_code: UnjailedOption = False,
) -> None:
    """Evolve components of the speedrun: propose, evaluate in the sandbox, promote on paired evidence."""


app.add_typer(config_app, name="config")


@config_app.command("show")
@runs_in("evolve.cli.config_command")
def config_show(
    config: Annotated[Path | None, typer.Option("--config", metavar="PATH", help="TOML configuration file (see evolve.example.toml)")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="override a setting, dotted KEY=VALUE, e.g. population.islands=2 (repeatable)")
    ] = None,
    preset: Annotated[str | None, typer.Option(metavar="NAME", help="start from a preset, e.g. quick")] = None,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="print the configuration as JSON")] = False,
) -> None:
    """Print every setting: dotted name, effective value, where it came from, and what it means."""


@app.command()
@runs_in("evolve.cli.ui_command")
def ui(
    db: Annotated[str, typer.Option("--db", help="database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")] = DEFAULT_URL,
    host: Annotated[str, typer.Option(help="address to listen on; anything but loopback exposes the database")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8765,
) -> None:
    """Watch a search in the browser: experiments, score over time, the lineage tree, each candidate's diff,
    verdicts, samples and LLM call. Read-only; safe to run beside a running search."""


@app.command()
@runs_in("evolve.cli.calibrate_command")
def calibrate(
    components: Annotated[str, typer.Option(help="shipped set to measure against itself: baseline or record")] = "baseline",
    candidate: Annotated[int | None, typer.Option(help="measure this candidate of the database instead (e.g. the champion)")] = None,
    pairs: Annotated[int, typer.Option(min=2, help="A/A pairs to run (more pairs, a better estimate)")] = 16,
    gain: Annotated[float | None, typer.Option(help="gain in seconds to size the pairs for; default twice the minimum gain")] = None,
    simulations: Annotated[int, typer.Option(min=20, help="simulated A/A comparisons for the false-promotion rate")] = 400,
    device: Annotated[str, typer.Option(help="cuda or cpu")] = "cuda",
    data: Annotated[str, typer.Option(help="cifar10 (download), synthetic, or a .npz path")] = "cifar10",
    scale: Annotated[str | None, typer.Option(help="full or tiny; default full on cuda, tiny on cpu")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a hyperparameter, KEY=VALUE (repeatable)")] = None,
    target: Annotated[float, typer.Option(help="accuracy target of the score (fraction)")] = DEFAULT_TARGET,
    experiment_alpha: Annotated[float, typer.Option(help="the experiment-wide false-promotion rate to judge")] = 0.05,
    min_gain_seconds: Annotated[float | None, typer.Option(help="judge this minimum gain instead of the calibrated one")] = None,
    db: Annotated[str, typer.Option("--db", help="database to store the calibration in (the search reads it from there)")] = DEFAULT_URL,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Run a set against itself in the paired protocol; report the noise, the false-promotion rate of the
    rule on it and the pairs a gain needs; store it as the default minimum gain of searches on this device."""


def main() -> None:
    app()
