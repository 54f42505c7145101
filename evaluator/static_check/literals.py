"""A size limit on the literals in a candidate's source: no room for memorised answers.

A component sees the test images but never their labels. A table of the 10,000 test labels
(about 33,000 bits: a 10,000-character string, a 10,000-entry tuple, or a few long integers)
written into the source would let a candidate answer without learning, or learn less and make
up the difference. The harness permutes the test set afresh for every run, so a table in the
canonical order is useless; a table keyed by image content still works, and it needs even more
room. These limits keep the literal data of one module far below that:

- one string or bytes constant: at most MAX_STRING_BYTES bytes (UTF-8);
- one integer constant: at most MAX_INT_BITS bits;
- one list, tuple, set or dict display: at most MAX_DISPLAY_ITEMS items;
- all constants of the module together: at most MAX_LITERAL_CHARS characters, counting each
  string by its UTF-8 bytes and each number by the length of its repr (the shipped modules use
  at most about 550).

Docstrings and other string statements are not counted: nothing at run time can read them
(`__doc__` and every other dunder is refused, and so are inspect and linecache). The limit
cannot promise more than it says: code can still carry a few kilobytes in its own structure
(names, branches); the per-run permutation of the test set is what makes such a table in the
canonical order worthless.
"""

import ast

from evaluator.static_check.nodes import code, docstring_nodes
from evaluator.static_check.violation import Violation

MAX_STRING_BYTES = 200
MAX_INT_BITS = 64
MAX_DISPLAY_ITEMS = 64
MAX_LITERAL_CHARS = 1500

LITERAL_FIX = (
    "compute the values in code (torch.arange, a loop, a formula) or keep them short: a component's "
    "literals are limited (evaluator/static_check/literals.py) so that no table of answers fits in them"
)


def check_literals(tree: ast.Module) -> list[Violation]:
    """A violation for each literal over its limit, and one when the module's total is over."""
    skip = docstring_nodes(tree)
    violations: list[Violation] = []
    total = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in skip:
            size = literal_size(node.value)
            total += size
            violations += _constant_violation(node, size)
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            items = len(node.keys) if isinstance(node, ast.Dict) else len(node.elts)
            if items > MAX_DISPLAY_ITEMS:
                kind = type(node).__name__.lower()
                violations.append(Violation(
                    rule="literal-size", line=node.lineno,
                    message=f"a {kind} display of {items} items, over the limit of {MAX_DISPLAY_ITEMS}.",
                    fix=LITERAL_FIX))
    if total > MAX_LITERAL_CHARS:
        violations.append(Violation(
            rule="literal-size", line=0,
            message=f"the module's literals add up to {total} characters, over the limit of {MAX_LITERAL_CHARS}.",
            fix=LITERAL_FIX))
    return violations


def literal_size(value: object) -> int:
    """Characters a constant occupies: UTF-8 bytes of a string, bytes, or the length of a number's repr."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        return value.bit_length() // 3  # about its decimal digits, without building the string
    return len(repr(value))


def _constant_violation(node: ast.Constant, size: int) -> list[Violation]:
    value = node.value
    if isinstance(value, (str, bytes)) and size > MAX_STRING_BYTES:
        kind = "string" if isinstance(value, str) else "bytes"
        message = f"a {kind} constant of {size} bytes (`{code(node, 40)}`), over the limit of {MAX_STRING_BYTES}."
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        message = f"an integer constant of {value.bit_length()} bits, over the limit of {MAX_INT_BITS}."
    else:
        return []
    return [Violation(rule="literal-size", line=node.lineno, message=message, fix=LITERAL_FIX)]
