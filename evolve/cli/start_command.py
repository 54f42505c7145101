"""`evolve start`: run (or resume) an evolution experiment.

Ctrl-C once: running jobs finish and are stored, then the search stops. Twice: every worker is
killed at once and the unfinished candidates go back to pending (evolve/search/interrupts.py).
Either way the exit status is 130 and `evolve start --resume NAME` continues.
"""

import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from evolve.cli.output import errors, escape, fail
from evolve.config import ExperimentConfig
from evolve.database import DEFAULT_URL, DatabaseError, Store

console = errors  # the search reports on stderr; stdout stays free for what a script may parse


def gpu_text(config: ExperimentConfig) -> str:
    if config.harness.device == "cpu":
        return "the CPU (tests and checks only)"
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "an NVIDIA GPU"
    except RuntimeError:
        return "an NVIDIA GPU"


def device_unit(config: ExperimentConfig) -> str:
    """Device time named for the device that spends it."""
    return "CPU hours" if config.harness.device == "cpu" else "GPU hours"


def make_proposer(config: ExperimentConfig, rng):
    from evolve.search.proposer import LLMProposer, MutatorProposer

    if not config.llm.enabled:
        return MutatorProposer(config.mutator, rng)
    from evolve.llm.client import LLMClient

    return LLMProposer(LLMClient(config.llm, rng), config.score, config.llm.output_format, gpu_text(config), config.prompts_dir)


def start(
    component: Annotated[
        list[str], typer.Option("--component", metavar="NAME", help="component to evolve (repeatable, or 'all') \\[default: all]")
    ] = [],
    config_file: Annotated[Optional[Path], typer.Option("--config", metavar="PATH", help="TOML configuration file")] = None,
    preset: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="starting configuration: 'quick' is a few-minute CPU search")
    ] = None,
    generations: Annotated[Optional[int], typer.Option(min=1, metavar="N", help="generations to run \\[default: 20]")] = None,
    runs: Annotated[Optional[int], typer.Option(min=1, metavar="N", help="most timed runs per candidate \\[default: 5]")] = None,
    seed: Annotated[
        Optional[int], typer.Option(metavar="N", help="seed of the search's random choices \\[default: fresh]")
    ] = None,
    threads: Annotated[
        Optional[int], typer.Option(min=1, metavar="N", help="CPU threads of torch per worker \\[default: 1]")
    ] = None,
    budget_gpu_hours: Annotated[
        Optional[float], typer.Option(metavar="HOURS", help="stop after this much device time \\[default: no limit]")
    ] = None,
    budget_usd: Annotated[
        Optional[float], typer.Option(metavar="USD", help="stop after this much LLM spending \\[default: no limit]")
    ] = None,
    gpus: Annotated[Optional[str], typer.Option(metavar="0,1", help="CUDA devices to evaluate on \\[default: 0]")] = None,
    device: Annotated[Optional[str], typer.Option(metavar="cuda|cpu", help="where to train \\[default: cuda]")] = None,
    data: Annotated[
        Optional[str], typer.Option(metavar="cifar10|synthetic|PATH.npz", help="training data \\[default: cifar10]")
    ] = None,
    components: Annotated[
        Optional[str], typer.Option("--components", metavar="baseline|record", help="shipped set to start from \\[default: baseline]")
    ] = None,
    prompts: Annotated[
        Optional[Path], typer.Option("--prompts", metavar="DIR", help="your own prompt templates \\[default: the shipped prompts/]")
    ] = None,
    db: Annotated[Optional[str], typer.Option(metavar="URL", help=f"lineage database \\[default: {DEFAULT_URL}]")] = None,
    name: Annotated[Optional[str], typer.Option(metavar="NAME", help="experiment name \\[default: components and time]")] = None,
    resume: Annotated[Optional[str], typer.Option(metavar="NAME", help="continue this experiment where it stopped")] = None,
    set_: Annotated[
        list[str], typer.Option("--set", metavar="KEY=VALUE", help="any setting, dotted, e.g. population.islands=2 (repeatable)")
    ] = [],
) -> None:
    """Evolve components of the speedrun: propose, evaluate in the sandbox, promote on paired evidence."""
    from evolve.config import ConfigError, load_config, parse_assignments

    try:
        flags: dict[str, object] = parse_assignments(set_) if set_ else {}
    except ConfigError as e:
        fail(str(e))
    for key, value in {
        "components": ",".join(component) if component else None,
        "generations": generations,
        "cascade.runs": runs,
        "seed": seed,
        "cascade.limits.threads": threads,
        "promotion.limits.threads": threads,
        "budget_gpu_hours": budget_gpu_hours,
        "budget_usd": budget_usd,
        "gpus": gpus,
        "harness.device": device,
        "harness.data": data,
        "seed_set": components,
        "prompts_dir": str(prompts) if prompts else None,
        "database_url": db,
    }.items():
        if value is not None:
            flags.setdefault(key, value)  # an explicit --set wins over the shorthand
    try:
        config = load_config(config_file, flags, preset=preset).config
    except ConfigError as e:
        fail(str(e))
    try:
        with Store.open(config.database_url) as store:
            code = run(config, store, name, resume)
    except DatabaseError as e:
        fail(str(e), code=1)
    if code:
        exit_now(code)


