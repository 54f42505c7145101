"""Static check of a candidate component's source text, before the evaluator executes any of it.

A candidate component is Python written by an untrusted model, and the harness runs it in its own
process. Whatever the text can reach (files such as the test labels, other processes, the clock,
the random seed, the torch functions the harness itself calls) could turn into a fake speedup or
a fake accuracy. This module reads the text with the standard library's `ast` only, never running
it, and lists every place where it leaves the contract of components/README.md. Each Violation
names the rule, the line and the fix, so that it can go back to the model as feedback.

The check is the first line of defence, not a sandbox: a program that tries hard can hide a
reference from any static analysis (through containers or computed strings, say). The runtime
guard (evaluator/sandbox/guard.py) and the harness's resets stand behind it. What the check guarantees is
that the ordinary ways of leaving the contract, the ones a model writes without hiding them, are
refused with a reason before any time is spent on a GPU.

Rules, by the `rule` id a Violation carries:

- syntax: the text must parse.
- interface: the names of components.interface.REQUIRED_NAMES, with their parameters in order;
  HYPERPARAMS a dict literal of string keys and number or bool values.
- import: only torch, numpy, math and typing, absolute, explicit, and no torch submodule that
  starts processes, loads data or files, or changes the compiler's global state.
- forbidden-name: builtins and module names that reach files, code execution or the interpreter.
- dunder-access: attributes that reach frames, globals, code objects or class internals.
- forbidden-call: references to file, process, sleep and private torch APIs, called or not.
- monkeypatch: assigning to (or deleting) an attribute of torch, numpy or math, which the harness
  shares; torch.backends flags are allowed because the harness resets them before every run.
- seed: setting a random seed; the harness seeds every run.
- global-state: `global`/`nonlocal`, changing a module-level list, dict or set from a function,
  and code other than definitions and constant assignments that runs when the module loads:
  the harness loads a module once per evaluation, so module state would carry between runs.
"""

import ast
from collections.abc import Iterable, Iterator

from pydantic import BaseModel

from components.interface import ALLOWED_IMPORTS, COMPONENT_NAMES, REQUIRED_NAMES


class Violation(BaseModel):
    """One place where a component's source leaves the contract, with how to fix it."""

    rule: str
    line: int
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "module"
        return f"{where}: [{self.rule}] {self.message} Fix: {self.fix}"


# ---------------------------------------------------------------------------------------------
# The rules as data.

FILES_FIX = (
    "remove it: a component never reads or writes files; the harness passes the data, "
    "and weights are trained inside the timed run"
)
PROCESS_FIX = (
    "remove it: a component runs in the harness's process and thread; vectorize the work on the device instead"
)
DATA_FIX = (
    "remove it: the harness owns the data; batch the tensors yourself (BatchStream in the augmentation component)"
)
INTERNALS_FIX = (
    "remove it: use torch's public tensor, nn and optim API (torch.compile as a call or decorator is allowed)"
)
SLEEP_FIX = "remove it: waiting only adds time; the harness does all the timing from outside"
NATIVE_FIX = "remove it: a component may not load or compile native code; write it with torch operations"

# Torch submodules a component may not import (nor reach as an attribute): they start processes,
# load data or files, or change state the compiler shares with the harness.
FORBIDDEN_SUBMODULES: dict[str, tuple[str, str]] = {
    "torch.multiprocessing": ("starts processes", PROCESS_FIX),
    "torch.distributed": ("starts processes and opens sockets", PROCESS_FIX),
    "torch.utils.data": ("is a data pipeline", DATA_FIX),
    "torch.hub": ("downloads and loads files", FILES_FIX),
    "torch.utils.cpp_extension": ("compiles and loads native code", NATIVE_FIX),
    "torch.profiler": ("traces and writes files outside the harness", INTERNALS_FIX),
    "torch._dynamo": ("changes the compiler's global state", INTERNALS_FIX),
}

