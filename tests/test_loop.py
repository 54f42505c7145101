"""`evolve start` end to end on the CPU: the built-in mutator, a loopback LLM, resume, SIGKILL."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluator.component_set import ComponentSet
from evaluator.data import synthetic_dataset
from evolve.cli.app import app
from evolve.database import Store
from tests.loopback_llm import LoopbackLLM, full_module, http_error, reply, search_replace
from tests.ray_support import run_stub_search, stub_config
from tests.stub_search import StubExecutor

FAST = [
    "--set", "candidates_per_generation=2", "--set", "cascade.runs=2", "--set", "cascade.min_runs=2",
    "--set", "score.target=0.2", "--set", "promotion.pairs=2", "--set", "harness.hyperparams.epochs=1",
    "--set", "population.islands=2", "--set", "seed=7",
    # The widest error budget allowed: a paired re-measurement needs 3 pairs, not the default 6 (their decisions are
    # not what these tests check; tests/test_null_search.py and test_promotion.py put the rule itself to the test).
    "--set", "promotion.experiment_alpha=0.45",
]
FINISHED = {"evaluated", "rejected", "failed", "champion"}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    d = synthetic_dataset(400, 100, seed=11)
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, train_images=d.train_images, train_labels=d.train_labels, test_images=d.test_images, test_labels=d.test_labels)
    return path


@pytest.fixture(autouse=True)
def no_llm_environment(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def start(db_url: str, data_file, *args: str, component: str = "optimizer"):
    command = ["start", "--component", component, "--device", "cpu", "--data", str(data_file), "--db", db_url, *FAST, *args]
    return CliRunner().invoke(app, command)


def test_builtin_mutator_runs_a_search_and_resumes_it(tmp_path, data_file):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    # hyperparams: the baseline optimizer's only mutator sites are Muon defaults its builder always overrides (liveness.py)
    result = start(url, data_file, "--generations", "1", "--name", "offline", component="hyperparams")
    assert result.exit_code == 0, result.output
    assert "built-in mutator" in result.output and "evolve export offline" in result.output
    with Store.open(url) as store:
        experiment = store.experiment("offline")
        candidates = store.candidates(experiment.id)
        assert experiment.status == "finished"
        assert [c.origin for c in candidates][0] == "seed" and all(c.origin == "mutator" for c in candidates[1:])
        assert all(c.status in FINISHED for c in candidates)
        assert store.current_champion(experiment.id) is not None
        assert store.samples(candidates[0].id, ["timed"])  # raw samples are kept
        children = [c for c in candidates if c.parent_id is not None]
        assert children and all(c.diff for c in children) and all(c.generation == 1 for c in children)
        before = len(candidates)

    script = tmp_path / "speedrun.py"
    exported = CliRunner().invoke(app, ["export", "offline", "--db", url, "-o", str(script)])
    assert exported.exit_code == 0, exported.output
    header = script.read_text()[:3000]
    assert "experiment offline" in header and "seed" in header  # provenance: experiment, lineage back to the seed
    missing = CliRunner().invoke(app, ["export", "--candidate", "999", "--db", url, "-o", str(tmp_path / "x.py")])
    assert missing.exit_code != 0 and "999" in missing.output

    result = start(url, data_file, "--resume", "offline", "--generations", "2", component="hyperparams")
    assert result.exit_code == 0, result.output
    assert "resuming offline" in result.output
    with Store.open(url) as store:
        candidates = store.candidates(store.experiment("offline").id)
        assert len(candidates) > before and max(c.generation for c in candidates) == 2
        assert len({c.source_hash for c in candidates}) == len(candidates)  # nothing evaluated twice
        assert len(store.experiments()) == 1


def test_loopback_llm_drives_the_search(tmp_path, data_file):
    optimizer = ComponentSet.shipped("baseline").sources["optimizer"]
    old = "        newton_schulz_steps: int = 3,"  # SEARCH text matches whole lines, indentation included
    assert optimizer.count(old) == 1
    script = [
        reply(search_replace(old, old.replace("3", "4"))),  # a valid patch
        http_error(429), reply(full_module(optimizer.replace(old, old.replace("3", "5")))),  # rate limit, retried
        reply("I would tune the learning rate."),  # no usable format: sent back once for repair
        reply(search_replace(old, old.replace("3", "6"))),
        http_error(500), reply(full_module(optimizer + "\nimport os\n")),  # server error, then a static-check failure
    ]
    with LoopbackLLM(*script) as server:
        config = tmp_path / "evolve.toml"
        config.write_text(
            f'[llm]\nbase_url = "{server.url}"\napi_key = "test-key"\nmax_retries = 2\ntimeout_seconds = 20\n'
            'concurrent_calls = 1\n'
            '[[llm.models]]\nname = "scripted"\nweight = 1\ninput_usd_per_million = 1.0\noutput_usd_per_million = 2.0\n'
        )
        url = f"sqlite:///{tmp_path / 'evolve.db'}"
        result = start(url, data_file, "--config", str(config), "--generations", "2", "--name", "llm")
        assert result.exit_code == 0, result.output
        assert server.pending == 0
    with Store.open(url) as store:
        experiment = store.experiment("llm")
        candidates = store.candidates(experiment.id)
        children = [c for c in candidates if c.origin == "llm"]
        assert len(children) == 4
        assert all(c.llm_call_id is not None for c in children)
        rejected = [c for c in children if c.status == "rejected"]
        at_static = [c for c in rejected if c.verdict == "rejected at static"]
        assert len(at_static) == 1 and "import" in (at_static[0].error or "")
        # The three patches change Muon's newton_schulz_steps default, which the builder always passes: the
        # behaviour check (evaluator/behaviour.py) rejects them before any device time.
        at_behaviour = [c for c in rejected if c.verdict == "rejected at behaviour"]
        assert len(at_behaviour) == 3 and len(rejected) == 4
        calls = [store.llm_call(i) for i in range(1, 6)]
        assert [c.error is None for c in calls] == [True] * 5
        assert all(c.tokens_in == 100 and c.cost == pytest.approx(100e-6 + 50 * 2e-6) for c in calls)
        assert "newton_schulz_steps" in store.detail(children[0].id).llm_call.prompt


def test_sigkill_mid_search_then_resume_loses_and_duplicates_nothing(tmp_path, data_file):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    command = [sys.executable, "-m", "evolve", "start", "--component", "hyperparams", "--device", "cpu", "--data", str(data_file),
               "--db", url, *FAST, "--generations", "1", "--name", "killed"]  # one generation: the kill lands in it
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # kill once the seed is evaluated and a child is being evaluated
            time.sleep(0.5)
            if not (tmp_path / "evolve.db").exists():
                continue
            with Store.open(url) as store:
                found = store.find_experiment("killed")
                statuses = [c.status for c in store.candidates(found.id)] if found else []
            if "champion" in statuses and "running" in statuses:
                break
        else:
            pytest.fail("the search never reached a running child")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with Store.open(url) as store:
        experiment = store.experiment("killed")
        finished_before = {c.id: c.status for c in store.candidates(experiment.id) if c.status in FINISHED}
        samples_before = {i: len(store.samples(i)) for i in finished_before}
    result = start(url, data_file, "--resume", "killed", component="hyperparams")  # the stored settings: one generation
    assert result.exit_code == 0, result.output
    with Store.open(url) as store:
        candidates = store.candidates(experiment.id)
        assert all(c.status in FINISHED for c in candidates)
        assert {i: len(store.samples(i)) for i in finished_before} == samples_before or all(
            len(store.samples(i)) >= n for i, n in samples_before.items()  # confirm samples may be added later
        )
        assert all(c.status in FINISHED for c in candidates if c.id in finished_before)
        assert len({c.source_hash for c in candidates}) == len(candidates)


def test_throughput_bench_measures_idle_evaluation_slots():
    from bench.loop_throughput import main

    idle = main(["--slots", "2", "--eval-seconds", "0.3", "--llm-seconds", "0.05", "--candidates", "6"])
    assert 0.0 <= idle < 1.0



def test_every_generation_finishes_though_some_proposals_make_no_candidate(tmp_path, monkeypatch):
    """An unusable reply, a duplicate or a near-copy is one of its generation's proposals: counted in candidates
    alone, the last generation never finished (and its migration never ran)."""
    from evolve.search.proposer import MutatorProposer, Unusable

    propose, calls = MutatorProposer.propose, iter(range(10**6))

    def every_third_unusable(self, request):
        return Unusable(request=request, reason="no live edit (test)") if next(calls) % 3 == 2 else propose(self, request)

    monkeypatch.setattr(MutatorProposer, "propose", every_third_unusable)
    config = stub_config(12).model_copy(update={"generations": 6, "candidates_per_generation": 2})
    url = f"sqlite:///{tmp_path / 'generations.db'}"
    run_stub_search(StubExecutor(), url, 12, config=config)
    with Store.open(url) as store:
        experiment = store.experiment("stub")
        counts = store.proposal_counts(experiment.id)
        assert counts["unusable"] == 4 and sum(counts.values()) == 12
        assert experiment.completed_generations == 6
