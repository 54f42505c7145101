"""Export a component set as one standalone speedrun script, with its provenance as a header.

The script is assembled, never written by hand: the six components' source texts are embedded
as strings and executed into a module each (as the harness loads them, so names cannot collide
and each text stays byte-identical to what was evaluated, checkable against its sha256 in the
header); the harness's data loading, clock and training loop (evaluator/data.py, timing.py,
training.py) and the command line (evolve/export/standalone.py) are copied verbatim, with their imports
gathered at the top and their imports from this project dropped, since the names they bring in
are defined in the same file. The script therefore trains exactly as the harness does, and
depends only on torch and numpy (torchvision for the download, imported lazily).
"""

import ast
import hashlib
import inspect
import re
import textwrap
import types
from dataclasses import dataclass
from datetime import date
from importlib import metadata

from pydantic import BaseModel, Field

from components import COMPONENT_NAMES
from evaluator import data, timing, training
from evaluator.component_set import ComponentSet
from evaluator.results import RunSample, Summary
from evaluator.settings import SCALES
from evolve.export import standalone
from evaluator.python_parse import parse_python

PROJECT_PACKAGES = ("components", "evaluator", "evolve")
# The modules copied into the script, in order, with the title of their section.
INLINED_MODULES: tuple[tuple[str, types.ModuleType], ...] = (
    ("Data: CIFAR-10 through torchvision, a local .npz, or synthetic", data),
    ("Clock", timing),
    ("Training: the loop the harness times", training),
    ("Statistics and command line", standalone),
)
THIRD_PARTY = ("numpy", "torch")


class ExportError(RuntimeError):
    """A component set or candidate that cannot be exported; the message names the fix."""


class Ancestor(BaseModel):
    id: int | str
    description: str = ""


class ExportStatistics(BaseModel):
    """What the evaluator measured for the exported set."""

    runs: int
    accuracy_mean: float
    accuracy_std: float
    accuracy_ci_low: float
    accuracy_ci_high: float
    accuracy_lower_bound: float
    confidence: float
    time_mean: float
    time_std: float
    device: str = Field(description="the GPU (or CPU) the runs were timed on")
    torch_version: str
    data: str | None = Field(None, description="what the runs trained on: cifar10, synthetic, or a .npz file")
    scale: str | None = Field(None, description="full recipe or tiny network (evaluator/settings.py SCALES)")
    hyperparams: dict[str, float | int | bool] = Field(default_factory=dict, description="harness overrides of HYPERPARAMS")

    @classmethod
    def from_summary(cls, summary: Summary, samples: list[RunSample], **context: object) -> "ExportStatistics":
        """The summary's numbers; `context` names the data, scale and overrides they were measured with."""
        if not samples:
            raise ExportError("statistics need at least one timed run")
        return cls(
            **summary.model_dump(include=set(cls.model_fields) - {"device", "torch_version", "data", "scale", "hyperparams"}),
            device=samples[0].device_name,
            torch_version=samples[0].torch_version,
            **context,
        )

    def conditions(self) -> str:
        """On what the numbers were measured, with a warning where that is not the speedrun's own setting."""
        if self.data is None:
            return "data and scale not recorded"
        data = "CIFAR-10" if self.data == "cifar10" else ("synthetic data" if self.data == "synthetic" else f"data from {self.data}")
        text = f"{data}, {self.scale or 'default'} scale"
        if self.hyperparams:
            text += ", overrides " + ", ".join(f"{k}={v}" for k, v in self.hyperparams.items())
        if self.data != "cifar10" or self.scale == "tiny" or self.hyperparams:
            text += " (not the speedrun's setting: these numbers say nothing about CIFAR-10 at full scale)"
        return text


class Provenance(BaseModel):
    """Where an exported script comes from; rendered as its header comment."""

    experiment_id: int | str | None = None
    candidate_id: int | str | None = None
    ancestors: list[Ancestor] = Field(default_factory=list, description="the lineage, oldest first")
    component_hashes: dict[str, str] = Field(description="sha256 of each component's source text")
    statistics: ExportStatistics | None = None
    date: str = Field(default_factory=lambda: date.today().isoformat())
    project_version: str = Field(default_factory=lambda: metadata.version("cifar-evolve"))

    @classmethod
    def for_set(cls, component_set: ComponentSet, **fields) -> "Provenance":
        """The provenance of this set, its component hashes computed here."""
        return cls(component_hashes=component_hashes(component_set), **fields)


def component_hashes(component_set: ComponentSet) -> dict[str, str]:
    return {name: hashlib.sha256(component_set.sources[name].encode()).hexdigest() for name in COMPONENT_NAMES}


