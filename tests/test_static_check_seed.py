"""The seed rule: whatever fixes, restores or forks random state is refused, by name, on any object.

As in test_static_check_raw_memory.py, snippets are placed at the top of the baseline tta module
and never run; each refusal is `seed` violations on the snippet's lines (other rules may add
theirs, such as monkeypatch for a store into torch). The names refused are checked against the
installed torch and numpy: every attribute of their generators whose name contains "seed" or
"state", pure readers aside, so that a method added by a newer version is caught.
"""

import inspect
import random

import numpy as np
import pytest
import torch

from evaluator.static_check import check_source
from evaluator.static_check.random_state import RNG_DRAWING_NAMES, RNG_STATE_READERS, sets_random_state

T = "import torch\nimport numpy as np\nfrom torch import nn\nimport torch.nn.functional as F\ndef f(t, a, hp, g, rng):\n"

REFUSED = {
    # The red team's cases: a generator's state set by a method the old list did not name, and numpy's setter.
    "torch.default_generator.graphsafe_set_state": "    torch.default_generator.graphsafe_set_state(hp['saved'])",
    "rng.bit_generator.state = saved": "    rng.bit_generator.state = hp['saved']",
    # Methods of generators the check cannot name.
    "g.graphsafe_set_state": "    g.graphsafe_set_state(hp['saved'])",
    "g.graphsafe_get_state": "    return g.graphsafe_get_state()",
    "g.clone_state": "    return g.clone_state()",
    "g.set_state": "    g.set_state(hp['saved'])",
    "g.manual_seed": "    g.manual_seed(0)",
    "g.seed": "    return g.seed()",
    "rng.setstate": "    rng.setstate(hp['saved'])",
    "a cuda generator in a tuple": "    torch.cuda.default_generators[0].graphsafe_set_state(hp['saved'])",
    "bit_generator.state set on a subscript": "    hp['rng'].bit_generator.state = hp['saved']",
    "x.state = ... on any object": "    g.state = hp['saved']",
    "x.state augmented": "    g.state |= hp['saved']",
    "state in a tuple target": "    g.state, n = hp['saved'], 1",
    "state as a for target": "    for g.state in hp['states']:\n        pass",
    "bit_generator assigned": "    rng.bit_generator = hp['bg']",
    "setattr of state": "    setattr(rng.bit_generator, 'state', hp['saved'])",
    "constant getattr of a seed method": "    getattr(g, 'manual_seed')(0)",
    "a seed method reached through __call__": "    g.manual_seed.__call__(0)",
    "a match pattern reading manual_seed": "    match g:\n        case torch.Generator(manual_seed=m):\n            m(0)",
    "a bound set_state kept for later": "    s = g.set_state\n    s(hp['saved'])",
    "a name containing seed on any object": "    g.manual_seed_for_device(0)",
    "seed_seq of a bit generator": "    return rng.bit_generator.seed_seq.spawn(2)",
    # The position in a stream set, and numpy's forks and moves.
    "a cuda generator's Philox offset set": "    torch.cuda.default_generators[0].set_offset(hp['offset'])",
    "torch.default_generator.set_offset": "    torch.default_generator.set_offset(0)",
    "torch.Generator.set_offset unbound": "    torch.Generator.set_offset(torch.default_generator, 0)",
    "a bit generator advanced": "    rng.bit_generator.advance(hp['n'])",
    "a bit generator jumped": "    return np.random.Generator(np.random.PCG64().jumped(3))",
    "a generator spawned": "    return rng.spawn(2)",
    "numpy's global bit generator replaced": "    np.random.set_bit_generator(np.random.PCG64())",
    # Library functions, by name and alias.
    "torch.manual_seed": "    torch.manual_seed(0)",
    "torch.random.fork_rng": "    with torch.random.fork_rng():\n        return torch.rand(3)",
    "torch.set_rng_state": "    torch.set_rng_state(hp['saved'])",
    "torch.cuda.set_rng_state_all": "    torch.cuda.set_rng_state_all(hp['saved'])",
    "torch.cuda.manual_seed_all": "    torch.cuda.manual_seed_all(0)",
    "torch.default_generator.set_state": "    torch.default_generator.set_state(hp['saved'])",
    "torch.default_generator.clone_state": "    return torch.default_generator.clone_state()",
    "np.random.seed": "    np.random.seed(0)",
    "np.random.set_state": "    np.random.set_state(hp['saved'])",
    "np.random.SeedSequence": "    return np.random.SeedSequence()",
    "an alias of fork_rng": "    fork = torch.random.fork_rng\n    with fork():\n        pass",
    # Generators with a fixed seed.
    "torch.Generator() (torch's fixed default seed)": "    return torch.randperm(10, generator=torch.Generator())",
    "torch.Generator on cuda": "    return torch.Generator(device='cuda')",
    "np.random.default_rng(0)": "    return np.random.default_rng(0)",
    "np.random.PCG64(0)": "    return np.random.Generator(np.random.PCG64(0))",
    "np.random.SFC64(seed=0)": "    return np.random.Generator(np.random.SFC64(seed=0))",
    "np.random.RandomState(0)": "    return np.random.RandomState(0)",
    "default_rng in a container": "    return [np.random.default_rng][0](0)",
    "default_rng as an argument": "    return list(map(np.random.default_rng, [0]))",
    "default_rng through __call__": "    return np.random.default_rng.__call__(0)",
    "an alias of default_rng": "    make = np.random.default_rng\n    return make(0)",
    "a seed keyword to any callable": "    return hp['make'](seed=0)",
    # Seeding by re-running a constructor, or through a subclass.
    "__init__ run again on a RandomState": "    r = np.random.RandomState()\n    r.__init__(5)\n    return r",
    "__init__ run again on a bit generator": "    rng.bit_generator.__init__(5)",
    "__init__ through a constant getattr": "    getattr(rng, '__init__')(5)",
    "RandomState.__init__ on an object": "    np.random.RandomState.__init__(hp['r'], 5)",
    "Generator.__init__ on an object": "    np.random.Generator.__init__(rng, hp['bg'])",
    "a subclass of RandomState": (
        "    class R(np.random.RandomState):\n        def __init__(self):\n            super().__init__(5)\n    return R()"),
    "a subclass of a bit generator": "    class B(np.random.PCG64):\n        pass\n    return B",
    "a subclass of torch.Generator": "    class G(torch.Generator):\n        pass\n    return G",
}


