"""What a prompt shows of the modules around the one being changed, read without running them.

Candidate modules are untrusted: the loop never imports them. Their interfaces and the
hyperparameter values come from the syntax tree alone (the hyperparams module's HYPERPARAMS is a
plain literal by contract, see components/README.md).
"""

import ast
from collections.abc import Mapping
from evaluator.python_parse import parse_python

Scalar = int | float | bool


def hyperparams_in_force(hyperparams_source: str, overrides: Mapping[str, object]) -> dict[str, Scalar] | None:
    """The module's HYPERPARAMS literal with the harness's overrides applied (what every component
    receives as `hp`); None when the module has no readable literal dict."""
    try:
        tree = parse_python(hyperparams_source)
    except SyntaxError:
        return None
    values = None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "HYPERPARAMS" for t in targets) and node.value is not None:
            try:
                values = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
    if not isinstance(values, dict):
        return None
    return {**values, **overrides}


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"def {node.name}({ast.unparse(node.args)}){returns}"


def _first_line(node: ast.AST) -> str:
    doc = ast.get_docstring(node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else None
    return f"  # {doc.strip().splitlines()[0]}" if doc and doc.strip() else ""


def module_interface(source: str) -> str:
    """The module's top-level functions and classes (with their public methods) as signatures, and
    its constants' names: what a sibling component can call."""
    try:
        tree = parse_python(source)
    except SyntaxError as e:
        return f"(does not parse: line {e.lineno}: {e.msg})"
    lines = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            lines.append(_signature(node) + _first_line(node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            bases = f"({', '.join(ast.unparse(b) for b in node.bases)})" if node.bases else ""
            lines.append(f"class {node.name}{bases}{_first_line(node)}")
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not item.name.startswith("_") or item.name in ("__init__", "__call__")
                ):
                    lines.append(f"    {_signature(item)}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
            lines += [f"{name} = ..." for name in names]
    return "\n".join(lines) or "(defines nothing public)"
