"""Nothing may be carried from one timed run to the next: a runtime check.

The network is built once per evaluation and reset before every run, and the component modules
stay loaded, so a candidate could keep trained weights (or anything else it learned) on the model
object, on a parameter, in a class or module attribute, in a default argument or closure, or on
the harness's own data tensors, and use them in the next run. The static check forbids the
obvious ways; this check catches the rest by construction: after the warm-up the harness takes a
fingerprint of every place such state could live, and after each timed run that fingerprint must
be unchanged.

The fingerprint records identities, tensor version counters (bumped by every in-place write),
values of plain data, and the contents of containers, recursively. Parameters and buffers
themselves are not part of it (they are meant to train; `reset()` restores them), nor is
torch's own bookkeeping on `nn.Module` (the `training` flag, compilation caches), nor the inside
of torch's own objects such as compiled-function wrappers.

Beyond the component set, a run could leave state in the namespaces every worker shares:
`torch.backends.stash = {...}`, an attribute on a torch class, an entry in a module's dict, a
replaced function of numpy or of the harness itself. `NamespaceGuard` fingerprints the dicts of
every module of the watched packages and of every class they define, one level deep (identities,
plain values, tensor version counters, and the members of plain dicts, lists and sets).
On the CPU, torch changes none of these between two runs once warmed up; a change is the
candidate's. What lies deeper inside torch's objects, or in C++ state, is not seen: the static
check and the jail are the layers for that.
"""

import sys
import types
import warnings
from collections.abc import Iterable

import torch
from torch import nn

MAX_DEPTH = 6
MAX_ITEMS = 10_000

# What torch keeps on every nn.Module; hooks are fingerprinted, the rest is torch's business.
MODULE_INTERNALS = frozenset(vars(nn.Module()))
MODULE_HOOKS = frozenset(k for k in MODULE_INTERNALS if "hook" in k)
TORCH_PREFIXES = ("_dynamo", "_torchdynamo", "_compiled_call_impl")


class CarryoverError(RuntimeError):
    """A run left state behind that the next run could read."""


def fingerprint(value: object, depth: int = 0, seen: set[int] | None = None) -> object:
    """A comparable description of `value` that changes whenever its observable state does."""
    seen = set() if seen is None else seen
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if id(value) in seen or depth > MAX_DEPTH:
        return ("seen", id(value))
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        return ("tensor", id(value), value._version, tuple(value.shape), str(value.dtype), str(value.device),
                _attributes(value, depth, seen))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, len(value), tuple(fingerprint(v, depth + 1, seen) for v in value[:MAX_ITEMS]))
    if isinstance(value, dict):
        items = list(value.items())[:MAX_ITEMS]
        return ("dict", len(value), tuple((repr(k), fingerprint(v, depth + 1, seen)) for k, v in items))
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, len(value), tuple(sorted(repr(v) for v in list(value)[:MAX_ITEMS])))
    if isinstance(value, types.FunctionType):
        cells = tuple(_cell_contents(c, depth, seen) for c in value.__closure__ or ())
        return ("function", id(value), fingerprint(value.__defaults__, depth + 1, seen),
                fingerprint(value.__kwdefaults__, depth + 1, seen), cells, _attributes(value, depth, seen))
    if isinstance(value, (types.ModuleType, types.BuiltinFunctionType, type)) or type(value).__module__.startswith("torch"):
        return ("object", id(value))  # torch's own objects (compiled wrappers, generators): opaque
    return ("object", type(value).__name__, id(value), _attributes(value, depth, seen))


def _cell_contents(cell: types.CellType, depth: int, seen: set[int]) -> object:
    try:
        return fingerprint(cell.cell_contents, depth + 1, seen)
    except ValueError:  # an empty cell
        return ("empty-cell",)


def _attributes(value: object, depth: int, seen: set[int]) -> object:
    attributes = getattr(value, "__dict__", None)
    if not isinstance(attributes, dict):
        return None
    return tuple(
        (name, fingerprint(v, depth + 1, seen))
        for name, v in sorted(attributes.items())
        if not name.startswith(TORCH_PREFIXES)
    )


def module_state(module: nn.Module) -> dict[str, object]:
    """Fingerprints of everything on one nn.Module except its parameters' and buffers' values."""
    state: dict[str, object] = {}
    for name, value in vars(module).items():
        if name.startswith(TORCH_PREFIXES):
            continue
        if name in MODULE_HOOKS:
            state[name] = tuple((k, id(h)) for k, h in value.items()) if isinstance(value, dict) else value
        elif name not in MODULE_INTERNALS:
            state[name] = fingerprint(value)
    state["(parameter names)"] = tuple(module._parameters)
    state["(buffer names)"] = tuple(module._buffers)
    state["(submodule names)"] = tuple(module._modules)
    tensors = {**module._parameters, **module._buffers}
    for name, tensor in tensors.items():
        if tensor is not None:
            state[f"(attributes of {name})"] = _attributes(tensor, 0, set())
    state["(class)"] = class_state(type(module))
    return state


def class_state(cls: type) -> object:
    """Attributes of a class defined by a component (torch's own classes are not candidates')."""
    if cls.__module__.startswith(("torch", "builtins")):
        return ("class", id(cls))
    return ("class", id(cls), tuple((k, fingerprint(v)) for k, v in vars(cls).items() if not k.startswith("__")))


