"""The lineage is the truth (issue 13): full-set identity, the stored seed set, everything a resumed
search needs, what the prompt shows. The loop runs for real against the database; evaluation is
the stub of tests/stub_search.py, so these tests take seconds."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

import evolve.cli.start_command as start_command
from evaluator.component_set import ComponentSet
from evaluator.data import synthetic_dataset
from evaluator.sandbox.sandboxed_worker import WorkerLimits
from evolve.cli.app import app
from evolve.cli.resume import ResumeError, resumed_config
from evolve.config import ExperimentConfig
from evolve.config_loading import load_config
from evolve.config_display import masked_dump
from evolve.database import Store
from evolve.llm.client import Budget
from evolve.llm.prompt_builder import PromptInputs, build_messages
from evolve.search.loop import EvolutionLoop
from evolve.search.progress import LoopStats, Progress
from evolve.search.proposer import Proposal, ProposalRequest, Unusable
from tests.stub_search import PAIR_SECONDS, SMOKE_SECONDS, TIMED_SECONDS, StubExecutor

ROOT = Path(__file__).resolve().parents[1]
H_OLD, H_NEW = '"epochs": 8.0,', '"epochs": 7.0,'
A_OLD, A_NEW = "momentum=1 - momentum", "momentum=1.0 - momentum"


class ScriptedProposer:
    """hyperparams: epochs 8 -> 7; architecture: one constant written as a float; nothing else."""

    name = "scripted"

    def __init__(self):
        self.requests: list[ProposalRequest] = []

    def propose(self, request: ProposalRequest) -> Proposal | Unusable:
        self.requests.append(request)
        old, new, what = (H_OLD, H_NEW, "fewer epochs: 7") if request.component == "hyperparams" else (A_OLD, A_NEW, "float literal")
        if old not in request.parent.source:
            return Unusable(request=request, reason="nothing left to change")
        return Proposal(request=request, source=request.parent.source.replace(old, new), origin="mutator", description=what)


def run_loop(url: str, config: ExperimentConfig, proposer, name: str = "exp") -> tuple[EvolutionLoop, str]:
    with Store.open(url) as store:
        experiment = store.find_experiment(name) or store.create_experiment(
            name, config.components, masked_dump(config), config.seed_set, "stub",
            seed_sources=ComponentSet.shipped(config.seed_set).sources,
        )
        stats = LoopStats(experiment=name, proposer=proposer.name)
        with Progress(Console(quiet=True), stats) as progress:
            loop = EvolutionLoop(config, store, experiment, StubExecutor(), proposer, progress, Budget(), np.random.default_rng(3))
            return loop, loop.run()


def test_multi_component_search_evaluates_new_hyperparameters_over_a_new_architecture(tmp_path):
    """Item 1: H1 over the new architecture A2 is a new program, not a duplicate of H1 over the seed's."""
    config = ExperimentConfig(components=["architecture", "hyperparams"], generations=6, candidates_per_generation=2, seed=1,
                              harness={"device": "cpu"}, population={"islands": 1}, llm={"concurrent_calls": 1})
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    loop, reason = run_loop(url, config, ScriptedProposer())
    assert reason.startswith("all 12 proposals")
    with Store.open(url) as store:
        experiment = store.experiment("exp")
        seed = ComponentSet.shipped("baseline").sources
        by_set = {}
        for candidate in store.candidates(experiment.id):
            sources = store.component_set_sources(candidate.id)
            changed = tuple(name for name in ("architecture", "hyperparams") if sources[name] != seed[name])
            by_set.setdefault(changed, []).append(candidate)
        assert set(by_set) == {(), ("architecture",), ("hyperparams",), ("architecture", "hyperparams")}
        assert all(len(group) == 1 for group in by_set.values()), "every full set is evaluated once"
        both = by_set[("architecture", "hyperparams")][0]
        assert both.status in ("evaluated", "champion") and both.score is not None
        counts = store.proposal_counts(experiment.id)
        assert sum(counts.values()) == 12 and counts["new"] == 3  # the rest: duplicates and nothing left to change
        assert loop.stats.duplicates == counts.get("duplicate", 0)


