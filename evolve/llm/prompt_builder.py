"""Chat messages for the LLM, filled from the templates in prompts/ (or the user's `--prompts DIR`).

Templates are plain text with Python format placeholders (`{component}`; a literal brace is
written `{{`). Each template has placeholders it must contain (without the parent's source a
mutation prompt is useless) and may use only the ones the builder provides; anything else is a
PromptError naming the template, the placeholder and the ones available.

- system.txt: the task, the measurement, the component's interface and the rules.
- mutation.txt: the parent's source and results, inspirations, the evaluator's feedback, and how
  to answer (SEARCH/REPLACE blocks or a full module, by `llm.output_format`).
- repair.txt: a follow-up when a reply could not be applied (the PatchError's exact mismatch).
"""

import re
import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from components import SETS_DIR
from components.interface import COMPONENT_NAMES, REQUIRED_NAMES
from evaluator.results import StageVerdict, Summary
from evaluator.settings import ScoreSettings
from prompts import TEMPLATES_DIR, load_template

CandidateId = int | str

# Per template: (placeholders it must contain, placeholders it may contain).
PLACEHOLDERS: dict[str, tuple[set[str], set[str]]] = {
    "system": ({"component", "interface"}, {"target_percent", "confidence_percent", "gpu"}),
    "mutation": (
        {"component", "parent_source", "output_instructions"},
        {"parent_stats", "parent_change", "inspirations", "feedback", "hyperparams", "siblings", "gpu", "target_percent",
         "confidence_percent", "interface"},
    ),
    "repair": ({"error", "output_instructions"}, {"component"}),
}

OUTPUT_INSTRUCTIONS = {
    "diff": (
        "Answer with one or more SEARCH/REPLACE blocks against the parent, each in this form:\n"
        "<<<<<<< SEARCH\n"
        "lines copied exactly from the parent, indentation included, enough to match only once\n"
        "=======\n"
        "the new lines\n"
        ">>>>>>> REPLACE\n"
        "Blocks apply in order. Start with one line that says what you change and why; put no explanation inside the blocks."
    ),
    "full": (
        "Answer with the complete new module in exactly one ```python fence, every required name included. "
        "Start with one line that says what you change and why, before the fence."
    ),
    "either": (
        "Answer either with SEARCH/REPLACE blocks against the parent (for a local change), each in this form:\n"
        "<<<<<<< SEARCH\n"
        "lines copied exactly from the parent, indentation included, enough to match only once\n"
        "=======\n"
        "the new lines\n"
        ">>>>>>> REPLACE\n"
        "or with the complete new module in exactly one ```python fence (for a rewrite), not both. "
        "Start with one line that says what you change and why."
    ),
}


class PromptError(ValueError):
    """A template that lacks a required placeholder, uses an unknown one, or does not parse."""


class PromptCandidate(BaseModel):
    """A candidate as the prompt shows it: its source of the component and its results."""

    id: CandidateId
    source: str
    summary: Summary | None = None
    status: str = "evaluated"
    component: str = ""  # the component its own change replaced
    description: str = ""  # what changed relative to its own parent, and why
    diff: str = ""  # its unified diff against its parent's module


class Feedback(BaseModel):
    """What the evaluator said about the parent and its recent children."""

    stages: list[StageVerdict] = []  # verdicts of the parent's evaluation
    flags: list[str] = []  # warnings such as clock disagreement
    recent_failures: list[str] = []  # e.g. "child 42 (lr: 0.24 -> 0.5): rejected at contracts: ..."
    profile: str | None = None  # the profiler's summary, when one was taken
    skips: list[str] = []  # near-copies of this parent skipped, settings that cannot take effect here


class PromptInputs(BaseModel):
    component: str
    parent: PromptCandidate
    inspirations: list[PromptCandidate] = []
    feedback: Feedback = Feedback()
    gpu: str = "an NVIDIA GPU"
    score: ScoreSettings = ScoreSettings()
    output_format: Literal["diff", "full", "either"] = "diff"
    hyperparams: dict[str, int | float | bool] | None = None  # the `hp` every component receives
    siblings: dict[str, str] = {}  # the other components of the set -> their interfaces


def fill_template(name: str, values: dict[str, str], directory: Path | None = None) -> str:
    """Template `name` with its placeholders filled; PromptError for a broken template."""
    text = load_template(name, directory)
    path = (directory or TEMPLATES_DIR) / f"{name}.txt"
    required, optional = PLACEHOLDERS[name]
    try:
        used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as e:
        raise PromptError(f"{path}: {e}; write a literal brace as {{{{ or }}}}") from None
    unknown = sorted(used - required - optional)
    if unknown:
        raise PromptError(
            f"{path} uses {', '.join('{' + u + '}' for u in unknown)}, which the builder does not provide; "
            f"available: {', '.join('{' + a + '}' for a in sorted(required | optional))}"
        )
    missing = sorted(required - used)
    if missing:
        raise PromptError(
            f"{path} lacks {', '.join('{' + m + '}' for m in missing)}: without it the model misses what it needs; "
            f"add it (see the shipped prompts/{name}.txt)"
        )
    return text.format(**{k: v for k, v in values.items() if k in used})