def component_state(module: types.ModuleType) -> dict[str, object]:
    state = {}
    for name, value in vars(module).items():
        if name.startswith("__") or isinstance(value, types.ModuleType):
            continue
        state[name] = class_state(value) if isinstance(value, type) else fingerprint(value)
    return state


# Packages whose module and class namespaces a run must leave as it found them.
WATCHED_PACKAGES = frozenset({"torch", "functorch", "numpy", "math", "typing", "builtins", "sys", "evaluator", "components"})
# Entries the interpreter itself changes as it runs (imports, warnings, the last exception).
NOISY_ENTRIES = {"sys": frozenset({"modules", "path_importer_cache", "last_exc", "last_type", "last_value", "last_traceback"})}
# Torch's own counters that a run may legitimately move (dynamo counts nn.Module creations).
NOISY_CLASS_ENTRIES = {"torch._dynamo.mutation_guard.GenerationTracker": frozenset({"generation"})}
NOISY_NAMES = frozenset({"__warningregistry__"})
CONTAINERS = (dict, list, tuple, set, frozenset)


def _watched(module_name: str) -> bool:
    return module_name.split(".", 1)[0] in WATCHED_PACKAGES


TENSOR_TYPES = frozenset({torch.Tensor, nn.Parameter, nn.Buffer})


def _contents(value: object) -> tuple:
    """Identities of a container's members (keys and values), and its tensors' version counters."""
    members = list(dict.values(value)) if type(value) is dict else list(value)
    keys = tuple(map(id, dict.keys(value))) if type(value) is dict else ()
    return keys, tuple(map(id, members)), tuple([m._version for m in members if type(m) in TENSOR_TYPES])


def namespace_digest(namespace: dict, skip: frozenset = frozenset()) -> tuple[tuple, tuple, dict]:
    """Names, identities of the values (a new value is a new object), and for containers and
    tensors their contents and version counters. Cheap: one C-level pass, Python only for containers."""
    names = tuple(k for k in namespace if k not in NOISY_NAMES and k not in skip)
    values = [namespace[k] for k in names]
    deep = {k: (_contents(v) if type(v) in CONTAINERS else v._version) for k, v in zip(names, values)
            if type(v) in CONTAINERS or type(v) in TENSOR_TYPES}
    return names, tuple(map(id, values)), deep


def _digest_changes(label: str, before: tuple, after: tuple) -> list[str]:
    (names0, ids0, deep0), (names1, ids1, deep1) = before, after
    old, new = dict(zip(names0, ids0)), dict(zip(names1, ids1))
    changed = [k for k in old.keys() | new.keys() if old.get(k) != new.get(k) or deep0.get(k) != deep1.get(k)]
    return [f"{label}: {k}" for k in sorted(changed, key=str)]


class NamespaceGuard:
    """Fingerprint of the watched modules' and their classes' namespaces; `changes()` names what differs."""

    def __init__(self):
        self.modules = {name: m for name, m in list(sys.modules.items()) if _watched(name) and isinstance(m, types.ModuleType)}
        classes: dict[int, type] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for module in self.modules.values():
                for value in list(dict.values(object.__getattribute__(module, "__dict__"))):
                    if isinstance(value, type) and _watched(str(type.__dict__["__module__"].__get__(value))):
                        classes[id(value)] = value
        self.classes = list(classes.values())
        self.reference = self._state()

    def _state(self) -> dict[str, tuple]:
        state = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns when some deprecated names are touched
            for name, module in self.modules.items():
                namespace = object.__getattribute__(module, "__dict__")
                state[f"module {name}"] = namespace_digest(namespace, NOISY_ENTRIES.get(name, frozenset()))
            for cls in self.classes:
                qualified = f"{type.__dict__['__module__'].__get__(cls)}.{type.__dict__['__qualname__'].__get__(cls)}"
                namespace = dict(type.__dict__["__dict__"].__get__(cls))
                state[f"class {qualified}"] = namespace_digest(namespace, NOISY_CLASS_ENTRIES.get(qualified, frozenset()))
        return state

    def changes(self) -> list[str]:
        """Entries added, removed, replaced or (for containers and tensors) changed in place."""
        now = self._state()
        return [c for label, before in self.reference.items() if now[label] != before
                for c in _digest_changes(label, before, now[label])]


class CarryoverGuard:
    """Fingerprint after the warm-up; `check()` after each run raises on any difference."""

    def __init__(self, model: nn.Module, components: dict[str, types.ModuleType], data: Iterable[torch.Tensor]):
        self.model, self.components, self.data = model, components, list(data)
        self.reference = self._state()
        self.namespaces = NamespaceGuard()

    def _state(self) -> dict[str, object]:
        state: dict[str, object] = {}
        for path, submodule in self.model.named_modules():
            for key, value in module_state(submodule).items():
                state[f"model{'.' + path if path else ''}: {key}"] = value
        for component, module in self.components.items():
            for key, value in component_state(module).items():
                state[f"{component} component: module-level {key}"] = value
        for i, tensor in enumerate(self.data):
            state[f"harness data tensor {i}"] = (tensor._version, _attributes(tensor, 0, set()))
        return state

    def check(self) -> None:
        now = self._state()
        changed = [k for k in self.reference.keys() | now.keys() if self.reference.get(k, "(absent)") != now.get(k, "(absent)")]
        changed += self.namespaces.changes()
        if changed:
            shown = ", ".join(sorted(changed)[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise CarryoverError(
                f"a run left state behind that the next run could use ({shown}): keep everything a run needs "
                "in local variables, and make reset() restore the network from the seed alone"
            )
