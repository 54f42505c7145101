"""The seed rule: refuses, from the syntax, what random_state.py lists and the library walk cannot see.

Library names (`torch.manual_seed`, `torch.random.fork_rng`, `np.random.seed`) are refused by
library.py, by the same name rule, under any alias. What is left is judged here, on the text:
the same names on objects whose type the check cannot know (`g.graphsafe_set_state(s)`,
`torch.cuda.default_generators[0].set_state(s)`, also through a constant getattr or a match
pattern), assignments to `state` and `bit_generator`, generator constructors given a seed (or,
for torch.Generator, called at all) or used other than directly, classes derived from generator
classes, and `__init__` run again on an object the check cannot name.

A filter over the text, not a boundary: the kernel-jailed worker contains what passes it.
"""

import ast
from collections.abc import Iterator
from functools import cache

from evaluator.static_check.library import MISSING, _trusted_lookup, resolve_library
from evaluator.static_check.namespaces import ALLOWED_IMPORTS
from evaluator.static_check.nodes import code, constant_string, root
from evaluator.static_check.random_state import (
    DEFAULT_SEEDED,
    FIXED_GENERATOR,
    HIDDEN_CONSTRUCTOR,
    INIT_FIX,
    RNG_CLASSES,
    RNG_STATE_STORES,
    SEED_FIX,
    SEEDED_CONSTRUCTORS,
    SETS_STATE,
    STORES_STATE,
    sets_random_state,
)
from evaluator.static_check.references import Aliases, direct_uses, resolve
from evaluator.static_check.violation import Violation

RULE = "seed"
RENAME = " (if it is your own attribute, rename it)"
STORE_RENAME = " (if it is your own attribute, rename it; an optimizer's state is emptied with `self.state.clear()`)"


def check_random_state(tree: ast.Module, aliases: Aliases) -> list[Violation]:
    """Every construct that fixes, restores or forks random state and library.py does not already refuse."""
    return list(_RandomStateWalk(tree, aliases).violations())


@cache
def _constructors() -> tuple[dict[int, tuple[object, bool]], tuple[type, ...], type | None]:
    """The seeded constructors by identity, the generator classes, and numpy's BitGenerator."""
    constructors = {}
    for name, always in SEEDED_CONSTRUCTORS.items():
        obj = _trusted_lookup(name)
        if obj is not MISSING:
            constructors[id(obj)] = (obj, always)
    classes = tuple(c for c in map(_trusted_lookup, RNG_CLASSES) if isinstance(c, type))
    bit_generator = _trusted_lookup("numpy.random.BitGenerator")
    return constructors, classes, bit_generator if isinstance(bit_generator, type) else None


def constructor_kind(obj: object) -> bool | None:
    """For a seeded constructor: True when every call is refused, False when only a call with arguments; else None."""
    constructors, _, bit_generator = _constructors()
    entry = constructors.get(id(obj))
    if entry is not None and entry[0] is obj:
        return entry[1]
    if bit_generator is not None and isinstance(obj, type) and issubclass(obj, bit_generator):
        return False  # numpy's bit generators take a seed: PCG64, MT19937, Philox, SFC64 and any newer one
    return None


def is_generator_class(obj: object) -> bool:
    _, classes, _ = _constructors()
    return isinstance(obj, type) and issubclass(obj, classes)


