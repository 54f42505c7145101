"""`evolve export`: the standalone script reproduces the harness, imports only torch and numpy,
and carries its provenance."""

import ast
import hashlib
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from components.interface import NUM_CLASSES
from evaluator import training
from evaluator.data import synthetic_dataset
from evaluator.results import RunSample
from evaluator.statistics import summarize as evaluator_summarize
from evolve.cli.app import app
from evolve.export import standalone
from evolve.export.script import (
    Ancestor,
    ExportError,
    ExportStatistics,
    InlinedModule,
    Provenance,
    check_names,
    export_script,
    string_literal,
)
from evolve.export.verify import compare_statistics, verify_export

# Tiny, fast verification: 200 training images, one batch of 200 per epoch, one epoch.
VERIFY = {"runs": 1, "seed": 5, "hyperparams": {"epochs": 1}}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> str:
    ds = synthetic_dataset(200, 60, seed=4)
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, train_images=ds.train_images, train_labels=ds.train_labels, test_images=ds.test_images, test_labels=ds.test_labels)
    return str(path)


@pytest.fixture(scope="module")
def mutant_set(baseline_set):
    source = baseline_set.sources["hyperparams"]
    assert '"muon_lr": 0.24,' in source
    return baseline_set.with_component("hyperparams", source.replace('"muon_lr": 0.24,', '"muon_lr": 0.3,'))


def write_export(component_set, path, **provenance):
    path.write_text(export_script(component_set, Provenance.for_set(component_set, **provenance)))
    return path


def test_exported_baseline_gives_the_harness_logits(baseline_set, small_data, tmp_path):
    script = write_export(baseline_set, tmp_path / "speedrun.py")
    verification = verify_export(script, baseline_set, data=small_data, **VERIFY)
    assert verification.passed, verification.checks
    assert [c.name for c in verification.checks] == ["runs", "standalone", "components", "seeds", "logits"]


def test_exported_candidate_gives_its_logits_and_not_the_baselines(baseline_set, mutant_set, small_data, tmp_path):
    script = write_export(mutant_set, tmp_path / "speedrun.py")
    assert verify_export(script, mutant_set, data=small_data, **VERIFY).passed
    against_baseline = {c.name: c.passed for c in verify_export(script, baseline_set, data=small_data, **VERIFY).checks}
    assert against_baseline == {"runs": True, "standalone": True, "components": False, "seeds": True, "logits": False}


def test_script_imports_only_the_standard_library_torch_and_numpy(baseline_set):
    tree = ast.parse(export_script(baseline_set, Provenance.for_set(baseline_set)))
    top_level = {n for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom)) for n in imported_roots(s)}
    assert top_level - set(sys.stdlib_module_names) == {"numpy", "torch"}
    nested = {n for s in ast.walk(tree) if isinstance(s, (ast.Import, ast.ImportFrom)) for n in imported_roots(s)} - top_level
    assert nested == {"torchvision"}  # only inside the download function, imported when it is called


def imported_roots(statement: ast.stmt) -> list[str]:
    if isinstance(statement, ast.ImportFrom):
        return [statement.module.split(".")[0]]
    return [alias.name.split(".")[0] for alias in statement.names]


