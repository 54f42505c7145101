"""Module state changed at run time: which names are module-level containers, and which are local.

A module-level list, dict or set changed from inside a function keeps what one run stored there
(trained weights, say) for the next; a local or a parameter of the same name does not.
"""

import ast
from collections.abc import Iterator


def module_containers(tree: ast.Module) -> set[str]:
    """Names the module binds at top level to a list, dict or set (literal, comprehension or call)."""
    names = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and _is_container(stmt.value):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _is_container(value: ast.expr | None) -> bool:
    if isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
        return True
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ("list", "dict", "set")


def container_root(node: ast.expr) -> str | None:
    """`CACHE` in `CACHE`, `CACHE["w"]` or `CACHE["w"][0]`: the container that is changed."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def local_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Parameters and names assigned in the function's own body: these shadow module names."""
    args = function.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    names.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    body = function.body if isinstance(function.body, list) else [function.body]
    for node in (n for stmt in body for n in _walk_own_scope(stmt)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _walk_own_scope(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk that yields nested functions and classes but does not enter their bodies."""
    yield node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk_own_scope(child)