@dataclass
class InlinedModule:
    """A module's text split for copying: its docstring, its imports, and the rest verbatim."""

    path: str
    docstring: str
    imports: list[ast.stmt]
    body: str
    defines: set[str]
    needs: set[str]  # names it imports from this project, which other sections must define


def split_module(module: types.ModuleType) -> InlinedModule:
    source = inspect.getsource(module)
    tree = parse_python(source)
    statements = list(tree.body)
    docstring = ast.get_docstring(tree) or ""
    if docstring:
        statements.pop(0)
    imports = []
    while statements and isinstance(statements[0], (ast.Import, ast.ImportFrom)):
        imports.append(statements.pop(0))
    path = f"{module.__name__.replace('.', '/')}.py"
    if any(isinstance(s, (ast.Import, ast.ImportFrom)) for s in statements):
        raise ExportError(f"{path}: imports must all stand at the top of the module for it to be inlined")
    needs, kept = set(), []
    for statement in imports:
        root = (statement.module if isinstance(statement, ast.ImportFrom) else statement.names[0].name).split(".")[0]
        if root not in PROJECT_PACKAGES:
            kept.append(statement)
        elif isinstance(statement, ast.ImportFrom) and statement.module != root:
            needs |= {alias.asname or alias.name for alias in statement.names}
        else:
            raise ExportError(f"{path}: import names from project modules (from evaluator.x import y) so it can be inlined")
    body = "\n".join(source.splitlines()[statements[0].lineno - 1 :]) + "\n" if statements else ""
    return InlinedModule(path, docstring, kept, body, top_level_names(statements), needs)


def top_level_names(statements: list[ast.stmt]) -> set[str]:
    names = set()
    for statement in statements:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def import_block(statements: list[ast.stmt]) -> str:
    """The inlined modules' imports, merged: standard library first, then numpy and torch."""
    plain, from_imports = set(), {}
    for statement in statements:
        if isinstance(statement, ast.Import):
            plain |= {ast.unparse(ast.Import(names=[alias])) for alias in statement.names}
        else:
            from_imports.setdefault(statement.module, set()).update(
                (alias.name, alias.asname) for alias in statement.names
            )
    lines = list(plain)
    for module, names in from_imports.items():
        listed = ", ".join(name if asname is None else f"{name} as {asname}" for name, asname in sorted(names))
        lines.append(f"from {module} import {listed}")

    def key(line: str) -> tuple[bool, bool, str]:
        module = line.split()[1]
        return module.split(".")[0] in THIRD_PARTY, line.startswith("from"), module

    groups = [[line for line in sorted(lines, key=key) if key(line)[0] == third_party] for third_party in (False, True)]
    return "\n\n".join("\n".join(group) for group in groups if group)


def string_literal(text: str) -> str:
    """The most readable literal that evaluates to exactly `text`: raw triple quotes if possible."""
    for quote in ("'''", '"""'):
        literal = f"r{quote}{text}{quote}"
        try:
            if ast.literal_eval(literal) == text:
                return literal
        except (SyntaxError, ValueError):
            continue
    return repr(text)


def banner(title: str) -> str:
    rule = "# " + "-" * 96
    return f"{rule}\n# {title}\n{rule}\n"


def comment(text: str, indent: str = "") -> str:
    """Free text (descriptions may come from an LLM) as wrapped comment lines, paragraph by paragraph."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())] or [""]
    lines = []
    for paragraph in paragraphs:
        if lines:
            lines.append("#")
        wrapped = textwrap.wrap(paragraph, width=96 - len(indent)) or [""]
        lines += [f"# {indent}{line}".rstrip() for line in wrapped]
    return "\n".join(lines)


def provenance_header(provenance: Provenance, origin: str) -> str:
    lines = [
        comment(f"CIFAR-10 training speedrun exported by cifar-evolve {provenance.project_version} on {provenance.date}."),
        comment(f"Component set: {origin or 'unnamed'}."),
        "#",
        "# Provenance",
    ]
    if provenance.experiment_id is not None or provenance.candidate_id is not None:
        lines.append(comment(f"experiment {provenance.experiment_id}, candidate {provenance.candidate_id}", "  "))
    if provenance.ancestors:
        lines.append("#   lineage, oldest first:")
        lines += [comment(f"{a.id}: {a.description}" if a.description else str(a.id), "    ") for a in provenance.ancestors]
    lines.append("#   sha256 of each component's source text, as embedded below:")
    lines += [f"#     {name:<14} {digest}" for name, digest in provenance.component_hashes.items()]
    s = provenance.statistics
    if s is None:
        lines.append("#   not yet measured by the evaluator")
    else:
        level = f"{100 * s.confidence:.0f}%"
        lines += [
            comment(f"measured by the evaluator: {s.runs} runs on {s.device}, torch {s.torch_version}", "  "),
            comment(f"on {s.conditions()}", "    "),
            (
                f"#     accuracy {100 * s.accuracy_mean:.2f}% ± {100 * s.accuracy_std:.2f}%, {level} interval "
                f"[{100 * s.accuracy_ci_low:.2f}%, {100 * s.accuracy_ci_high:.2f}%], "
                f"lower bound {100 * s.accuracy_lower_bound:.2f}%"
            ),
            f"#     time {s.time_mean:.4f} ± {s.time_std:.4f} s",
        ]
    return "\n".join(lines) + "\n"


USAGE = '''"""A CIFAR-10 training speedrun in one file: train N times, report accuracy and time.

    python {filename} [--runs N] [--data cifar10|synthetic|PATH.npz] [--target 0.94]
                      [--device cuda|cpu] [--seed S] [--set KEY=VALUE ...] [--json]

