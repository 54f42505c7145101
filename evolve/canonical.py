"""Canonical form of a component's source, for deduplication.

Two candidates that differ only in comments, docstrings, blank lines, quoting or line breaks
train the same network, so the loop should evaluate only one of them. The canonical form is the
module parsed with `ast`, stripped of docstrings and printed back with `ast.unparse`; its sha256
is the key the lineage database deduplicates on.
"""

import ast
import hashlib


class CanonicalError(ValueError):
    """A source text that is not valid Python; the message names the line."""


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body.pop(0)
            if not body and not isinstance(node, ast.Module):
                body.append(ast.Pass())


def canonical_source(source: str) -> str:
    """The source without comments, docstrings and formatting: what the interpreter would run."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise CanonicalError(f"line {e.lineno}: {e.msg}: the source is not valid Python") from e
    except ValueError as e:  # e.g. null bytes
        raise CanonicalError(f"the source is not valid Python: {e}") from e
    _strip_docstrings(tree)
    return ast.unparse(tree)


def canonical_hash(source: str) -> str:
    """sha256 (hex) of the canonical source: equal for sources that differ only in form."""
    return hashlib.sha256(canonical_source(source).encode()).hexdigest()
