"""What a component may reach inside torch, numpy, math and typing, as data.

An allowlist, not a denylist: a reference may pass through only the modules named here, judged
by the module's real name (so `torch.serialization.os` is the module `os`, whatever path leads
to it). Inside these modules, the objects below are refused by identity, whatever name or alias
reaches them, and so are private names (a leading underscore) and process-wide switches. The
shipped sets (components/baseline, components/record) use a subset of this list; widen it only
for a namespace that cannot touch files, processes, native code or state the harness shares.
"""

from components.interface import ALLOWED_IMPORTS
from evaluator.static_check.rules import FILES_FIX, NATIVE_FIX, PROCESS_FIX

__all__ = ["ALLOWED_IMPORTS"]

# Modules a reference may pass through (exact names; submodules are not included).
ALLOWED_MODULES = frozenset({
    "torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.nn.utils", "torch.nn.attention",
    "torch.nn.utils.parametrize", "torch.nn.utils.parametrizations",
    "torch.optim", "torch.optim.lr_scheduler", "torch.linalg", "torch.fft", "torch.special",
    "torch.autograd", "torch.amp", "torch.cuda", "torch.cuda.amp", "torch.random", "torch.func",
    "torch.distributions",
    "torch.backends", "torch.backends.cudnn", "torch.backends.cuda", "torch.backends.mkldnn",
    "torch.backends.cpu", "torch.backends.mps", "torch.backends.opt_einsum",
    "numpy", "numpy.random", "numpy.linalg", "numpy.fft",
    "math", "typing",
})

# Why some well-known modules outside the list are refused (the message names the reason).
MODULE_REASONS: dict[str, tuple[str, str]] = {
    "torch.ops": (("calls operators by name past the checks of the public functions: file readers and writers, "
                   "native loaders and the unchecked kernels (aten._unsafe_index, aten._embedding_bag) among them"),
                  ("call the public torch function of the op (torch.index_select, F.embedding, torch.scatter_add), "
                   "which checks its arguments; a component may not load native code")),
    "torch.classes": ("loads native classes", NATIVE_FIX),
    "torch.serialization": ("reads and writes files", FILES_FIX),
    "torch.jit": ("saves and loads files and compiles code outside torch.compile", FILES_FIX),
    "torch.hub": ("downloads and loads files", FILES_FIX),
    "torch.package": ("reads and writes files", FILES_FIX),
    "torch.onnx": ("writes files", FILES_FIX),
    "torch.export": ("saves and loads files", FILES_FIX),
    "torch.utils": ("holds data loaders, native-code builders and system probes", FILES_FIX),
    "torch.multiprocessing": ("starts processes", PROCESS_FIX),
    "torch.distributed": ("starts processes and opens sockets", PROCESS_FIX),
    "torch.library": ("defines and loads native operators", NATIVE_FIX),
    "torch.profiler": ("traces and writes files outside the harness", FILES_FIX),
    "torch.compiler": ("changes the compiler's global state", NATIVE_FIX),
    "numpy.lib": ("reads and writes files and makes arrays over raw memory (stride_tricks.as_strided)", FILES_FIX),
    "numpy.ctypeslib": ("loads native code", NATIVE_FIX),
}

# Private names (a leading underscore) a reference may use: torch's fused multi-tensor kernels.
ALLOWED_PRIVATE_PREFIXES = ("torch._foreach_",)