# Dotted names (after resolving import aliases) that may not be referenced, called or not: the
# name itself and everything under it.
FORBIDDEN_REFERENCES: dict[str, tuple[str, str]] = {
    **FORBIDDEN_SUBMODULES,
    "torch.load": ("reads a file", FILES_FIX),
    "torch.save": ("writes a file", FILES_FIX),
    "torch.from_file": ("reads a file", FILES_FIX),
    "torch._C": ("reaches torch's private native bindings", INTERNALS_FIX),
    "torch._inductor.config": ("changes the compiler's global configuration", INTERNALS_FIX),
    "torch.cuda._sleep": ("makes the GPU wait", SLEEP_FIX),
    "torch.ops.load_library": ("loads native code", NATIVE_FIX),
    "torch.classes.load_library": ("loads native code", NATIVE_FIX),
    "torchvision": ("is a dataset and model library outside the contract", DATA_FIX),
    "numpy.load": ("reads a file", FILES_FIX),
    "numpy.save": ("writes a file", FILES_FIX),
    "numpy.savez": ("writes a file", FILES_FIX),
    "numpy.savez_compressed": ("writes a file", FILES_FIX),
    "numpy.fromfile": ("reads a file", FILES_FIX),
    "numpy.fromregex": ("reads a file", FILES_FIX),
    "numpy.loadtxt": ("reads a file", FILES_FIX),
    "numpy.savetxt": ("writes a file", FILES_FIX),
    "numpy.genfromtxt": ("reads a file", FILES_FIX),
    "numpy.memmap": ("maps a file", FILES_FIX),
    "numpy.DataSource": ("opens files and URLs", FILES_FIX),
    "numpy.lib.npyio": ("reads and writes files", FILES_FIX),
    "numpy.lib.format": ("reads and writes files", FILES_FIX),
    "numpy.ctypeslib": ("loads native code", NATIVE_FIX),
}

# Methods that touch files whatever object they are called on (tensor storages, arrays).
FORBIDDEN_METHODS: dict[str, tuple[str, str]] = {
    "from_file": ("reads a file", FILES_FIX),
    "tofile": ("writes a file", FILES_FIX),
    "load_library": ("loads native code", NATIVE_FIX),
}

# Setting a seed fixes the "random" choices a run makes: a lucky seed would be an exploit.
SEED_FUNCTIONS = frozenset({
    "torch.seed", "torch.cuda.seed", "torch.cuda.seed_all", "torch.random.seed",
    "numpy.random.seed", "numpy.random.set_state",
})
SEED_METHODS = frozenset({"manual_seed", "manual_seed_all", "set_rng_state", "set_rng_state_all"})
# Generators that take a seed as their first argument; without arguments they draw fresh entropy.
SEEDED_CONSTRUCTORS = frozenset({
    "numpy.random.default_rng", "numpy.random.RandomState", "numpy.random.SeedSequence",
    "numpy.random.PCG64", "numpy.random.PCG64DXSM", "numpy.random.MT19937", "numpy.random.Philox",
    "numpy.random.SFC64",
})
SEED_FIX = (
    "remove it: the harness seeds torch before every run; draw randomness from the global generators "
    "(torch.rand, torch.randint, torch.randperm) without fixing a seed"
)

# Builtins that reach files, run unseen code or read namespaces.
FORBIDDEN_BUILTINS: dict[str, str] = {
    "open": "opens files",
    "exec": "runs code the check cannot see",
    "eval": "runs code the check cannot see",
    "compile": "builds code the check cannot see",
    "__import__": "imports modules past the import rule",
    "__builtins__": "reaches every builtin, the forbidden ones included",
    "globals": "reads and writes module namespaces",
    "locals": "reads frame namespaces",
    "vars": "reads and writes object and module namespaces",
    "breakpoint": "stops the process in a debugger",
    "input": "waits for a terminal",
    "help": "waits for a terminal",
    "exit": "ends the process",
    "quit": "ends the process",
}
# Modules that cannot be imported, but whose name might reach the module by another way.
FORBIDDEN_MODULE_NAMES = frozenset({
    "sys", "os", "gc", "inspect", "subprocess", "socket", "threading", "time", "builtins", "importlib",
    "ctypes", "pickle", "signal", "shutil", "pathlib", "multiprocessing", "asyncio",
})

