"""`evolve start`: run (or resume) an evolution experiment.

Ctrl-C once: running jobs finish and are stored, then the search stops. Twice: every worker is
killed at once and the unfinished candidates go back to pending (evolve/search/interrupts.py).
Either way the exit status is 130 and `evolve start --resume NAME` continues.
The options and their help are declared in evolve/cli/app.py.
"""

import os
import sys
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import typer
from rich.table import Table

from components import set_description
from evaluator.component_set import ComponentError, ComponentSet
from evaluator.data import DatasetError, load_dataset
from evaluator.promotion_policy.rule import attempt_alpha, pairs_for
from evaluator.runs import device_description
from evaluator.sandbox.jail import JailUnavailable
from evaluator.sandbox.sandboxed_worker import check_jail
from evolve.cli.output import errors, escape, fail
from evolve.cli.ranking import ranked
from evolve.cli.resume import ResumeError, resumed_config
from evolve.config import ConfigError, ExperimentConfig
from evolve.config_display import masked_dump
from evolve.config_loading import LoadedConfig, load_config, model_specs, parse_assignments
from evolve.database import DEFAULT_URL, DatabaseError, ExperimentInfo, Store
from evolve.database.decisions import attempts_made
from evolve.database.status import experiment_status
from evolve.executor_choice import ExecutorUnavailable, make_executor
from evolve.llm.client import Budget, LLMClient
from evolve.search.estimate import Plan, mean
from evolve.search.interrupts import Interrupts
from evolve.search.loop import EvolutionLoop, SeedFailed
from evolve.search.progress import LoopStats, Progress
from evolve.search.proposer import LLMProposer, MutatorProposer
from evolve.simulation.data import simulated_dataset
from evolve.simulation.proposer import SimulatedProposer

console = errors  # the search reports on stderr; stdout stays free for what a script may parse


def gpu_text(config: ExperimentConfig) -> str:
    if config.harness.device == "cpu":
        return "the CPU (tests and checks only)"
    try:
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "an NVIDIA GPU"
    except RuntimeError:
        return "an NVIDIA GPU"


def device_unit(config: ExperimentConfig) -> str:
    """Device time named for the device that spends it."""
    if config.executor == "simulated":
        return "simulated GPU hours"
    return "CPU hours" if config.harness.device == "cpu" else "GPU hours"


def mutator_reason(config: ExperimentConfig) -> str:
    """Why the built-in mutator proposes, and what to add for an LLM."""
    llm = config.llm
    if llm.base_url is None and llm.api_key is None:
        return "no LLM configured: add --model NAME with OPENAI_API_KEY or OPENAI_BASE_URL to use one"
    endpoint = f"OPENAI_BASE_URL / llm.base_url {llm.base_url}" if llm.base_url else "OPENAI_API_KEY (OpenAI)"
    return f"an LLM endpoint is set ({endpoint}) but no model: add --model NAME (or EVOLVE_MODEL=NAME) to use it"


def make_proposer(config: ExperimentConfig, rng: np.random.Generator) -> MutatorProposer | LLMProposer | SimulatedProposer:
    """The built-in mutator, or the LLM (with the mutator as its fallback where configured); the simulated
    proposer for the simulated executor unless simulation.proposer = configured."""
    if config.executor == "simulated" and config.simulation.proposer == "simulated":
        return SimulatedProposer(config.simulation, rng)
    if not config.llm.enabled:
        proposer = MutatorProposer(config.mutator, rng)
        proposer.name = f"built-in mutator ({mutator_reason(config)})"
        return proposer
    fallback = MutatorProposer(config.mutator, rng) if config.llm.fallback_to_mutator else None
    return LLMProposer(LLMClient(config.llm, rng), config.score, config.llm.output_format, gpu_text(config), config.prompts_dir,
                       fallback)