def test_the_prompt_shows_the_change_its_diff_the_values_in_force_and_the_siblings(tmp_path):
    config = ExperimentConfig(components=["hyperparams"], generations=6, candidates_per_generation=1, seed=1,
                              harness={"device": "cpu", "hyperparams": {"epochs": 2}}, population={"islands": 1},
                              llm={"concurrent_calls": 1})
    proposer = ScriptedProposer()
    run_loop(f"sqlite:///{tmp_path / 'evolve.db'}", config, proposer)
    request = next(r for r in proposer.requests if r.parent.description == "fewer epochs: 7")
    assert request.hyperparams["epochs"] == 2 and request.hyperparams["width1"] == 16  # the harness's overrides win
    assert request.hyperparams["muon_lr"] == 0.24  # from the set's HYPERPARAMS
    assert "class CifarNet" in request.siblings["architecture"] and "def " in request.siblings["optimizer"]
    text = build_messages(PromptInputs(component="hyperparams", parent=request.parent, hyperparams=request.hyperparams,
                                       siblings=request.siblings))[1]["content"]
    assert "Its change (hyperparams): fewer epochs: 7" in text
    assert '-    "epochs": 8.0,' in text and '+    "epochs": 7.0,' in text  # the diff against its parent
    assert "  epochs = 2" in text and "`architecture`:" in text