# Attributes (and bare names) that reach frames, globals, code objects and class internals.
DUNDER_ATTRIBUTES = frozenset({
    "__globals__", "__code__", "__closure__", "__builtins__", "__subclasses__", "__bases__", "__base__",
    "__mro__", "__dict__", "__class__", "__getattribute__", "__reduce__", "__reduce_ex__", "__self__",
    "__loader__", "__spec__", "__import__",
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "gi_frame", "tb_frame", "cr_frame", "ag_frame",
})

# Dotted names followed through assignments have at most this many dots.
MAX_ALIAS_DEPTH = 12

# Methods that change a list, dict or set in place.
MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "remove", "pop", "popitem", "clear", "update", "setdefault", "add", "discard",
    "sort", "reverse", "__setitem__", "__delitem__",
})

# Calls allowed when the module loads: they build constant values and carry no state.
LOAD_TIME_CALLS = frozenset({
    "dict", "tuple", "list", "set", "frozenset", "range", "int", "float", "bool", "str", "torch.device",
})
LOAD_TIME_CALL_PREFIXES = ("typing.", "math.")

# Top-level (and class-body) statements that only define things.
DEFINITION_STATEMENTS = (
    ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
    ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Pass,
)

IMPORT_FIX = (
    "import only torch, numpy, math and typing; the harness passes what a component needs as arguments "
    "(another component's function, for example orthogonalize)"
)
MONKEYPATCH_FIX = (
    "do not replace library attributes: the harness and the other components share them (timing, loss, "
    "accuracy); define your own function or subclass instead. Only torch.backends flags may be set"
)
GLOBAL_STATE_FIX = "keep state on the objects the harness creates; module state may not carry between runs"
LOAD_TIME_FIX = (
    "compute it inside a function the harness calls, or write the value as a literal; "
    "module-level state may carry between runs"
)
STATEMENT_FIX = (
    "keep only imports, definitions, a docstring and constant assignments at module level; "
    "move the code into a function the harness calls"
)


# ---------------------------------------------------------------------------------------------
# Entry point.


def check_source(component: str, source: str) -> list[Violation]:
    """All violations of the component contract in `source`; empty list means it passes."""
    if component not in COMPONENT_NAMES:
        raise ValueError(f"unknown component {component!r}: choose one of {', '.join(COMPONENT_NAMES)}")
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return [_syntax_violation(e)]
    try:
        visitor = _ContractVisitor(tree)
        visitor.visit(tree)
        violations = [*visitor.violations, *_check_load_time(tree.body, visitor.aliases)]
        violations += _check_interface(component, tree)
    except RecursionError:  # a tree the parser accepted but too deep to walk
        return [Violation(rule="syntax", line=0, message="the module is nested too deeply to check.",
                          fix="flatten the deeply nested expression into several statements")]
    return sorted(violations, key=lambda v: v.line)


def _syntax_violation(error: Exception) -> Violation:
    if isinstance(error, SyntaxError):
        return Violation(rule="syntax", line=error.lineno or 0, message=f"the module does not parse: {error.msg}.",
                         fix="correct the syntax at that line so that the module is valid Python")
    return Violation(rule="syntax", line=0, message=f"the module does not parse: {error}.",
                     fix="submit plain Python source text")


# ---------------------------------------------------------------------------------------------
# Resolving names to the dotted library names they stand for.


def _chain_text(node: ast.expr) -> str | None:
    """`a.b.c` for a chain of attributes on a name (the key under which aliases are stored)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _chain_text(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _constant_getattr(node: ast.expr) -> tuple[ast.expr, str] | None:
    """(object, name) for `getattr(object, "name"[, default])`, which is `object.name`."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
        return node.args[0], node.args[1].value
    return None


def _resolve(node: ast.expr, aliases: dict[str, set[str]]) -> set[str]:
    """The dotted library names (`torch.cuda.synchronize`) an expression may stand for.

    Follows import aliases (`import numpy as np`, `from torch import cuda`), simple assignments
    (`c = torch.cuda`, `self.c = torch.cuda`) and constant getattr calls; empty when unknown.
    """
    text = _chain_text(node)
    if text is not None and text in aliases:
        return set(aliases[text])
    if isinstance(node, ast.Attribute):
        return {f"{base}.{node.attr}" for base in _resolve(node.value, aliases)}
    lookup = _constant_getattr(node)
    if lookup is not None:
        obj, name = lookup
        return {f"{base}.{name}" for base in _resolve(obj, aliases)}
    return set()


