"""`evolve start`: run (or resume) an evolution experiment."""

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from evaluator.data import DatasetError, load_dataset
from evaluator.runs import device_description
from evaluator.component_set import ComponentSet
from evaluator.sandbox.jail import JailUnavailable
from evaluator.sandbox.sandboxed_worker import check_jail
from evolve.cli.ranking import ranked
from evolve.cli.resume import ResumeError, resumed_config
from evolve.config import ConfigError, ExperimentConfig, LoadedConfig, load_config, model_specs, parse_assignments
from evolve.config_display import masked_dump
from evolve.database import DEFAULT_URL, DatabaseError, Store
from evolve.llm.client import Budget, LLMClient
from evolve.search.executor import LocalPoolExecutor
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


def mutator_reason(config: ExperimentConfig) -> str:
    """Why the built-in mutator proposes, and what to add for an LLM."""
    llm = config.llm
    if llm.base_url is None and llm.api_key is None:
        return "no LLM configured: add --model NAME with OPENAI_API_KEY or OPENAI_BASE_URL to use one"
    endpoint = f"OPENAI_BASE_URL / llm.base_url {llm.base_url}" if llm.base_url else "OPENAI_API_KEY (OpenAI)"
    return f"an LLM endpoint is set ({endpoint}) but no model: add --model NAME (or EVOLVE_MODEL=NAME) to use it"


def make_proposer(config: ExperimentConfig, rng: np.random.Generator) -> Proposer:
    if not config.llm.enabled:
        proposer = MutatorProposer(config.mutator, rng)
        proposer.name = f"built-in mutator ({mutator_reason(config)})"
        return proposer
    return LLMProposer(LLMClient(config.llm, rng), config.score, config.llm.output_format, gpu_text(config), config.prompts_dir)


def start(
    component: Annotated[list[str], typer.Option("--component", help="component to evolve (repeatable, or 'all')")] = [],
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML configuration file")] = None,
    generations: Annotated[Optional[int], typer.Option(help="generations to run")] = None,
    budget_gpu_hours: Annotated[Optional[float], typer.Option(help="stop after this much GPU time")] = None,
    budget_usd: Annotated[Optional[float], typer.Option(help="stop after this much LLM spending")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="CUDA devices to evaluate on, e.g. 0,1")] = None,
    device: Annotated[Optional[str], typer.Option(help="cuda or cpu")] = None,
    data: Annotated[Optional[str], typer.Option(help="cifar10, synthetic, or a path to a .npz")] = None,
    components: Annotated[Optional[str], typer.Option("--components", help="shipped set to start from (baseline, record, frontier)")] = None,
    model: Annotated[list[str], typer.Option("--model", help="LLM model name (repeatable; env EVOLVE_MODEL); needs OPENAI_API_KEY or OPENAI_BASE_URL")] = [],
    prompts: Annotated[Optional[Path], typer.Option("--prompts", help="folder with your own prompt templates")] = None,
    db: Annotated[Optional[str], typer.Option(help=f"SQLAlchemy URL of the lineage database (default {DEFAULT_URL})")] = None,
    name: Annotated[Optional[str], typer.Option(help="experiment name (default: component and time)")] = None,
    resume: Annotated[Optional[str], typer.Option(help="continue this experiment where it stopped")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="any setting as dotted KEY=VALUE, e.g. population.islands=2")] = [],
    unjailed_trusted_code: Annotated[
        bool,
        typer.Option(
            "--unjailed-trusted-code",
            help="where the kernel offers no jail (Landlock, a PID namespace), run workers without it: for a trusted single user only",
        ),
    ] = False,
) -> None:
    """Evolve components of the speedrun: propose, evaluate in the sandbox, promote on paired evidence."""
    flags: dict[str, object] = parse_assignments(set_) if set_ else {}
    for key, value in {
        "components": ",".join(component) if component else None,
        "generations": generations,
        "budget_gpu_hours": budget_gpu_hours,
        "budget_usd": budget_usd,
        "gpus": gpus,
        "harness.device": device,
        "harness.data": data,
        "seed_set": components,
        "prompts_dir": str(prompts) if prompts else None,
        "database_url": db,
        "cascade.limits.unjailed_trusted_code": True if unjailed_trusted_code else None,
        "promotion.limits.unjailed_trusted_code": True if unjailed_trusted_code else None,
        "llm.models": model_specs(model) if model else None,
    }.items():
        if value is not None:
            flags[key] = value
    try:
        loaded = load_config(config_file, flags)
    except ConfigError as e:
        fail(str(e))
    if not resume:
        require_device(loaded.config)
    try:
        check_jail(loaded.config.cascade.limits, loaded.config.harness.data)
        check_jail(loaded.config.promotion.limits, loaded.config.harness.data)
    except JailUnavailable as e:
        fail(str(e))
    try:
        with Store.open(loaded.config.database_url) as store:
            run(loaded, flags, store, name, resume)
    except DatabaseError as e:
        fail(str(e))