def test_script_is_valid_python_without_undefined_or_unused_names(baseline_set, tmp_path):
    script = write_export(baseline_set, tmp_path / "speedrun.py")
    compile(script.read_text(), str(script), "exec")
    lint = subprocess.run(["ruff", "check", "--isolated", "--select", "E9,F", str(script)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout


def test_provenance_header(mutant_set, tmp_path):
    statistics = ExportStatistics(
        runs=25, accuracy_mean=0.9401, accuracy_std=0.0013, accuracy_ci_low=0.9396, accuracy_ci_high=0.9406,
        accuracy_lower_bound=0.9397, confidence=0.95, time_mean=2.59, time_std=0.01, device="NVIDIA A100", torch_version="2.4.1",
    )
    ancestors = [Ancestor(id=1, description="baseline"), Ancestor(id=17, description="muon_lr\n0.24 -> 0.3")]
    path = write_export(mutant_set, tmp_path / "speedrun.py", experiment_id=3, candidate_id=17, ancestors=ancestors, statistics=statistics)
    text = path.read_text()
    header = text[: text.index('"""')]
    assert all(line.startswith("#") for line in header.splitlines() if line)
    for expected in ("experiment 3, candidate 17", "17: muon_lr 0.24 -> 0.3", "25 runs on NVIDIA A100, torch 2.4.1",
                     "accuracy 94.01% ± 0.13%", "lower bound 93.97%", "time 2.5900 ± 0.0100 s"):
        assert expected in header
    # The hashes in the header are those of the texts embedded in the script.
    spec = importlib.util.spec_from_file_location("exported_speedrun", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for name, source in script.COMPONENT_SOURCES.items():
        assert source == mutant_set.sources[name]
        assert f"{name:<14} {hashlib.sha256(source.encode()).hexdigest()}" in header


def test_provenance_must_match_the_set(baseline_set, mutant_set):
    with pytest.raises(ExportError, match="hyperparams"):
        export_script(mutant_set, Provenance.for_set(baseline_set))


def test_statistics_from_an_evaluation():
    samples = [RunSample(run=i, seed=i, accuracy=0.94 + i / 1000, time_seconds=2.5, device_name="GPU", torch_version="2.4") for i in range(3)]
    stats_ = ExportStatistics.from_summary(evaluator_summarize(samples), samples)
    assert stats_.runs == 3 and stats_.device == "GPU" and stats_.accuracy_mean == pytest.approx(0.941)


def test_sections_may_not_define_a_name_twice_or_lack_one():
    a = InlinedModule("a.py", "", [], "", defines={"train"}, needs=set())
    b = InlinedModule("b.py", "", [], "", defines={"train"}, needs=set())
    with pytest.raises(ExportError, match="both define train"):
        check_names([a, b], set())
    c = InlinedModule("c.py", "", [], "", defines=set(), needs={"nowhere"})
    with pytest.raises(ExportError, match="imports nowhere"):
        check_names([c], set())


@pytest.mark.parametrize("text", ["plain\n", "a '''quoted''' text\n", 'both \'\'\' and """\n', "back\\slash \\n\n", "ends with \\"])
def test_embedded_text_round_trips(text):
    assert ast.literal_eval(string_literal(text)) == text


def test_t_quantiles_without_scipy_match_scipy():
    for df in [*range(1, 40), 99, 1000]:
        for p in (0.025, 0.5, 0.9, 0.95, 0.975, 0.995):
            assert standalone.student_t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("accuracies", [[0.93], [0.94, 0.94], [0.9401, 0.9388, 0.9412, 0.9395, 0.9420]])
def test_script_summary_matches_the_evaluators(accuracies):
    samples = [RunSample(run=i, seed=i, accuracy=a, time_seconds=2.5 + i / 100, device_name="cpu", torch_version="x")
               for i, a in enumerate(accuracies)]
    expected = evaluator_summarize(samples, confidence=0.9, target=0.94).model_dump()
    got = standalone.summarize(accuracies, [s.time_seconds for s in samples], confidence=0.9, target=0.94)
    for key, value in got.items():
        assert value == pytest.approx(expected[key], rel=1e-10) or (math.isinf(value) and value == expected[key]), key


def test_gpu_check_compares_with_the_stored_statistics():
    stored = ExportStatistics(
        runs=25, accuracy_mean=0.9401, accuracy_std=0.0013, accuracy_ci_low=0.9396, accuracy_ci_high=0.9406,
        accuracy_lower_bound=0.9397, confidence=0.95, time_mean=2.59, time_std=0.01, device="NVIDIA A100", torch_version="2.4.1",
    )

    def report(accuracy_mean, time_mean, device="NVIDIA A100"):
        return {"device": device, "summary": {"runs": 10, "accuracy_mean": accuracy_mean, "accuracy_std": 0.0013, "time_mean": time_mean}}

    assert all(c.passed for c in compare_statistics(report(0.9399, 2.60), stored, 0.05))
    accuracy, time = compare_statistics(report(0.9350, 2.90), stored, 0.05)
    assert not accuracy.passed and "excludes zero" in accuracy.message and not time.passed
    _, time = compare_statistics(report(0.9399, 2.59, device="NVIDIA H100"), stored, 0.05)
    assert not time.passed and "same GPU" in time.message


def test_training_module_stands_alone():
    assert training.NUM_CLASSES == NUM_CLASSES
    tree = ast.parse(Path(training.__file__).read_text())
    roots = {n for s in ast.walk(tree) if isinstance(s, (ast.Import, ast.ImportFrom)) for n in imported_roots(s)}
    assert roots <= set(sys.stdlib_module_names) | {"numpy", "torch"}


def test_cli_exports_a_candidate_file_and_names_it(baseline_set, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short relative path: the header wraps a long one (pytest -n's tmp_path) mid-line
    candidate = Path("my_tta.py")
    candidate.write_text(baseline_set.sources["tta"].replace("0.5 * model(x)", "0.5 * model(x) "))
    output = tmp_path / "speedrun.py"
    result = CliRunner().invoke(app, ["export", str(candidate), "--component", "tta", "-o", str(output)])
    assert result.exit_code == 0, result.output
    text = output.read_text()
    assert "replaces tta" in text and "0.5 * model(x) " in text
    result = CliRunner().invoke(app, ["export", str(tmp_path / "missing.py"), "-o", str(output)])
    assert result.exit_code == 2 and "does not exist" in result.output