def _collect_aliases(tree: ast.Module) -> dict[str, set[str]]:
    """Every name (or `self.x` chain) bound, anywhere in the module, to a library object.

    Scopes are ignored on purpose: a name bound to `torch.cuda` in one function and used in
    another is treated as an alias everywhere, which errs towards reporting. Assignments are
    followed until nothing changes, whatever their order (`b = a.cuda` before `a = torch`).
    """
    aliases = _import_aliases(tree)
    bindings = list(_value_bindings(tree))
    readers: dict[str, list[int]] = {}  # name -> the bindings whose value starts from that name
    for index, (_, value) in enumerate(bindings):
        root = _root_name(value)
        if root is not None:
            readers.setdefault(root, []).append(index)
    pending = list(range(len(bindings)))
    while pending:
        target, value = bindings[pending.pop()]
        key = _chain_text(target)
        if key is None:
            continue
        # Bounded depth: a loop such as `x = x.cuda` would otherwise add `torch.cuda.cuda...` forever.
        resolved = {d for d in _resolve(value, aliases) if d.count(".") < MAX_ALIAS_DEPTH}
        new = resolved - aliases.get(key, set())
        if new:
            aliases.setdefault(key, set()).update(new)
            pending += readers.get(_root(key), [])
    return aliases


def _import_aliases(tree: ast.Module) -> dict[str, set[str]]:
    """The names import statements bind: `np` -> numpy, `F` -> torch.nn.functional, `cuda` -> torch.cuda."""
    aliases: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases.setdefault(alias.asname, set()).add(alias.name)
                else:
                    root = alias.name.split(".")[0]
                    aliases.setdefault(root, set()).add(root)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if alias.name != "*":
                    aliases.setdefault(alias.asname or alias.name, set()).add(f"{node.module}.{alias.name}")
    return aliases


def _root_name(node: ast.expr) -> str | None:
    """The name an attribute chain or constant getattr starts from (`self` in `self.c.x`)."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            node = node.value
        elif (lookup := _constant_getattr(node)) is not None:
            node = lookup[0]
        else:
            return None


def _value_bindings(tree: ast.Module) -> Iterator[tuple[ast.expr, ast.expr]]:
    """(target, value) pairs of assignments, walrus expressions and parameter defaults."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield from _pair_targets(target, node.value)
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            yield node.target, node.value
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            positional = [*node.args.posonlyargs, *node.args.args]
            pairs = zip(positional[len(positional) - len(node.args.defaults):], node.args.defaults)
            kw_pairs = zip(node.args.kwonlyargs, node.args.kw_defaults)
            for arg, default in [*pairs, *kw_pairs]:
                if default is not None:
                    yield ast.Name(id=arg.arg, ctx=ast.Store()), default


def _pair_targets(target: ast.expr, value: ast.expr) -> Iterator[tuple[ast.expr, ast.expr]]:
    if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
        if len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts):
                yield from _pair_targets(t, v)
    else:
        yield target, value


def _code(node: ast.AST, limit: int = 80) -> str:
    """The source of a node for a message, shortened so that a feedback line stays readable."""
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shortest_first(names: Iterable[str]) -> list[str]:
    """Dotted names in a stable order, the most direct first (the one a message shows)."""
    return sorted(set(names), key=lambda name: (len(name), name))


def _root(dotted: str) -> str:
    return dotted.split(".")[0]


def _under(dotted: str, prefix: str) -> bool:
    return dotted == prefix or dotted.startswith(prefix + ".")


def _forbidden_reference(dotted: str) -> tuple[str, str, str] | None:
    """(rule, reason, fix) when the dotted name may not be referenced at all."""
    for prefix, (reason, fix) in FORBIDDEN_REFERENCES.items():
        if _under(dotted, prefix):
            return "forbidden-call", reason, fix
    last = dotted.rsplit(".", 1)[-1]
    if last in FORBIDDEN_METHODS:
        return ("forbidden-call", *FORBIDDEN_METHODS[last])
    if dotted in SEED_FUNCTIONS or last in SEED_METHODS:
        return "seed", "sets a random seed", SEED_FIX
    return None


