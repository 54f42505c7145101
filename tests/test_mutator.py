import ast

import numpy as np
import pytest

from components import COMPONENT_NAMES
from components.interface import HARNESS_HYPERPARAMS
from evaluator.contracts import run_contract
from evaluator.static_check import check_source
from evolve.config import MutatorSettings
from evolve.database.canonical import source_hash as canonical_hash
from evolve.search.mutator import MutatorError, mutate, mutation_sites


def hyperparams_of(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<hyperparams>", "exec"), namespace)  # our own shipped or mutated literal text
    return namespace["HYPERPARAMS"]


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_every_baseline_component_mutates_validly(baseline_set, name):
    parent = baseline_set.sources[name]
    rng = np.random.default_rng(1)
    hashes, operators = set(), set()
    for _ in range(20):
        mutation = mutate(name, parent, rng)
        ast.parse(mutation.source)
        assert check_source(name, mutation.source) == []
        assert canonical_hash(mutation.source) != canonical_hash(parent)
        assert mutation.description and " -> " in mutation.description
        (change,) = mutation.changes
        operators.add(change.operator)
        changed = [a for a, b in zip(parent.splitlines(), mutation.source.splitlines()) if a != b]
        if change.operator in ("constant", "choice"):  # only the changed literal differs
            assert len(changed) == 1 and len(parent.splitlines()) == len(mutation.source.splitlines())
        else:  # a small edit at the named line (cutout also appends its function)
            assert parent.splitlines()[change.line - 1] != mutation.source.splitlines()[change.line - 1]
        hashes.add(canonical_hash(mutation.source))
    assert len(hashes) > 1  # not the same child every time
    if name != "hyperparams":  # every other component has program edits beside its numbers
        assert operators - {"constant", "choice"}, operators


def test_deterministic_given_the_seed(baseline_set):
    source = baseline_set.sources["hyperparams"]
    first = [mutate("hyperparams", source, np.random.default_rng(7)).source for _ in range(3)]
    again = [mutate("hyperparams", source, np.random.default_rng(7)).source for _ in range(3)]
    assert first == again


def test_hyperparams_keep_types_and_harness_rules(baseline_set):
    parent_source = baseline_set.sources["hyperparams"]
    parent = hyperparams_of(parent_source)
    rng = np.random.default_rng(3)
    settings = MutatorSettings(changes=4)
    seen_keys = set()
    for _ in range(150):
        mutation = mutate("hyperparams", parent_source, rng, settings)
        child = hyperparams_of(mutation.source)
        assert child.keys() == parent.keys()
        assert sum(child[k] != parent[k] or type(child[k]) is not type(parent[k]) for k in parent) == 4
        for key, value in child.items():
            assert type(value) is type(parent[key]), key
            listed = key in ("flip", "translate", "tta_level", "whiten_kernel_size")  # ALTERNATIVES
            if isinstance(value, (int, float)) and not isinstance(value, bool) and parent[key] > 0 and not listed:
                assert value > 0, key
        assert child["batch_size"] % 8 == 0 and child["batch_size"] >= 8
        assert 0 <= child["label_smoothing"] < 1 and child["epochs"] > 0
        for key in ("sgd_momentum", "muon_momentum", "batchnorm_momentum"):
            assert 0 < child[key] < 1
        assert child["tta_level"] in (0, 1, 2) and child["translate"] in (0, 1, 2, 3)
        seen_keys |= {k for k in parent if child[k] != parent[k]}
    assert set(HARNESS_HYPERPARAMS) <= seen_keys and {"flip", "tta_level", "muon_lr", "width1"} <= seen_keys


def test_mutated_hyperparams_pass_the_contracts(baseline_set):
    rng = np.random.default_rng(11)
    for _ in range(2):
        mutation = mutate("hyperparams", baseline_set.sources["hyperparams"], rng, MutatorSettings(changes=3))
        candidate = baseline_set.with_component("hyperparams", mutation.source)
        run_contract(candidate, "hyperparams")
        run_contract(candidate, "tta")


MODULE = '''
import torch

SCALE = 2.5
SIZES = (64, 128)
INDEX = 1
MODE = "mean"
ALTERNATIVES = {"MODE": ["mean", "max", "sum"]}


def f(x, dim=-1, eps=1e-5, flag=True, steps=3):
    y = x.sum(dim=1) * 0.25 + x ** 0.5 - 2
    return torch.nn.functional.dropout(y, p=0.1, training=True).mean(dim=0)
'''


def test_sites_skip_flags_indices_and_structure():
    names = [s.name for s in mutation_sites("tta", MODULE)]
    assert set(names) == {
        "SCALE", "SIZES[0]", "SIZES[1]", "MODE", "f(eps=)", "f(steps=)", "f (line 12, column 23)",
        "f: torch.nn.functional.dropout(p=) (line 13)",
    }


def test_alternatives_switch_to_another_listed_option():
    rng = np.random.default_rng(0)
    settings = MutatorSettings(choice_probability=1.0)
    values = {mutate("tta", MODULE, rng, settings).changes[0].new for _ in range(30)}
    assert values == {"'max'", "'sum'"}


@pytest.mark.parametrize(
    "alternatives, message",
    [
        ('ALTERNATIVES = {"MODE": ["mean"]}', "at least two options"),
        ('ALTERNATIVES = {"NOPE": [1, 2]}', "names no module-level assignment"),
        ("ALTERNATIVES = {'MODE': [SCALE, 1]}", "not a literal dict"),
    ],
)
def test_malformed_alternatives_are_reported(alternatives, message):
    source = MODULE.replace('ALTERNATIVES = {"MODE": ["mean", "max", "sum"]}', alternatives)
    with pytest.raises(MutatorError, match=message):
        mutate("tta", source, np.random.default_rng(0))


def test_nothing_to_mutate_and_bad_input():
    with pytest.raises(MutatorError, match="nothing the built-in mutator can change"):
        mutate("tta", "def predict(model, inputs, hp):\n    return model(inputs[0:1])\n", np.random.default_rng(0))
    with pytest.raises(MutatorError, match="line 1"):
        mutate("tta", "def predict(:\n", np.random.default_rng(0))
    with pytest.raises(MutatorError, match="unknown component"):
        mutation_sites("loss", "X = 2.0\n")


def test_float_and_int_rules():
    rng = np.random.default_rng(5)
    for _ in range(200):
        child = mutate("tta", "A = 0.9\nB = -4.5\nC = 2000\nD = 3\n", rng, MutatorSettings(changes=4)).source
        values = {}
        exec(child, values)
        assert 0 < values["A"] < 1 and values["B"] < 0 and values["C"] % 8 == 0 and values["D"] >= 2
        assert isinstance(values["C"], int) and isinstance(values["B"], float)


def test_an_int_the_mutator_writes_stays_a_site_it_can_change_again():
    """kernel_size 2 -> 1 left the architecture with no site: every later child of that lineage was unusable."""
    source = "import torch\n\ndef build(c):\n    return torch.nn.Conv2d(c, c, kernel_size=2)\n"
    rng = np.random.default_rng(0)
    for _ in range(300):
        child = mutate("architecture", source, rng).source
        assert "kernel_size=1)" not in child and "kernel_size=0)" not in child
        assert mutation_sites("architecture", child), child  # the child can be mutated again
    for _ in range(300):  # a batch size (granularity 8) never goes below 8
        assert int(mutate("hyperparams", 'HYPERPARAMS = {"batch_size": 8}\n', rng).source.split(": ")[1].rstrip("}\n")) >= 8