class _RandomStateWalk:
    def __init__(self, tree: ast.Module, aliases: Aliases):
        self.aliases = aliases
        self.nodes = list(ast.walk(tree))
        self.direct = direct_uses(tree, self.nodes)
        # Match patterns test the class; class bases are judged by the derivation rule.
        self.direct |= {id(n.cls) for n in self.nodes if isinstance(n, ast.MatchClass)}
        self.direct |= {id(b) for n in self.nodes if isinstance(n, ast.ClassDef) for b in n.bases}
        self.classes = {n.name for n in self.nodes if isinstance(n, ast.ClassDef)}

    def _targets(self, node: ast.expr | None) -> list[object]:
        if node is None:
            return []
        return [t for t in (resolve_library(d).target for d in resolve(node, self.aliases)) if t is not MISSING]

    def _refused_by_library(self, dotted: set[str]) -> bool:
        """library.py refuses the name already (the visitor reports it once, on the whole reference)."""
        return any(resolve_library(d).finding is not None for d in dotted)

    def violations(self) -> Iterator[Violation]:
        for node in self.nodes:
            if isinstance(node, ast.Attribute):
                store = isinstance(node.ctx, (ast.Store, ast.Del))
                yield from self._attribute(node, node.value, node.attr, store, resolve(node, self.aliases),
                                           f"`{code(node)}`")
            elif isinstance(node, ast.Call):
                yield from self._call(node)
            elif isinstance(node, ast.MatchClass):
                for name in node.kwd_attrs:
                    yield from self._attribute(node, None, name, False, set(), f"`case ...({name}=...)`")
            elif isinstance(node, ast.ClassDef):
                for base in node.bases:
                    if any(is_generator_class(t) for t in self._targets(base)):
                        yield _violation(base, f"`class {node.name}({code(base)})` derives from a generator class, "
                                               "whose constructor and methods set, restore or fork random state.", SEED_FIX)
            if self._hidden_constructor(node):
                yield _violation(node, f"`{code(node)}` {HIDDEN_CONSTRUCTOR}.",
                                 "call the constructor directly by its name, without a seed")

    def _hidden_constructor(self, node: ast.AST) -> bool:
        """A generator constructor used other than called, bound to a name, annotated or type-tested."""
        if not isinstance(node, (ast.Name, ast.Attribute)) or not isinstance(node.ctx, ast.Load):
            return False
        if id(node) in self.direct or self._refused_by_library(resolve(node, self.aliases)):
            return False
        return any(constructor_kind(t) is not None for t in self._targets(node))

    def _attribute(self, node: ast.AST, obj: ast.expr | None, name: str, store: bool, dotted: set[str],
                   shown: str) -> Iterator[Violation]:
        """One attribute, read or written, on any object: judged by its name."""
        if name == "__init__" and not store:
            yield from self._init(node, obj, shown)
        elif store and name in RNG_STATE_STORES:
            if obj is None or not any(root(d) in ALLOWED_IMPORTS for d in resolve(obj, self.aliases)):
                yield _violation(node, f"{shown} {STORES_STATE}.", SEED_FIX + STORE_RENAME)  # a library's: monkeypatch
        elif sets_random_state(name) and not self._refused_by_library(dotted):
            yield _violation(node, f"{shown} {SETS_STATE}.", SEED_FIX + RENAME)

    def _init(self, node: ast.AST, obj: ast.expr | None, shown: str) -> Iterator[Violation]:
        """`x.__init__(...)` runs a constructor again on an existing object: only super(), self, cls, a named class."""
        if isinstance(obj, ast.Call) and isinstance(obj.func, ast.Name) and obj.func.id == "super":
            return
        if isinstance(obj, ast.Name) and (obj.id in ("self", "cls") or (obj.id in self.classes
                                                                         and obj.id not in self.aliases)):
            return
        targets = self._targets(obj)
        if targets and any(constructor_kind(t) is not None for t in targets):
            return  # reported as a hidden constructor
        if targets and all(isinstance(t, type) and not is_generator_class(t) for t in targets):
            return  # `nn.Module.__init__(self)`
        what = ("a generator's constructor again on an existing object, which re-seeds it"
                if any(is_generator_class(t) for t in targets) else "a constructor again on an object the check cannot name")
        yield _violation(node, f"{shown} runs {what}.", INIT_FIX)

    def _call(self, node: ast.Call) -> Iterator[Violation]:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "delattr") and len(node.args) >= 2:
            name = constant_string(node.args[1])
            if name is not None:  # a computed name is refused by the visitor
                obj = node.args[0]
                dotted = {f"{d}.{name}" for d in resolve(obj, self.aliases)}
                yield from self._attribute(node, obj, name, func.id != "getattr", dotted, f"`{code(node)}`")
        if self._refused_by_library(resolve(func, self.aliases)):
            return  # `np.random.SeedSequence(5)`: refused by name already
        kinds = [constructor_kind(t) for t in self._targets(func)]
        if True in kinds:
            yield _violation(node, f"`{code(node)}` {DEFAULT_SEEDED}.", SEED_FIX)
        elif False in kinds and (node.args or node.keywords):
            yield _violation(node, f"`{code(node)}` {FIXED_GENERATOR}.", SEED_FIX)
        elif any(k.arg is not None and "seed" in k.arg.lower() for k in node.keywords):
            yield _violation(node, f"`{code(node)}` passes a seed.",
                             SEED_FIX + " (for your own function, rename the parameter)")


def _violation(node: ast.AST, message: str, fix: str) -> Violation:
    return Violation(rule=RULE, line=getattr(node, "lineno", 0), message=message, fix=fix)