# ---------------------------------------------------------------------------------------------
# The walk over every node.


class _ContractVisitor(ast.NodeVisitor):
    """Walks the whole module once and records each node that reaches outside the contract.

    A reference (a name, an attribute chain or a constant getattr) is judged once, as a whole:
    `torch.utils.data.DataLoader` is one violation, not one per link of the chain.
    """

    def __init__(self, tree: ast.Module):
        self.aliases = _collect_aliases(tree)
        self.violations: list[Violation] = []
        # Nodes that are the object of an attribute access: part of a longer chain.
        self._inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        self._containers = _module_containers(tree)
        self._scopes: list[set[str]] = []  # local names of the functions being visited, innermost last

    def _report(self, rule: str, node: ast.AST, message: str, fix: str) -> None:
        self.violations.append(Violation(rule=rule, line=getattr(node, "lineno", 0), message=message, fix=fix))

    # Imports.

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_import_path(alias.name, alias)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            message = f"relative import `{_code(node)}`: a component cannot import another module."
            self._report("import", node, message, IMPORT_FIX)
            return
        if not self._check_import_path(node.module or "", node):
            return
        for alias in node.names:
            if alias.name == "*":
                self._report("import", alias, f"`from {node.module} import *` hides which names the module uses.",
                             f"import the names you use explicitly (`from {node.module} import name`)")
            else:
                self._check_import_path(f"{node.module}.{alias.name}", alias)

    def _check_import_path(self, dotted: str, node: ast.AST) -> bool:
        """Report the import of `dotted` if it leaves the contract; True when it is allowed."""
        if _root(dotted) not in ALLOWED_IMPORTS:
            self._report("import", node, f"imports `{dotted}`, outside {', '.join(ALLOWED_IMPORTS)}.", IMPORT_FIX)
            return False
        for prefix, (reason, fix) in FORBIDDEN_SUBMODULES.items():
            if _under(dotted, prefix):
                self._report("import", node, f"imports `{dotted}`, which {reason}.", fix)
                return False
        finding = _forbidden_reference(dotted)
        if finding:
            rule, reason, fix = finding
            self._report(rule, node, f"imports `{dotted}`, which {reason}.", fix)
            return False
        return True

    # Statements that keep state outside the harness's objects.

    def visit_Global(self, node: ast.Global) -> None:
        message = f"`global {', '.join(node.names)}` keeps state in the module."
        self._report("global-state", node, message, GLOBAL_STATE_FIX)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        message = f"`nonlocal {', '.join(node.names)}` keeps state in a closure."
        self._report("global-state", node, message, GLOBAL_STATE_FIX)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._scopes.append(_local_names(node))
        self.generic_visit(node)
        self._scopes.pop()

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._check_container_mutation(node, node)
        self.generic_visit(node)

    def _check_container_mutation(self, node: ast.expr, changed: ast.expr) -> None:
        """Report changing a module-level list, dict or set from inside a function: the module
        lives across runs, so what one run stores there (trained weights, say) the next one sees."""
        name = _root_name_of_container(changed)
        if self._scopes and name in self._containers and not any(name in scope for scope in self._scopes):
            self._report("global-state", node,
                         f"`{_code(node)}` changes `{name}`, a module-level container, from inside a function.",
                         GLOBAL_STATE_FIX)

    # Names, attributes and calls.

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_BUILTINS:
            self._report("forbidden-name", node, f"`{node.id}` {FORBIDDEN_BUILTINS[node.id]}.",
                         f"remove `{node.id}`: a component gets everything it needs as arguments from the harness "
                         "(if it is your own variable, rename it)")
        elif node.id in FORBIDDEN_MODULE_NAMES:
            self._report("forbidden-name", node, f"`{node.id}` names a module outside the contract.",
                         f"remove `{node.id}`: use only torch, numpy, math and typing "
                         "(if it is your own variable, rename it)")
        elif node.id in DUNDER_ATTRIBUTES:
            self._report_dunder(node, node.id)
        elif id(node) not in self._inner:
            self._check_reference(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in DUNDER_ATTRIBUTES:
            self._report_dunder(node, f".{node.attr}")
        elif id(node) not in self._inner:
            self._check_reference(node)
            if isinstance(node.ctx, (ast.Store, ast.Del)) and isinstance(node.value, ast.Subscript):
                self._check_container_mutation(node, node.value)  # `CACHE["w"].data = ...`
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "delattr"):
            self._check_attribute_builtin(node, node.func.id)
        if isinstance(node.func, ast.Attribute) and node.func.attr in MUTATING_METHODS:
            self._check_container_mutation(node, node.func.value)
        for dotted in _shortest_first(_resolve(node.func, self.aliases)):
            if dotted in SEEDED_CONSTRUCTORS and (node.args or node.keywords):
                self._report("seed", node, f"`{_code(node)}` creates a generator with a fixed seed.", SEED_FIX)
                break
        self.generic_visit(node)

    def _check_attribute_builtin(self, node: ast.Call, builtin: str) -> None:
        """getattr/setattr/delattr: dunder names, patching libraries, computed names on libraries."""
        if len(node.args) < 2:
            return
        obj, name = node.args[0], node.args[1]
        constant = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None
        targets = _shortest_first(d for d in _resolve(obj, self.aliases) if _root(d) in ALLOWED_IMPORTS)
        if constant is not None and (constant.startswith("__") or constant in DUNDER_ATTRIBUTES):
            self._report_dunder(node, f"{builtin}(..., {constant!r})")
        elif builtin != "getattr" and any(not _under(d, "torch.backends") for d in targets):
            self._report("monkeypatch", node, f"`{_code(node)}` changes the library object `{targets[0]}`.",
                         MONKEYPATCH_FIX)
        elif builtin == "getattr" and constant is None and targets:
            self._report("forbidden-call", node,
                         f"`{_code(node)}` looks up a computed attribute name on `{targets[0]}`, "
                         "which the check cannot follow.",
                         "write the attribute out (`torch.nn.functional.relu`), or choose between named functions "
                         "with a dict or if")
        elif builtin == "getattr" and id(node) not in self._inner:
            self._check_reference(node)

    def _check_reference(self, node: ast.expr) -> None:
        """Judge a whole reference: a store into a library, a forbidden API, a seed."""
        text = _code(node)
        if isinstance(getattr(node, "ctx", None), (ast.Store, ast.Del)):
            self._check_store(node, text)
            return
        dotted = _shortest_first(_resolve(node, self.aliases))
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_METHODS and not dotted:
            reason, fix = FORBIDDEN_METHODS[node.attr]
            self._report("forbidden-call", node, f"`{text}` {reason}.", fix)
            return
        if isinstance(node, ast.Attribute) and node.attr in SEED_METHODS and not dotted:
            self._report("seed", node, f"`{text}` sets a random seed.", SEED_FIX)
            return
        for name in dotted:
            finding = _forbidden_reference(name)
            if finding:
                rule, reason, fix = finding
                shown = f"`{text}`" if text == name else f"`{text}` ({name})"
                self._report(rule, node, f"{shown} {reason}.", fix)
                return

    def _check_store(self, node: ast.expr, text: str) -> None:
        """Assigning to or deleting `obj.attr` where obj is a library object (not torch.backends)."""
        if not isinstance(node, ast.Attribute):
            return  # rebinding a name changes nothing outside this module
        # Judge the object stored into, not the target: `self.c = torch.cuda` only binds an alias.
        dotted = _shortest_first(f"{base}.{node.attr}" for base in _resolve(node.value, self.aliases))
        patched = [d for d in dotted if _root(d) in ALLOWED_IMPORTS and not _under(d, "torch.backends")]
        if patched:
            verb = "deletes" if isinstance(node.ctx, ast.Del) else "assigns to"
            shown = f"`{text}`" if text == patched[0] else f"`{text}` ({patched[0]})"
            self._report("monkeypatch", node, f"{verb} {shown}, an attribute of a library.", MONKEYPATCH_FIX)

    def _report_dunder(self, node: ast.AST, what: str) -> None:
        self._report("dunder-access", node,
                     f"`{what}` reaches interpreter internals (frames, globals, code or class internals).",
                     "remove the introspection; work with the objects the harness passes and their public attributes")


