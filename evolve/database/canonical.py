"""The canonical form of a module's source, so that candidates differing only in comments,
formatting or docstrings count as duplicates and are evaluated once."""

import ast
import hashlib
from functools import lru_cache


def strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def canonical_source(source: str) -> str:
    """The code as Python sees it; unparsable text (rejected later) with whitespace normalised."""
    try:
        return ast.unparse(strip_docstrings(ast.parse(source)))
    except (SyntaxError, ValueError):
        return "\n".join(line.rstrip() for line in source.strip().splitlines())


@lru_cache(maxsize=4096)  # the loop hashes whole sets: their unchanged modules again and again
def source_hash(source: str) -> str:
    return hashlib.sha256(canonical_source(source).encode()).hexdigest()