def component_interface(component: str) -> str:
    """The component's interface and contract from components/README.md, and the harness's calls."""
    if component not in COMPONENT_NAMES:
        raise PromptError(f"unknown component {component!r}: choose one of {', '.join(COMPONENT_NAMES)}")
    readme = (SETS_DIR / "README.md").read_text()
    lines = []
    row = next((line for line in readme.splitlines() if line.startswith(f"| `{component}` |")), None)
    if row is not None:
        _, must_define, contract = [cell.strip().replace("\\|", "|") for cell in row.strip().strip("|").split(" | ")][:3]
        lines += [f"It must define: {must_define}", f"Contract (checked before any GPU time): {contract}"]
    else:
        signatures = [
            f"{name}({', '.join(params)})" if params is not None else name
            for name, params in REQUIRED_NAMES[component].items()
        ]
        lines.append(f"It must define: {', '.join(signatures)}")
    calls = re.search(r"## What the harness calls, in order\n(.*?)```\n(.*?)```", readme, re.S)
    if calls:
        lines += ["", "What the harness calls, in order, each run:", calls.group(2).rstrip()]
    return "\n".join(lines)


def _percent(x: float) -> str:
    return f"{100 * x:.2f}%"


def describe_candidate(candidate: PromptCandidate) -> str:
    """One line of results: score, time, accuracy and its lower bound."""
    s = candidate.summary
    if s is None:
        return f"candidate {candidate.id}: {candidate.status}, no timed runs"
    return (
        f"candidate {candidate.id}: score {s.score:.4f}; time {s.time_mean:.4f} s ± {s.time_std:.4f}; "
        f"accuracy {_percent(s.accuracy_mean)} ± {_percent(s.accuracy_std)}, "
        f"{100 * s.confidence:.0f}% lower bound {_percent(s.accuracy_lower_bound)} (target {_percent(s.target)}); "
        f"{s.runs} runs"
    )


MAX_DIFF_LINES = 60


def change_text(candidate: PromptCandidate) -> str:
    """What changed against its own parent and why, with the diff (cut to MAX_DIFF_LINES lines)."""
    where = f" ({candidate.component})" if candidate.component else ""
    parts = [f"Its change{where}: {candidate.description}"] if candidate.description else []
    if candidate.diff.strip():
        lines = candidate.diff.rstrip().splitlines()
        cut = lines[:MAX_DIFF_LINES] + ([f"... ({len(lines) - MAX_DIFF_LINES} more lines)"] if len(lines) > MAX_DIFF_LINES else [])
        parts.append("Its diff against its parent:\n```diff\n" + "\n".join(cut) + "\n```")
    return "\n".join(parts)


def _inspirations_text(inspirations: list[PromptCandidate], component: str) -> str:
    if not inspirations:
        return "(none yet)"
    blocks = []
    for candidate in inspirations:
        change = change_text(candidate)
        change = f"\n{change}" if change else ""
        blocks.append(f"- {describe_candidate(candidate)}{change}\n```python\n{candidate.source.rstrip()}\n```")
    return "\n\n".join(blocks)


def _siblings_text(siblings: dict[str, str]) -> str:
    if not siblings:
        return "(none: this component stands alone)"
    return "\n\n".join(f"`{name}`:\n```python\n{interface.rstrip()}\n```" for name, interface in siblings.items())


def _feedback_text(feedback: Feedback) -> str:
    parts = []
    for verdict in feedback.stages:
        line = f"- {verdict.stage}: {verdict.status} ({verdict.seconds:.1f} s)"
        if verdict.message:
            line += "\n  " + verdict.message.replace("\n", "\n  ")
        parts.append(line)
    parts += [f"- warning: {flag}" for flag in feedback.flags]
    if feedback.recent_failures:
        parts.append("Recent children of this parent that did not work:")
        parts += [f"- {failure}" for failure in feedback.recent_failures]
    if feedback.profile:
        parts += ["Profile of the parent's timed run:", feedback.profile.rstrip()]
    parts += [f"- {note}" for note in feedback.skips]
    return "\n".join(parts) if parts else "(nothing beyond the results above)"


def _hyperparams_text(hyperparams: dict[str, int | float | bool] | None) -> str:
    if not hyperparams:
        return "(not readable from the hyperparams component: see its module)"
    return "\n".join(f"  {key} = {value!r}" for key, value in hyperparams.items())


def build_messages(inputs: PromptInputs, templates_dir: Path | None = None) -> list[dict[str, str]]:
    """The system and user messages asking for a child of `inputs.parent`."""
    common = {
        "component": inputs.component,
        "interface": component_interface(inputs.component),
        "gpu": inputs.gpu,
        "target_percent": f"{100 * inputs.score.target:g}",
        "confidence_percent": f"{100 * inputs.score.confidence:g}",
    }
    user = {
        **common,
        "parent_source": inputs.parent.source.rstrip(),
        "parent_stats": describe_candidate(inputs.parent),
        "parent_change": change_text(inputs.parent) or "(the seed set: unchanged)",
        "siblings": _siblings_text(inputs.siblings),
        "inspirations": _inspirations_text(inputs.inspirations, inputs.component),
        "feedback": _feedback_text(inputs.feedback),
        "hyperparams": _hyperparams_text(inputs.hyperparams),
        "output_instructions": OUTPUT_INSTRUCTIONS[inputs.output_format],
    }
    return [
        {"role": "system", "content": fill_template("system", common, templates_dir)},
        {"role": "user", "content": fill_template("mutation", user, templates_dir)},
    ]


def build_repair_messages(
    messages: list[dict[str, str]],
    reply: str,
    error: str,
    component: str,
    output_format: Literal["diff", "full", "either"] = "diff",
    templates_dir: Path | None = None,
) -> list[dict[str, str]]:
    """The conversation so far, the model's reply, and a request to repair it given `error`."""
    values = {"component": component, "error": error, "output_instructions": OUTPUT_INSTRUCTIONS[output_format]}
    return [*messages, {"role": "assistant", "content": reply},
            {"role": "user", "content": fill_template("repair", values, templates_dir)}]
