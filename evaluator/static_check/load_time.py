"""Code that runs when the module loads: only definitions and constant assignments.

The harness loads a component module once per evaluation, and what module-level code builds
lives as long as the module, across runs. Function bodies are not looked at here (they run when
the harness calls them), but default values and class bases are, since they are evaluated at
load. Decorators are allowed (`@torch.compile`, `@torch.no_grad()`).
"""

import ast
from collections.abc import Iterable, Iterator

from evaluator.static_check.nodes import chain_text, code
from evaluator.static_check.references import Aliases, resolve
from evaluator.static_check.rules import (
    DEFINITION_STATEMENTS,
    LOAD_TIME_CALL_PREFIXES,
    LOAD_TIME_CALLS,
    LOAD_TIME_FIX,
    STATEMENT_FIX,
)
from evaluator.static_check.violation import Violation


def check_load_time(body: list[ast.stmt], aliases: Aliases) -> list[Violation]:
    """Module and class bodies: definitions and constant assignments only, no calls."""
    violations: list[Violation] = []
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue  # a docstring
        if not isinstance(stmt, DEFINITION_STATEMENTS):
            what = f"`{code(stmt)}`" if isinstance(stmt, ast.Expr) else f"a `{type(stmt).__name__.lower()}` statement"
            violations.append(Violation(rule="global-state", line=stmt.lineno,
                                        message=f"{what} at module level runs when the module is loaded.",
                                        fix=STATEMENT_FIX))
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defaults = [*stmt.args.defaults, *(d for d in stmt.args.kw_defaults if d is not None)]
            violations += _load_time_calls(defaults, aliases)
        elif isinstance(stmt, ast.ClassDef):
            violations += _load_time_calls([*stmt.bases, *(k.value for k in stmt.keywords)], aliases)
            violations += check_load_time(stmt.body, aliases)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
            violations += _load_time_calls([stmt.value], aliases)
    return violations


def _load_time_calls(expressions: Iterable[ast.expr], aliases: Aliases) -> list[Violation]:
    """A violation for each call in the expressions, other than constant-building ones."""
    violations = []
    for call in (n for e in expressions for n in _walk_skipping_lambdas(e) if isinstance(n, ast.Call)):
        names = resolve(call.func, aliases) or {chain_text(call.func) or ""}
        if not any(n in LOAD_TIME_CALLS or n.startswith(LOAD_TIME_CALL_PREFIXES) for n in names):
            violations.append(Violation(
                rule="global-state", line=call.lineno,
                message=f"`{code(call.func)}(...)` is called when the module is loaded.",
                fix=LOAD_TIME_FIX))
    return violations


def _walk_skipping_lambdas(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk, without lambda bodies (they run when called, not when the module loads)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(node, ast.Lambda) and child is node.body:
            continue
        yield from _walk_skipping_lambdas(child)

