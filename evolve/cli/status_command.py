"""`evolve status [EXPERIMENT]`: a search's progress from the database, wherever it runs.

It reads only the database, so it works from another terminal or another machine that shares a
PostgreSQL database. The running process's live panel shows more (each job's stage and run).
The options and their help are declared in evolve/cli/app.py.
"""

from datetime import UTC, datetime

from pydantic import ValidationError

from components import set_description
from evolve.cli.inspect_commands import console, number, opened, points, print_json
from evolve.config import ExperimentConfig
from evolve.database import ExperimentInfo
from evolve.database.status import ExperimentStatus, champion_line, experiment_status
from evolve.search.estimate import Costs, Remaining, duration, mean, remaining


def status(*, experiment: str | None, db: str, as_json: bool, quiet_minutes: float | None) -> None:
    """Progress of a search (running here or elsewhere): generation, jobs, champion history, spending, time left."""
    with opened(db) as store:
        chosen = store.experiment(experiment)
        state = experiment_status(store, chosen)
    config = stored_config(chosen)
    estimate = time_left(chosen, state, config)
    now = datetime.now(UTC)
    quiet = None if state.last_activity is None else (now - state.last_activity).total_seconds()
    if as_json:
        print_json({**state.model_dump(mode="json", exclude={"experiment"}), "experiment": chosen.name,
                    "status": chosen.status, "generations": config.generations, "proposals_planned": planned(config),
                    "seconds_left": estimate.seconds, "seconds_since_activity": quiet})
        return
    out = console()
    for line in status_lines(chosen, state, config, estimate, now, quiet, quiet_minutes):
        out.out(line, highlight=False)


def stored_config(chosen: ExperimentInfo) -> ExperimentConfig:
    """The experiment's stored settings; written by another version, the defaults (plans only)."""
    try:
        return ExperimentConfig.model_validate({k: v for k, v in chosen.config.items() if k != "llm"})
    except ValidationError:
        return ExperimentConfig()


def planned(config: ExperimentConfig) -> int:
    return config.generations * config.candidates_per_generation


def time_left(chosen: ExperimentInfo, state: ExperimentStatus, config: ExperimentConfig) -> Remaining:
    """The time (and budget) the search still needs, from the costs it measured so far."""
    slots = 1 if config.harness.device == "cpu" else len(config.gpus)
    evaluations = state.evaluation_seconds[-50:]
    left = max(0, planned(config) - state.proposed) + state.counts.get("pending", 0) + state.counts.get("running", 0)
    device_left = None if config.budget_gpu_hours is None else config.budget_gpu_hours * 3600 - state.device_seconds
    usd_left = None if config.budget_usd is None else config.budget_usd - state.usd
    return remaining(
        Costs(evaluation_seconds=mean(evaluations), promotion_seconds=mean(state.promotion_seconds),
              promotion_rate=len(state.promotion_seconds) / len(evaluations) if evaluations else 0.0,
              usd_per_proposal=state.usd / state.proposed if state.proposed and state.usd else None),
        left if chosen.status == "running" or left else 0, slots, device_left, usd_left,
    )


def status_lines(chosen: ExperimentInfo, state: ExperimentStatus, config: ExperimentConfig, estimate: Remaining,
                 now: datetime, quiet: float | None, quiet_minutes: float | None) -> list[str]:
    """The text report, one line each; a running search silent for `quiet_minutes` gets a warning."""
    unit = "CPU hours" if config.harness.device == "cpu" else "GPU hours"
    started = chosen.created_at if chosen.created_at.tzinfo else chosen.created_at.replace(tzinfo=UTC)
    since = f"; last write {duration(quiet)} ago" if quiet is not None else ""
    lines = [
        (f"{chosen.name}: {chosen.status}, started {started.astimezone():%Y-%m-%d %H:%M} "
         f"({duration((now - started).total_seconds())} ago){since}"),
        (f"evolving {', '.join(chosen.components)} from {set_description(chosen.baseline)} on {chosen.device}; "
         f"data {config.harness.data}, scale {config.harness.effective_scale()}"),
        f"generation {state.generation} of {config.generations}; {state.proposed} of {planned(config)} proposals made",
        "candidates: " + (", ".join(f"{n} {s}" for s, n in sorted(state.counts.items())) or "none"),
    ]
    for job in state.running:
        claimed = job.claimed_at if job.claimed_at is None or job.claimed_at.tzinfo else job.claimed_at.replace(tzinfo=UTC)
        age = f", claimed {duration((now - claimed).total_seconds())} ago" if claimed else ""
        lines.append(f"  running #{job.candidate_id} {job.component} (by {job.claimed_by or '-'}{age})")
    if state.rejections:
        lines.append("rejections: " + ", ".join(f"{v}: {n}" for v, n in sorted(state.rejections.items(), key=lambda x: -x[1])[:4]))
    if state.champions:
        best = state.champions[-1]
        lines.append(f"champion #{best.candidate_id}: {number(best.time_mean)} s, {points(best.accuracy_mean)}")
    lines.append(f"champion history: {champion_line(state.champions)}")
    lines.append(f"spent: {state.device_seconds / 3600:.3f} {unit}, ${state.usd:.2f}, {state.tokens} LLM tokens")
    if chosen.status == "running":
        lines.append(f"left: {estimate.text()}")
        if quiet is not None and quiet_minutes is not None and quiet > quiet_minutes * 60:
            lines.append(f"warning: nothing written for {duration(quiet)}: if the search died, continue it with "
                         f"`evolve start --resume {chosen.name}`")
    elif chosen.status == "stopped":
        lines.append(f"stopped: continue with `evolve start --resume {chosen.name}`")
    return lines
