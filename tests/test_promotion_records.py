"""Promotion decisions and calibrations in the database, and how the CLI shows them."""

import numpy as np
from database_support import evaluation, sample
from typer.testing import CliRunner

from evaluator.calibration import calibration_report
from evaluator.data import synthetic_dataset
from evaluator.promotion_policy.rule import DecisionContext, RuleSettings, decide
from evaluator.settings import ScoreSettings
from evolve.cli.app import app
from evolve.database import NewCandidate, Store
from evolve.database.decisions import attempts_made, decisions, latest_calibration, record_decision, refresh_record

SCORE = ScoreSettings()
runner = CliRunner()


def build(url: str):
    """Seed (champion) and a child whose screening scored above it but who lost the paired comparison."""
    with Store.open(url) as store:
        e = store.create_experiment("records", ["optimizer"], {}, "baseline", "cuda", version="0.1.0")
        seed, _ = store.add_candidate(NewCandidate(experiment_id=e.id, component="optimizer", source="LR = 0.1\n", origin="seed"))
        child, _ = store.add_candidate(NewCandidate(experiment_id=e.id, component="optimizer", source="LR = 0.2\n",
                                                    origin="mutator", parent_id=seed.id, generation=1))
        store.claim_pending(e.id, limit=2)
        store.record_evaluation(seed.id, evaluation([0.948, 0.949, 0.950], [3.0, 3.1, 3.05]))
        store.record_evaluation(child.id, evaluation([0.951, 0.952, 0.950], [2.6, 2.65, 2.7]))  # a lucky screening
        store.record_champion(e.id, seed.id, None, {"reason": "the first evaluated candidate"})
        pairs_c = [sample(i, 0.949, 3.05 + 0.01 * (i % 3), seed=50 + i) for i in range(6)]
        pairs_i = [sample(i, 0.949, 3.05 + 0.01 * ((i + 1) % 3), seed=50 + i) for i in range(6)]
        context = DecisionContext(attempt=1, alpha=0.025, min_gain_seconds=0.03, min_gain_source="test", accuracy_margin=0.002,
                                  incumbent_record=[sample(i, a, t) for i, (a, t) in enumerate(zip([0.948, 0.949, 0.950], [3.0, 3.1, 3.05]))])
        decision = decide(pairs_c, pairs_i, SCORE, context)
        assert not decision.promoted
        store.record_samples(child.id, pairs_c, "confirm")
        store.record_samples(seed.id, pairs_i, "confirm")
        record_decision(store, e.id, child.id, seed.id, decision)
        before = store.candidate(child.id).score
        for side in (child.id, seed.id):
            refresh_record(store, side, SCORE)
        assert store.candidate(child.id).runs == 9 and store.candidate(child.id).score < before  # the pairs fold in
        assert attempts_made(store, e.id) == 1
        return e.id, seed.id, child.id


def test_decisions_are_stored_and_shown(tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    _, seed, child = build(url)
    with Store.open(url) as store:
        (stored,) = decisions(store, candidate_id=child)
        assert stored.incumbent_id == seed and stored.alpha_spent == 0.025 and not stored.promoted
        assert len(stored.decision["candidate_samples"]) == len(stored.decision["incumbent_samples"]) == 6
        assert stored.decision["tests"][0]["name"].startswith("time gain")
    shown = runner.invoke(app, ["show", str(child), "--db", url])
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "promotion decision #1" in out and "error budget spent 0.025" in out and "minimum gain 0.0300 s" in out
    assert "time gain (sign test)" in out and "pairs" in out and "3.0500" in out
    as_json = runner.invoke(app, ["show", str(seed), "--db", url, "--json"])
    assert '"promotion_decisions"' in as_json.stdout


def test_top_puts_the_champion_first_and_says_why_a_higher_score_lost(tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    _, seed, child = build(url)
    with Store.open(url) as store:
        store_child = store.candidate(child)
        store_seed = store.candidate(seed)
    listed = runner.invoke(app, ["top", "--db", url])
    lines = [line for line in listed.stdout.splitlines() if line[:1].isdigit()]
    assert lines[0].split()[1] == str(seed) and "champion" in lines[0]
    assert lines[1].split()[1] == str(child) and "lost its paired comparison with #1" in lines[1]
    assert "penalty (s)" in listed.stdout
    assert store_child.score is not None and store_seed.score is not None


def test_calibration_report_from_aa_pairs():
    rng = np.random.default_rng(0)
    a = [sample(i, float(rng.normal(0.94, 0.0014)), float(rng.normal(3.0, 0.02)), seed=i) for i in range(10)]
    b = [sample(i, float(rng.normal(0.94, 0.0014)), float(rng.normal(3.0, 0.02)), seed=i) for i in range(10)]
    report = calibration_report(a, b, "test", RuleSettings(), ScoreSettings(target=0.9), gain_seconds=0.05, simulations=100, seed=1)
    assert 0.01 < report.time_noise_seconds < 0.06 and report.min_gain_seconds == report.time_noise_seconds
    assert report.false_promotion_rate <= report.attempt_alpha + 0.03
    first, tenth = report.pairs_needed
    assert first.pairs is not None and tenth.pairs is not None and 6 <= first.pairs <= tenth.pairs


def test_calibrate_on_the_cpu_stores_the_noise(tmp_path):
    d = synthetic_dataset(400, 100, seed=11)
    data = tmp_path / "small.npz"
    np.savez(data, train_images=d.train_images, train_labels=d.train_labels, test_images=d.test_images, test_labels=d.test_labels)
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    tiny = ["epochs=1", "width1=8", "width2=8", "width3=8", "tta_level=0", "whiten_init_images=200"]
    result = runner.invoke(app, ["calibrate", "--device", "cpu", "--data", str(data), "--pairs", "3", "--simulations", "20",
                                 "--target", "0.05", "--db", url, *[p for s in tiny for p in ("--set", s)]])
    assert result.exit_code == 0, result.output
    assert "paired time noise" in result.stdout and "false promotions" in result.stdout and "pairs to detect" in result.stdout
    with Store.open(url) as store:
        calibration = latest_calibration(store)
        assert calibration.pairs == 3 and calibration.device_name.startswith("cpu")
        assert len(calibration.result["samples_a"]) == 3 and calibration.time_noise_seconds >= 0
