"""Where the built-in mutator (mutator.py) may change a component: its sites, found through the AST.

Split from the mutator because finding the sites is a reading of the source that others need
without mutating anything: the liveness check (liveness.py) names dead sites by these labels and
`evolve eval` warns about changes to them. Which places count as sites, and why, is in
mutator.py's docstring.
"""

import ast
from typing import Any

from pydantic import BaseModel

from components.interface import COMPONENT_NAMES
from evaluator.python_parse import parse_python

ALTERNATIVES_NAME = "ALTERNATIVES"
HYPERPARAMS_NAME = "HYPERPARAMS"
# Keyword arguments whose value fixes a shape or picks an axis: changing them breaks, not tunes.
STRUCTURAL_KEYWORDS = frozenset({
    "dim", "dims", "axis", "axes", "index", "groups", "start_dim", "end_dim", "in_channels", "out_channels",
    "in_features", "out_features", "num_features", "num_classes", "num_channels", "channels", "diagonal", "ndim",
})
# The harness's HYPERPARAMS keys: (kind, granularity or None, lower bound, upper bound exclusive or None).
HARNESS_RULES: dict[str, dict[str, Any]] = {
    "batch_size": {"granularity": 8},
    "epochs": {},
    "label_smoothing": {"below_one": True},
}


class MutatorError(ValueError):
    """The component offers nothing to mutate, or lists ALTERNATIVES the mutator cannot read."""


class Site(BaseModel):
    """One place the mutator may change: a number, or a setting with listed alternatives."""

    name: str  # e.g. HYPERPARAMS["muon_lr"], orthogonalize(eps=), nn.Conv2d(kernel_size=) (line 24)
    kind: str  # "number" or "choice"
    line: int
    start: int  # character offsets of the value in the source text
    end: int
    value: Any
    options: list[Any] = []  # for choices
    rule: dict[str, Any] = {}  # harness constraints, for the harness's HYPERPARAMS keys


# ---------------------------------------------------------------------------------------------
# Finding the sites.


def mutation_sites(component: str, source: str) -> list[Site]:
    """Every site of the source, in source order."""
    if component not in COMPONENT_NAMES:
        raise MutatorError(f"unknown component {component!r}: choose one of {', '.join(COMPONENT_NAMES)}")
    try:
        tree = parse_python(source)
    except SyntaxError as e:
        raise MutatorError(f"line {e.lineno}: {e.msg}: the mutator needs valid Python") from e
    offsets = _Offsets(source)
    assignments = _module_assignments(tree)
    alternatives = _alternatives(tree, assignments, component)
    hyperparams = assignments.get(HYPERPARAMS_NAME) if component == "hyperparams" else None
    sites: list[Site] = []

    for name, value in assignments.items():
        if name == ALTERNATIVES_NAME:
            continue
        if name in alternatives:
            sites.append(_choice_site(name, value, alternatives[name], offsets))
            continue
        for label, node in _literal_numbers(value, name):
            key = label.removeprefix(f'{HYPERPARAMS_NAME}["').removesuffix('"]') if value is hyperparams else None
            if key is not None and key in alternatives:
                continue
            rule = HARNESS_RULES.get(key, {}) if key is not None else {}
            sites += _number_site(label, node, offsets, rule)
    if hyperparams is not None and isinstance(hyperparams, ast.Dict):
        for key_node, item in zip(hyperparams.keys, hyperparams.values):
            if isinstance(key_node, ast.Constant) and key_node.value in alternatives:
                name = f'{HYPERPARAMS_NAME}["{key_node.value}"]'
                sites.append(_choice_site(name, item, alternatives[key_node.value], offsets))

    finder = _CodeSites(offsets)
    finder.visit(tree)
    sites += finder.sites
    return sorted(sites, key=lambda s: s.start)


