"""The side-by-side benchmark's CPU path: our three sets, and two stand-in reference scripts fed
through the references' own data cache (the real scripts need CUDA and are never committed)."""

import importlib.util
import json
from pathlib import Path

import numpy as np

from evaluator.data import synthetic_dataset

BENCH = Path(__file__).resolve().parents[1] / "bench" / "speedrun_comparison.py"

# A stand-in with the references' interface: CifarNet(), main(run, model) reading
# cifar10/{train,test}.pt from the working directory; it classifies by nearest class-mean colour.
STAND_IN = '''
import torch

class CifarNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Linear(1, 1)

def main(run, model):
    train, test = torch.load("cifar10/train.pt"), torch.load("cifar10/test.pt")
    assert train["images"].dtype == torch.uint8 and train["images"].shape[1:] == (32, 32, 3)
    colour = lambda images: images.float().mean((1, 2))
    x = colour(train["images"])
    means = torch.stack([x[train["labels"] == c].mean(0) for c in range(10)])
    predictions = torch.cdist(colour(test["images"]), means).argmin(1)
    acc = (predictions == test["labels"]).float().mean().item()
    {ending}
'''
AIRBENCH_ENDING = 'print("|  %s  |  eval  |  0.5  |  0.5  |  %.4f  |  0.0123  |" % (run, acc))\n    return acc'
SPEEDRUN_ENDING = "return (acc, acc, 0.0456)"


def load_bench():
    spec = importlib.util.spec_from_file_location("speedrun_comparison", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_comparison_runs_our_sets_and_feeds_references_the_same_data(tmp_path, capsys):
    data = tmp_path / "small.npz"
    d = synthetic_dataset(400, 100, seed=4)
    np.savez(data, train_images=d.train_images, train_labels=d.train_labels, test_images=d.test_images, test_labels=d.test_labels)
    airbench, speedrun = tmp_path / "airbench94_muon.py", tmp_path / "cifar10_speedrun.py"
    airbench.write_text(STAND_IN.replace("{ending}", AIRBENCH_ENDING))
    speedrun.write_text(STAND_IN.replace("{ending}", SPEEDRUN_ENDING))
    out = tmp_path / "results.json"
    args = ["--device", "cpu", "--data", str(data), "--runs", "2", "--seed", "1",
            "--set", "epochs=1", "--set", "width1=8", "--set", "width2=8", "--set", "width3=8", "--set", "tta_batch_size=50",
            "--airbench", str(airbench), "--speedrun", str(speedrun), "--workdir", str(tmp_path / "work"), "--out", str(out)]
    assert load_bench().main(args) == 0
    printed = capsys.readouterr().out
    assert "time / cifar10_speedrun" in printed and "round 1:" in printed
    report = json.loads(out.read_text())
    rows = {r["name"]: r for r in report["contestants"]}
    assert list(rows) == ["frontier", "record", "cifar10_speedrun", "baseline", "airbench94_muon"]  # round order
    for row in rows.values():
        assert row["runs"] == 2 and 0 <= row["accuracy_mean"] <= 1 and row["full_evaluation_wall_seconds"] > 0
    assert rows["airbench94_muon"]["time_mean"] == 0.0123 and rows["cifar10_speedrun"]["time_ratio"] == 1.0
    # Both stand-ins read the same cache, so they agree, and the colours carry the classes.
    assert rows["airbench94_muon"]["accuracy_mean"] == rows["cifar10_speedrun"]["accuracy_mean"] > 0.2
    for ours in ("frontier", "record", "baseline"):
        assert rows[ours]["setup_seconds"] > 0 and rows[ours]["time_ratio"] > 0


def test_missing_reference_scripts_are_skipped_with_the_fix(tmp_path, capsys):
    data = tmp_path / "small.npz"
    d = synthetic_dataset(400, 100, seed=5)
    np.savez(data, train_images=d.train_images, train_labels=d.train_labels, test_images=d.test_images, test_labels=d.test_labels)
    airbench = tmp_path / "airbench94_muon.py"
    airbench.write_text(STAND_IN.replace("{ending}", AIRBENCH_ENDING))
    args = ["--device", "cpu", "--data", str(data), "--runs", "1", "--only", "airbench94_muon,cifar10_speedrun",
            "--airbench", str(airbench), "--speedrun", str(tmp_path / "absent.py"), "--workdir", str(tmp_path / "work")]
    assert load_bench().main(args) == 0
    printed = capsys.readouterr().out
    assert "skipped cifar10_speedrun:" in printed and "docs/BENCHMARKS.md" in printed
    assert "time / airbench94_muon" in printed  # without the Hive's script, ratios are against the first contestant


def test_optional_contestants_join_when_time_allows_and_the_deadline_stops_the_rounds(tmp_path, capsys):
    data = tmp_path / "small.npz"
    d = synthetic_dataset(400, 100, seed=6)
    np.savez(data, train_images=d.train_images, train_labels=d.train_labels, test_images=d.test_images, test_labels=d.test_labels)
    airbench = tmp_path / "airbench94_muon.py"
    airbench.write_text(STAND_IN.replace("{ending}", AIRBENCH_ENDING))
    out = tmp_path / "results.json"
    common = ["--device", "cpu", "--data", str(data), "--only", "frontier,airbench94_muon,cifar10_speedrun",
              "--optional", "airbench94_muon,cifar10_speedrun", "--set", "epochs=1", "--set", "width1=8", "--set", "width2=8",
              "--set", "width3=8", "--set", "tta_batch_size=50", "--airbench", str(airbench),
              "--speedrun", str(tmp_path / "absent.py"), "--workdir", str(tmp_path / "work"), "--out", str(out)]
    assert load_bench().main([*common, "--runs", "3", "--deadline", "100000"]) == 0
    report = json.loads(out.read_text())
    runs = {r["name"]: r["runs"] for r in report["contestants"]}
    assert runs == {"frontier": 3, "airbench94_muon": 2}  # joined before the second round
    assert "missing" in report["skipped"]["cifar10_speedrun"] and report["stopped"] is None

    assert load_bench().main([*common, "--runs", "3", "--deadline", "0.001"]) == 0
    report = json.loads(out.read_text())
    assert report["contestants"] == [] and report["stopped"].startswith("deadline: 0 of 3 rounds")
    assert "optional" in report["skipped"]["airbench94_muon"]
    assert "stopped early: deadline" in capsys.readouterr().out


def test_scheduling_bench_measures_the_local_pool_without_ray():
    from bench.ray_scheduling import main

    (row,) = main(["--executors", "local", "--slots", "2", "--eval-seconds", "0.2", "--candidates", "3"])
    assert row["executor"] == "local" and row["jobs"] >= 3
    assert 0 <= row["lost"] < 0.5 and 0 <= row["at_30s"] < 0.05
