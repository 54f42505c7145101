"""The raw-memory rule: refuses, from the syntax, what raw_memory.py lists and the resolver cannot see.

Library functions and classes (`torch.as_strided`, the storage classes, `np.frombuffer`) are
refused by identity in library.py, under any alias. What is left is judged here, on the text:
methods of objects whose type the check cannot know (`t.as_strided(...)`, `a.resize(...)`, also
through a constant getattr or a match pattern), and the names of the ops with unchecked offsets or
indices on them (`x.embedding_bag`, `x.unsafe_split`), the dunders a class may not define
(`def __array_interface__`), classes built or called without a name (`type(n, b, d)`,
`type(x)(...)`), calls of numpy's array classes, and the `sparse` flag of the embedding layers and
the raw address of a CUDA stream: those callables may be called directly only, with their flag
visibly off, so that no alias or container hides a call.

A filter over the text, not a boundary: the kernel-jailed worker contains what passes it.
"""

import ast
from collections.abc import Iterator

from evaluator.static_check.library import MISSING, resolve_library
from evaluator.static_check.nodes import code, constant_getattr
from evaluator.static_check.raw_memory import (
    DUNDER_FIX,
    RAW_ARRAY_CLASSES,
    RAW_ARRAY_FIX,
    RAW_ARRAY_REASON,
    RAW_MEMORY_DUNDERS,
    RAW_MEMORY_METHODS,
    SPARSE_FIX,
    SPARSE_FLAG_POSITIONS,
    SPARSE_GRADIENT,
    STREAM_CLASSES,
    STREAM_KEYWORDS,
    index_op_name,
    refused_index_op,
    unchecked_index_op,
)
from evaluator.static_check.references import Aliases, direct_uses, import_aliases, resolve, root_name
from evaluator.static_check.violation import Violation

RULE = "raw-memory"
GUARDED_FIX = (
    "call it directly by its name (`nn.Embedding(n, d)`, `torch.cuda.Stream(device)`), with sparse=False or "
    "without the flag, so that the check sees every argument"
)
STREAM_REASON = "takes a raw stream address through keywords other than device and priority"


def check_raw_memory(tree: ast.Module, aliases: Aliases) -> list[Violation]:
    """Every raw-memory construct in the module that library.py's identities do not already refuse."""
    return list(_RawMemoryWalk(tree, aliases).violations())


def _target(dotted: str) -> object:
    return resolve_library(dotted).target


