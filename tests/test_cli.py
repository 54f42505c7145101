import json
import subprocess
import sys

from typer.testing import CliRunner

from evolve.cli.app import app

runner = CliRunner()


def test_baseline_on_synthetic_data_prints_table_and_summary():
    result = runner.invoke(app, ["baseline", "--device", "cpu", "--data", "synthetic", "--runs", "2", "--set", "epochs=2", "--seed", "3"])
    assert result.exit_code == 0, result.output
    for expected in ("run 0:", "run 1:", "accuracy mean ± std", "lower bound (one-sided)", "time mean ± std", "score"):
        assert expected in result.output


def test_baseline_json():
    result = runner.invoke(app, ["baseline", "--device", "cpu", "--data", "synthetic", "--runs", "2", "--set", "epochs=1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["samples"]) == 2 and report["summary"]["runs"] == 2
    assert 0 <= report["summary"]["accuracy_mean"] <= 1


def test_bad_inputs_get_one_clear_message(tmp_path):
    result = runner.invoke(app, ["baseline", "--device", "cpu", "--data", str(tmp_path / "missing.npz")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["baseline", "--device", "cpu", "--data", "synthetic", "--set", "epochs"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = runner.invoke(app, ["baseline", "--device", "cpu", "--data", "synthetic", "--components", "nope"])
    assert result.exit_code == 2 and "unknown component set" in result.output


def test_cuda_without_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        return
    result = runner.invoke(app, ["baseline", "--device", "cuda", "--data", "synthetic", "--runs", "1"])
    assert result.exit_code == 2 and "no CUDA GPU" in result.output


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "evolve", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "baseline" in out.stdout


def test_eval_prints_each_stage_samples_and_score(tmp_path, baseline_set):
    candidate = tmp_path / "tta.py"
    candidate.write_text(baseline_set.sources["tta"].replace('"tta_batch_size"', '"tta_batch_size"'))
    args = ["eval", str(candidate), "--device", "cpu", "--data", "synthetic", "--runs", "2", "--set", "epochs=1", "--target", "0.2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for expected in ("cascade: evaluated", "static", "contracts", "smoke", "timed", "score"):
        assert expected in result.output


def test_eval_of_a_rejected_candidate_says_why(tmp_path, baseline_set):
    candidate = tmp_path / "mine.py"
    candidate.write_text(baseline_set.sources["tta"] + "\nimport os\n")
    result = runner.invoke(app, ["eval", str(candidate), "--component", "tta", "--device", "cpu", "--data", "synthetic"])
    assert result.exit_code == 1
    assert "rejected" in result.output and "import" in result.output
    result = runner.invoke(app, ["eval", str(candidate), "--device", "cpu", "--data", "synthetic"])
    assert result.exit_code == 2 and "--component" in result.output
