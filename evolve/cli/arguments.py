"""Arguments several commands read the same way: `--set KEY=VALUE` overrides and a candidate path."""

from pathlib import Path

import typer

from components import COMPONENT_NAMES
from evaluator.component_set import ComponentError, ComponentSet


def parse_overrides(pairs: list[str] | None) -> dict[str, float | int | bool]:
    """KEY=VALUE strings (None: no `--set` given) into typed hyperparameter overrides (int, float or bool)."""
    overrides: dict[str, float | int | bool] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE (example: --set batch_size=1000)", param_hint="--set")
        lowered = raw.strip().lower()
        if lowered in ("true", "false"):
            overrides[key] = lowered == "true"
            continue
        try:
            overrides[key] = int(raw)
        except ValueError:
            try:
                overrides[key] = float(raw)
            except ValueError:
                raise typer.BadParameter(f"{pair!r}: the value must be a number, true or false", param_hint="--set")
    return overrides


def candidate_set(path: Path, component: str | None, base: str) -> tuple[ComponentSet, list[str]]:
    """The shipped set with the candidate's module(s) in place: a file for --component, or a folder;
    with the names of the components replaced."""
    base_set = ComponentSet.shipped(base)
    if path.is_dir():
        return base_set.with_folder(path, only=component)
    if not path.exists():
        raise ComponentError(f"{path} does not exist: pass a component file with --component NAME, or a folder")
    if not component:
        stem = path.stem
        if stem not in COMPONENT_NAMES:
            raise ComponentError(f"say which component {path.name} replaces: --component one of {', '.join(COMPONENT_NAMES)}")
        component = stem
    return base_set.with_component(component, path.read_text()), [component]