@pytest.mark.parametrize("case", REFUSED)
def test_random_state_construct_is_refused_as_a_seed(baseline_set, case):
    snippet = T + REFUSED[case]
    violations = check_source("tta", snippet + "\n" + baseline_set.sources["tta"])
    first, last = T.count("\n") + 1, snippet.count("\n") + 1
    seeds = [v for v in violations if v.rule == "seed" and first <= v.line <= last]
    assert seeds, [str(v) for v in violations]
    assert all(v.line >= first for v in violations), [str(v) for v in violations]  # nothing outside the snippet
    assert all(v.message and v.fix for v in violations)


def test_a_store_into_a_library_generator_is_a_monkeypatch_and_a_seed(baseline_set):
    snippet = T + "    torch.default_generator.manual_seed = hp['f']\n    np.random.state = hp['saved']"
    violations = check_source("tta", snippet + "\n" + baseline_set.sources["tta"])
    assert {("monkeypatch", 6), ("monkeypatch", 7)} <= {(v.rule, v.line) for v in violations}


ALLOWED = {
    "drawing from the global generators": (
        "    return torch.rand(3), torch.randint(0, 10, (3,)), torch.randperm(10), torch.randn_like(t), t.random_(0, 5)"),
    "reading the state": (
        "    return torch.get_rng_state(), torch.initial_seed(), torch.default_generator.get_state(), "
        "rng.bit_generator.state, np.random.get_state()"),
    "reading the cuda state": "    return torch.cuda.get_rng_state_all(), torch.cuda.initial_seed()",
    "reading offsets and the global bit generator": (
        "    return torch.default_generator.get_offset(), np.random.get_bit_generator().state, torch.default_generator.device"),
    "the global generator passed on": "    return torch.randperm(10, generator=torch.default_generator)",
    "fresh numpy generators": (
        "    r = np.random.default_rng()\n    b = np.random.Generator(np.random.PCG64())\n"
        "    return r.integers(0, 10, 3), b.random(), np.random.RandomState().rand(2), np.random.rand(2)"),
    "generator classes in annotations and type tests": (
        "    x: torch.Generator = torch.default_generator\n"
        "    return isinstance(rng, np.random.Generator), isinstance(x, torch.Generator)"),
    "optimizer state and state dicts": (
        "    class O(torch.optim.SGD):\n        def step(self):\n            for p in hp['ps']:\n"
        "                state = self.state[p]\n                state['n'] = 1\n"
        "    m = nn.Linear(2, 2)\n    m.load_state_dict(m.state_dict())\n    return O"),
    "super().__init__ and a named class's __init__": (
        "    class A(nn.Module):\n        def __init__(self):\n            super().__init__()\n"
        "    class B(nn.Module):\n        def __init__(self):\n            nn.Module.__init__(self)\n"
        "    class C(A):\n        def __init__(self):\n            A.__init__(self)\n    return C()"),
    "dropout and distributions": (
        "    return F.dropout(t, 0.1), torch.distributions.Beta(1.0, 1.0).sample(), torch.bernoulli(t)"),
}


