"""One concrete program edit, and the concrete-syntax-tree reading every operator shares.

Operators (this package) never touch text with regular expressions: they read the module
through libcst, which keeps every comment, blank line and parenthesis, find the nodes their
pattern matches, and replace exactly those nodes. An Edit is the finished child source with a
label saying where and what, so that the loop can store it as the candidate's description
(`site: old -> new`, the format `liveness.site_of` reads back) and learn which sites are dead.
"""

from collections.abc import Callable
from functools import cached_property
from typing import Protocol

import libcst as cst
import numpy as np
from libcst.metadata import MetadataWrapper, PositionProvider
from pydantic import BaseModel

MAX_SNIPPET = 80  # characters of old/new code shown in a description


class Edit(BaseModel):
    """A child source one operator made from its parent, and what it changed."""

    operator: str  # the operator's name, e.g. "activation"
    site: str  # where: "activation: ConvGroup.__init__ (line 37)"; stable across a lineage where the code is
    line: int
    old: str  # the replaced code, one line
    new: str
    source: str  # the whole child module

    @property
    def description(self) -> str:
        return f"{self.site}: {self.old} -> {self.new}"


class Operator(Protocol):
    """A family of small program transformations for one or more component kinds."""

    name: str

    def edits(self, tree: "Tree", rng: np.random.Generator) -> list[Edit]:
        """Every edit this operator can make to the module (empty when its pattern is absent).

        Random only where a value is drawn (a perturbed number); one edit per site."""
        ...


def snippet(code: str) -> str:
    """Code on one short line, without the separators a description uses ("; " between changes, ": " before old)."""
    flat = " ".join(code.split()).replace(": ", ":").replace("; ", ";")
    return flat if len(flat) <= MAX_SNIPPET else flat[: MAX_SNIPPET - 3] + "..."


class Tree:
    """A parsed component module: its libcst tree, node positions, and the scope of each node."""

    def __init__(self, component: str, source: str):
        self.component = component
        self.source = source
        self._scopes: dict[int, str] | None = None

    @cached_property
    def wrapper(self) -> MetadataWrapper:  # parsed on first use: the constant operators read the text only
        return MetadataWrapper(cst.parse_module(self.source), unsafe_skip_copy=True)

    @property
    def module(self) -> cst.Module:
        return self.wrapper.module

    @cached_property
    def positions(self):
        return self.wrapper.resolve(PositionProvider)

    def line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def scope(self, node: cst.CSTNode) -> str:
        """The qualified name of the function or class around the node ("module" at top level)."""
        if self._scopes is None:
            self._scopes = _scopes(self.module)
        return self._scopes.get(id(node), "module")

    def find(self, kind: type[cst.CSTNode] | tuple[type[cst.CSTNode], ...], where: Callable[[cst.CSTNode], bool] = lambda _: True) -> list[cst.CSTNode]:
        """Every node of the type that passes `where`, in source order."""
        found: list[cst.CSTNode] = []

        class _Collect(cst.CSTVisitor):
            def on_visit(self, node: cst.CSTNode) -> bool:
                if isinstance(node, kind) and where(node):
                    found.append(node)
                return True

        self.module.visit(_Collect())
        return found

    def replace(self, operator: str, node: cst.CSTNode, new: cst.CSTNode, what: str | None = None,
                module: cst.Module | None = None) -> Edit:
        """The edit that puts `new` in place of `node` (in `module`, when the operator changed more)."""
        child = (module or self.module).deep_replace(node, new)
        assert isinstance(child, cst.Module)
        label = f"{operator}: {what or self.scope(node)} (line {self.line(node)})"
        return Edit(operator=operator, site=label, line=self.line(node), old=snippet(self.code(node)),
                    new=snippet(self.module.code_for_node(new)), source=child.code)


def _scopes(module: cst.Module) -> dict[int, str]:
    scopes: dict[int, str] = {}

    class _Scopes(cst.CSTVisitor):
        def __init__(self) -> None:
            self.stack: list[str] = []

        def on_visit(self, node: cst.CSTNode) -> bool:
            if self.stack:
                scopes[id(node)] = ".".join(self.stack)
            if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                self.stack.append(node.name.value)
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            if isinstance(original_node, (cst.FunctionDef, cst.ClassDef)):
                self.stack.pop()

    module.visit(_Scopes())
    return scopes


# ---------------------------------------------------------------------------------------------
# Small readers of call shapes that several operators use.


def dotted(node: cst.BaseExpression) -> str | None:
    """`nn.GELU` for Attribute(Name(nn), GELU); None for anything but names and attributes."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def last_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def expression(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


def shifted(count: cst.BaseExpression, delta: int) -> cst.BaseExpression:
    """`count` plus `delta`, folding into an existing `X + k` or `X - k` (and back to `X` at zero)."""
    base, offset = count, 0
    if (isinstance(count, cst.BinaryOperation) and isinstance(count.right, cst.Integer)
            and isinstance(count.operator, (cst.Add, cst.Subtract))):
        base = count.left
        offset = int(count.right.value) * (1 if isinstance(count.operator, cst.Add) else -1)
    elif isinstance(count, cst.Integer):
        return cst.Integer(str(max(0, int(count.value) + delta)))
    offset += delta
    if offset == 0:
        return base
    operator = cst.Add() if offset > 0 else cst.Subtract()
    return cst.BinaryOperation(base, operator.with_changes(
        whitespace_before=cst.SimpleWhitespace(" "), whitespace_after=cst.SimpleWhitespace(" ")), cst.Integer(str(abs(offset))))


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((a for a in call.args if a.keyword is not None and a.keyword.value == name), None)