def start(
    *, component: list[str] | None, config_file: Path | None, preset: str | None, generations: int | None,
    runs: int | None, seed: int | None, threads: int | None, budget_gpu_hours: float | None, budget_usd: float | None,
    gpus: str | None, executor: str | None, ray_address: str | None, device: str | None, data: str | None,
    components: str | None, model: list[str] | None, prompts: Path | None, db: str | None, name: str | None,
    resume: str | None, set_: list[str] | None, unjailed_trusted_code: bool,
) -> None:
    """Evolve components of the speedrun: the flags over the configuration, then the search until it ends."""
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
        "executor": executor,
        "ray.address": ray_address,
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
            flags.setdefault(key, value)  # an explicit --set wins over the shorthand
    try:
        loaded = load_config(config_file, flags, preset=preset)
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
            code = run(loaded, flags, store, name, resume)
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


def require_device(config: ExperimentConfig) -> None:
    """One line, before anything is stored or trained, when the search cannot run here."""
    if config.harness.device != "cuda" or config.executor == "simulated":
        return
    if not torch.cuda.is_available():
        fail("no CUDA GPU is visible on this machine: pass --device cpu to search on the CPU (a tiny network, for "
             "checks only: its times say nothing about a GPU's), or run where `nvidia-smi` lists a GPU")


def run(loaded: LoadedConfig, flags: dict, store: Store, name: str | None, resume: str | None) -> int:
    """The search until it ends; the exit status (0, or 130/143 when interrupted)."""
    config = loaded.config
    if resume:
        found, config, changes = resumed(store, loaded, flags, resume)
    # The seed set, the data and the executor first: a bad folder, a missing file or an unreachable cluster
    # leaves the database as it was. A folder is read once, here, and stored in full with the experiment.
    if not resume:
        try:
            seed_set = ComponentSet.named(config.seed_set)
        except ComponentError as e:
            fail(f"--components: {e}")
    try:
        dataset = simulated_dataset() if config.executor == "simulated" else load_dataset(config.harness.data)
    except DatasetError as e:
        fail(str(e))
    try:
        executor = make_executor(config, dataset)
    except ExecutorUnavailable as e:
        fail(str(e))
    console.print(executor.describe(), highlight=False)
    if resume:
        experiment = continued(store, found, config, changes)
    else:
        name = name or f"{'+'.join(config.components)}-{datetime.now():%Y%m%d-%H%M%S}"
        experiment = store.create_experiment(
            name, config.components, masked_dump(config), config.seed_set, device_text(config), seed_sources=seed_set.sources,
        )
    loop_rng, proposer_rng = random_generators(store, experiment, config)
    proposer = make_proposer(config, proposer_rng)
    if not config.llm.enabled and (config.llm.base_url or config.llm.api_key):
        console.print(f"note: {escape(mutator_reason(config))}; the built-in mutator proposes meanwhile", highlight=False)
    usd, gpu_seconds = store.spending(experiment.id)
    budget = Budget.from_config(config, usd_spent=usd, gpu_hours_spent=gpu_seconds / 3600)
    stats = LoopStats(experiment=experiment.name, proposer=proposer.name, device_unit=device_unit(config))
    console.out(f"experiment {experiment.name}: evolving {', '.join(config.components)} from {set_description(config.seed_set)}; "
                f"proposals by the {proposer.name}; data {dataset.describe()}; "
                f"{config.cascade.limits.threads} thread(s) per worker", highlight=False)
    for line in plan(config, store, experiment, executor.slots).lines(device_unit(config)):
        console.out(line, highlight=False)
    with Interrupts() as interrupts, Progress(console, stats) as progress:
        loop = EvolutionLoop(config, store, experiment, executor, proposer, progress, budget, loop_rng, interrupts)
        try:
            reason = loop.run()
        except SeedFailed as e:
            store.set_experiment_status(experiment.id, "stopped")
            executor.abandon()
            executor.shutdown(wait=False)
            fail(f"{e}\nThe search cannot start from a seed set that fails; check it with `evolve baseline`.", code=1)
        interrupted = interrupts.stop_requested
        store.set_experiment_status(experiment.id, "stopped" if interrupted else "finished")
    executor.shutdown(wait=not interrupts.abandon.is_set())
    print_final(store, experiment.name, experiment.id, reason, config.database_url)
    return interrupts.exit_code if interrupted else 0