def test_seed_set_comes_from_the_database_not_the_package(tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    seed = dict(ComponentSet.shipped("baseline").sources)
    seed["tta"] = seed["tta"] + "\nSTORED_WITH_THE_EXPERIMENT = 1\n"
    with Store.open(url) as store:
        experiment = store.create_experiment("e", ["optimizer"], {}, "baseline", "cpu", seed_sources=seed)
        from evolve.database import NewCandidate

        root, _ = store.add_candidate(NewCandidate(experiment_id=experiment.id, component="optimizer", source=seed["optimizer"], origin="seed"))
        child, _ = store.add_candidate(NewCandidate(experiment_id=experiment.id, component="optimizer", source="X = 1\n",
                                                    origin="mutator", parent_id=root.id))
        sources = store.component_set_sources(child.id)
        assert sources["tta"].endswith("STORED_WITH_THE_EXPERIMENT = 1\n") and sources["optimizer"] == "X = 1\n"


def test_resume_keeps_stored_settings_and_says_which_flag_overrides_one(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    stored = masked_dump(ExperimentConfig(generations=3, budget_gpu_hours=1.0, harness={"device": "cpu"}))
    flags = {"budget_gpu_hours": 2.5, "database_url": "sqlite:///x.db"}
    config, changes = resumed_config(stored, load_config(None, flags, environ={}), flags)
    assert config.generations == 3 and config.harness.device == "cpu"  # not the defaults (20, cuda)
    assert config.budget_gpu_hours == 2.5 and changes == ["budget_gpu_hours: 1.0 -> 2.5"]
    with pytest.raises(ResumeError, match="seed set is stored"):
        resumed_config(stored, load_config(None, {"seed_set": "record"}, environ={}), {"seed_set": "record"})


def test_start_says_what_to_pass_without_a_gpu_and_with_an_endpoint_but_no_model(tmp_path, monkeypatch):
    if __import__("torch").cuda.is_available():
        pytest.skip("a GPU is visible here")
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    result = CliRunner().invoke(app, ["start", "--component", "optimizer", "--db", url])
    assert result.exit_code == 2 and "no CUDA GPU" in result.output and "--device cpu" in result.output
    assert not (tmp_path / "evolve.db").exists()  # said before anything was stored or trained
    config = load_config(None, {}, environ={"OPENAI_BASE_URL": "http://localhost:8000/v1"}).config
    reason = start_command.mutator_reason(config)
    assert "endpoint is set" in reason and "http://localhost:8000/v1" in reason and "--model NAME" in reason
    with_model = load_config(None, {}, environ={"OPENAI_BASE_URL": "http://localhost:8000/v1", "EVOLVE_MODEL": "qwen"}).config
    assert [m.name for m in with_model.llm.models] == ["qwen"] and with_model.llm.enabled


def test_the_run_limit_follows_the_warm_up():
    limits = WorkerLimits()
    assert limits.run_limit(50.0) == 150.0 and limits.run_limit(1.0) == limits.min_run_seconds
    assert limits.model_copy(update={"reference_warmup_seconds": 100.0}).run_limit(1.0) == 300.0  # the seed's warm-up
    assert WorkerLimits(run_seconds=120).run_limit(500.0) == 120


@pytest.fixture
def data_file(tmp_path):
    d = synthetic_dataset(200, 50, seed=3)
    path = tmp_path / "small.npz"
    np.savez(path, train_images=d.train_images, train_labels=d.train_labels, test_images=d.test_images, test_labels=d.test_labels)
    return path


def test_sigkill_during_a_promotion_then_resume_without_flags(tmp_path, data_file, monkeypatch):
    """The done-when of issue 13: the killed promotion is redone and decided, the generation count and
    the GPU seconds spent are kept, and no migration is replayed."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EVOLVE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    command = [sys.executable, "-m", "tests.stub_search", "start", "--component", "hyperparams", "--device", "cpu",
               "--data", str(data_file), "--db", url, "--generations", "3", "--name", "killed",
               "--set", "candidates_per_generation=1", "--set", "population.islands=2",
               "--set", "population.migration_interval=1", "--set", "seed=5"]
    environment = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    process = subprocess.Popen(command, cwd=ROOT, env={**environment, "STUB_BLOCK_PROMOTIONS": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            if not (tmp_path / "evolve.db").exists():
                continue
            with Store.open(url) as store:
                found = store.find_experiment("killed")
                if found and store.promotions(found.id, "running"):
                    break
        else:
            pytest.fail(f"the search never started a paired re-measurement: {process.stderr.read().decode()[-2000:]}")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with Store.open(url) as store:
        experiment = store.experiment("killed")
        (killed,) = store.promotions(experiment.id, "running")
        generations_before = store.experiment("killed").completed_generations
        migrants_before = store.migrants(experiment.id)
        _, seconds_before = store.spending(experiment.id)
        evaluated_before = len(store.candidates(experiment.id, ["evaluated", "champion"]))
    assert generations_before >= 1 and migrants_before  # the migration after generation 1 happened before the kill
    assert seconds_before == evaluated_before * (SMOKE_SECONDS + TIMED_SECONDS)

    monkeypatch.setattr(start_command, "make_executor", lambda config, dataset: StubExecutor())
    result = CliRunner().invoke(app, ["start", "--resume", "killed", "--db", url])
    assert result.exit_code == 0, result.output
    assert "overrides" not in result.output
    with Store.open(url) as store:
        experiment = store.experiment("killed")
        redone = next(p for p in store.promotions(experiment.id) if p.id == killed.id)
        paired = store.samples(killed.candidate_id, ["confirm"])  # the paired runs of the redone re-measurement
        assert redone.status == "done" and redone.promoted and paired
        assert redone.gpu_seconds >= 2 * PAIR_SECONDS and redone.gpu_seconds % PAIR_SECONDS == 0  # its pairs' device time
        assert store.current_champion(experiment.id).id == killed.candidate_id or any(
            p.promoted for p in store.promotions(experiment.id) if p.id > killed.id)
        assert experiment.completed_generations == 3 and experiment.config["generations"] == 3  # not the default 20
        assert sum(store.proposal_counts(experiment.id).values()) == 3
        migrants = store.migrants(experiment.id)
        assert migrants[: len(migrants_before)] == migrants_before  # kept, and generation 1's not replayed:
        assert [m.generation for m in migrants].count(1) == [m.generation for m in migrants_before].count(1)
        assert sorted({m.generation for m in migrants}) == [1, 2, 3][: len({m.generation for m in migrants})]
        evaluated = len(store.candidates(experiment.id, ["evaluated", "champion"]))
        promotions = store.promotions(experiment.id, "done")
        _, seconds = store.spending(experiment.id)
        assert seconds == pytest.approx(evaluated * (SMOKE_SECONDS + TIMED_SECONDS) + sum(p.gpu_seconds for p in promotions))
        assert seconds > seconds_before
