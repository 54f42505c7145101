"""The static check passes the shipped components and names rule and line for each way out of the contract.

Malicious snippets are prepended to the baseline tta module, so that the interface is satisfied and
the snippet's own line numbers are the reported ones. Nothing here executes the snippets.
"""

import pytest

from components import COMPONENT_NAMES
from evaluator.sandbox.static_check import Violation, check_source


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
        "import torch\ndef batches(x):\n    return torch.utils.data.DataLoader(x)", [("forbidden-call", 3)]),
    "computed getattr on torch": ("import torch\ndef pick(name):\n    return getattr(torch, name)", [("forbidden-call", 3)]),
    "private torch bindings": ("import torch\ndef f():\n    return torch._C._get_tracing_state()", [("forbidden-call", 3)]),
    "storage from_file": ('def leak(t):\n    return t.untyped_storage().from_file("x.bin")', [("forbidden-call", 2)]),
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
        "import torch\ndef patch():\n    x = torch\n    while True:\n        x = x.cuda\n        x.synchronize = None",
        [("monkeypatch", 6)]),
    # Seeds.
    "torch.manual_seed": ("import torch\ndef lucky():\n    torch.manual_seed(0)", [("seed", 3)]),
    "seeded generator": ("import torch\ndef lucky():\n    return torch.Generator().manual_seed(1234)", [("seed", 3)]),
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
    "script code at module level": ('if __name__ == "__main__":\n    pass', [("global-state", 1)]),
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
    "a library module kept on self is not patched": (
        "import torch\nclass Views:\n    def __init__(self):\n        self.fn = torch.nn.functional\n        self.scale = 2"),
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
