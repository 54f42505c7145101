"""The one way this project turns Python text into an AST.

CPython 3.11 keeps the AST constructor's recursion counter in interpreter-wide state
(python/cpython#106905), so two threads calling `ast.parse` at once can fail with
"SystemError: AST constructor recursion depth mismatch". The search parses sources in its
proposer threads while the loop parses in the main thread; one lock makes that safe.
"""

import ast
import threading

_AST_LOCK = threading.Lock()


def parse_python(source: str) -> ast.Module:
    """`ast.parse(source)`, serialised across this process's threads."""
    with _AST_LOCK:
        return ast.parse(source)
