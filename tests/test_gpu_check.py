"""A CPU dry run of bench/gpu_check.py: every step through its public entry point, tiny, bounded."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"
TINY = ["--set", "epochs=1", "--set", "width1=8", "--set", "width2=8", "--set", "width3=8", "--set", "batch_size=50",
        "--set", "tta_batch_size=50", "--set", "whiten_init_images=100"]


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_dry_run_writes_every_step_and_holds_each_to_its_deadline(tmp_path, capsys):
    gpu_check = load_gpu_check()
    out, work = tmp_path / "out", tmp_path / "work"
    args = ["--device", "cpu", "--data", "synthetic", "--synthetic-size", "200,100", "--out", str(out), "--workdir", str(work),
            "--eval-runs", "2", "--pairs", "2", "--rounds", "1", "--contestants", "frontier,cifar10_speedrun", "--optional", "",
            "--refs", str(tmp_path / "no_refs"), "--target", "0.1", "--total-seconds", "900",
            "--budget", "eval=300", "--budget", "comparison=200", "--budget", "promotion=300", "--budget", "search=3", *TINY]
    assert gpu_check.main(args) == 1  # the search cannot finish in 3 s
    printed = capsys.readouterr().out
    assert "step" in printed and "total" in printed and "frontier" in printed

    steps = json.loads((out / "summary.json").read_text())["steps"]
    assert {name: s["status"] for name, s in steps.items()} == {
        "data": "ok", "eval": "ok", "comparison": "ok", "promotion": "ok", "search": "timeout"}
    for name in ("data", "eval", "promotion", "search"):
        assert json.loads((out / f"{name}.json").read_text())["status"] == steps[name]["status"]

    evaluation = steps["eval"]["result"]
    assert evaluation["status"] == "evaluated" and [s["stage"] for s in evaluation["stages"]][-2:] == ["smoke", "timed"]
    assert len(evaluation["clocks"]) == 2 and all(c["cuda_event_seconds"] is None for c in evaluation["clocks"])  # CPU
    comparison = json.loads((out / "comparison.json").read_text())
    assert [r["name"] for r in comparison["contestants"]] == ["frontier"] and "missing" in comparison["skipped"]["cifar10_speedrun"]
    assert steps["promotion"]["result"]["pairs"] == 2
    # The search was interrupted, then killed, at its deadline: it cannot hold up the command.
    assert steps["search"]["seconds"] < 3 + 2 * gpu_check.KILL_GRACE + 10


def test_unknown_budget_step_is_refused_with_the_steps(tmp_path, capsys):
    gpu_check = load_gpu_check()
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--data", "synthetic", "--budget", "train=5"])
    assert exit_info.value.code == 2
    assert "expected STEP=SECONDS with STEP one of data, eval, comparison, promotion, search" in capsys.readouterr().err


def test_dry_run_preset_and_a_step_that_cannot_finish_before_the_deadline_is_not_started(tmp_path, capsys):
    gpu_check = load_gpu_check()
    args = gpu_check.parse_args(["--dry-run", "--out", str(tmp_path / "out")])
    assert (args.device, args.data, args.synthetic_size, args.rounds, args.overrides) == ("cpu", "synthetic", (300, 100), 2, gpu_check.TINY)
    assert gpu_check.parse_args(["--dry-run", "--out", str(tmp_path), "--set", "epochs=2"]).overrides == ["epochs=2"]

    out = tmp_path / "out"
    assert gpu_check.main(["--dry-run", "--out", str(out), "--workdir", str(tmp_path / "work"), "--total-seconds", "30"]) == 0
    printed = capsys.readouterr().out
    assert "estimate" in printed and "estimated " in printed  # the plan, before the first step
    steps = json.loads((out / "summary.json").read_text())["steps"]
    assert steps["data"]["status"] == "ok"
    needs = gpu_check.ESTIMATES["cpu"]["eval"]
    assert steps["eval"]["status"] == "skipped" and steps["eval"]["summary"].startswith(f"not started: needs about {needs:.0f} s")
    assert all(steps[name]["status"] == "skipped" for name in ("comparison", "promotion", "search"))


def test_an_elastic_step_gets_what_the_later_steps_leave():
    gpu_check = load_gpu_check()
    estimates = {"data": 1.0, "eval": 10.0, "comparison": 20.0, "promotion": 30.0, "search": 40.0}
    assert gpu_check.step_limit("comparison", 200.0, 170.0, estimates) == (130.0, "")
    assert gpu_check.step_limit("comparison", 75.0, 170.0, estimates) == (20.0, "")  # its own estimate at least
    assert gpu_check.step_limit("promotion", 100.0, 95.0, estimates) == (95.0, "")
    limit, refusal = gpu_check.step_limit("search", 39.0, 120.0, estimates)
    assert limit == 0.0 and refusal == "not started: needs about 40 s, 39 s left"