class _CodeSites(ast.NodeVisitor):
    """Parameter defaults, keyword arguments and float literals in code, labelled by function."""

    def __init__(self, offsets: "_Offsets"):
        self.offsets = offsets
        self.scope: list[str] = []
        self.sites: list[Site] = []
        self.seen: set[int] = set()

    def _add(self, label: str, node: ast.expr) -> None:
        self.seen.add(id(node))
        if isinstance(node, ast.UnaryOp):
            self.seen.add(id(node.operand))
        self.sites += _number_site(label, node, self.offsets, {})

    def _where(self) -> str:
        return ".".join(self.scope)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        qualified = ".".join([*self.scope, node.name])
        for arg, default in pairs:
            if _number(default) is not None:
                self._add(f"{qualified}({arg.arg}=)", default)
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg and keyword.arg not in STRUCTURAL_KEYWORDS and _number(keyword.value) is not None:
                where = f"{self._where()}: " if self.scope else ""
                self._add(f"{where}{_callee(node.func)}({keyword.arg}=) (line {keyword.value.lineno})", keyword.value)
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Pow):  # `x ** 0.5` is a square root, not a coefficient
            self.seen.add(id(node.right))
            if isinstance(node.right, ast.UnaryOp):
                self.seen.add(id(node.right.operand))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        # Floats in code are coefficients (never indices or sizes); ints there may be either.
        if self.scope and type(node.value) is float and id(node) not in self.seen:
            self._add(f"{self._where()} (line {node.lineno}, column {node.col_offset})", node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        operand = node.operand
        if (self.scope and isinstance(node.op, ast.USub) and isinstance(operand, ast.Constant)
                and type(operand.value) is float and id(node) not in self.seen):
            self._add(f"{self._where()} (line {node.lineno}, column {node.col_offset})", node)
            return
        self.generic_visit(node)


def _module_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level `NAME = value` (the last one wins, as when the module runs)."""
    assignments: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            assignments[stmt.targets[0].id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            assignments[stmt.target.id] = stmt.value
    return assignments


def _alternatives(tree: ast.Module, assignments: dict[str, ast.expr], component: str) -> dict[str, list[Any]]:
    node = assignments.get(ALTERNATIVES_NAME)
    if node is None:
        return {}
    where = f"line {node.lineno}: {ALTERNATIVES_NAME}"
    fix = f'write {ALTERNATIVES_NAME} = {{"NAME": [option1, option2]}} with literal options (see components/README.md)'
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise MutatorError(f"{where} is not a literal dict; {fix}") from None
    if not isinstance(value, dict):
        raise MutatorError(f"{where} is not a dict; {fix}")
    hyperparam_keys = set()
    hyperparams = assignments.get(HYPERPARAMS_NAME)
    if component == "hyperparams" and isinstance(hyperparams, ast.Dict):
        hyperparam_keys = {k.value for k in hyperparams.keys if isinstance(k, ast.Constant)}
    for name, options in value.items():
        if not isinstance(options, (list, tuple)) or len(options) < 2:
            raise MutatorError(f"{where}[{name!r}] must list at least two options; {fix}")
        if name not in assignments and name not in hyperparam_keys:
            raise MutatorError(
                f"{where}[{name!r}] names no module-level assignment"
                + (" and no HYPERPARAMS key" if component == "hyperparams" else "")
                + f"; {fix}"
            )
        if name in assignments and not _is_literal(assignments[name]):
            raise MutatorError(f"{where}[{name!r}]: `{name}` is not assigned a literal, so it cannot be switched")
    return {name: list(options) for name, options in value.items()}


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except ValueError:
        return False


def _number(node: ast.expr) -> int | float | None:
    """The value of an int or float literal (bools excluded), possibly signed; else None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sign * node.value
    return None


def _literal_numbers(node: ast.expr, label: str) -> list[tuple[str, ast.expr]]:
    """(label, node) of each number inside a literal: the value itself, tuple/list items, dict values."""
    if _number(node) is not None:
        return [(label, node)]
    found = []
    if isinstance(node, (ast.Tuple, ast.List)):
        for index, item in enumerate(node.elts):
            found += _literal_numbers(item, f"{label}[{index}]")
    elif isinstance(node, ast.Dict):
        for key, item in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, (str, int)):
                found += _literal_numbers(item, f"{label}[{key.value!r}]".replace("'", '"'))
    return found


def _callee(func: ast.expr) -> str:
    try:
        return ast.unparse(func)
    except Exception:  # noqa: BLE001 - a label only
        return "call"


class _Offsets:
    """Character offsets from ast positions (whose columns count UTF-8 bytes)."""

    def __init__(self, source: str):
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def at(self, line: int, column_bytes: int) -> int:
        text = self.lines[line - 1]
        return self.starts[line - 1] + len(text.encode()[:column_bytes].decode())

    def span(self, node: ast.expr) -> tuple[int, int]:
        return self.at(node.lineno, node.col_offset), self.at(node.end_lineno, node.end_col_offset)


def _number_site(label: str, node: ast.expr, offsets: _Offsets, rule: dict[str, Any]) -> list[Site]:
    value = _number(node)
    if isinstance(value, int) and value <= 1:
        return []  # flags, identities, indices
    if isinstance(value, float) and value == 0.0:
        return []
    start, end = offsets.span(node)
    return [Site(name=label, kind="number", line=node.lineno, start=start, end=end, value=value, rule=rule)]


def _choice_site(label: str, node: ast.expr, options: list[Any], offsets: _Offsets) -> Site:
    start, end = offsets.span(node)
    return Site(name=label, kind="choice", line=node.lineno, start=start, end=end,
                value=ast.literal_eval(node), options=options)