def exit_now(code: int) -> None:
    """Leave with `code`. An LLM call still in flight would hold the interpreter's exit for up to
    its timeout (its thread cannot be stopped), so then the process ends at once: everything is
    stored by now."""
    stragglers = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if stragglers and threading.current_thread() is threading.main_thread():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code=code)


def run(config: ExperimentConfig, store: Store, name: str | None, resume: str | None) -> int:
    """The search until it ends; the exit status (0, or 130/143 when interrupted)."""
    import numpy as np

    from evaluator.data import DatasetError, load_dataset
    from evolve.config import masked_dump
    from evolve.llm.client import Budget
    from evolve.search.executor import LocalPoolExecutor
    from evolve.search.interrupts import Interrupts
    from evolve.search.loop import EvolutionLoop, SeedFailed
    from evolve.search.progress import LoopStats, Progress

    if resume:
        experiment = store.experiment(resume)
        stored = ExperimentConfig.model_validate({**experiment.config, "generations": config.generations})
        config = stored.model_copy(update={"llm": config.llm})  # the key is never stored; the rest is the experiment's
        requeued = store.requeue_unfinished(experiment.id)
        store.set_experiment_status(experiment.id, "running")
        console.print(f"resuming {escape(experiment.name)}: {requeued} unfinished candidate(s) re-queued", highlight=False)
    else:
        name = name or f"{'+'.join(config.components)}-{datetime.now():%Y%m%d-%H%M%S}"
        experiment = store.create_experiment(
            name, config.components, masked_dump(config), config.seed_set, device_text(config)
        )
    try:
        dataset = load_dataset(config.harness.data)
    except DatasetError as e:
        store.set_experiment_status(experiment.id, "stopped")
        fail(str(e))
    # Seeded runs stay reproducible, and a resumed one does not replay the choices it made before.
    offset = len(store.candidates(experiment.id))
    loop_rng, proposer_rng = (np.random.default_rng(None if config.seed is None else [config.seed, offset, i]) for i in (0, 1))
    proposer = make_proposer(config, proposer_rng)
    usd, gpu_seconds = store.spending(experiment.id)
    budget = Budget.from_config(config, usd_spent=usd, gpu_hours_spent=gpu_seconds / 3600)
    stats = LoopStats(experiment=experiment.name, proposer=proposer.name, device_unit=device_unit(config))
    console.out(f"experiment {experiment.name}: evolving {', '.join(config.components)} from the {config.seed_set} set; "
                f"proposals by the {proposer.name}; data {dataset.describe()}; "
                f"{config.cascade.limits.threads} thread(s) per worker", highlight=False)
    slots = len(config.gpus) if config.harness.device != "cpu" else 1
    for line in plan(config, store, experiment, slots).lines(device_unit(config)):
        console.out(line, highlight=False)
    executor = LocalPoolExecutor(config.gpus if config.harness.device != "cpu" else None, dataset)
    with Interrupts() as interrupts, Progress(console, stats) as progress:
        loop = EvolutionLoop(config, store, experiment, executor, proposer, progress, budget, loop_rng, interrupts)
        try:
            reason = loop.run()
        except SeedFailed as e:
            store.set_experiment_status(experiment.id, "stopped")
            executor.abandon()
            fail(f"{e}\nThe search cannot start from a seed set that fails; check it with `evolve baseline`.", code=1)
        interrupted = interrupts.stop_requested
        store.set_experiment_status(experiment.id, "stopped" if interrupted else "finished")
    executor.shutdown(wait=not interrupts.abandon.is_set())
    print_final(store, experiment.name, experiment.id, reason, config.database_url)
    return interrupts.exit_code if interrupted else 0


