"""Which library names (`torch.cuda.synchronize`) an expression in the source may stand for.

Names are followed through import aliases (`import numpy as np`, `from torch import cuda`),
assignment chains (`c = torch.cuda; s = c`), tuple unpacking, walrus expressions, parameter
defaults and constant getattr calls, until nothing changes. What the names really are (a module,
a file reader) is decided afterwards by library.py, against the installed libraries.

Scopes are ignored on purpose: a name bound to `torch.cuda` in one function and used in another
is treated as an alias everywhere, which errs towards reporting. Where a library object goes
somewhere this module cannot follow (into a container, an argument, a return value), the
visitor refuses it instead (the module-value rule), so that no module travels unseen.
"""

import ast
from collections.abc import Iterator

from evaluator.static_check.nodes import chain_text, constant_getattr, root
from evaluator.static_check.rules import MAX_ALIAS_DEPTH

Aliases = dict[str, set[str]]


def resolve(node: ast.expr, aliases: Aliases) -> set[str]:
    """The dotted library names an expression may stand for; empty when unknown."""
    text = chain_text(node)
    if text is not None and text in aliases:
        return set(aliases[text])
    if isinstance(node, ast.Attribute):
        return {f"{base}.{node.attr}" for base in resolve(node.value, aliases)}
    lookup = constant_getattr(node)
    if lookup is not None:
        obj, name = lookup
        return {f"{base}.{name}" for base in resolve(obj, aliases)}
    return set()


def collect_aliases(tree: ast.Module) -> Aliases:
    """Every name (or `self.x` chain) bound, anywhere in the module, to a library object.

    Assignments are followed until nothing changes, whatever their order (`b = a.cuda` before
    `a = torch`).
    """
    aliases = import_aliases(tree)
    bindings = list(value_bindings(tree))
    readers: dict[str, list[int]] = {}  # name -> the bindings whose value starts from that name
    for index, (_, value) in enumerate(bindings):
        start = root_name(value)
        if start is not None:
            readers.setdefault(start, []).append(index)
    pending = list(range(len(bindings)))
    while pending:
        target, value = bindings[pending.pop()]
        key = chain_text(target)
        if key is None:
            continue
        # Bounded depth: a loop such as `x = x.cuda` would otherwise add `torch.cuda.cuda...` forever.
        resolved = {d for d in resolve(value, aliases) if d.count(".") < MAX_ALIAS_DEPTH}
        new = resolved - aliases.get(key, set())
        if new:
            aliases.setdefault(key, set()).update(new)
            pending += readers.get(root(key), [])
    return aliases


def import_aliases(tree: ast.Module) -> Aliases:
    """The names import statements bind: `np` -> numpy, `F` -> torch.nn.functional, `cuda` -> torch.cuda."""
    aliases: Aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases.setdefault(alias.asname, set()).add(alias.name)
                else:
                    start = alias.name.split(".")[0]
                    aliases.setdefault(start, set()).add(start)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if alias.name != "*":
                    aliases.setdefault(alias.asname or alias.name, set()).add(f"{node.module}.{alias.name}")
    return aliases


def root_name(node: ast.expr) -> str | None:
    """The name an attribute chain or constant getattr starts from (`self` in `self.c.x`)."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            node = node.value
        elif (lookup := constant_getattr(node)) is not None:
            node = lookup[0]
        else:
            return None


def value_bindings(tree: ast.Module) -> Iterator[tuple[ast.expr, ast.expr]]:
    """(target, value) pairs of assignments, walrus expressions and parameter defaults."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield from pair_targets(target, node.value)
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            yield node.target, node.value
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            positional = [*node.args.posonlyargs, *node.args.args]
            pairs = zip(positional[len(positional) - len(node.args.defaults):], node.args.defaults)
            kw_pairs = zip(node.args.kwonlyargs, node.args.kw_defaults)
            for arg, default in [*pairs, *kw_pairs]:
                if default is not None:
                    yield ast.Name(id=arg.arg, ctx=ast.Store()), default


def pair_targets(target: ast.expr, value: ast.expr) -> Iterator[tuple[ast.expr, ast.expr]]:
    """`a, b = x, y` as (a, x) and (b, y); any other target with the whole value."""
    if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
        if len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts):
                yield from pair_targets(t, v)
    else:
        yield target, value


def name_bound_values(tree: ast.Module) -> set[int]:
    """ids of the values bound to a plain name outside class bodies: where a module may go.

    `F = torch.nn.functional` (and defaults, walrus, tuple unpacking) is followed by name;
    a class attribute is read as `self.x` or `Class.x`, which the resolver cannot tie back.
    """
    in_class = {id(stmt) for node in ast.walk(tree) if isinstance(node, ast.ClassDef) for stmt in node.body}
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and id(node) not in in_class:
            for target in node.targets:
                allowed.update(id(v) for t, v in pair_targets(target, node.value) if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and id(node) not in in_class and node.value is not None:
            if isinstance(node.target, ast.Name):
                allowed.add(id(node.value))
        elif isinstance(node, ast.NamedExpr):
            allowed.add(id(node.value))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            allowed.update(id(d) for d in (*node.args.defaults, *node.args.kw_defaults) if d is not None)
    return allowed


def direct_uses(tree: ast.Module, nodes: list[ast.AST]) -> set[int]:
    """ids of the expressions where a callable is called, aliased by name, annotated or type-tested."""
    direct = {id(n.func) for n in nodes if isinstance(n, ast.Call)} | name_bound_values(tree)
    roots: list[ast.AST] = []
    for node in nodes:
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "issubclass"):
            roots.extend(node.args[1:])
    return direct | {id(n) for r in roots for n in ast.walk(r)}
