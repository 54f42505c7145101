import shutil

import pytest

from evaluator.results import StageVerdict, Summary
from evolve.llm.prompt_builder import (
    Feedback,
    PromptCandidate,
    PromptError,
    PromptInputs,
    build_messages,
    build_repair_messages,
    component_interface,
    fill_template,
)
from evolve.llm.reply import PatchError, apply_blocks, parse_reply
from prompts import TEMPLATES_DIR

SUMMARY = Summary(
    runs=5, accuracy_mean=0.9412, accuracy_std=0.0013, accuracy_ci_low=0.9396, accuracy_ci_high=0.9428,
    accuracy_lower_bound=0.9400, time_mean=3.4567, time_std=0.0123, confidence=0.95, target=0.94,
    penalty_base=1e8, score=-3.4567,
)


def inputs(baseline_set, **kw) -> PromptInputs:
    source = baseline_set.sources["optimizer"]
    return PromptInputs(
        component="optimizer",
        parent=PromptCandidate(id=7, source=source, summary=SUMMARY),
        inspirations=[
            PromptCandidate(id=3, source=source.replace("0.0", "0.1"), summary=SUMMARY.model_copy(update={"score": -3.3}),
                            description="lr: 0.24 -> 0.27"),
        ],
        feedback=Feedback(
            stages=[StageVerdict(stage="static", status="passed", seconds=0.01)],
            recent_failures=["child 9 (momentum 0.6 -> 0.9): rejected at contracts: loss did not decrease"],
            profile="aten::convolution 41% of device time",
            flags=["run 2: device-event time differs"],
        ),
        gpu="NVIDIA H100 80GB HBM3",
        hyperparams={"muon_lr": 0.24, "flip": True},
        **kw,
    )


def test_messages_hold_everything_the_model_needs(baseline_set):
    system, user = build_messages(inputs(baseline_set))
    assert system["role"] == "system" and user["role"] == "user"
    assert "NVIDIA H100 80GB HBM3" in system["content"] and "94%" in system["content"]
    assert "build_optimizer(model, hp, total_steps, steps_per_epoch, orthogonalize)" in system["content"]
    assert "steps lower the loss of a fixed batch" in system["content"]  # the contract from the README
    text = user["content"]
    assert baseline_set.sources["optimizer"].rstrip() in text
    assert "candidate 7: score -3.4567; time 3.4567 s ± 0.0123; accuracy 94.12% ± 0.13%" in text
    assert "lower bound 94.00%" in text and "candidate 3: score -3.3000" in text and "lr: 0.24 -> 0.27" in text
    assert "loss did not decrease" in text and "aten::convolution 41%" in text and "device-event time" in text
    assert "muon_lr = 0.24" in text
    assert "<<<<<<< SEARCH" in text and "{" + "parent_source}" not in text


def test_output_format_changes_the_instructions(baseline_set):
    full = build_messages(inputs(baseline_set, output_format="full"))[1]["content"]
    assert "exactly one ```python fence" in full and "<<<<<<< SEARCH" not in full
    either = build_messages(inputs(baseline_set, output_format="either"))[1]["content"]
    assert "<<<<<<< SEARCH" in either and "```python fence" in either


def test_repair_quotes_the_mismatch(baseline_set):
    messages = build_messages(inputs(baseline_set))
    reply = "<<<<<<< SEARCH\n    def step(self, stp: int) -> None:\n=======\n    def step(self, step):\n>>>>>>> REPLACE\n"
    with pytest.raises(PatchError) as info:
        apply_blocks(baseline_set.sources["optimizer"], parse_reply(reply).blocks)
    repaired = build_repair_messages(messages, reply, str(info.value), "optimizer")
    assert repaired[:2] == messages and repaired[2] == {"role": "assistant", "content": reply}
    assert "def step(self, step: int) -> None:" in repaired[3]["content"]  # the closest region of the parent
    assert "could not be applied to the parent `optimizer` module" in repaired[3]["content"]


def test_user_templates(tmp_path, baseline_set):
    for name in ("system", "mutation", "repair"):
        shutil.copy(TEMPLATES_DIR / f"{name}.txt", tmp_path)
    (tmp_path / "mutation.txt").write_text("{component}\n{parent_source}\n{output_instructions}\nMy own words.")
    assert build_messages(inputs(baseline_set), tmp_path)[1]["content"].endswith("My own words.")

    (tmp_path / "mutation.txt").write_text("{component}\n{output_instructions}\n")
    with pytest.raises(PromptError, match=r"mutation.txt lacks \{parent_source\}"):
        build_messages(inputs(baseline_set), tmp_path)
    (tmp_path / "mutation.txt").write_text("{component} {parent_source} {output_instructions} {parent_score}")
    with pytest.raises(PromptError, match=r"uses \{parent_score\}, which the builder does not provide; available: "):
        build_messages(inputs(baseline_set), tmp_path)
    (tmp_path / "mutation.txt").write_text("{component} {parent_source} {output_instructions} use a dict {")
    with pytest.raises(PromptError, match=r"write a literal brace as \{\{"):
        build_messages(inputs(baseline_set), tmp_path)
    (tmp_path / "mutation.txt").unlink()
    with pytest.raises(FileNotFoundError, match="copy the shipped one"):
        build_messages(inputs(baseline_set), tmp_path)


def test_shipped_templates_are_valid():
    values = {name: "x" for name in ("component", "interface", "gpu", "target_percent", "confidence_percent", "error",
                                      "output_instructions", "parent_source", "parent_stats", "inspirations",
                                      "feedback", "hyperparams", "parent_change", "siblings")}
    for name in ("system", "mutation", "repair"):
        assert "{" not in fill_template(name, values)


def test_every_component_has_an_interface_text():
    from components import COMPONENT_NAMES

    for name in COMPONENT_NAMES:
        assert "It must define:" in component_interface(name) and "clock starts" in component_interface(name)
    with pytest.raises(PromptError):
        component_interface("loss")
