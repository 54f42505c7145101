"""The name-level rules as data: builtins, dunder and frame attributes, seeds, and the fix texts.

What a reference into torch, numpy, math or typing may reach is decided in namespaces.py (an
allowlist); this module holds the rules that do not depend on what a library contains.
"""

import ast

FILES_FIX = (
    "remove it: a component never reads or writes files; the harness passes the data, "
    "and weights are trained inside the timed run"
)
PROCESS_FIX = (
    "remove it: a component runs in the harness's process and thread; vectorize the work on the device instead"
)
NATIVE_FIX = "remove it: a component may not load or compile native code; write it with torch operations"
PRIVATE_FIX = "remove it: use the object's public interface; private names are allowed on `self` and `cls` only"
SLEEP_FIX = "remove it: waiting only adds time; the harness does all the timing from outside"
INTROSPECTION_FIX = (
    "remove the introspection; work with the objects the harness passes and their public attributes"
)

# Builtins that reach files, run unseen code or read namespaces.
FORBIDDEN_BUILTINS: dict[str, str] = {
    "open": "opens files",
    "exec": "runs code the check cannot see",
    "eval": "runs code the check cannot see",
    "compile": "builds code the check cannot see",
    "__import__": "imports modules past the import rule",
    "globals": "reads and writes module namespaces",
    "locals": "reads frame namespaces",
    "vars": "reads and writes object and module namespaces",
    "dir": "lists namespaces, which with other lookups reads data hidden in names",
    "breakpoint": "stops the process in a debugger",
    "input": "waits for a terminal",
    "help": "waits for a terminal",
    "exit": "ends the process",
    "quit": "ends the process",
    "memoryview": "reads raw memory",
}

# Modules that cannot be imported, but whose name might reach the module another way. As an
# attribute of anything (`torch.serialization.os`, `np.sys`) the name is refused as well: no
# tensor, array or component object has an attribute of that name for an honest reason.
FORBIDDEN_MODULE_NAMES = frozenset({
    "sys", "os", "posix", "nt", "gc", "inspect", "subprocess", "socket", "threading", "_thread", "time",
    "builtins", "importlib", "ctypes", "pickle", "marshal", "signal", "shutil", "pathlib", "tempfile", "io",
    "multiprocessing", "asyncio", "linecache", "traceback", "runpy", "mmap", "fcntl", "resource", "pty",
    "glob", "platform", "_posixsubprocess", "sysconfig", "site",
})

# Dunders a component may use as attributes: calling the protocol methods of its own objects
# (`super().__init__(...)`). Every other dunder, as attribute or name, reaches interpreter
# internals (frames, globals, code, class dictionaries, docstrings, the module's own file).
ALLOWED_DUNDER_ATTRIBUTES = frozenset({
    "__init__", "__call__", "__len__", "__iter__", "__next__", "__enter__", "__exit__", "__getitem__",
    "__contains__",
})
# Dunder names a class body may bind (storing, never reading).
ALLOWED_DUNDER_STORES = frozenset({"__slots__", "__all__"})

# Attributes of frames, tracebacks, generators and coroutines: each leads to frames, and from a
# frame to the harness's locals (its data, its train function, its protocol pipe).
FRAME_ATTRIBUTES = frozenset({
    "f_back", "f_builtins", "f_code", "f_globals", "f_lasti", "f_lineno", "f_locals", "f_trace",
    "f_trace_lines", "f_trace_opcodes", "f_generator",
    "tb_frame", "tb_lasti", "tb_lineno", "tb_next",
    "gi_code", "gi_frame", "gi_running", "gi_suspended", "gi_yieldfrom",
    "cr_await", "cr_code", "cr_frame", "cr_origin", "cr_running", "cr_suspended",
    "ag_await", "ag_code", "ag_frame", "ag_running",
})

# Methods that touch files or shared memory whatever object they are called on (tensor
# storages, arrays), and so whatever the check knows about that object.
FORBIDDEN_METHODS: dict[str, tuple[str, str]] = {
    "from_file": ("reads a file", FILES_FIX),
    "tofile": ("writes a file", FILES_FIX),
    "dump": ("writes a file", FILES_FIX),
    "load_library": ("loads native code", NATIVE_FIX),
    "share_memory_": ("puts the tensor in shared memory, outside the process", PROCESS_FIX),
    "share_memory": ("puts the tensors in shared memory, outside the process", PROCESS_FIX),
}

# Builtins that look up an attribute by name: with a computed name the check cannot follow them.
ATTRIBUTE_BUILTINS = ("getattr", "setattr", "delattr", "hasattr")
# Builtins the check follows only where they are called directly: passed around as values
# (`g = getattr`, `map(getattr, ...)`) they would do the same unseen.
DIRECT_CALL_BUILTINS = frozenset({*ATTRIBUTE_BUILTINS, "type", "super"})
COMPUTED_ATTRIBUTE_FIX = (
    "write the attribute out (`model.head`, `torch.nn.functional.relu`), or choose between named "
    "objects with a dict or if"
)

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
    "do not change library objects: the harness and the other components share them (timing, loss, "
    "accuracy), and what is stored there outlives the run; keep state on your own objects. Only the "
    "torch.backends flags the harness resets before every run may be set (cudnn.benchmark, "
    "cudnn.allow_tf32, cudnn.enabled, cudnn.deterministic, cuda.matmul.allow_tf32)"
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
MODULE_VALUE_FIX = (
    "use the module only through its attributes (`torch.nn.functional.relu(x)`), or bind it to a plain "
    "name (`F = torch.nn.functional`); the check follows modules through names, not through containers, "
    "arguments, return values or object attributes"
)
