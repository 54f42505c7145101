"""`evolve start`: run (or resume) an evolution experiment."""

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from evaluator.data import Dataset, DatasetError, load_dataset
from evaluator.runs import device_description
from evolve.config import ConfigError, ExperimentConfig, load_config, masked_dump, parse_assignments
from evolve.database import DEFAULT_URL, DatabaseError, Store
from evolve.llm.client import Budget, LLMClient
from evolve.search.executor import Executor, LocalPoolExecutor
from evolve.search.loop import EvolutionLoop, SeedFailed
from evolve.search.progress import LoopStats, Progress
from evolve.search.proposer import LLMProposer, MutatorProposer, Proposer

console = Console(stderr=True)


def fail(message: str) -> None:
    console.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=1)


def gpu_text(config: ExperimentConfig) -> str:
    if config.harness.device == "cpu":
        return "the CPU (tests and checks only)"
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "an NVIDIA GPU"
    except RuntimeError:
        return "an NVIDIA GPU"


def make_proposer(config: ExperimentConfig, rng: np.random.Generator) -> Proposer:
    if not config.llm.enabled:
        return MutatorProposer(config.mutator, rng)
    return LLMProposer(LLMClient(config.llm, rng), config.score, config.llm.output_format, gpu_text(config), config.prompts_dir)


def start(
    component: Annotated[list[str], typer.Option("--component", help="component to evolve (repeatable, or 'all')")] = [],
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML configuration file")] = None,
    generations: Annotated[Optional[int], typer.Option(help="generations to run")] = None,
    budget_gpu_hours: Annotated[Optional[float], typer.Option(help="stop after this much GPU time")] = None,
    budget_usd: Annotated[Optional[float], typer.Option(help="stop after this much LLM spending")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="CUDA devices to evaluate on, e.g. 0,1")] = None,
    executor: Annotated[Optional[str], typer.Option(help="where evaluations run: local (this machine) or ray (a Ray cluster)")] = None,
    ray_address: Annotated[Optional[str], typer.Option(help="Ray head HOST:PORT, or auto (with --executor ray)")] = None,
    device: Annotated[Optional[str], typer.Option(help="cuda or cpu")] = None,
    data: Annotated[Optional[str], typer.Option(help="cifar10, synthetic, or a path to a .npz")] = None,
    components: Annotated[Optional[str], typer.Option("--components", help="shipped set to start from (baseline, record)")] = None,
    prompts: Annotated[Optional[Path], typer.Option("--prompts", help="folder with your own prompt templates")] = None,
    db: Annotated[Optional[str], typer.Option(help=f"SQLAlchemy URL of the lineage database (default {DEFAULT_URL})")] = None,
    name: Annotated[Optional[str], typer.Option(help="experiment name (default: component and time)")] = None,
    resume: Annotated[Optional[str], typer.Option(help="continue this experiment where it stopped")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="any setting as dotted KEY=VALUE, e.g. population.islands=2")] = [],
) -> None:
    """Evolve components of the speedrun: propose, evaluate in the sandbox, promote on paired evidence."""
    flags: dict[str, object] = parse_assignments(set_) if set_ else {}
    for key, value in {
        "components": ",".join(component) if component else None,
        "generations": generations,
        "budget_gpu_hours": budget_gpu_hours,
        "budget_usd": budget_usd,
        "gpus": gpus,
        "executor": executor,
        "ray.address": ray_address,
        "harness.device": device,
        "harness.data": data,
        "seed_set": components,
        "prompts_dir": str(prompts) if prompts else None,
        "database_url": db,
    }.items():
        if value is not None:
            flags[key] = value
    try:
        config = load_config(config_file, flags).config
    except ConfigError as e:
        fail(str(e))
    try:
        with Store.open(config.database_url) as store:
            run(config, store, name, resume)
    except DatabaseError as e:
        fail(str(e))