def _module_containers(tree: ast.Module) -> set[str]:
    """Names the module binds at top level to a list, dict or set (literal, comprehension or call)."""
    names = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and _is_container(stmt.value):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _is_container(value: ast.expr | None) -> bool:
    if isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
        return True
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ("list", "dict", "set")


def _root_name_of_container(node: ast.expr) -> str | None:
    """`CACHE` in `CACHE`, `CACHE["w"]` or `CACHE["w"][0]`: the container that is changed."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Parameters and names assigned in the function's own body: these shadow module names."""
    args = function.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    names.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    body = function.body if isinstance(function.body, list) else [function.body]
    for node in (n for stmt in body for n in _walk_own_scope(stmt)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _walk_own_scope(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk that yields nested functions and classes but does not enter their bodies."""
    yield node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk_own_scope(child)


# ---------------------------------------------------------------------------------------------
# Code that runs when the module loads.


def _check_load_time(body: list[ast.stmt], aliases: dict[str, set[str]]) -> list[Violation]:
    """Module and class bodies: definitions and constant assignments only, no calls.

    These statements run once when the harness loads the module, and what they build lives as
    long as the module, across runs. Function bodies are not looked at here (they run when the
    harness calls them), but default values and class bases are, since they are evaluated at load.
    Decorators are allowed (`@torch.compile`, `@torch.no_grad()`).
    """
    violations: list[Violation] = []
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue  # a docstring
        if not isinstance(stmt, DEFINITION_STATEMENTS):
            what = f"`{_code(stmt)}`" if isinstance(stmt, ast.Expr) else f"a `{type(stmt).__name__.lower()}` statement"
            violations.append(Violation(rule="global-state", line=stmt.lineno,
                                        message=f"{what} at module level runs when the module is loaded.",
                                        fix=STATEMENT_FIX))
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defaults = [*stmt.args.defaults, *(d for d in stmt.args.kw_defaults if d is not None)]
            violations += _load_time_calls(defaults, aliases)
        elif isinstance(stmt, ast.ClassDef):
            violations += _load_time_calls([*stmt.bases, *(k.value for k in stmt.keywords)], aliases)
            violations += _check_load_time(stmt.body, aliases)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
            violations += _load_time_calls([stmt.value], aliases)
    return violations


def _load_time_calls(expressions: Iterable[ast.expr], aliases: dict[str, set[str]]) -> list[Violation]:
    """A violation for each call in the expressions, other than constant-building ones."""
    violations = []
    for call in (n for e in expressions for n in _walk_skipping_lambdas(e) if isinstance(n, ast.Call)):
        names = _resolve(call.func, aliases) or {_chain_text(call.func) or ""}
        if not any(n in LOAD_TIME_CALLS or n.startswith(LOAD_TIME_CALL_PREFIXES) for n in names):
            violations.append(Violation(
                rule="global-state", line=call.lineno,
                message=f"`{_code(call.func)}(...)` is called when the module is loaded.",
                fix=LOAD_TIME_FIX))
    return violations


def _walk_skipping_lambdas(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk, without lambda bodies (they run when called, not when the module loads)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(node, ast.Lambda) and child is node.body:
            continue
        yield from _walk_skipping_lambdas(child)


# ---------------------------------------------------------------------------------------------
# The interface: required names, their parameters, and HYPERPARAMS as plain data.

Binding = (
    ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Assign | ast.AnnAssign | ast.Import | ast.ImportFrom
)


def _top_level_bindings(tree: ast.Module) -> dict[str, Binding]:
    """The statement that last binds each top-level name (the one the harness will see)."""
    bindings: dict[str, Binding] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bindings[stmt.name] = stmt
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                        bindings[node.id] = stmt
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
            bindings[stmt.target.id] = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                bindings[alias.asname or alias.name.split(".")[0]] = stmt
    return bindings


def _check_interface(component: str, tree: ast.Module) -> list[Violation]:
    bindings = _top_level_bindings(tree)
    violations = []
    for name, params in REQUIRED_NAMES[component].items():
        binding = bindings.get(name)
        if binding is None:
            shape = "a dict literal" if params is None else _signature_hint(name, params, name[:1].isupper())
            violations.append(Violation(
                rule="interface", line=0, message=f"the {component} component must define `{name}` at module level.",
                fix=f"define {shape} at module level (see components/README.md)"))
        elif params is None:
            violations += _check_hyperparams(name, binding)
        else:
            violations += _check_parameters(name, params, binding, bindings)
    return violations


def _signature_hint(name: str, params: tuple[str, ...], is_class: bool) -> str:
    if is_class:
        return f"`class {name}` with `def __init__(self, {', '.join(params)})`"
    return f"`def {name}({', '.join(params)})`"


def _check_parameters(
    name: str, params: tuple[str, ...], binding: Binding, bindings: dict[str, Binding]
) -> list[Violation]:
    is_class = isinstance(binding, ast.ClassDef)
    have = _leading_parameters(binding, bindings, seen=set())
    hint = _signature_hint(name, params, is_class)
    if have is None:
        return [Violation(rule="interface", line=binding.lineno,
                          message=f"`{name}` is bound in a way whose parameters the check cannot read.",
                          fix=f"define it directly as {hint}")]
    if tuple(have[: len(params)]) != params:
        return [Violation(rule="interface", line=binding.lineno,
                          message=f"`{name}` must take ({', '.join(params)}) as its first parameters; "
                                  f"it takes ({', '.join(have)}).",
                          fix=f"define {hint}: the harness passes these positionally, in this order")]
    return []


def _leading_parameters(binding: ast.AST, bindings: dict[str, Binding], seen: set[str]) -> list[str] | None:
    """Positional parameter names of a def, a lambda, a class's __init__ (without self), or an
    assignment of one of those; None when they cannot be read statically."""
    if isinstance(binding, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return [a.arg for a in (*binding.args.posonlyargs, *binding.args.args)]
    if isinstance(binding, ast.ClassDef):
        inits = [s for s in binding.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
        if inits:
            return _leading_parameters(inits[-1], bindings, seen)[1:]
        # No __init__ of its own: the first base defined in this module that has one.
        for base in binding.bases:
            if isinstance(base, ast.Name) and base.id not in seen and isinstance(bindings.get(base.id), ast.ClassDef):
                seen.add(base.id)
                return _leading_parameters(bindings[base.id], bindings, seen)
        return None
    if isinstance(binding, (ast.Assign, ast.AnnAssign)):
        value = binding.value
        if isinstance(value, ast.Lambda):
            return _leading_parameters(value, bindings, seen)
        if isinstance(value, ast.Name) and value.id not in seen and value.id in bindings:
            seen.add(value.id)
            return _leading_parameters(bindings[value.id], bindings, seen)
    return None


HYPERPARAMS_FIX = (
    'write `HYPERPARAMS = {"batch_size": 2000, ...}`: a dict literal with string keys and int, float or bool '
    "values, which the harness and the mutator read as plain data"
)


def _check_hyperparams(name: str, binding: Binding) -> list[Violation]:
    value = binding.value if isinstance(binding, (ast.Assign, ast.AnnAssign)) else None
    if not isinstance(value, ast.Dict):
        return [Violation(rule="interface", line=binding.lineno,
                          message=f"`{name}` must be assigned a dict literal.", fix=HYPERPARAMS_FIX)]
    violations = []
    for key, item in zip(value.keys, value.values):
        if key is None:
            violations.append(Violation(rule="interface", line=item.lineno,
                                        message=f"`**{_code(item)}` in {name} is not a literal entry.",
                                        fix=HYPERPARAMS_FIX))
        elif not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            violations.append(Violation(rule="interface", line=key.lineno,
                                        message=f"{name} key `{_code(key)}` is not a string literal.",
                                        fix=HYPERPARAMS_FIX))
        elif not _is_number_literal(item):
            violations.append(Violation(rule="interface", line=item.lineno,
                                        message=f"{name}[{key.value!r}] = `{_code(item)}` is not an int, "
                                                "float or bool literal.",
                                        fix=HYPERPARAMS_FIX))
    return violations


def _is_number_literal(node: ast.expr) -> bool:
    """An int, float or bool constant, or a signed int or float constant (`-3`, `+1e-4`)."""
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float, bool)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)
    return False
