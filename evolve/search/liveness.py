"""Which mutation sites can matter: a cheap static reading of a component set.

A site is dead when changing it cannot change a run:
- a HYPERPARAMS key the harness overrides (the scale's keys, e.g. batch_size, the widths and
  whiten_init_images on the CPU's tiny scale, and every `--set KEY=VALUE`);
- a parameter default that every call in the set passes explicitly, e.g. `Muon.__init__(lr=)` when
  the optimizer builder always calls `Muon(..., lr=hp["muon_lr"])`. A function called nowhere in
  the set (the harness calls it) or called with `*args`/`**kwargs` keeps its defaults live.

The built-in mutator never picks a dead site; the loop also tells it the sites whose children the
cascade's behaviour check found identical to their parent (`learned`), which this reading cannot
see (dead code, a value clipped away). `evolve eval` warns about changes to dead sites.
"""

import ast
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from evaluator.python_parse import parse_python
from evolve.search.mutation_sites import HYPERPARAMS_NAME, MutatorError, mutation_sites


def overridden_keys(overrides: Mapping[str, object]) -> dict[str, str]:
    return {f'{HYPERPARAMS_NAME}["{key}"]': f"the harness overrides {key} (to {value!r})" for key, value in overrides.items()}


class CallShape(NamedTuple):
    """What a call passes: enough to tell whether it overrides a parameter's default."""

    positional: int
    keywords: frozenset[str]
    splat: bool  # *args or **kwargs: what it passes cannot be told


class Default(NamedTuple):
    """A parameter with a default, of a function or method some call in the set may reach."""

    qualified: str  # Class.method or function
    callee: str  # the name its callers use (the class for __init__)
    parameter: str
    position: int  # among the positional parameters that callers pass (self excluded); 10**6 when keyword-only


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


@lru_cache(maxsize=512)  # the loop reads every proposal's set; its unchanged modules again and again
def _calls_in(source: str) -> dict[str, tuple[CallShape, ...]]:
    """Every call in one module by the callee's last name."""
    found: dict[str, list[CallShape]] = {}
    try:
        tree = parse_python(source)
    except SyntaxError:
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _callee_name(node.func)
            if name is not None:
                splat = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
                shape = CallShape(len(node.args), frozenset(k.arg for k in node.keywords if k.arg is not None), splat)
                found.setdefault(name, []).append(shape)
    return {name: tuple(shapes) for name, shapes in found.items()}


def _calls(sources: Mapping[str, str]) -> dict[str, list[CallShape]]:
    """Every call in the set by the callee's last name."""
    found: dict[str, list[CallShape]] = {}
    for source in sources.values():
        for name, shapes in _calls_in(source).items():
            found.setdefault(name, []).extend(shapes)
    return found


def _passes(call: CallShape, parameter: str, position: int) -> bool | None:
    """Whether the call passes the parameter explicitly; None when it cannot be told (splats)."""
    if call.splat:
        return None
    return parameter in call.keywords or call.positional > position


@lru_cache(maxsize=512)
def _defaults(source: str) -> tuple[Default, ...]:
    """The parameter defaults of one module's functions and methods."""
    try:
        tree = parse_python(source)
    except SyntaxError:
        return ()
    found: list[Default] = []

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, [*scope, child.name])
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                collect(child, scope)
                visit(child, [*scope, child.name])

    def collect(function: ast.FunctionDef, scope: list[str]) -> None:
        is_init = function.name == "__init__" and scope
        callee = scope[-1] if is_init else function.name
        method = bool(scope)  # the first parameter is self (or cls), never passed by position
        args = function.args
        positional = [*args.posonlyargs, *args.args]
        defaults = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        defaults += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        qualified = ".".join([*scope, function.name])
        for arg, _ in defaults:
            position = positional.index(arg) - method if arg in positional else 10**6
            found.append(Default(qualified, callee, arg.arg, position))

    visit(tree, [])
    return tuple(found)


def overridden_defaults(source: str, set_sources: Mapping[str, str]) -> dict[str, str]:
    """Mutator site name -> why, for the parameter defaults of `source` every call in the set overrides."""
    defaults = _defaults(source)
    if not defaults:
        return {}
    calls = _calls(set_sources)
    dead: dict[str, str] = {}
    for default in defaults:
        callers = calls.get(default.callee, [])
        if callers and all(_passes(call, default.parameter, default.position) is True for call in callers):
            dead[f"{default.qualified}({default.parameter}=)"] = (
                f"every call of {default.callee} in the set passes {default.parameter} ({len(callers)} call(s)), "
                "so its default is never used"
            )
    return dead


def dead_sites(component: str, source: str, set_sources: Mapping[str, str], overrides: Mapping[str, object]) -> dict[str, str]:
    """Site name (as the mutator labels it) -> why changing it cannot matter."""
    dead = overridden_defaults(source, {**set_sources, component: source})
    if component == "hyperparams":
        dead.update(overridden_keys(overrides))
    return dead


def site_of(description: str) -> list[str]:
    """The site names in a mutator's description (`site: old -> new; ...`)."""
    sites = []
    for change in description.split("; "):
        site, sep, _ = change.rpartition(": ")
        if sep and " -> " in change:
            sites.append(site)
    return sites


def ineffective_changes(component: str, old: str, new: str, set_sources: Mapping[str, str], overrides: Mapping[str, object]) -> list[str]:
    """The changes from `old` to `new` (at mutator sites) that cannot take effect, each with why."""
    try:
        before = {s.name: old[s.start:s.end] for s in mutation_sites(component, old)}
        after = {s.name: new[s.start:s.end] for s in mutation_sites(component, new)}
    except MutatorError:
        return []
    dead = dead_sites(component, new, {**set_sources, component: new}, overrides)
    return [f"{name}: {before[name]} -> {after[name]}: {dead[name]}"
            for name in after if name in before and before[name] != after[name] and name in dead]


def change_warnings(candidate, changed: list[str], base, harness) -> list[str]:
    """For `evolve eval`: each changed component whose changes all cannot take effect (ComponentSets, HarnessSettings)."""
    warnings = []
    for name in changed:
        old, new = base.sources[name], candidate.sources[name]
        useless = ineffective_changes(name, old, new, candidate.sources, harness.effective_overrides())
        if useless:
            warnings.append(f"{name}: this change cannot take effect ({'; '.join(useless)})")
    return warnings
