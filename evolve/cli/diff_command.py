"""`evolve diff A B`: what differs between the full component sets of any two candidates.
The options and their help are declared in evolve/cli/app.py."""

from typing import TYPE_CHECKING

from components import COMPONENT_NAMES
from evaluator.component_set import ComponentSet
from evolve.cli.inspect_commands import console, opened, print_json
from evolve.cli.output import fail
from evolve.database.serialize import unified_diff

if TYPE_CHECKING:
    from evolve.database.reader import Reader
    from evolve.database.store import Store


def set_diffs(store: "Store | Reader", a: int, b: int, component: str | None = None) -> dict[str, str]:
    """component -> unified diff from A's set to B's, for each component that differs."""
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


def diff(*, a: int, b: int, component: str | None, db: str, as_json: bool) -> None:
    """Unified diff between the full component sets of two candidates (any two, of any experiment)."""
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
