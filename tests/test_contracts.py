"""The contract tests pass on the shipped sets and fail on components that break them."""

import pytest

from components import COMPONENT_NAMES
from evaluator.contracts import ContractFailure, run_contract


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_shipped_set_meets_contract(shipped_set, name):
    run_contract(shipped_set, name)


def broken(baseline_set, name, old, new):
    source = baseline_set.sources[name]
    assert old in source, f"test fixture out of date: {old!r} not in {name}"
    return baseline_set.with_component(name, source.replace(old, new))


BREAKAGES = {
    "newton_schulz: returns its input unscaled": (
        "newton_schulz", "    for _ in range(steps):", "    return G * 10\n    for _ in range(steps):"),
    "optimizer: never updates": ("optimizer", "        for opt in self.optimizers:\n            opt.step()", "        pass"),
    "optimizer: state not saved": (
        "optimizer", '        self.sgd.load_state_dict(state["sgd"])\n        self.muon.load_state_dict(state["muon"])', "        pass"),
    "architecture: wrong number of classes": ("architecture", 'nn.Linear(hp["width3"], 10', 'nn.Linear(hp["width3"], 9'),
    "architecture: reset keeps weights": ("architecture", "                m.reset_parameters()", "                pass"),
    "augmentation: repeats the first batch": (
        "augmentation", "            idxs = order[i * self.batch_size : (i + 1) * self.batch_size]",
        "            idxs = order[: self.batch_size]"),
    "augmentation: random flip instead of alternating": (
        "augmentation", "        if self.flip and self.epoch % 2 == 1:\n            images = images.flip(-1)",
        "        if self.flip:\n            images = random_flip(images)"),
    "tta: drops the last chunk": ("tta", "for chunk in inputs.split(hp[\"tta_batch_size\"])])",
                                  "for chunk in inputs.split(hp[\"tta_batch_size\"])[:1]])"),
    "hyperparams: harness key missing": ("hyperparams", '    "label_smoothing": 0.2,\n', ""),
}


@pytest.mark.parametrize("case", BREAKAGES)
def test_broken_component_fails_contract(baseline_set, case):
    name, old, new = BREAKAGES[case]
    with pytest.raises(ContractFailure):
        run_contract(broken(baseline_set, name, old, new), name)