Without --data it downloads CIFAR-10 once through torchvision. It compiles and warms up on
random data (untimed), then times each run from the first touch of the training data until the
test logits exist, prints one row per run and the statistics of the mean accuracy.

The six components come first, each as the exact source text that was evaluated, executed into
a module of its own; then the harness that calls them, copied from cifar-evolve: data, clock,
training loop, statistics and command line.
"""
'''


def export_script(component_set: ComponentSet, provenance: Provenance, filename: str = "speedrun.py") -> str:
    """The text of one runnable Python file that trains `component_set` as the harness does."""
    expected = component_hashes(component_set)
    if provenance.component_hashes != expected:
        differ = [n for n in COMPONENT_NAMES if provenance.component_hashes.get(n) != expected[n]]
        raise ExportError(
            f"the provenance's hashes do not match the component set ({', '.join(differ)}): "
            "build it with Provenance.for_set(component_set, ...)"
        )
    modules = [split_module(module) for _, module in INLINED_MODULES]
    constants = {f"{name.upper()}_SOURCE" for name in COMPONENT_NAMES} | {"COMPONENT_SOURCES", "SCALES"}
    check_names(modules, constants)

    preamble = "\n".join(
        [provenance_header(provenance, component_set.origin), USAGE.replace("{filename}", filename),
         import_block([s for m in modules for s in m.imports])]
    )
    parts = []
    for name in COMPONENT_NAMES:
        parts.append(banner(f"Component {name}") + f"{name.upper()}_SOURCE = {string_literal(component_set.sources[name])}\n")
    listing = "".join(f'    "{name}": {name.upper()}_SOURCE,\n' for name in COMPONENT_NAMES)
    scales = "".join(
        f'    "{scale}": {{{", ".join(f"{key!r}: {value!r}" for key, value in overrides.items())}}},\n'.replace("'", '"')
        for scale, overrides in SCALES.items()
    )
    parts.append(
        banner("The component set, and the hyperparameter overrides of each training scale (--scale)")
        + f"COMPONENT_SOURCES = {{\n{listing}}}\n\nSCALES = {{\n{scales}}}\n"
    )
    for (title, _), module in zip(INLINED_MODULES, modules):
        about = comment(f"From {module.path} in cifar-evolve, verbatim. {module.docstring}")
        parts.append(banner(title) + about + "\n\n" + module.body)
    parts.append('if __name__ == "__main__":\n    main(COMPONENT_SOURCES)\n')
    # One blank line after the imports (isort's rule before a comment), two between sections.
    return preamble + "\n\n" + "\n\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def check_names(modules: list[InlinedModule], constants: set[str]) -> None:
    """Sections share one namespace: no name may be defined twice, and every dropped import must
    be defined by some section."""
    seen: dict[str, str] = {name: "the generated constants" for name in constants}
    for module in modules:
        for name in sorted(module.defines):
            if name in seen:
                raise ExportError(f"{module.path} and {seen[name]} both define {name}: rename one to inline both")
            seen[name] = module.path
    for module in modules:
        missing = sorted(module.needs - set(seen))
        if missing:
            raise ExportError(f"{module.path} imports {', '.join(missing)}, which no inlined section defines")


__all__ = [
    "Ancestor",
    "ExportError",
    "ExportStatistics",
    "Provenance",
    "component_hashes",
    "export_script",
]