@pytest.mark.parametrize("case", ALLOWED)
def test_ordinary_randomness_passes(baseline_set, case):
    violations = check_source("tta", T + ALLOWED[case] + "\n" + baseline_set.sources["tta"])
    assert violations == [], [str(v) for v in violations]


def _generator_attributes() -> dict[str, dict[str, object]]:
    """Every public attribute of the installed generators and their modules, by owner and name."""
    owners = {
        "torch.Generator": torch.Generator, "torch.random": torch.random, "torch.cuda.random": torch.cuda.random,
        "torch.cuda": torch.cuda, "numpy.random.BitGenerator": np.random.BitGenerator,
        "numpy.random.PCG64": np.random.PCG64, "numpy.random.Generator": np.random.Generator,
        "numpy.random.RandomState": np.random.RandomState, "numpy.random.SeedSequence": np.random.SeedSequence,
        "numpy.random": np.random, "random.Random": random.Random,
    }
    owners |= {f"numpy.random.{name}": obj for name, obj in vars(np.random).items()
               if isinstance(obj, type) and issubclass(obj, np.random.BitGenerator)}
    return {owner: {n: getattr(obj, n) for n in dir(obj) if not n.startswith("_")} for owner, obj in owners.items()}


def test_every_seed_or_state_name_of_the_installed_generators_is_refused(baseline_set):
    selected = {(owner, name): obj for owner, names in _generator_attributes().items() for name, obj in names.items()
                if ("seed" in name.lower() or "state" in name.lower()) and name not in RNG_STATE_READERS}
    names = {name for _, name in selected}
    assert {"graphsafe_set_state", "clone_state", "set_state", "manual_seed", "seed", "setstate", "state"} <= names
    for (owner, name), obj in sorted(selected.items(), key=lambda item: item[0]):
        if name == "state":  # a property: reading it is fine, assigning it is refused
            snippet = T + "    g.state = hp['saved']"
        elif isinstance(obj, type):  # numpy.random.RandomState, SeedSequence: a constructor, given a seed
            assert owner == "numpy.random", (owner, name)
            snippet = T + f"    return np.random.{name}(5)"
        else:
            assert sets_random_state(name), name
            snippet = T + f"    return g.{name}(hp['x'])"
        violations = check_source("tta", snippet + "\n" + baseline_set.sources["tta"])
        assert [v.rule for v in violations] == ["seed"], (owner, name, [str(v) for v in violations])
    # The readers left out are real names, so that a renamed getter does not pass unseen.
    public = {name for names in _generator_attributes().values() for name in names}
    assert RNG_STATE_READERS <= public


def test_fork_rng_and_the_library_seed_functions_are_refused_by_name_and_identity():
    from evaluator.static_check.library import MISSING, _trusted_lookup, resolve_library
    from evaluator.static_check.random_state import RNG_CLASSES, SEED_FUNCTIONS, SEEDED_CONSTRUCTORS

    assert [n for n in [*SEED_FUNCTIONS, *SEEDED_CONSTRUCTORS, *RNG_CLASSES] if _trusted_lookup(n) is MISSING] == []
    modules = {"torch": torch, "torch.random": torch.random, "torch.cuda": torch.cuda, "numpy.random": np.random}
    for prefix, module in modules.items():
        for name in dir(module):
            if not name.startswith("_") and sets_random_state(name):
                finding = resolve_library(f"{prefix}.{name}").finding
                assert finding is not None and finding.rule in ("seed", "namespace"), (prefix, name, finding)
    assert resolve_library("torch.random.fork_rng").finding.rule == "seed"


