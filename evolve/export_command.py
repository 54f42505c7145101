"""`evolve export`: write a component set as one standalone speedrun script, and verify it."""

from pathlib import Path
from typing import Annotated

import typer

from evaluator.component_set import ComponentError, ComponentSet
from evaluator.data import DatasetError
from evolve.export import Ancestor, ExportError, Provenance, export_script
from evolve.export_verify import verify_export


def export(
    candidate: Annotated[
        Path | None, typer.Argument(help="a component file or folder to export in place of the set's modules")
    ] = None,
    component: Annotated[str | None, typer.Option(help="which component the file replaces")] = None,
    components: Annotated[str, typer.Option(help="shipped component set to export (or that the candidate modifies)")] = "baseline",
    output: Annotated[Path, typer.Option("--output", "-o", help="the script to write")] = Path("speedrun.py"),
    verify: Annotated[
        bool, typer.Option("--verify", help="run the script on the CPU and check its logits equal the harness's")
    ] = False,
    seed: Annotated[int, typer.Option(help="base seed of the verification run")] = 0,
) -> None:
    """Write a component set as one runnable script with its provenance; --verify checks it against the harness."""
    from evolve.cli import candidate_set, console, fail  # the CLI registers this command: import it when called

    try:
        if candidate is None:
            component_set = ComponentSet.shipped(components)
            ancestors = [Ancestor(id=components, description="shipped component set")]
        else:
            component_set, changed = candidate_set(candidate, component, components)
            ancestors = [
                Ancestor(id=components, description="shipped component set"),
                Ancestor(id=str(candidate), description=f"replaces {', '.join(changed)}"),
            ]
        text = export_script(component_set, Provenance.for_set(component_set, ancestors=ancestors), filename=output.name)
    except (ValueError, ComponentError, ExportError) as e:
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
