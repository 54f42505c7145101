"""The built-in mutator's program edits (evolve/search/operators): valid, named, reversible, and live.

Every operator's every edit of every shipped set must pass the static check; on the baseline set the
edited component must also pass its contract (it runs at the tiny scale), so an edit the mutator
offers is one the evaluator can train.
"""

import numpy as np
import pytest

from components import COMPONENT_NAMES, SHIPPED_SETS
from evaluator.component_set import ComponentSet
from evaluator.contracts import run_contract
from evaluator.static_check.check import check_source
from evolve.config import MutatorSettings
from evolve.search.mutator import MutatorError, mutate
from evolve.search.operators import OPERATORS, Tree, operators_for
from evolve.search.operators.edit import expression, shifted
from evolve.search.operators.cutout import Cutout
from evolve.search.operators.optimizer_update import MomentumForm, NesterovForm, UpdateScale

SETTINGS = MutatorSettings()
PROGRAM_OPERATORS = [(component, kind) for component, kinds in OPERATORS.items() for kind in kinds]


def edits_of(component: str, source: str, kind: type, seed: int = 0):
    return kind().edits(Tree(component, source), np.random.default_rng(seed))


@pytest.mark.parametrize("set_name", SHIPPED_SETS)
@pytest.mark.parametrize("component,kind", PROGRAM_OPERATORS, ids=[f"{c}-{k.name}" for c, k in PROGRAM_OPERATORS])
def test_every_program_edit_of_a_shipped_set_passes_the_static_check(set_name, component, kind):
    source = ComponentSet.shipped(set_name).sources[component]
    for edit in edits_of(component, source, kind):
        assert edit.source != source and edit.operator == kind.name
        assert edit.description.startswith(f"{kind.name}: ") and f"(line {edit.line})" in edit.site
        assert not check_source(component, edit.source), (edit.description, check_source(component, edit.source))


def test_every_component_of_the_baseline_has_a_program_operator_with_an_edit():
    baseline = ComponentSet.shipped("baseline")
    for component in COMPONENT_NAMES:
        if component == "hyperparams":
            continue  # its values are its program: `constant` and `choice`
        found = [e for kind in OPERATORS[component] for e in edits_of(component, baseline.sources[component], kind)]
        assert found, f"no program edit of the baseline's {component}"


@pytest.mark.parametrize("component", [c for c in COMPONENT_NAMES if c != "hyperparams"])
def test_program_edits_of_the_baseline_pass_their_contract(component):
    baseline = ComponentSet.shipped("baseline")
    edits = [e for kind in OPERATORS[component] for e in edits_of(component, baseline.sources[component], kind)]
    if component in ("optimizer", "tta"):
        edits = edits[:: max(1, len(edits) // 3)]  # their contracts train (1-2 s each): a spread of three or four
    for edit in edits:
        run_contract(baseline.with_component(component, edit.source), component)


@pytest.mark.parametrize("kind", [MomentumForm, NesterovForm, UpdateScale])
def test_update_form_edits_undo_themselves(kind):
    for set_name in SHIPPED_SETS:
        source = ComponentSet.shipped(set_name).sources["optimizer"]
        for edit in edits_of("optimizer", source, kind):
            back = [e.source for e in edits_of("optimizer", edit.source, kind)]
            assert source in back, (set_name, edit.description)


def test_cutout_wraps_the_yielded_images_and_unwrapping_restores_the_module():
    source = ComponentSet.shipped("baseline").sources["augmentation"]
    (wrapped,) = edits_of("augmentation", source, Cutout)
    assert "yield cutout(images[idxs], size=8)" in wrapped.source and "\n\n\ndef cutout(" in wrapped.source
    (unwrapped,) = edits_of("augmentation", wrapped.source, Cutout)
    assert unwrapped.source == source


@pytest.mark.parametrize("code,delta,expected", [
    ("steps", 1, "steps + 1"), ("steps + 1", -1, "steps"), ("steps - 1", -1, "steps - 2"), ("3", -1, "2"), ("steps + 2", 1, "steps + 3"),
])
def test_a_shifted_count_folds_into_one_offset(code, delta, expected):
    import libcst as cst

    assert cst.Module([]).code_for_node(shifted(expression(code), delta)) == expected


def test_the_optimizer_mutates_live_where_every_number_is_an_overridden_default():
    """The issue-24 regression: every literal of the optimizer is a default the builder overrides."""
    source = ComponentSet.shipped("baseline").sources["optimizer"]
    dead = {"Muon.__init__(lr=)": "every call of Muon in the set passes lr"}
    seen = set()
    for seed in range(12):
        mutation = mutate("optimizer", source, np.random.default_rng(seed), SETTINGS, dead)
        assert mutation.source != source and "Muon.__init__(lr=)" not in mutation.description
        seen.add(mutation.description.split(":")[0])
    assert len(seen) >= 3, seen  # several operators, not one


def test_a_module_with_nothing_to_change_says_so_in_one_line():
    with pytest.raises(MutatorError) as e:
        mutate("tta", "def predict(model, inputs, hp):\n    return model(inputs)\n", np.random.default_rng(0), SETTINGS, {})
    assert "\n" not in str(e.value) and "nothing the built-in mutator can change" in str(e.value)


def test_operators_for_lists_constants_first_then_the_components_own():
    names = [op.name for op in operators_for("optimizer", SETTINGS)]
    assert names[:2] == ["constant", "choice"] and {"momentum_form", "orthogonalize_steps"} <= set(names)


@pytest.mark.parametrize("component", COMPONENT_NAMES)
def test_eight_proposals_of_each_baseline_component_are_live_where_the_loop_runs_them(component):
    """What `evolve start --component X --device cpu` asks of the mutator: 8 proposals from the seed, with the
    dead sites the loop computes for the tiny CPU scale, all made (none unusable) and not all the same edit."""
    from evaluator.settings import HarnessSettings
    from evolve.search.liveness import dead_sites

    sources = ComponentSet.shipped("baseline").sources
    dead = dead_sites(component, sources[component], sources, HarnessSettings(device="cpu").effective_overrides())
    children = [mutate(component, sources[component], np.random.default_rng(seed), SETTINGS, dead) for seed in range(8)]
    assert all(not any(site in c.description for site in dead) for c in children)
    assert len({c.source for c in children}) >= 4, [c.description for c in children]