def resumed(store: Store, loaded: LoadedConfig, flags: dict,
            resume: str) -> tuple[ExperimentInfo, ExperimentConfig, list[str]]:
    """The experiment to continue and its stored settings, with the ones given again over them."""
    found = store.experiment(resume)
    try:
        config, changes = resumed_config(found.config, loaded, flags)
    except (ResumeError, ConfigError) as e:
        fail(f"cannot resume {found.name}: {e}")
    # where the evaluations run may change between runs: this command's executor settings hold
    config = config.model_copy(update={"executor": loaded.config.executor, "ray": loaded.config.ray})
    require_device(config)
    return found, config, changes


def continued(store: Store, experiment: ExperimentInfo, config: ExperimentConfig, changes: list[str]) -> ExperimentInfo:
    """A stopped experiment running again: its settings stored, its unfinished candidates re-queued."""
    store.update_experiment_config(experiment.id, masked_dump(config))  # a later resume continues with them
    requeued = store.requeue_unfinished(experiment.id)
    store.set_experiment_status(experiment.id, "running")
    console.print(f"resuming {escape(experiment.name)} with its stored settings: {requeued} unfinished candidate(s) re-queued",
                  highlight=False)
    for change in changes:
        console.print(f"  given again, overrides the stored setting: {escape(change)}", highlight=False)
    return experiment


def random_generators(store: Store, experiment: ExperimentInfo,
                      config: ExperimentConfig) -> tuple[np.random.Generator, np.random.Generator]:
    """The loop's and the proposer's: seeded runs stay reproducible, and a resumed one does not replay
    the choices it made before."""
    offset = len(store.index_rows(experiment.id)) + sum(store.proposal_counts(experiment.id).values())
    loop_rng, proposer_rng = (np.random.default_rng(None if config.seed is None else [config.seed, offset, i]) for i in (0, 1))
    return loop_rng, proposer_rng


def plan(config: ExperimentConfig, store: Store, experiment, slots: int):
    """The most the search will do, with a time from measured candidates (this experiment's, or an
    earlier one's with the same device, data and scale) when there are any."""
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
        # the next attempt's pairs (the loop raises the setting to what the attempt's alpha needs); each pair
        # warms up two fresh workers and times one run of each (evaluator/promotion.py)
        runs_per_promotion=4 * max(config.promotion.pairs,
                                       pairs_for(attempt_alpha(config.promotion.experiment_alpha,
                                                               attempts_made(store, experiment.id) + 1))),
        seconds_per_candidate=seconds,
        measured_from=measured_from,
        slots=slots,
        llm_calls=candidates if models else 0,
        usd_per_call=usd_per_call,
    )


def device_text(config: ExperimentConfig) -> str:
    if config.executor == "simulated":
        return "simulated (evolve/simulation: nothing ran, every result was drawn)"
    if config.harness.device == "cuda" and not torch.cuda.is_available():
        return "cuda (not visible here)"
    name, driver = device_description(torch.device(config.harness.device))
    return name + (f", driver {driver}" if driver else "")


def print_final(store: Store, name: str, experiment_id: int, reason: str, url: str) -> None:
    table = Table(title=escape(f"{name}: {reason} (the champion first: only its lead was confirmed side by side)"))
    for column in ("rank", "candidate", "component", "status", "score", "time (s)", "penalty (s)", "accuracy", "note"):
        table.add_column(column)
    for row in ranked(store, experiment_id, 5):
        c = row.candidate
        table.add_row(str(row.rank), f"#{c.id}", c.component, c.status, f"{c.score:.4f}" if c.score is not None else "-",
                      f"{c.time_mean:.4f}" if c.time_mean else "-", f"{row.penalty:.4f}" if row.penalty is not None else "-",
                      f"{c.accuracy_mean:.2%}" if c.accuracy_mean is not None else "-", escape(row.note))
    console.print(table)
    db = "" if url == DEFAULT_URL else f" --db {url}"
    console.out(
        f"inspect:  evolve status {name}{db}   |   evolve lineage {name}{db}   |   evolve top {name}{db}\n"
        f"export:   evolve export {name}{db} -o speedrun.py\n"
        f"resume:   evolve start --resume {name}{db}",
        highlight=False,
    )
