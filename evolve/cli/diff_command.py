"""`evolve diff A B`: what differs between the full component sets of any two candidates."""

from typing import Annotated, Optional

import typer

from evolve.cli.inspect_commands import DbOption, JsonOption, console, opened, print_json
from evolve.database import DEFAULT_URL


def set_diffs(store, a: int, b: int, component: str | None = None) -> dict[str, str]:
    """component -> unified diff from A's set to B's, for each component that differs."""
    from components import COMPONENT_NAMES
    from evaluator.component_set import ComponentSet
    from evolve.database.serialize import unified_diff

    sets = {}
    for candidate_id in (a, b):
        candidate = store.candidate(candidate_id)
        sets[candidate_id] = ComponentSet(sources=store.component_set_sources(candidate.id))
    names = [component] if component else list(COMPONENT_NAMES)
    diffs = {}
    for name in names:
        before, after = sets[a].sources[name], sets[b].sources[name]
        if before != after:
            diffs[name] = unified_diff(before, after, f"#{a}/{name}.py", f"#{b}/{name}.py")
    return diffs


def diff(
    a: Annotated[int, typer.Argument(metavar="A", help="candidate id (the 'before' side)")],
    b: Annotated[int, typer.Argument(metavar="B", help="candidate id (the 'after' side)")],
    component: Annotated[
        Optional[str], typer.Option(metavar="NAME", help="compare only this component \\[default: all]")
    ] = None,
    db: DbOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Unified diff between the full component sets of two candidates (any two, of any experiment)."""
    from components import COMPONENT_NAMES
    from evolve.cli.output import fail

    if component is not None and component not in COMPONENT_NAMES:
        fail(f"unknown component {component!r}: choose one of {', '.join(COMPONENT_NAMES)}")
    with opened(db) as store:
        diffs = set_diffs(store, a, b, component)
    if as_json:
        print_json({"a": a, "b": b, "components": diffs})
        return
    out = console()
    if not diffs:
        out.out(f"candidates #{a} and #{b} have identical {component or 'component sets'}", highlight=False)
        return
    for text in diffs.values():
        out.out(text.rstrip("\n"), highlight=False)
