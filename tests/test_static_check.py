"""The static check passes the shipped components and names rule and line for each way out of the contract.

Malicious snippets are prepended to the baseline tta module, so that the interface is satisfied and
the snippet's own line numbers are the reported ones. Nothing here executes the snippets.
"""

import pytest

from components import COMPONENT_NAMES
from evaluator.static_check import Violation, check_source


def rules_and_lines(violations: list[Violation]) -> list[tuple[str, int]]:
    return sorted((v.rule, v.line) for v in violations)


def check_snippet(baseline_set, snippet: str) -> list[Violation]:
    """Violations of `snippet` placed at the top of the baseline tta module."""
    return check_source("tta", snippet + "\n" + baseline_set.sources["tta"])


def line_of(source: str, text: str) -> int:
    """1-based line number of the first line containing `text`."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_shipped_components_pass(shipped_set, name):
    assert check_source(name, shipped_set.sources[name]) == []


VIOLATIONS = {
    # Files and data the harness owns.
    "open reads a file": ('def leak():\n    return open("/data/test_labels.txt").read()', [("forbidden-name", 2)]),
    "torch.load of test labels": (
        'import torch\ndef leak():\n    return torch.load("test_labels.pt")', [("forbidden-call", 3)]),
    "np.load": ('import numpy as np\ndef leak():\n    return np.load("cifar10.npz")["test_labels"]', [("forbidden-call", 3)]),
    "torch.load through an import alias": ('import torch as t\ndef leak():\n    return t.load("x.pt")', [("forbidden-call", 3)]),
    "torch.load through a constant getattr": (
        'import torch\ndef leak():\n    return getattr(torch, "load")("x.pt")', [("forbidden-call", 3)]),
    "from torch import load": ("from torch import load", [("forbidden-call", 1)]),
    "torch.utils.data used as an attribute": (
        "import torch\ndef batches(x):\n    return torch.utils.data.DataLoader(x)", [("namespace", 3)]),
    "computed getattr on torch": ("import torch\ndef pick(name):\n    return getattr(torch, name)", [("forbidden-call", 3)]),
    "private torch bindings": ("import torch\ndef f():\n    return torch._C._get_tracing_state()", [("namespace", 3)]),
    "storage from_file": ('def leak(t):\n    return t.untyped_storage().from_file("x.bin")',
                          [("forbidden-call", 2), ("raw-memory", 2)]),
    # Imports.
    "import os": ("import os", [("import", 1)]),
    "import subprocess": ("import subprocess", [("import", 1)]),
    "from socket import socket": ("from socket import socket", [("import", 1)]),
    "import threading": ("import threading", [("import", 1)]),
    "import gc, then gc.get_objects": ("import gc\ndef peek():\n    return gc.get_objects()", [("forbidden-name", 3), ("import", 1)]),
    "torch.utils.data": ("from torch.utils.data import DataLoader", [("import", 1)]),
    "torch.multiprocessing": ("import torch.multiprocessing as mp", [("import", 1)]),
    "relative import of another component": ("from .optimizer import build_optimizer", [("import", 1)]),
    "star import": ("from torch import *", [("import", 1)]),
    # Names outside the contract.
    "sys._getframe": ("def peek():\n    return sys._getframe(1)", [("forbidden-name", 2)]),
    "inspect.currentframe": ("def peek():\n    return inspect.currentframe()", [("forbidden-name", 2)]),
    "time.sleep": ("def slow():\n    time.sleep(1)", [("forbidden-name", 2)]),
    "exec": ('def run():\n    exec("print(1)")', [("forbidden-name", 2)]),
    "__import__": ('def run():\n    return __import__("os")', [("forbidden-name", 2)]),
    # Introspection.
    "__globals__": ('def peek(f):\n    return f.__globals__["labels"]', [("dunder-access", 2)]),
    "f_back": ("def peek(frame):\n    return frame.f_back", [("dunder-access", 2)]),
    "getattr of a dunder": ('def peek(f):\n    return getattr(f, "__globals__")', [("dunder-access", 2)]),
    # Patching what the harness times and scores with.
    "torch.cuda.synchronize replaced": (
        "import torch\ndef patch():\n    torch.cuda.synchronize = lambda: None", [("monkeypatch", 3)]),
    "torch.cuda.Event replaced": (
        "import torch\nclass FakeEvent:\n    pass\ndef patch():\n    torch.cuda.Event = FakeEvent", [("monkeypatch", 5)]),
    "setattr on torch.cuda": ('import torch\ndef patch(f):\n    setattr(torch.cuda, "synchronize", f)', [("monkeypatch", 3)]),
    "patch through from-import": ("from torch import cuda\ndef patch():\n    cuda.synchronize = None", [("monkeypatch", 3)]),
    "patch through an assigned alias": (
        "import torch\ndef patch():\n    c = torch.cuda\n    c.synchronize = None", [("monkeypatch", 4)]),
    "loss replaced": (
        "import torch.nn.functional as F\ndef patch(f):\n    F.cross_entropy = f", [("monkeypatch", 3)]),
    "tensor method deleted": ("import torch\ndef patch():\n    del torch.Tensor.item", [("monkeypatch", 3)]),
    "patch through aliases bound later in the file": (
        "import torch\ndef patch():\n    b.synchronize = None\nb = a.cuda\na = torch", [("monkeypatch", 3)]),
    "patch through a self-referencing alias loop (terminates)": (
        "import torch\ndef patch():\n    lib = torch\n    while True:\n        lib = lib.cuda\n        lib.synchronize = None",
        [("monkeypatch", 6)]),
    # Seeds.
    "torch.manual_seed": ("import torch\ndef lucky():\n    torch.manual_seed(0)", [("seed", 3)]),
    # A new torch.Generator starts from torch's fixed default seed: the constructor and the seed, both refused.
    "seeded generator": ("import torch\ndef lucky():\n    return torch.Generator().manual_seed(1234)",
                         [("seed", 3), ("seed", 3)]),
    "seeded numpy generator": ("import numpy as np\ndef lucky():\n    return np.random.default_rng(0)", [("seed", 3)]),
    # State that outlives a run.
    "global statement": ("CACHE = {}\ndef remember(x):\n    global CACHE\n    CACHE = x", [("global-state", 3)]),
    "nonlocal statement": (
        "def outer():\n    n = 0\n    def inner():\n        nonlocal n\n        n += 1\n    return inner", [("global-state", 4)]),
    "weights loaded at module level": (
        'import torch\nWEIGHTS = torch.load("w.pt")', [("forbidden-call", 2), ("global-state", 2)]),
    "tensor built at module level": ("import torch\nBUFFER = torch.zeros(10)", [("global-state", 2)]),
    "tensor built in a class body": ("import torch\nclass Cache:\n    BUFFER = torch.zeros(10)", [("global-state", 3)]),
    "tensor as a default argument": ("import torch\ndef f(x, buf=torch.zeros(10)):\n    return x", [("global-state", 2)]),
    "module-level dict filled from a function": (
        'SAVED = {}\ndef remember(model):\n    SAVED["weights"] = model.state_dict()', [("global-state", 3)]),
    "module-level list appended to from a method": (
        "HISTORY = []\nclass Keeper:\n    def keep(self, x):\n        HISTORY.append(x)", [("global-state", 4)]),
    "nested item of a module-level dict changed": (
        'SAVED = {"w": []}\ndef remember(x):\n    SAVED["w"].append(x)\n    del SAVED["w"][0]',
        [("global-state", 3), ("global-state", 4)]),
    "container mutated at module level": ("CACHE = []\nCACHE.append(1)", [("global-state", 2)]),
    "script code at module level": ('if __name__ == "__main__":\n    pass', [("dunder-access", 1), ("global-state", 1)]),
    "raise at module level is not executed": ("raise SystemExit(1)", [("global-state", 1)]),
}


@pytest.mark.parametrize("case", VIOLATIONS)
def test_violation_names_rule_and_line(baseline_set, case):
    snippet, expected = VIOLATIONS[case]
    violations = check_snippet(baseline_set, snippet)
    assert rules_and_lines(violations) == sorted(expected), [str(v) for v in violations]
    assert all(v.message and v.fix for v in violations)


ALLOWED = {
    "module-level constants": 'CACHE = {}\nMEAN = (0.49, 0.48, 0.45)\nLIMIT = float("inf")\nSIZES = dict(a=1, b=[1, 2])',
    "torch.backends flags in a function": "import torch\ndef fast():\n    torch.backends.cudnn.benchmark = True",
    "setattr on torch.backends": 'import torch\ndef fast():\n    setattr(torch.backends.cudnn, "benchmark", True)',
    "torch.compile decorator": "import torch\n@torch.compile\ndef double(x):\n    return x * 2",
    "torch.compile decorator with options": (
        'import torch\n@torch.compile(mode="max-autotune", fullgraph=True)\ndef double(x):\n    return x * 2'),
    "no_grad decorator and synchronize calls": (
        "import torch\n@torch.no_grad()\ndef sync(x):\n    torch.cuda.synchronize()\n    return torch.cuda.Event(enable_timing=True)"),
    "model.eval and model.compile are methods, not builtins": "def f(model):\n    model.eval()\n    model.compile()",
    "attributes on own objects": "class Holder:\n    def __init__(self, t):\n        self.t = t\n        self.t.requires_grad = False",
    "local containers that shadow module ones, and reads": (
        'CACHE = {}\nTABLE = {"a": 1}\ndef local(x):\n    CACHE = {}\n    CACHE["x"] = TABLE.get(x)\n    return CACHE\n'
        'def param(CACHE):\n    CACHE.update(a=1)'),
    "plain getattr": 'def weight(m):\n    return getattr(m, "weight", None)',
    "typing and math at module level": (
        'import math\nfrom typing import Callable, TypeVar\nT = TypeVar("T")\nFn = Callable[..., T]\nSQRT2 = math.sqrt(2)'),
    "torch.device at module level": 'import torch\nCPU = torch.device("cpu")',
    "unseeded randomness": "import torch\ndef noise(x):\n    return x + torch.randn_like(x)",
}


@pytest.mark.parametrize("case", ALLOWED)
def test_allowed_code_passes(baseline_set, case):
    violations = check_snippet(baseline_set, ALLOWED[case])
    assert violations == [], [str(v) for v in violations]


def test_syntax_error_names_line():
    violations = check_source("tta", "import torch\n\ndef predict(model, inputs, hp)\n    return model(inputs)\n")
    assert rules_and_lines(violations) == [("syntax", 3)]
    assert "does not parse" in violations[0].message


def test_missing_required_name():
    violations = check_source("tta", "import torch\n\ndef predict_views(model, inputs, hp):\n    return model(inputs)\n")
    assert rules_and_lines(violations) == [("interface", 0)]
    assert "predict" in violations[0].message and "def predict(model, inputs, hp)" in violations[0].fix


def test_wrong_parameter_order(baseline_set):
    source = baseline_set.sources["tta"].replace(
        "def predict(model: nn.Module, inputs: torch.Tensor, hp: dict)", "def predict(model: nn.Module, hp: dict, inputs: torch.Tensor)")
    violations = check_source("tta", source)
    assert rules_and_lines(violations) == [("interface", line_of(source, "def predict("))]
    assert "(model, hp, inputs)" in violations[0].message


def test_class_init_parameters_checked(baseline_set):
    old = "def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, hp: dict):"
    source = baseline_set.sources["augmentation"].replace(old, "def __init__(self, labels, inputs, hp):")
    assert source != baseline_set.sources["augmentation"]
    violations = check_source("augmentation", source)
    assert rules_and_lines(violations) == [("interface", line_of(source, "class BatchStream"))]


def test_init_inherited_from_a_local_base_and_lambdas_are_read():
    source = (
        "def preprocess(images, hp):\n    return images\n"
        "class Base:\n    def __init__(self, inputs, labels, hp, extra=0):\n        self.n = len(labels)\n"
        "class BatchStream(Base):\n    pass\n"
    )
    assert check_source("augmentation", source) == []
    assert check_source("tta", "predict = lambda model, inputs, hp: model(inputs)\n") == []


def test_hyperparams_must_be_a_dict_literal():
    violations = check_source("hyperparams", "HYPERPARAMS = dict(batch_size=2000, epochs=8, label_smoothing=0.2)\n")
    assert rules_and_lines(violations) == [("interface", 1)]


def test_hyperparams_values_must_be_numbers_or_bools(baseline_set):
    source = baseline_set.sources["hyperparams"].replace('"batch_size": 2000,', '"batch_size": "2000",')
    violations = check_source("hyperparams", source)
    assert rules_and_lines(violations) == [("interface", line_of(source, '"batch_size"'))]
    assert "'batch_size'" in violations[0].message


def test_hyperparams_keys_entries_and_signed_numbers():
    source = 'HYPERPARAMS = {\n    "lr": -0.1,\n    "flip": True,\n    3: 1,\n    **EXTRA,\n    "n": None,\n}\n'
    assert rules_and_lines(check_source("hyperparams", source)) == [("interface", 4), ("interface", 5), ("interface", 6)]


def test_violation_str_names_line_rule_and_fix(baseline_set):
    (violation,) = check_snippet(baseline_set, 'import torch\ndef leak():\n    return torch.load("x.pt")')
    text = str(violation)
    assert text.startswith("line 3: [forbidden-call] ") and " Fix: " in text


def test_unknown_component_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown component"):
        check_source("loss", "")


# One case per class of hole from issue 11: each construct refused with the right rule. The
# reference is judged by what it really is (resolved through the installed torch and numpy),
# not by its last attribute.
HOLES = {
    # Private attributes of objects the component did not define: native helpers live there.
    "a tensor storage's private file helper": (
        "import torch\ndef f(x):\n    return x.untyped_storage()._share_filename_cpu_()",
        [("private-access", 3), ("raw-memory", 3)]),
    "a private method of a tensor torch made": (
        "import torch\ndef f():\n    return torch.zeros(3).untyped_storage()._share_filename_cpu_()",
        [("private-access", 3), ("raw-memory", 3)]),
    "a library module's private registry on an object": (
        "import torch\ndef f(model):\n    return model._modules", [("private-access", 3)]),
    # torch.ops: refused whole, whatever the namespace, operator and overload.
    "torch.ops file reader with an overload": (
        "import torch\ndef leak(p):\n    return torch.ops.aten.from_file.default(p, True, 10)", [("namespace", 3)]),
    "any torch.ops operator": ("import torch\ndef f(x):\n    return torch.ops.aten.add.Tensor(x, x)", [("namespace", 3)]),
    "torch.ops through a constant getattr": (
        'import torch\ndef f(x):\n    return getattr(torch, "ops").aten.add(x, x)', [("namespace", 3)]),
    "from torch import ops": ("from torch import ops", [("import", 1)]),
    # A module reached as an attribute of another module, judged by its real name.
    "torch.serialization.save": ('import torch\ndef f(x):\n    torch.serialization.save(x, "/tmp/x")', [("namespace", 3)]),
    "torch.serialization.os": (
        'import torch\ndef f():\n    torch.serialization.os.write(3, b"x")', [("forbidden-name", 3), ("namespace", 3)]),
    "torch.sys": ("import torch\ndef f():\n    return torch.sys.modules", [("forbidden-name", 3), ("namespace", 3)]),
    "torch.utils.collect_env": (
        "import torch\ndef f():\n    return torch.utils.collect_env.get_pretty_env_info()", [("namespace", 3)]),
    "numpy.os (an attribute named after a module, on anything)": (
        "import numpy as np\ndef f(x):\n    return np.os.getcwd(), x.sys", [("forbidden-name", 3), ("forbidden-name", 3)]),
    "torch reached again through a submodule": (
        "import torch\ndef f():\n    return torch.nn.functional.torch.serialization", [("namespace", 3)]),
    "refused function under another path (identity)": (
        'import torch\ndef f():\n    return torch.nn.functional.torch.load("x")', [("forbidden-call", 3)]),
    # Aliases and assignment chains.
    "module alias by assignment": (
        'import torch\ndef f(x):\n    ser = torch.serialization\n    ser.save(x, "p")', [("namespace", 3), ("namespace", 4)]),
    "from torch import serialization as s": ("from torch import serialization as ser", [("import", 1)]),
    "assignment chain": (
        'import torch\ndef f(x):\n    a = torch\n    b = a\n    c = b.jit\n    c.save(x, "p")',
        [("namespace", 5), ("namespace", 6)]),
    "alias through a default argument": (
        'import torch\ndef f(x, lib=torch):\n    lib.save(x, "p")', [("forbidden-call", 3)]),
    # Computed attribute names and namespaces on any object, not only modules.
    "computed getattr on any object": ("def f(model, name):\n    return getattr(model, name)", [("forbidden-call", 2)]),
    "computed setattr on any object": ("def f(model, name):\n    setattr(model, name, 1)", [("forbidden-call", 2)]),
    "computed hasattr probes names": ("def f(model, name):\n    return hasattr(model, name)", [("forbidden-call", 2)]),
    "getattr passed around as a value": ("def f(model, name):\n    g = getattr\n    return g(model, name)",
                                         [("forbidden-name", 2)]),
    "attribute name hidden in a starred argument": ('def f(model):\n    setattr(*(model, "x", 1))', [("forbidden-call", 2)]),
    "attribute read by a match class pattern": (
        "def f(x):\n    match x:\n        case object(__globals__=g):\n            return g", [("dunder-access", 3)]),
    "format template bound, not called": ('def f():\n    return "{0.__globals__}".format', [("forbidden-call", 2)]),
    "the global generator's state set through a subscript": (
        "import torch\ndef f(s):\n    torch.cuda.default_generators[0].set_state(s)", [("seed", 3)]),
    "a process-wide registry": (
        'import torch\ndef f():\n    torch.nn.attention.register_flash_attention_impl("x")', [("global-state", 3)]),
    "vars of an object": ("def f(model):\n    return vars(model)", [("forbidden-name", 2)]),
    "dir of an object": ("def f(model):\n    return dir(model)", [("forbidden-name", 2)]),
    "__dict__ of an object": ("def f(model):\n    return model.__dict__", [("dunder-access", 2)]),
    "a module's dict subscripted": (
        'import torch\ndef f():\n    return torch.nn.functional.__dict__["torch"]', [("dunder-access", 3)]),
    "format template reading attributes": (
        'def f(x):\n    return "{0.__init__.__globals__}".format(x)', [("forbidden-call", 2)]),
    "format with a template the check cannot see": ("def f(t, x):\n    return t.format(x)", [("forbidden-call", 2)]),
    # Files, processes and native code in torch.
    "torch.jit.save and load": (
        'import torch\ndef f(x):\n    torch.jit.save(x, "p")\n    return torch.jit.load("p")',
        [("namespace", 3), ("namespace", 4)]),
    "torch.save": ('import torch\ndef f(x):\n    torch.save(x, "p")', [("forbidden-call", 3)]),
    "torch.from_file": ('import torch\ndef f():\n    return torch.from_file("p")', [("forbidden-call", 3)]),
    "torch.utils.cpp_extension": (
        'import torch\ndef f():\n    torch.utils.cpp_extension.load_inline("x", "y")', [("namespace", 3)]),
    "torch._C helper": ("import torch\ndef f():\n    return torch._C._get_shm_manager_path()", [("namespace", 3)]),
    "torch.hub": ('import torch\ndef f():\n    return torch.hub.load("a", "b")', [("namespace", 3)]),
    "torch.multiprocessing": (
        "import torch\ndef f():\n    torch.multiprocessing.Process()", [("forbidden-name", 3), ("namespace", 3)]),
    "torch.distributed": ("import torch\ndef f():\n    torch.distributed.init_process_group()", [("namespace", 3)]),
    "typing.get_type_hints evaluates strings": (
        "import typing\ndef f(g):\n    return typing.get_type_hints(g)", [("namespace", 3)]),
    "array dump writes a file": ('def f(a):\n    a.dump("p")', [("forbidden-call", 2)]),
    "a submodule torch imports lazily": ("import torch\ndef f(m, x):\n    torch.onnx.export(m, x, 'p')", [("namespace", 3)]),
    "a submodule numpy imports lazily": ("import numpy as np\ndef f():\n    return np.f2py.run_main", [("namespace", 3)]),
    # Writes into torch: modules, classes, backends, process-wide switches.
    "stash on torch.backends": ("import torch\ndef f():\n    torch.backends.stash = {}", [("monkeypatch", 3)]),
    "stash on a torch class": ("import torch\ndef f():\n    torch.nn.Module.stash = {}", [("monkeypatch", 3)]),
    "setattr on torch.backends": ('import torch\ndef f():\n    setattr(torch.backends, "stash", 1)', [("monkeypatch", 3)]),
    "a backends flag the harness does not reset": (
        "import torch\ndef f():\n    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = True",
        [("monkeypatch", 3)]),
    "a library dict changed in place": (
        'import torch\ndef f():\n    torch.backends.cudnn.__dict__.update(a=1)', [("dunder-access", 3), ("monkeypatch", 3)]),
    "a process-wide switch": ("import torch\ndef f():\n    torch.set_num_threads(1)", [("global-state", 3)]),
    "an attention-kernel switch": ("import torch\ndef f():\n    torch.backends.cuda.enable_flash_sdp(False)",
                                   [("global-state", 3)]),
    "the GPU memory share": ("import torch\ndef f():\n    torch.cuda.set_per_process_memory_fraction(1.0)",
                             [("global-state", 3)]),
    "the class of a harness object, patched": ("def f(x, fn):\n    type(x).add = fn", [("dunder-access", 2)]),
    # Modules as values, where the resolver cannot follow them.
    "module in a container": ("import torch\ndef f():\n    return [torch][0].serialization", [("module-value", 3)]),
    "module as an argument": ("import torch\ndef f(g):\n    return g(torch)", [("module-value", 3)]),
    "module returned": ("import torch\ndef f():\n    return torch.cuda", [("module-value", 3)]),
    "module stored on an object": ("import torch\nclass A:\n    def __init__(self):\n        self.t = torch",
                                   [("module-value", 4)]),
    "module as a class attribute": ("import torch\nclass A:\n    t = torch", [("module-value", 3)]),
    # Frames.
    "sys._getframe": ("def f():\n    return sys._getframe(1)", [("forbidden-name", 2)]),
    "torch.sys._getframe": (
        "import torch\ndef f():\n    return torch.sys._getframe(1)", [("forbidden-name", 3), ("namespace", 3)]),
    "inspect": ("def f():\n    return inspect.stack()", [("forbidden-name", 2)]),
    "f_back": ("def f(frame):\n    return frame.f_back", [("dunder-access", 2)]),
    "gi_frame of a generator": ("def f(gen):\n    return gen.gi_frame", [("dunder-access", 2)]),
    "__traceback__ and tb_frame": (
        "def f():\n    try:\n        pass\n    except Exception as e:\n        return e.__traceback__.tb_frame",
        [("dunder-access", 5), ("dunder-access", 5)]),
    "getattr of a frame attribute": ('def f(g):\n    return getattr(g, "gi_frame")', [("dunder-access", 2)]),
    "__doc__ reads the docstrings": ("def f():\n    return __doc__", [("dunder-access", 2)]),
}


@pytest.mark.parametrize("case", HOLES)
def test_hole_is_refused_with_its_rule(baseline_set, case):
    snippet, expected = HOLES[case]
    violations = check_snippet(baseline_set, snippet)
    assert rules_and_lines(violations) == sorted(expected), [str(v) for v in violations]
    assert all(v.message and v.fix and v.line for v in violations)


ALLOWED_REFERENCES = {
    "private names on self and cls": (
        "import torch\nclass A:\n    def f(self, x):\n        return self._g(x)\n    def _g(self, x):\n        return x"),
    "backends flags through an alias": "import torch\ndef f():\n    c = torch.backends.cudnn\n    c.allow_tf32 = True",
    "matmul TF32 flag": "import torch\ndef f():\n    torch.backends.cuda.matmul.allow_tf32 = True",
    "switches the harness resets": (
        'import torch\ndef f():\n    torch.set_float32_matmul_precision("high")\n    torch.set_grad_enabled(False)'),
    "a switch used as a context manager": "import torch\ndef f():\n    with torch.cuda.use_mem_pool(None):\n        pass",
    "functions named like container methods": "import torch\ndef f(x):\n    return torch.add(x, x), torch.sort(x)",
    # type(x)(...) is refused (raw-memory): for an array it is numpy.ndarray's buffer constructor.
    "class tests": "import torch\ndef f(x):\n    return isinstance(x, torch.Tensor), type(x) is torch.Tensor",
    "fused multi-tensor kernels": "import torch\ndef f(xs):\n    torch._foreach_mul_(xs, 0.5)",
    "module bound to a name": "import torch\nF = torch.nn.functional\ndef f(x):\n    G = torch.nn.functional\n    return F.relu(G.gelu(x))",
    "distributions, attention, events": (
        "import torch\ndef f(q):\n    b = torch.distributions.Beta(1.0, 1.0)\n    e = torch.cuda.Event(enable_timing=True)\n"
        "    return torch.nn.functional.scaled_dot_product_attention(q, q, q), b, e"),
    "plain format and f-strings": 'def f(x):\n    return "{} {:.2f}".format(1, 2.0) + f"{x}"',
    "constant getattr and hasattr on own objects": 'def f(m):\n    return getattr(m, "weight", None), hasattr(m, "bias")',
    "numpy and math": "import math\nimport numpy as np\ndef f():\n    return np.random.rand(3), np.linalg.norm([1.0]), math.pi",
    "type in annotations and class tests": (
        "import torch\ndef f(c: type, d: type[torch.Tensor] = None) -> type:\n    return isinstance(c, type)"),
    "a per-module registration": (
        'import torch\ndef f(m, p):\n    torch.nn.utils.parametrize.register_parametrization(m, "weight", p)'),
    "typing constructs": "from typing import Callable, Optional\nFn = Optional[Callable]",
}


@pytest.mark.parametrize("case", ALLOWED_REFERENCES)
def test_allowed_reference_passes(baseline_set, case):
    violations = check_snippet(baseline_set, ALLOWED_REFERENCES[case])
    assert violations == [], [str(v) for v in violations]


# Literal size limits: no room for a table of memorised answers.
LABELS = "3817265940" * 1000  # 10,000 characters, a stand-in for the test labels


def test_a_label_string_is_refused(baseline_set):
    violations = check_snippet(baseline_set, f'TABLE = "{LABELS}"')
    assert ("literal-size", 1) in rules_and_lines(violations)
    assert all(v.rule == "literal-size" for v in violations)


def test_a_label_tuple_is_refused(baseline_set):
    table = "(" + ", ".join(LABELS) + ")"
    violations = check_snippet(baseline_set, f"def predict_labels():\n    return {table}")
    assert ("literal-size", 2) in rules_and_lines(violations)


def test_a_table_split_into_small_literals_is_refused(baseline_set):
    chunks = [LABELS[i:i + 150] for i in range(0, 3000, 150)]
    snippet = "\n".join(f'T{i} = "{chunk}"' for i, chunk in enumerate(chunks))
    violations = check_snippet(baseline_set, snippet)
    assert rules_and_lines(violations) == [("literal-size", 0)], [str(v) for v in violations]
    assert "add up to" in violations[0].message


def test_a_long_integer_and_unicode_packing_are_refused(baseline_set):
    big = int(LABELS[:400])
    assert ("literal-size", 1) in rules_and_lines(check_snippet(baseline_set, f"PACKED = {big:#x}"))
    packed = "".join(chr(0x4E00 + int(LABELS[i:i + 4])) for i in range(0, 400, 4))  # 100 characters, 300 bytes
    assert ("literal-size", 1) in rules_and_lines(check_snippet(baseline_set, f'PACKED = "{packed}"'))


def test_docstrings_do_not_count(baseline_set):
    docstring = '"""' + "A long explanation. " * 200 + '"""'
    assert check_snippet(baseline_set, f"def helper():\n    {docstring}\n    return 1") == []


def test_shipped_literals_are_well_under_the_budget(shipped_set):
    import ast

    from evaluator.static_check.literals import MAX_LITERAL_CHARS, literal_size
    from evaluator.static_check.nodes import docstring_nodes

    for name, source in shipped_set.sources.items():
        tree = ast.parse(source)
        skip = docstring_nodes(tree)
        total = sum(literal_size(n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in skip)
        assert total < MAX_LITERAL_CHARS / 2, (name, total)  # room for mutated numbers and new settings


# The tables the check relies on must match the installed libraries and the harness.


def test_every_refused_object_exists_in_the_installed_libraries():
    from evaluator.static_check.library import MISSING, _trusted_lookup
    from evaluator.static_check.namespaces import ALLOWED_MODULES, DENIED_OBJECTS, RESET_SETTERS

    missing = [name for name in [*DENIED_OBJECTS, *RESET_SETTERS] if _trusted_lookup(name) is MISSING]
    assert missing == []
    import importlib

    for module in ALLOWED_MODULES:
        importlib.import_module(module)


def test_writable_flags_and_setters_are_the_ones_the_harness_resets():
    import functools

    import torch

    from evaluator.static_check.namespaces import WRITABLE_FLAGS
    from evaluator.torch_flags import current_torch_flags, reset_torch_flags

    reset_torch_flags(torch.device("cpu"))
    before = current_torch_flags()
    for flag in WRITABLE_FLAGS:
        owner, attr = flag.rsplit(".", 1)
        obj = functools.reduce(getattr, owner.split(".")[1:], torch)
        old = getattr(obj, attr)
        setattr(obj, attr, not old)
        reset_torch_flags(torch.device("cpu"))
        assert current_torch_flags() == before, flag
    torch.set_grad_enabled(False)
    torch.set_float32_matmul_precision("medium")
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float64)
    reset_torch_flags(torch.device("cpu"))
    assert current_torch_flags() == before


# The red-team cases of issue 11 that the static stage refuses, each for its own reason.
REDTEAM_RULES = {
    "reads the labels with torch.ops.aten.from_file": "namespace",
    "writes a file with torch.serialization.save": "namespace",
    "writes on the protocol pipe through torch.serialization.os": "namespace",
    "walks frames through torch.sys._getframe": "namespace",
    "reaches the harness's modules through torch.sys.modules": "namespace",
    "walks frames through a traceback": "dunder-access",
    "saves and loads a model with torch.jit": "namespace",
    "starts a shell through torch.utils.cpp_extension": "namespace",
    "probes the system with torch.utils.collect_env": "namespace",
    "writes through an alias of torch.serialization": "import",
    "stashes state on torch.backends": "monkeypatch",
    "stashes state on a torch class": "monkeypatch",
    "hides a lookup behind a computed getattr": "forbidden-call",
    "memorises the test labels in a literal": "literal-size",
}


def test_static_redteam_cases_are_refused_for_their_reason(baseline_set):
    from tests.redteam.cases import CASES, ISSUE_11_STATIC_CASES

    assert sorted(c.name for c in ISSUE_11_STATIC_CASES) == sorted(REDTEAM_RULES)
    for case in CASES:
        violations = check_source(case.component, baseline_set.sources[case.component] + case.code)
        if case.stage == "static":
            assert violations, case.name
            if case.name in REDTEAM_RULES:
                assert REDTEAM_RULES[case.name] in {v.rule for v in violations}, (case.name, [str(v) for v in violations])
        else:
            assert violations == [], (case.name, [str(v) for v in violations])  # those are for the later stages