def plan(config: ExperimentConfig, store: Store, experiment, slots: int):
    """The most the search will do, with a time from measured candidates (this experiment's, or an
    earlier one's with the same device, data and scale) when there are any."""
    from evolve.database.status import experiment_status
    from evolve.search.estimate import Plan, mean

    measured_from, seconds = None, None
    for other in [experiment, *reversed(store.experiments())]:
        if other.id != experiment.id and other.config.get("harness") != config.harness.model_dump(mode="json"):
            continue
        measured = experiment_status(store, other).evaluation_seconds[-20:]
        if measured:
            seconds = mean(measured)
            measured_from = f"on {len(measured)} candidate(s) of {'this experiment' if other.id == experiment.id else other.name}"
            break
    proposed = sum(1 for c in store.candidates(experiment.id) if c.origin != "seed")
    candidates = max(0, config.generations * config.candidates_per_generation - proposed)
    models = config.llm.models
    usd_per_call = None
    if models:
        weight = sum(m.weight for m in models)
        # Rough: a prompt of ~6k tokens (parent, inspirations, feedback), a reply of ~1.5k.
        usd_per_call = sum(m.weight / weight * (6000 * m.input_usd_per_million + 1500 * m.output_usd_per_million) / 1e6
                           for m in models)
    return Plan(
        candidates=candidates,
        runs_per_candidate=1 + config.cascade.runs,
        runs_per_promotion=2 + 2 * config.promotion.pairs,
        seconds_per_candidate=seconds,
        measured_from=measured_from,
        slots=slots,
        llm_calls=candidates if models else 0,
        usd_per_call=usd_per_call,
    )


def device_text(config: ExperimentConfig) -> str:
    import torch

    from evaluator.runs import device_description

    if config.harness.device == "cuda" and not torch.cuda.is_available():
        return "cuda (not visible here)"
    name, driver = device_description(torch.device(config.harness.device))
    return name + (f", driver {driver}" if driver else "")


def print_final(store: Store, name: str, experiment_id: int, reason: str, url: str) -> None:
    table = Table(title=escape(f"{name}: {reason}"))
    for column in ("rank", "candidate", "component", "status", "score", "time (s)", "accuracy"):
        table.add_column(column)
    for rank, c in enumerate(store.top(experiment_id, 5), 1):
        table.add_row(str(rank), f"#{c.id}", c.component, c.status, f"{c.score:.4f}" if c.score is not None else "-",
                      f"{c.time_mean:.4f}" if c.time_mean else "-", f"{c.accuracy_mean:.2%}" if c.accuracy_mean else "-")
    console.print(table)
    db = "" if url == DEFAULT_URL else f" --db {url}"
    console.out(
        f"inspect:  evolve status {name}{db}   |   evolve lineage {name}{db}   |   evolve top {name}{db}\n"
        f"export:   evolve export {name}{db} -o speedrun.py\n"
        f"resume:   evolve start --resume {name}{db}",
        highlight=False,
    )
