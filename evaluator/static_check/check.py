"""The entry point: parse the text, run every part of the check, and sort what it found by line."""


from components.interface import COMPONENT_NAMES
from evaluator.python_parse import parse_python
from evaluator.static_check.interface import check_interface
from evaluator.static_check.literals import check_literals
from evaluator.static_check.load_time import check_load_time
from evaluator.static_check.random_state_check import check_random_state
from evaluator.static_check.raw_memory_check import check_raw_memory
from evaluator.static_check.violation import Violation
from evaluator.static_check.visitor import ContractVisitor


def check_source(component: str, source: str) -> list[Violation]:
    """All violations of the component contract in `source`; empty list means it passes."""
    if component not in COMPONENT_NAMES:
        raise ValueError(f"unknown component {component!r}: choose one of {', '.join(COMPONENT_NAMES)}")
    try:
        tree = parse_python(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return [_syntax_violation(e)]
    try:
        visitor = ContractVisitor(tree)
        visitor.visit(tree)
        violations = [*visitor.violations, *check_load_time(tree.body, visitor.aliases)]
        violations += check_raw_memory(tree, visitor.aliases)
        violations += check_random_state(tree, visitor.aliases)
        violations += check_literals(tree)
        violations += check_interface(component, tree)
    except RecursionError:  # a tree the parser accepted but too deep to walk
        return [Violation(rule="syntax", line=0, message="the module is nested too deeply to check.",
                          fix="flatten the deeply nested expression into several statements")]
    return sorted(violations, key=lambda v: v.line)


def _syntax_violation(error: Exception) -> Violation:
    if isinstance(error, SyntaxError):
        return Violation(rule="syntax", line=error.lineno or 0, message=f"the module does not parse: {error.msg}.",
                         fix="correct the syntax at that line so that the module is valid Python")
    return Violation(rule="syntax", line=0, message=f"the module does not parse: {error}.",
                     fix="submit plain Python source text")