class _RawMemoryWalk:
    def __init__(self, tree: ast.Module, aliases: Aliases):
        self.tree, self.aliases = tree, aliases
        self.nodes = list(ast.walk(tree))
        self.library_roots = _import_only_names(tree, self.nodes)
        self.raw_arrays = {id(_target(name)) for name in RAW_ARRAY_CLASSES}
        self.sparse_slots = {id(_target(name)): slot for name, slot in SPARSE_FLAG_POSITIONS.items()}
        self.streams = {id(_target(name)) for name in STREAM_CLASSES}
        self.embedding_classes = {id(_target("torch.nn.Embedding"))}
        self.inner = {id(n.value) for n in self.nodes if isinstance(n, ast.Attribute)}
        self.direct = direct_uses(tree, self.nodes)

    def violations(self) -> Iterator[Violation]:
        for node in self.nodes:
            if isinstance(node, ast.Attribute):
                yield from self._method(node, node.value, node.attr, f"`{code(node)}`")
                yield from self._embedding_internals(node)
                if isinstance(node.ctx, ast.Store):
                    yield from self._sparse_store(node)
            elif isinstance(node, ast.MatchClass):
                for name in node.kwd_attrs:
                    yield from self._method(node, None, name, f"`case ...({name}=...)`")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in RAW_MEMORY_DUNDERS:
                yield _violation(node, f"`def {node.name}` {RAW_MEMORY_DUNDERS[node.name]}.", DUNDER_FIX)
            elif isinstance(node, ast.Call):
                yield from self._call(node)
            elif isinstance(node, ast.ClassDef):
                for base in node.bases:
                    if any(id(_target(d)) in self.raw_arrays for d in resolve(base, self.aliases)):
                        yield _violation(base, f"`class {node.name}({code(base)})` subclasses numpy's array class, "
                                               f"whose constructor {RAW_ARRAY_REASON}.", RAW_ARRAY_FIX)
            if isinstance(node, (ast.Name, ast.Attribute)) and id(node) not in self.inner:
                yield from self._guarded_value(node)

    def _method(self, node: ast.AST, obj: ast.expr | None, name: str, shown: str) -> Iterator[Violation]:
        """A raw-memory method on an object the check cannot name; a library path is judged by identity."""
        entry = RAW_MEMORY_METHODS.get(name) or unchecked_index_op(name) or self._refused_tensor_method(name)
        if entry is None:
            return
        if obj is not None and root_name(obj) in self.library_roots:
            return  # `torch.Tensor.set_`, `np.resize`: library.py judges the object itself
        if obj is not None and any(resolve_library(d).finding for d in resolve(obj, self.aliases)):
            return  # the object is refused already
        reason, fix = entry
        yield _violation(node, f"{shown} {reason}.", f"{fix} (if `{name}` is your own attribute, rename it)")

    @staticmethod
    def _refused_tensor_method(name: str) -> tuple[str, str] | None:
        """A tensor method with address arguments that no review clears (`t.op(...)` on a tensor the check cannot name)."""
        if _target(f"torch.Tensor.{name}") is MISSING:
            return None
        return refused_index_op(index_op_name("torch.Tensor", name))

    def _call(self, node: ast.Call) -> Iterator[Violation]:
        func = node.func
        if (lookup := constant_getattr(node)) is not None:
            yield from self._method(node, lookup[0], lookup[1], f"`{code(node)}`")
        if (isinstance(func, ast.Name) and func.id == "setattr" and len(node.args) == 3
                and _constant(node.args[1]) == "sparse" and _constant(node.args[2]) is not False):
            yield _violation(node, f"`{code(node)}` {SPARSE_GRADIENT}.", SPARSE_FIX)
        if isinstance(func, ast.Name) and func.id == "type" and (len(node.args) > 1 or node.keywords):
            yield _violation(node, f"`{code(node)}` builds a class from a namespace dict, whose keys the check does "
                                   "not read as attributes (`__array_interface__` hands numpy a raw address).",
                             "write a class statement")
        if isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "type":
            yield _violation(node, f"`{code(node)}` calls the class of an object the check cannot name: for an array "
                                   f"that is numpy.ndarray, which {RAW_ARRAY_REASON}.",
                             "call the constructor you mean by its name (`np.zeros`, `torch.empty`, `MyClass(...)`)")
        targets = [id(_target(d)) for d in resolve(func, self.aliases)]
        if any(t in self.raw_arrays for t in targets):
            yield _violation(node, f"`{code(node)}` {RAW_ARRAY_REASON}.", RAW_ARRAY_FIX)
        slots = [self.sparse_slots[t] for t in targets if t in self.sparse_slots]
        if slots and _sparse_flag_may_be_set(node, min(slots)):
            yield _violation(node, f"`{code(node)}` {SPARSE_GRADIENT}.", SPARSE_FIX)
        elif not slots and not self._known_library_callable(func) and _keyword_not_false(node, "sparse"):
            yield _violation(node, f"`{code(node)}` may be an embedding layer with sparse=..., which "
                                   f"{SPARSE_GRADIENT}.", SPARSE_FIX + " (for your own function, rename the parameter)")
        if any(t in self.streams for t in targets) and _other_keywords(node, STREAM_KEYWORDS):
            yield _violation(node, f"`{code(node)}` {STREAM_REASON}.", GUARDED_FIX)

    def _known_library_callable(self, func: ast.expr) -> bool:
        """A library function or class the check has found (np.meshgrid(sparse=True) is not an embedding)."""
        return any(_target(d) is not MISSING for d in resolve(func, self.aliases))

    def _guarded_value(self, node: ast.expr) -> Iterator[Violation]:
        """An embedding layer, embedding function or stream class anywhere but in a direct call."""
        if id(node) in self.direct or not isinstance(node.ctx, ast.Load):
            return
        targets = {id(_target(d)) for d in resolve(node, self.aliases)}
        if targets & (set(self.sparse_slots) | self.streams):
            yield _violation(node, f"`{code(node)}` is used other than called directly (as a value, a base class), "
                                   "where the check cannot see its sparse or raw-address arguments.", GUARDED_FIX)

    def _embedding_internals(self, node: ast.Attribute) -> Iterator[Violation]:
        """`nn.Embedding.__init__(self, ..., True)` and `.forward`: the layer's parts, used on another object."""
        if node.attr == "from_pretrained":
            return
        if any(id(_target(d)) in self.embedding_classes for d in resolve(node.value, self.aliases)):
            yield _violation(node, f"`{code(node)}` uses the embedding layer's methods on another object, where the "
                                   f"check cannot see its sparse flag, which {SPARSE_GRADIENT}.", GUARDED_FIX)

    def _sparse_store(self, node: ast.Attribute) -> Iterator[Violation]:
        if node.attr != "sparse":
            return
        for parent in self.nodes:
            if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
                if any(node is t or any(node is n for n in ast.walk(t)) for t in targets):
                    if isinstance(parent, ast.AugAssign) or _constant(parent.value) is not False:
                        yield _violation(node, f"`{code(node)} = ...` turns on an embedding layer's sparse flag, which "
                                               f"{SPARSE_GRADIENT}.", SPARSE_FIX + " (for your own attribute, rename it)")
                    return
        yield _violation(node, f"`{code(node)}` is bound where the check cannot see its value; an embedding layer's "
                               f"sparse flag {SPARSE_GRADIENT}.", SPARSE_FIX + " (for your own attribute, rename it)")


def _violation(node: ast.AST, message: str, fix: str) -> Violation:
    return Violation(rule=RULE, line=getattr(node, "lineno", 0), message=message, fix=fix)


def _constant(node: ast.expr | None) -> object:
    return node.value if isinstance(node, ast.Constant) else MISSING


def _keyword_not_false(node: ast.Call, name: str) -> bool:
    return any(k.arg == name and _constant(k.value) is not False for k in node.keywords)


def _sparse_flag_may_be_set(node: ast.Call, slot: int) -> bool:
    """The sparse flag passed by position, through `*args` or `**kwargs`, or as anything but False."""
    starred = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
    return starred or len(node.args) > slot or _keyword_not_false(node, "sparse")


def _other_keywords(node: ast.Call, allowed: frozenset[str]) -> bool:
    return any(k.arg is None or k.arg not in allowed for k in node.keywords)


def _import_only_names(tree: ast.Module, nodes: list[ast.AST]) -> set[str]:
    """Names bound by import statements and nothing else: a chain from them is a library path."""
    bound: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or (
                isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name):
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return {name for name in import_aliases(tree) if "." not in name} - bound