# Objects refused inside the allowed modules, by the name that first reaches them; the check
# compares the objects themselves, so any other path or alias to them is refused too.
DENIED_OBJECTS: dict[str, tuple[str, str]] = {
    "torch.load": ("reads a file", FILES_FIX),
    "torch.save": ("writes a file", FILES_FIX),
    "torch.from_file": ("reads a file", FILES_FIX),
    "torch.get_file_path": ("names files on disk", FILES_FIX),
    "torch.import_ir_module": ("loads compiled code", FILES_FIX),
    "torch.import_ir_module_from_buffer": ("loads compiled code", FILES_FIX),
    "torch.fork": ("runs a function on another thread", PROCESS_FIX),
    "torch.prepare_multiprocessing_environment": ("prepares other processes", PROCESS_FIX),
    "torch.cuda.cudart": ("reaches the CUDA runtime's native functions", NATIVE_FIX),
    "torch.cuda.CUDAPluggableAllocator": ("loads a native allocator library", NATIVE_FIX),
    "torch.cuda.list_gpu_processes": ("inspects other processes", PROCESS_FIX),
    "torch.cuda._sleep": ("makes the GPU wait", NATIVE_FIX),
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
    "numpy.info": ("reads source files", FILES_FIX),
    "typing.get_type_hints": ("evaluates annotation strings as code", NATIVE_FIX),
    "typing.ForwardRef": ("evaluates a string as code", NATIVE_FIX),
}

# Classes whose instances are refused, whatever name reaches them: numpy puts a test runner in
# most of its modules (np.test, np.random.test, np.linalg.test).
DENIED_INSTANCES_OF: dict[str, tuple[str, str]] = {
    "numpy._pytesttester.PytestTester": (
        "runs numpy's test suite, which imports pytest, reads files and starts processes", FILES_FIX),
}

# Names in typing a component may use: type constructs only (get_type_hints evaluates strings).
TYPING_NAMES = frozenset({
    "Any", "Callable", "ClassVar", "Dict", "Final", "FrozenSet", "Generator", "Generic", "Iterable",
    "Iterator", "List", "Literal", "Mapping", "NamedTuple", "NoReturn", "Optional", "Protocol", "Sequence",
    "Set", "Self", "Tuple", "Type", "TypeAlias", "TypeVar", "Union", "cast", "overload", "TYPE_CHECKING",
    "Hashable", "Sized", "MutableMapping", "MutableSequence", "Collection", "TypedDict", "ParamSpec",
})

# Functions whose name starts so change process-wide state (threads, default device, allocator,
# attention kernels, error modes, global registries) that later runs and the harness would inherit. Context-manager
# classes (`torch.enable_grad`) restore what they change and are not concerned.
STATE_SETTER_PREFIXES = (
    "set_", "use_", "enable_", "disable_", "change_", "preferred_", "register_", "seterr", "setbufsize",
)
# The setters the harness undoes before every run (evaluator/training.py, reset_torch_flags).
RESET_SETTERS = frozenset({
    "torch.set_grad_enabled", "torch.set_default_dtype", "torch.use_deterministic_algorithms",
    "torch.set_float32_matmul_precision", "torch.autograd.set_detect_anomaly",
})
# Registrations that concern only the object passed in, not a process-wide registry.
PER_OBJECT_SETTERS = frozenset({"torch.nn.utils.parametrize.register_parametrization"})
# Attributes of library objects a component may assign: the flags reset_torch_flags resets.
WRITABLE_FLAGS = frozenset({
    "torch.backends.cudnn.benchmark", "torch.backends.cudnn.allow_tf32", "torch.backends.cudnn.enabled",
    "torch.backends.cudnn.deterministic", "torch.backends.cuda.matmul.allow_tf32",
})
STATE_FIX = (
    "remove it: the switch outlives the run and the harness does not reset it; the harness's own "
    "resets cover torch.set_grad_enabled, set_default_dtype, use_deterministic_algorithms, "
    "set_float32_matmul_precision and the cudnn/matmul TF32 and benchmark flags"
)
NAMESPACE_FIX = (
    "use only torch, torch.nn (functional, init, utils), torch.optim, torch.linalg, torch.fft, "
    "torch.special, torch.autograd, torch.amp, torch.cuda, torch.func, torch.distributions, "
    "torch.backends flags, numpy (random, linalg, fft), math and the typing constructs, through their "
    "public names (no leading underscore)"
)
