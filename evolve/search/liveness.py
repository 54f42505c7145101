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

from evolve.search.mutator import HYPERPARAMS_NAME


def overridden_keys(overrides: Mapping[str, object]) -> dict[str, str]:
    return {f'{HYPERPARAMS_NAME}["{key}"]': f"the harness overrides {key} (to {value!r})" for key, value in overrides.items()}


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _calls(sources: Mapping[str, str]) -> dict[str, list[ast.Call]]:
    """Every call in the set by the callee's last name."""
    found: dict[str, list[ast.Call]] = {}
    for source in sources.values():
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _callee_name(node.func)
                if name is not None:
                    found.setdefault(name, []).append(node)
    return found


def _passes(call: ast.Call, parameter: str, position: int) -> bool | None:
    """Whether the call passes the parameter explicitly; None when it cannot be told (splats)."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return None
    return any(k.arg == parameter for k in call.keywords) or len(call.args) > position


def overridden_defaults(source: str, set_sources: Mapping[str, str]) -> dict[str, str]:
    """Mutator site name -> why, for the parameter defaults of `source` every call in the set overrides."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    calls = _calls(set_sources)
    dead: dict[str, str] = {}

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, [*scope, child.name])
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                check(child, scope)
                visit(child, [*scope, child.name])

    def check(function: ast.FunctionDef, scope: list[str]) -> None:
        is_init = function.name == "__init__" and scope
        callee = scope[-1] if is_init else function.name
        method = bool(scope)  # the first parameter is self (or cls), never passed by position
        callers = calls.get(callee, [])
        if not callers:
            return
        args = function.args
        positional = [*args.posonlyargs, *args.args]
        defaults = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        defaults += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        qualified = ".".join([*scope, function.name])
        for arg, _ in defaults:
            position = positional.index(arg) - method if arg in positional else 10**6
            passed = [_passes(call, arg.arg, position) for call in callers]
            if all(p is True for p in passed):
                dead[f"{qualified}({arg.arg}=)"] = (
                    f"every call of {callee} in the set passes {arg.arg} ({len(callers)} call(s)), so its default is never used"
                )

    visit(tree, [])
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
    from evolve.search.mutator import MutatorError, mutation_sites

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
