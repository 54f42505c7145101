"""What a dotted library name really is, looked up in the installed torch, numpy, math and typing.

The reference resolver (references.py) says which dotted names an expression may stand for;
this module walks each name one attribute at a time through the real objects and judges every
step: a module must be on the allowlist by its real name (`torch.serialization.os` is `os`,
`torch.sys` is `sys`), a private name is refused, and the object reached is compared by identity
with the refused ones (so `torch.nn.functional.torch.load` is `torch.load`). The candidate's text
is never run: the walk reads the trusted libraries' namespaces with static lookups
(`inspect.getattr_static`, `vars`), which run no property or module `__getattr__`; a submodule not
yet imported is imported only when it is on the allowlist.
"""

import importlib
import importlib.util
import inspect
import sys
import types
from dataclasses import dataclass
from functools import cache, lru_cache

from evaluator.static_check.namespaces import (
    ALLOWED_IMPORTS,
    ALLOWED_MODULES,
    ALLOWED_PRIVATE_PREFIXES,
    DENIED_INSTANCES_OF,
    DENIED_OBJECTS,
    MODULE_REASONS,
    NAMESPACE_FIX,
    PER_OBJECT_SETTERS,
    RESET_SETTERS,
    STATE_FIX,
    STATE_SETTER_PREFIXES,
    TYPING_NAMES,
)
from evaluator.static_check.nodes import is_dunder, under
from evaluator.static_check.random_state import SEED_FIX, SEED_FUNCTIONS, SETS_STATE, sets_random_state
from evaluator.static_check.raw_memory import (
    INDEX_OWNERS,
    METHOD_OWNERS,
    PRIVATE_TORCH,
    PRIVATE_TORCH_FIX,
    RAW_MEMORY_METHODS,
    RAW_MEMORY_OBJECTS,
    index_op_name,
    refused_index_op,
    unchecked_index_op,
)
from evaluator.static_check.rules import FORBIDDEN_METHODS

MISSING = object()  # the walk could not tell what the name is


@dataclass(frozen=True)
class Finding:
    """Why a reference is refused: the rule, a phrase that follows the reference, and the fix."""

    rule: str
    reason: str
    fix: str


@dataclass(frozen=True)
class Resolution:
    """A dotted name as far as the walk got: the object reached, its real name, and any finding."""

    finding: Finding | None
    target: object  # the object the whole name reaches, MISSING when the walk stopped early
    canonical: str  # the last module's real name and the attributes after it


@dataclass(frozen=True)
class _Unimported:
    """A submodule that exists on disk but is not imported yet (and is not on the allowlist)."""

    name: str


@lru_cache(maxsize=8192)
def resolve_library(dotted: str) -> Resolution:
    """Walk `dotted` through the installed libraries and judge each step."""
    parts = dotted.split(".")
    if parts[0] not in ALLOWED_IMPORTS:
        return Resolution(None, MISSING, dotted)
    obj: object = importlib.import_module(parts[0])
    module_name, after = parts[0], []
    for index, name in enumerate(parts[1:], start=1):
        if is_dunder(name):
            return Resolution(None, MISSING, dotted)  # the dunder rule reports it
        owner = ".".join([module_name, *after])
        if name.startswith("_") and not f"{owner}.{name}".startswith(ALLOWED_PRIVATE_PREFIXES):
            if (unchecked := unchecked_index_op(name)) is not None:  # `torch._embedding_bag`, `torch._unsafe_index`
                return _refused(dotted, "raw-memory", f"reaches `{name}`, a private name of `{owner}` that {unchecked[0]}",
                                unchecked[1])
            if under(module_name, "torch"):  # `torch._C`, `torch._nested_tensor_from_mask`, `torch.Tensor._values`
                return _refused(dotted, "namespace", f"reaches `{name}`, a private name of `{owner}`: {PRIVATE_TORCH}",
                                PRIVATE_TORCH_FIX)
            return _refused(dotted, "namespace", f"reaches `{name}`, a private name of `{owner}`", NAMESPACE_FIX)
        if module_name == "typing" and not after and name not in TYPING_NAMES:
            return _refused(dotted, "namespace", "is not one of the typing constructs a component may use", NAMESPACE_FIX)
        if name in FORBIDDEN_METHODS:
            reason, fix = FORBIDDEN_METHODS[name]
            return _refused(dotted, "forbidden-call", reason, fix)
        found = _lookup(obj, name)
        if found is MISSING:
            # A name the library does not define fails with AttributeError when it runs. The
            # modules torch and numpy make up on demand (their `__getattr__`) are submodules on
            # disk, which _lookup finds and the allowlist judges.
            return Resolution(None, MISSING, ".".join([module_name, *after, *parts[index:]]))
        if isinstance(found, (types.ModuleType, _Unimported)):
            real = found.name if isinstance(found, _Unimported) else found.__name__
            if real not in ALLOWED_MODULES:
                reason, fix = _module_reason(real)
                path = ".".join(parts[: index + 1])
                if path != real:
                    reason = f"is the module `{real}`, which {reason}"
                if path != dotted:
                    reason = f"reaches `{path}`, which {reason}" if path == real else f"reaches `{path}`: it {reason}"
                return _refused(dotted, "namespace", reason, fix)
            found = importlib.import_module(real) if isinstance(found, _Unimported) else found
            module_name, after = real, []
        else:
            after.append(name)
        canonical = ".".join([module_name, *after])
        finding = _judge_object(found, canonical, name)
        if finding is not None:
            return Resolution(finding, found, canonical)
        obj = found
    return Resolution(None, obj, ".".join([module_name, *after]))