def test_every_numpy_bit_generator_takes_no_seed(baseline_set):
    names = [n for n, obj in vars(np.random).items() if isinstance(obj, type) and issubclass(obj, np.random.BitGenerator)]
    assert {"PCG64", "MT19937", "Philox", "SFC64"} <= set(names)
    for name in names:
        violations = check_source("tta", T + f"    return np.random.{name}(5)\n" + baseline_set.sources["tta"])
        assert [v.rule for v in violations] == ["seed"], (name, [str(v) for v in violations])
        assert check_source("tta", T + f"    return np.random.{name}()\n" + baseline_set.sources["tta"]) == [], name


def test_every_public_generator_attribute_is_refused_read_or_reviewed(baseline_set):
    """Each public name of the installed generators and random modules is classified, so that a newer one fails here.

    A name is refused by the seed rule (or, for the addresses of a bit generator's state, by the
    raw-memory and forbidden-name rules), a pure reader, or a reviewed drawing or descriptive name
    (random_state.RNG_DRAWING_NAMES). A name added by a newer torch or numpy that is none of these
    fails the test until someone decides which it is.
    """
    from evaluator.static_check.raw_memory import RAW_MEMORY_METHODS
    from evaluator.static_check.rules import FORBIDDEN_MODULE_NAMES

    rng_modules = ("torch.random", "torch.cuda.random", "numpy.random", "random")
    generators = (torch.Generator, np.random.BitGenerator, np.random.Generator, np.random.RandomState,
                  np.random.SeedSequence, random.Random)
    unclassified, names = [], set()
    for owner, attributes in _generator_attributes().items():
        if owner == "torch.cuda":
            continue  # a CUDA module: its random functions are torch.cuda.random's, enumerated there
        for name, obj in attributes.items():
            if owner in rng_modules and not _of_a_random_module(obj, rng_modules, generators):
                continue  # a module or a name the random module imports (torch, Tensor, Iterable, a test runner)
            names.add(name)
            if not (sets_random_state(name) or name in RNG_STATE_READERS or name in RNG_DRAWING_NAMES
                    or name in RAW_MEMORY_METHODS or name in FORBIDDEN_MODULE_NAMES):
                unclassified.append(f"{owner}.{name}")
    assert unclassified == [], (
        "new public attributes of a random generator: refuse them (random_state.py) or, if they only draw or "
        f"describe, list them in RNG_DRAWING_NAMES: {unclassified}")
    assert {"graphsafe_set_state", "set_offset", "spawn", "jumped", "advance", "set_bit_generator"} <= names
    # No reviewed name sets state, and the refused ones really are refused on an object the check cannot name.
    assert [n for n in RNG_DRAWING_NAMES if sets_random_state(n)] == []
    refused = sorted(n for n in names if sets_random_state(n) and n not in ("state", "bit_generator"))
    source = T + "".join(f"    g.{name}(hp['x'])\n" for name in refused) + baseline_set.sources["tta"]
    lines = {v.line for v in check_source("tta", source) if v.rule == "seed"}
    first = T.count("\n") + 1
    assert lines == set(range(first, first + len(refused))), refused


def _of_a_random_module(obj: object, rng_modules: tuple[str, ...], generators: tuple[type, ...]) -> bool:
    """A generator, a generator class, or a function defined in (or bound to a generator of) a random module."""
    if isinstance(obj, generators) or (isinstance(obj, type) and issubclass(obj, generators)):
        return True
    bound = getattr(obj, "__self__", None)
    if bound is not None and not isinstance(bound, type(np)):
        return isinstance(bound, generators)
    if not (isinstance(obj, type) or inspect.isroutine(obj)):
        return False  # an instance of another library's class (numpy.random.test, a PytestTester)
    return (getattr(obj, "__module__", None) or "").startswith(rng_modules)
