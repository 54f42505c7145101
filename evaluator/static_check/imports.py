"""The import rule: only torch, numpy, math and typing, absolute, and only allowed namespaces in them."""

import ast

from evaluator.static_check.library import resolve_library
from evaluator.static_check.namespaces import ALLOWED_IMPORTS
from evaluator.static_check.nodes import root
from evaluator.static_check.rules import IMPORT_FIX
from evaluator.static_check.violation import Violation


def check_import_path(dotted: str, node: ast.AST) -> list[Violation]:
    """The violation of importing `dotted` (a module, or a name from one), if it leaves the contract."""
    line = getattr(node, "lineno", 0)
    if root(dotted) not in ALLOWED_IMPORTS:
        return [Violation(rule="import", line=line, message=f"imports `{dotted}`, outside {', '.join(ALLOWED_IMPORTS)}.",
                          fix=IMPORT_FIX)]
    finding = resolve_library(dotted).finding
    if finding is None:
        return []
    rule = "import" if finding.rule == "namespace" else finding.rule
    return [Violation(rule=rule, line=line, message=f"imports `{dotted}`, which {finding.reason}.", fix=finding.fix)]