def is_module(resolution: Resolution) -> bool:
    return isinstance(resolution.target, types.ModuleType)


def _refused(dotted: str, rule: str, reason: str, fix: str) -> Resolution:
    return Resolution(Finding(rule, reason, fix), MISSING, dotted)


def _module_reason(real: str) -> tuple[str, str]:
    for prefix in sorted(MODULE_REASONS, key=len, reverse=True):
        if under(real, prefix):
            reason, fix = MODULE_REASONS[prefix]
            return reason, fix
    return "lies outside the namespaces a component may use", NAMESPACE_FIX


def _lookup(obj: object, name: str) -> object:
    """obj.name without running any library code: namespaces, submodules on disk, static lookup."""
    if isinstance(obj, types.ModuleType):
        namespace = vars(obj)
        if name in namespace:
            return namespace[name]
        full = f"{obj.__name__}.{name}"
        if full in sys.modules:
            return sys.modules[full]
        if "__path__" in namespace:
            try:
                if importlib.util.find_spec(full) is not None:
                    return _Unimported(full)
            except (ImportError, ValueError):
                pass
    try:
        found = inspect.getattr_static(obj, name, MISSING)
    except Exception:  # noqa: BLE001 - a library object whose static lookup itself fails: unknown
        return MISSING
    if isinstance(found, (staticmethod, classmethod)):
        return found.__func__
    return found


def _judge_object(obj: object, canonical: str, name: str) -> Finding | None:
    """A refused object (by identity), random state (by name, random_state.py), or a switch of process-wide state."""
    denied = _denied_objects().get(id(obj))
    if denied is not None and denied[0] is obj:
        return denied[1]
    for cls, finding in _denied_classes():
        if isinstance(obj, cls):
            return finding
    defined_in = _defining_module(obj)
    for prefix, (reason, fix) in MODULE_REASONS.items():
        if defined_in is not None and under(defined_in, prefix):
            return Finding("forbidden-call", f"comes from `{defined_in}`, which {reason}", fix)
    if (unchecked := unchecked_index_op(name)) is not None:  # a newer op of the kind, not yet in the table
        return Finding("raw-memory", unchecked[0], unchecked[1])
    if canonical in SEED_FUNCTIONS or sets_random_state(name):
        return Finding("seed", SETS_STATE, SEED_FIX)
    if (name.startswith(STATE_SETTER_PREFIXES) and callable(obj) and not isinstance(obj, type)
            and id(obj) not in _allowed_setters()):
        return Finding("global-state", "changes process-wide state that outlives the run", STATE_FIX)
    return None


def _defining_module(obj: object) -> str | None:
    """The module a library function or class says it comes from (a second net under the identities)."""
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type)):
        module = vars(obj).get("__module__") if isinstance(obj, type) else getattr(obj, "__module__", None)
        return module if isinstance(module, str) else None
    return None


@cache
def _denied_objects() -> dict[int, tuple[object, Finding]]:
    """The refused objects of namespaces.py and raw_memory.py and the seed functions, keyed by identity."""
    table: dict[int, tuple[object, Finding]] = {}
    entries = [(name, Finding("forbidden-call", reason, fix)) for name, (reason, fix) in DENIED_OBJECTS.items()]
    entries += [(name, Finding("seed", SETS_STATE, SEED_FIX)) for name in SEED_FUNCTIONS]
    entries += [(name, Finding("raw-memory", reason, fix)) for name, (reason, fix) in raw_memory_objects().items()]
    for name, finding in entries:
        obj = _trusted_lookup(name)
        if obj is not MISSING:
            table[id(obj)] = (obj, finding)
    return table


@cache
def _denied_classes() -> tuple[tuple[type, Finding], ...]:
    found = ((_trusted_lookup(name), Finding("forbidden-call", reason, fix))
             for name, (reason, fix) in DENIED_INSTANCES_OF.items())
    return tuple((cls, finding) for cls, finding in found if isinstance(cls, type))


@cache
def raw_memory_objects() -> dict[str, tuple[str, str]]:
    """raw_memory.py's refused objects, with its methods on the classes that have them (`torch.Tensor.set_`),
    and the public ops with address arguments that torch's schemas list and no review clears."""
    methods = {f"{owner}.{name}": entry for owner in METHOD_OWNERS for name, entry in RAW_MEMORY_METHODS.items()
               if _trusted_lookup(f"{owner}.{name}") is not MISSING}
    index_ops = {}
    for owner in INDEX_OWNERS:
        namespace = _trusted_lookup(owner)
        names = dir(namespace) if isinstance(namespace, type) else list(vars(namespace))
        for name in names:
            if not name.startswith("_") and (entry := refused_index_op(index_op_name(owner, name))) is not None:
                index_ops[f"{owner}.{name}"] = entry
    return {**index_ops, **RAW_MEMORY_OBJECTS, **methods}


@cache
def _allowed_setters() -> frozenset[int]:
    names = RESET_SETTERS | PER_OBJECT_SETTERS
    return frozenset(id(obj) for obj in map(_trusted_lookup, names) if obj is not MISSING)


def _trusted_lookup(dotted: str) -> object:
    """One of our own names in the libraries, looked up the way the walk does (same objects)."""
    parts = dotted.split(".")
    obj: object = importlib.import_module(parts[0])
    for name in parts[1:]:
        obj = _lookup(obj, name)
        if isinstance(obj, _Unimported):
            obj = importlib.import_module(obj.name)
        if obj is MISSING:
            return MISSING
    return obj