def run(config: ExperimentConfig, store: Store, name: str | None, resume: str | None) -> None:
    if resume:
        found = store.experiment(resume)
        stored = ExperimentConfig.model_validate({**found.config, "generations": config.generations})
        # The key is never stored, and where the evaluations run may change between runs; the rest is the experiment's.
        config = stored.model_copy(update={"llm": config.llm, "executor": config.executor, "ray": config.ray})
    # The data and the executor first: a missing file or an unreachable cluster leaves the database as it was.
    try:
        dataset = load_dataset(config.harness.data)
    except DatasetError as e:
        fail(str(e))
    executor = make_executor(config, dataset)
    if resume:
        experiment = found
        requeued = store.requeue_unfinished(experiment.id)
        store.set_experiment_status(experiment.id, "running")
        console.print(f"resuming {experiment.name}: {requeued} unfinished candidate(s) re-queued")
    else:
        name = name or f"{'+'.join(config.components)}-{datetime.now():%Y%m%d-%H%M%S}"
        experiment = store.create_experiment(
            name, config.components, masked_dump(config), config.seed_set, device_text(config)
        )
    # Seeded runs stay reproducible, and a resumed one does not replay the choices it made before.
    offset = len(store.candidates(experiment.id))
    loop_rng, proposer_rng = (np.random.default_rng(None if config.seed is None else [config.seed, offset, i]) for i in (0, 1))
    proposer = make_proposer(config, proposer_rng)
    usd, gpu_seconds = store.spending(experiment.id)
    budget = Budget.from_config(config, usd_spent=usd, gpu_hours_spent=gpu_seconds / 3600)
    stats = LoopStats(experiment=experiment.name, proposer=proposer.name)
    console.print(f"experiment {experiment.name}: evolving {', '.join(config.components)} from the {config.seed_set} set; "
                  f"proposals by the {proposer.name}; data {dataset.describe()}", highlight=False)
    with Progress(console, stats) as progress:
        loop = EvolutionLoop(config, store, experiment, executor, proposer, progress, budget, loop_rng)
        try:
            reason = loop.run()
        except SeedFailed as e:
            store.set_experiment_status(experiment.id, "stopped")
            executor.shutdown(wait=False)
            fail(f"{e}\nThe search cannot start from a seed set that fails; check it with `evolve baseline`.")
    executor.shutdown(wait=reason != "stopped by Ctrl-C")
    interrupted = reason.startswith("stopped")
    store.set_experiment_status(experiment.id, "stopped" if interrupted else "finished")
    print_final(store, experiment.name, experiment.id, reason, config.database_url)


def make_executor(config: ExperimentConfig, dataset: Dataset) -> Executor:
    """The local pool, or the Ray cluster (imported only then: Ray is an optional extra)."""
    if config.executor == "local":
        return LocalPoolExecutor(config.gpus if config.harness.device != "cpu" else None, dataset)
    try:
        from evolve.search.ray_executor import RayClusterError, RayExecutor
    except ImportError as e:
        fail(str(e))
    try:
        executor = RayExecutor(config.ray, config.harness.device, dataset)
    except RayClusterError as e:
        fail(f"{e}\nNothing was started or stored.")
    console.print(executor.describe(), highlight=False)
    return executor


def device_text(config: ExperimentConfig) -> str:
    import torch

    if config.harness.device == "cuda" and not torch.cuda.is_available():
        return "cuda (not visible here)"
    name, driver = device_description(torch.device(config.harness.device))
    return name + (f", driver {driver}" if driver else "")


def print_final(store: Store, name: str, experiment_id: int, reason: str, url: str) -> None:
    table = Table(title=f"{name}: {reason}")
    for column in ("rank", "candidate", "component", "status", "score", "time (s)", "accuracy"):
        table.add_column(column)
    for rank, c in enumerate(store.top(experiment_id, 5), 1):
        table.add_row(str(rank), f"#{c.id}", c.component, c.status, f"{c.score:.4f}" if c.score is not None else "-",
                      f"{c.time_mean:.4f}" if c.time_mean else "-", f"{c.accuracy_mean:.2%}" if c.accuracy_mean else "-")
    console.print(table)
    db = "" if url == DEFAULT_URL else f" --db {url}"
    console.print(
        f"inspect:  evolve lineage {name}{db}   |   evolve top {name}{db}\n"
        f"export:   evolve export {name}{db} -o speedrun.py\n"
        f"resume:   evolve start --resume {name}{db}",
        highlight=False,
    )
