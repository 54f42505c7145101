"""Small helpers over ast nodes and dotted names, shared by the parts of the check."""

import ast
from collections.abc import Iterable


def chain_text(node: ast.expr) -> str | None:
    """`a.b.c` for a chain of attributes on a name (the key under which aliases are stored)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = chain_text(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def constant_string(node: ast.expr | None) -> str | None:
    """The value of a string constant node, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def constant_getattr(node: ast.expr) -> tuple[ast.expr, str] | None:
    """(object, name) for `getattr(object, "name"[, default])`, which is `object.name`."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2 and constant_string(node.args[1]) is not None):
        return node.args[0], node.args[1].value
    return None


def code(node: ast.AST, limit: int = 80) -> str:
    """The source of a node for a message, shortened so that a feedback line stays readable."""
    try:
        text = ast.unparse(node)
    except (ValueError, RecursionError):  # an integer too long to print, or a very deep tree
        return "<expression>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shortest_first(names: Iterable[str]) -> list[str]:
    """Dotted names in a stable order, the most direct first (the one a message shows)."""
    return sorted(set(names), key=lambda name: (len(name), name))


def root(dotted: str) -> str:
    return dotted.split(".")[0]


def under(dotted: str, prefix: str) -> bool:
    return dotted == prefix or dotted.startswith(prefix + ".")


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def docstring_nodes(tree: ast.Module) -> set[int]:
    """ids of string constants that are whole expression statements (docstrings and the like).

    Nothing at run time can read them: `__doc__` and every other dunder is refused, and so are
    the modules (inspect, linecache) that could read the source.
    """
    return {id(n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}
