"""A module's two normal forms, assembled from forms of its top-level statements remembered by their text.

- canonical: docstrings dropped, unparsed (its hash is a component's identity, canonical.py);
- renamed: the canonical tree with each function's parameters and local names renamed in
  order of first appearance (v0, v1, ...), unparsed (the novelty check's exact key, novelty.py).

A proposal changes one place of one module, so all but one or two of its top-level statements
are its parent's. Unparsing is most of what a normal form costs, and `ast.unparse` of a module
is the text of its first statement followed by each later statement's text as it comes after
something (a newline, or two before a definition). Neither depends on the other statements:
the docstring rule looks at the module's first statement only, and renaming works inside each
function. So each later statement's two forms are kept by the statement's text (the lines from
the end of the statement before it to its own end), the first statement's by its text too, and
a module costs one parse plus the unparsing of its new statements. A text that this reasoning
does not cover (carriage returns, `barry_as_FLUFL`, two statements on one line), or that fails
to parse or unparse, gets None here: the callers then take the whole-module path as before.
"""

import ast
import threading
from collections import OrderedDict
from typing import NamedTuple

from evaluator.python_parse import parse_python

CACHED_STATEMENTS = 16_384
_AFTER = "pass"  # unparse(Module([Pass(), s])) is "pass" followed by s as it reads after something


class Forms(NamedTuple):
    canonical: str
    renamed: str


class Renamer(ast.NodeTransformer):
    """Function parameters and names bound inside functions -> v0, v1, ... per function."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, str]] = []

    def _local(self, name: str) -> str:
        scope = self.scopes[-1]
        if name not in scope:
            scope[name] = f"v{len(scope)}"
        return scope[name]

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.scopes.append({})
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg]:
            if arg is not None:
                arg.arg = self._local(arg.arg)
        for child in ast.walk(node):  # names bound in the function are local to it
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store) and child is not node:
                self._local(child.id)
        self.generic_visit(node)
        self.scopes.pop()
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if self.scopes and node.id in self.scopes[-1]:
            node.id = self.scopes[-1][node.id]
        return node


def is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def strip_docstrings(tree: ast.AST) -> ast.AST:
    """Every module, class and function docstring removed (an emptied body becomes `pass`)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and is_docstring(body[0]):
                node.body = body[1:] or [ast.Pass()]
    return tree


class StatementCache:
    """Statement text -> its Forms, the least recently used dropped past `size` (shared by threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.forms: OrderedDict[tuple[bool, str], Forms] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[bool, str]) -> Forms | None:
        with self.lock:
            forms = self.forms.get(key)
            if forms is not None:
                self.forms.move_to_end(key)
            return forms

    def put(self, key: tuple[bool, str], forms: Forms) -> None:
        with self.lock:
            self.forms[key] = forms
            while len(self.forms) > self.size:
                self.forms.popitem(last=False)


STATEMENTS = StatementCache(CACHED_STATEMENTS)


def statement_forms(statement: ast.stmt, first: bool) -> Forms:
    """Both forms of one top-level statement (already without the module docstring), as the
    module's first statement or as one after others; the statement is changed in place."""
    def text(node: ast.stmt) -> str:
        return ast.unparse(ast.Module(body=[node], type_ignores=[])) if first else \
            ast.unparse(ast.Module(body=[ast.Pass(), node], type_ignores=[]))[len(_AFTER):]

    statement = strip_docstrings(statement)
    canonical = text(statement)
    return Forms(canonical, text(Renamer().visit(statement)))


def keyed_statements(source: str, body: list[ast.stmt]) -> list[str] | None:
    """Each statement's text: the lines after the statement before it, to its own last line; None
    where two statements share a line (their texts would overlap)."""
    lines = source.split("\n")
    keys, end = [], 0
    for statement in body:
        first = min([statement.lineno, *(d.lineno for d in getattr(statement, "decorator_list", ()))])
        if first <= end or statement.end_lineno is None:
            return None
        keys.append("\n".join(lines[end:statement.end_lineno]))
        end = statement.end_lineno
    return keys


def normal_forms(source: str, cache: StatementCache = STATEMENTS) -> Forms | None:
    """The module's canonical and renamed texts, exactly as unparsing the whole stripped (and
    renamed) tree gives them; None where the whole-module path must answer (module docstring)."""
    if "\r" in source or "barry_as_FLUFL" in source:
        return None
    try:
        body = parse_python(source).body
    except (SyntaxError, ValueError, RecursionError):
        return None
    keys = keyed_statements(source, body)
    if keys is None:
        return None
    if body and is_docstring(body[0]):  # the module docstring goes; a module of nothing else becomes `pass`
        body, keys = body[1:], keys[1:]
        if not body:
            return Forms("pass", "pass")
    canonical, renamed = [], []
    try:
        for position, (statement, key) in enumerate(zip(body, keys)):
            cache_key = (position == 0, key)
            forms = cache.get(cache_key)
            if forms is None:
                forms = statement_forms(statement, position == 0)
                cache.put(cache_key, forms)
            canonical.append(forms.canonical)
            renamed.append(forms.renamed)
    except (ValueError, RecursionError):
        return None
    return Forms("".join(canonical), "".join(renamed))