def require_device(config: ExperimentConfig) -> None:
    """One line, before anything is stored or trained, when the search cannot run here."""
    if config.harness.device != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        fail("no CUDA GPU is visible on this machine: pass --device cpu to search on the CPU (a tiny network, for "
             "checks only: its times say nothing about a GPU's), or run where `nvidia-smi` lists a GPU")


def run(loaded: LoadedConfig, flags: dict, store: Store, name: str | None, resume: str | None) -> None:
    config = loaded.config
    if resume:
        experiment = store.experiment(resume)
        try:
            config, changes = resumed_config(experiment.config, loaded, flags)
        except (ResumeError, ConfigError) as e:
            fail(f"cannot resume {experiment.name}: {e}")
        require_device(config)
        store.update_experiment_config(experiment.id, masked_dump(config))  # a later resume continues with them
        requeued = store.requeue_unfinished(experiment.id)
        store.set_experiment_status(experiment.id, "running")
        console.print(f"resuming {experiment.name} with its stored settings: {requeued} unfinished candidate(s) re-queued",
                      highlight=False)
        for change in changes:
            console.print(f"  given again, overrides the stored setting: {change}", highlight=False)
    else:
        name = name or f"{'+'.join(config.components)}-{datetime.now():%Y%m%d-%H%M%S}"
        experiment = store.create_experiment(
            name, config.components, masked_dump(config), config.seed_set, device_text(config),
            seed_sources=ComponentSet.shipped(config.seed_set).sources,
        )
    try:
        dataset = load_dataset(config.harness.data)
    except DatasetError as e:
        fail(str(e))
    # Seeded runs stay reproducible, and a resumed one does not replay the choices it made before.
    offset = len(store.index_rows(experiment.id)) + sum(store.proposal_counts(experiment.id).values())
    loop_rng, proposer_rng = (np.random.default_rng(None if config.seed is None else [config.seed, offset, i]) for i in (0, 1))
    proposer = make_proposer(config, proposer_rng)
    if not config.llm.enabled and (config.llm.base_url or config.llm.api_key):
        console.print(f"[yellow]note:[/] {mutator_reason(config)}; the built-in mutator proposes meanwhile", highlight=False)
    usd, gpu_seconds = store.spending(experiment.id)
    budget = Budget.from_config(config, usd_spent=usd, gpu_hours_spent=gpu_seconds / 3600)
    stats = LoopStats(experiment=experiment.name, proposer=proposer.name)
    console.print(f"experiment {experiment.name}: evolving {', '.join(config.components)} from the {config.seed_set} set; "
                  f"proposals by the {proposer.name}; data {dataset.describe()}", highlight=False)
    executor = LocalPoolExecutor(config.gpus if config.harness.device != "cpu" else None, dataset)
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


def device_text(config: ExperimentConfig) -> str:
    import torch

    if config.harness.device == "cuda" and not torch.cuda.is_available():
        return "cuda (not visible here)"
    name, driver = device_description(torch.device(config.harness.device))
    return name + (f", driver {driver}" if driver else "")


def print_final(store: Store, name: str, experiment_id: int, reason: str, url: str) -> None:
    table = Table(title=f"{name}: {reason} (the champion first: only its lead was confirmed side by side)")
    for column in ("rank", "candidate", "component", "status", "score", "time (s)", "penalty (s)", "accuracy", "note"):
        table.add_column(column)
    for row in ranked(store, experiment_id, 5):
        c = row.candidate
        table.add_row(str(row.rank), f"#{c.id}", c.component, c.status, f"{c.score:.4f}" if c.score is not None else "-",
                      f"{c.time_mean:.4f}" if c.time_mean else "-", f"{row.penalty:.4f}" if row.penalty is not None else "-",
                      f"{c.accuracy_mean:.2%}" if c.accuracy_mean is not None else "-", row.note)
    console.print(table)
    db = "" if url == DEFAULT_URL else f" --db {url}"
    console.print(
        f"inspect:  evolve lineage {name}{db}   |   evolve top {name}{db}\n"
        f"export:   evolve export {name}{db} -o speedrun.py\n"
        f"resume:   evolve start --resume {name}{db}",
        highlight=False,
    )
