"""The canonical form of a module's source, so that candidates differing only in comments,
formatting or docstrings count as duplicates and are evaluated once."""

import ast
import hashlib
import threading
from collections import OrderedDict

from evaluator.python_parse import parse_python
from evolve.database.normal_form import normal_forms, strip_docstrings


def canonical_tree(source: str) -> ast.AST | None:
    """The parsed module without its docstrings; None when unparsable."""
    try:
        return strip_docstrings(parse_python(source))
    except (SyntaxError, ValueError, RecursionError):
        return None


def canonical_source(source: str, tree: ast.AST | None = None) -> str:
    """The code as Python sees it; unparsable text (rejected later) with whitespace normalised.
    `tree`: canonical_tree(source), when the caller has it already (it is not changed). Without
    it, the text comes from the forms of its statements where it can (normal_form.py)."""
    if tree is None:
        if (forms := normal_forms(source)) is not None:
            return forms.canonical
        tree = canonical_tree(source)
    if tree is not None:
        try:
            return ast.unparse(tree)
        except (ValueError, RecursionError):
            pass
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


_HASHES: OrderedDict[str, str] = OrderedDict()  # the loop hashes whole sets: their unchanged modules again and again
_HASHES_LOCK = threading.Lock()  # the mutator hashes in the proposal threads: a look-up must not race an eviction
CACHED_HASHES = 4096


def source_hash(source: str, tree: ast.AST | None = None, canonical: str | None = None) -> str:
    """sha256 of the canonical source (remembered for the last CACHED_HASHES sources seen);
    `canonical`: canonical_source(source), when the caller has it already."""
    with _HASHES_LOCK:
        digest = _HASHES.get(source)
        if digest is not None:
            _HASHES.move_to_end(source)
            return digest
    digest = hashlib.sha256((canonical if canonical is not None else canonical_source(source, tree)).encode()).hexdigest()
    with _HASHES_LOCK:
        _HASHES[source] = digest
        while len(_HASHES) > CACHED_HASHES:
            _HASHES.popitem(last=False)
    return digest
