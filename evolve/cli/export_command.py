"""`evolve export`: write a component set as one standalone speedrun script, and verify it.
The options and their help are declared in evolve/cli/app.py."""

from pathlib import Path

import typer

from components import set_description
from evaluator.component_set import ComponentError, ComponentSet
from evaluator.data import DatasetError
from evaluator.results import Summary
from evaluator.settings import HarnessSettings
from evolve.cli.arguments import candidate_set
from evolve.cli.output import console, fail
from evolve.database import DatabaseError, Store
from evolve.export.script import Ancestor, ExportError, ExportStatistics, Provenance, export_script
from evolve.export.verify import verify_export


def looks_like_path(argument: str) -> bool:
    """A component file or folder (existing or not, so that a typo gets "does not exist"), else an experiment."""
    return Path(argument).exists() or argument.endswith(".py") or "/" in argument


def from_database(url: str, experiment_name: str | None, candidate_id: int | None) -> tuple[ComponentSet, Provenance]:
    """The candidate (default: the experiment's champion) as a set, with its lineage and measured statistics."""
    with Store.open(url, create=False) as store:
        experiment = store.experiment(experiment_name) if experiment_name or candidate_id is None else None
        if candidate_id is None:
            champion = store.current_champion(experiment.id)
            if champion is None:
                raise ExportError(f"experiment {experiment.name} has no champion yet: name an evaluated one with --candidate ID")
            candidate_id = champion.id
        candidate = store.candidate(candidate_id)
        if experiment is not None and candidate.experiment_id != experiment.id:
            raise ExportError(f"candidate {candidate_id} is not part of experiment {experiment.name}")
        experiment = experiment or store.experiment(str(candidate.experiment_id))
        if candidate.status not in ("evaluated", "champion") or candidate.summary is None:
            raise ExportError(
                f"candidate {candidate_id} was never evaluated successfully (status {candidate.status}): "
                "export an evaluated one (see `evolve top`)"
            )
        changed = sorted({c.component for c in store.ancestry(candidate.id) if c.origin != "seed"})
        component_set = ComponentSet(sources=store.component_set_sources(candidate.id)).model_copy(update={"origin": (  # the stored seed set, not the package's
            set_description(experiment.baseline) if candidate.origin == "seed"
            else f"{set_description(experiment.baseline)} with the {', '.join(changed)} of candidate #{candidate.id}")})
        harness = HarnessSettings.model_validate(experiment.config.get("harness", {}))
        ancestors = [
            Ancestor(id=c.id, description=f"{c.origin}, {c.component}, {c.status}" + (f", score {c.score:.4f}" if c.score is not None else ""))
            for c in reversed(store.ancestry(candidate.id))
        ]
        statistics = ExportStatistics.from_summary(
            Summary.model_validate(candidate.summary), store.samples(candidate.id, ["timed"]),
            data=harness.data, scale=harness.effective_scale(), hyperparams=harness.hyperparams,
        )
    provenance = Provenance.for_set(
        component_set, experiment_id=experiment.name, candidate_id=candidate.id, ancestors=ancestors, statistics=statistics
    )
    return component_set, provenance


def export(
    *, candidate: str | None, candidate_id: int | None, db: str, component: str | None, components: str, output: Path,
    verify: bool, seed: int,
) -> None:
    """Write a component set (shipped, a candidate path over one, or a database candidate) as one runnable
    script with its provenance; with `verify`, check it against the harness."""
    try:
        if candidate_id is not None or (candidate is not None and not looks_like_path(candidate)):
            component_set, provenance = from_database(db, candidate, candidate_id)
        else:
            if candidate is None:
                component_set = ComponentSet.shipped(components)
                ancestors = [Ancestor(id=components, description="shipped component set")]
            else:
                component_set, changed = candidate_set(Path(candidate), component, components)
                ancestors = [
                    Ancestor(id=components, description="shipped component set"),
                    Ancestor(id=candidate, description=f"replaces {', '.join(changed)}"),
                ]
            provenance = Provenance.for_set(component_set, ancestors=ancestors)
        text = export_script(component_set, provenance, filename=output.name)
    except (ValueError, ComponentError, ExportError, DatabaseError) as e:
        fail(str(e))
    try:
        output.write_text(text)
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror}; choose another --output or create its folder")
    console.print(f"wrote {output} ({len(text.splitlines())} lines)")
    if not verify:
        return
    console.print("verifying on the CPU: the script and the harness, same synthetic data and seeds...")
    try:
        verification = verify_export(output, component_set, seed=seed)
    except (ExportError, DatasetError) as e:
        fail(str(e))
    for check in verification.checks:
        mark = "[green]ok[/]" if check.passed else "[bold red]FAILED[/]"
        console.print(f"{mark} {check.name}: {check.message}", highlight=False)
    if not verification.passed:
        raise typer.Exit(code=1)
