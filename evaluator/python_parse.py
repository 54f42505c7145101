"""The one way this project turns Python text into an AST.

CPython 3.11 keeps the AST constructor's recursion counter in interpreter-wide state
(python/cpython#106905), so two threads calling `ast.parse` at once can fail with
"SystemError: AST constructor recursion depth mismatch". The search parses sources in its
proposer threads while the loop parses in the main thread; one lock makes our own parses safe.
A parse by other code in another thread (Python 3.11's traceback module parses source lines
to place its carets) can still collide with ours, so that one error is retried, a few times.
"""

import ast
import threading

_AST_LOCK = threading.Lock()
_SPURIOUS = "AST constructor recursion depth mismatch"
_ATTEMPTS = 3


def parse_python(source: str) -> ast.Module:
    """`ast.parse(source)`, serialised across this process's threads."""
    with _AST_LOCK:
        for attempt in range(_ATTEMPTS):
            try:
                return ast.parse(source)
            except SystemError as error:
                if _SPURIOUS not in str(error) or attempt == _ATTEMPTS - 1:
                    raise
    raise AssertionError("unreachable")
