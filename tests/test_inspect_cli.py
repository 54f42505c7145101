"""The inspection commands on a small lineage built through the store (no training)."""

import json

import pytest
from database_support import BACKENDS, evaluation, fresh_url, rejection
from rich.console import Console
from test_database import downgrade_to
from typer.testing import CliRunner

import evolve.cli.inspect_commands
from evaluator.component_set import ComponentSet
from evolve.cli.app import app
from evolve.database import LLMCallRecord, NewCandidate, Store
from evolve.database.migrate import head_revision

runner = CliRunner()

FAST = '"""Muon."""\nLR = 0.2\nMOMENTUM = 0.9\n'


@pytest.fixture(scope="module", params=BACKENDS)
def lineage(request, tmp_path_factory):
    """Two experiments; the recent one: seed -> faster child (champion) -> cheating grandchild, etc."""
    for url in fresh_url(request.param, tmp_path_factory.mktemp("db")):
        with Store.open(url) as store:
            old = store.create_experiment("search-a", ["optimizer"], {}, "baseline", "cuda", version="0.1.0",
                                          seed_sources=ComponentSet.shipped("baseline").sources)
            seed_a, _ = store.add_candidate(NewCandidate(experiment_id=old.id, component="optimizer", source="LR = 0.1\n", origin="seed"))
            store.record_evaluation(seed_a.id, evaluation([0.94, 0.942, 0.941], [3.2, 3.3, 3.25]))
            single, _ = store.add_candidate(NewCandidate(experiment_id=old.id, component="optimizer", source="LR = 0.3\n", origin="seed"))
            store.record_evaluation(single.id, evaluation([0.95], [3.0]))  # one run: scored with the prior std, finite

            e = store.create_experiment("search-b", ["optimizer"], {"a": 1e8}, "baseline", "cuda", version="0.1.0",
                                        seed_sources=ComponentSet.shipped("baseline").sources)
            add = lambda **f: store.add_candidate(NewCandidate(experiment_id=e.id, component="optimizer", **f))[0]  # noqa: E731
            seed = add(source='"""Muon."""\nLR = 0.1\nMOMENTUM = 0.9\n', origin="seed")
            call = store.record_llm_call(LLMCallRecord(
                experiment_id=e.id, model="gpt-test", prompt="make [the optimizer] faster", response="raise LR to 0.2",
                tokens_in=900, tokens_out=40, latency_seconds=2.5, cost=0.002))
            child = add(source=FAST, origin="llm", parent_id=seed.id, llm_call_id=call, generation=1)
            broken = add(source="import os\n", origin="mutator", parent_id=seed.id, generation=1)
            grandchild = add(source=FAST + "EPOCHS = 8\n", origin="llm", parent_id=child.id, generation=2)
            crossover = add(source=FAST + "EPOCHS = 9\n", origin="crossover", parent_id=child.id, second_parent_id=seed.id, generation=3)
            store.claim_pending(e.id, limit=4)
            store.record_evaluation(seed.id, evaluation([0.948, 0.949, 0.950], [3.0, 3.1, 3.05]))
            store.record_evaluation(child.id, evaluation([0.951, 0.952, 0.950], [2.8, 2.85, 2.9]))
            store.record_evaluation(broken.id, rejection())
            store.record_evaluation(grandchild.id, evaluation([0.935, 0.931, 0.936], [2.5, 2.5, 2.6]))
            store.requeue_unfinished(e.id)
            store.record_champion(e.id, seed.id, None, {})
            store.record_champion(e.id, child.id, seed.id, {"time_delta": -0.2, "p_value": 0.001})
        ids = dict(seed=seed.id, child=child.id, broken=broken.id, grandchild=grandchild.id, crossover=crossover.id)
        yield url, ids


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_experiments(lineage):
    url, ids = lineage
    result = invoke("experiments", "--db", url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("search-a  running") and lines[1].startswith("search-b  running")
    assert f"best -2.8500  champion #{ids['child']} 2.8500 s 95.10%  [1 champion, 2 evaluated, 1 pending, 1 rejected]" in lines[1]
    report = json.loads(invoke("experiments", "--db", url, "--json").stdout)
    assert [r["experiment"]["name"] for r in report] == ["search-a", "search-b"]
    assert report[1]["champion"]["id"] == ids["child"] and report[1]["counts"]["rejected"] == 1


def test_lineage_tree(lineage):
    url, ids = lineage
    result = invoke("lineage", "--db", url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"#{ids['seed']} optimizer [seed] gen 0 evaluated score -3.05")
    assert lines[1].startswith(f"  #{ids['child']} optimizer [llm] gen 1 champion score -2.85")
    assert lines[2].startswith(f"    #{ids['grandchild']} ") and lines[3].startswith(f"    #{ids['crossover']} x #{ids['seed']} ")
    assert "pending" in lines[3] and lines[4].startswith(f"  #{ids['broken']} ") and "rejected" in lines[4]
    assert len(invoke("lineage", "--db", url, "--depth", "1").stdout.splitlines()) == 3
    assert "search-a" not in result.stdout and len(invoke("lineage", "search-a", "--db", url).stdout.splitlines()) == 2

    chain = invoke("lineage", "--db", url, "--candidate", str(ids["grandchild"]))
    assert [line.split()[0] for line in chain.stdout.splitlines()] == [f"#{ids['seed']}", f"#{ids['child']}", f"#{ids['grandchild']}"]
    tree = json.loads(invoke("lineage", "--db", url, "--json").stdout)
    assert tree[0]["id"] == ids["seed"] and [c["id"] for c in tree[0]["children"]] == [ids["child"], ids["broken"]]
    assert tree[0]["children"][0]["children"][0]["accuracy_mean"] == pytest.approx(0.934)


def test_lineage_in_a_terminal_is_a_rich_tree(lineage, monkeypatch):
    url, ids = lineage
    monkeypatch.setattr(evolve.cli.inspect_commands, "console", lambda: Console(force_terminal=True, width=200, color_system=None))
    result = invoke("lineage", "--db", url, "--candidate", str(ids["child"]))
    assert result.exit_code == 0, result.output
    assert "└── " in result.stdout and f"#{ids['child']} optimizer [llm]" in result.stdout


def test_show(lineage):
    url, ids = lineage
    result = invoke("show", str(ids["child"]), "--db", url)
    assert result.exit_code == 0, result.output
    for expected in ("status champion", "-LR = 0.1", "+LR = 0.2", FAST.strip(), "make [the optimizer] faster",
                     "raise LR to 0.2", "gpt-test", "NVIDIA A100", "timed", "1000", "smoke"):
        assert expected in result.stdout, expected
    rejected = invoke("show", str(ids["broken"]), "--db", url)
    assert "verdict rejected at static" in rejected.stdout and "error: line 3: imports os" in rejected.stdout
    detail = json.loads(invoke("show", str(ids["child"]), "--db", url, "--json").stdout)
    assert len(detail["samples"]) == 3 and detail["llm_call"]["tokens_in"] == 900 and detail["candidate"]["source"] == FAST


def test_top_and_rescore(lineage):
    url, ids = lineage
    best = json.loads(invoke("top", "--db", url, "-k", "2", "--json").stdout)
    assert [c["id"] for c in best] == [ids["child"], ids["seed"]]
    text = invoke("top", "--db", url).stdout
    assert text.splitlines()[2].split()[:2] == ["1", str(ids["child"])] and len(text.splitlines()) == 5

    # The grandchild is fastest but misses 94%: last as stored, first when the target is 92%.
    stored = json.loads(invoke("rescore", "--db", url, "--json").stdout)
    assert [r["id"] for r in stored["candidates"]] == [ids["child"], ids["seed"], ids["grandchild"]]
    assert stored["candidates"][0]["score"] == pytest.approx(stored["candidates"][0]["stored_score"])
    lenient = json.loads(invoke("rescore", "search-b", "--db", url, "--target", "0.92", "--json").stdout)
    assert [r["id"] for r in lenient["candidates"]] == [ids["grandchild"], ids["child"], ids["seed"]]
    assert lenient["candidates"][0]["score"] == pytest.approx(-2.5333, abs=1e-3)
    for command in ("rescore", "top"):
        single_run = invoke(command, "search-a", "--db", url, "--json").stdout
        assert "Infinity" not in single_run and "-3.0" in single_run, "a single run gets a finite score (prior std floor)"
    result = invoke("rescore", "--db", url, "--target", "0.93", "--a", "10", "--confidence", "0.9", "-k", "1")
    assert result.exit_code == 0 and "a=10, target 93.00%, confidence 0.9" in result.stdout
    assert result.stdout.splitlines()[2].split()[:2] == ["1", str(ids["grandchild"])]


def test_errors_are_one_message_and_exit_1(lineage, tmp_path):
    url, _ = lineage
    for args, message in [
        (["top", "nope", "--db", url], "no experiment named 'nope'"),
        (["show", "9999", "--db", url], "no candidate with id 9999"),
        (["lineage", "--candidate", "9999", "--db", url], "no candidate with id 9999"),
        (["experiments", "--db", f"sqlite:///{tmp_path}/none.db"], "there is no database at"),
        (["experiments", "--db", "oracle://x"], "database 'oracle' is not supported"),
        (["db", "upgrade", "--db", f"sqlite:///{tmp_path}/none.db"], "there is no database at"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, (args, result.output)
    assert not (tmp_path / "none.db").exists(), "reading never creates a database"


def test_db_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    with Store.open(url) as store:
        store.create_experiment("old", ["tta"], {}, "baseline", "cpu", version="0.0.1")
    downgrade_to(url, "0001")
    refused = invoke("experiments", "--db", url)
    assert refused.exit_code == 1 and "evolve db upgrade" in refused.output
    result = invoke("db", "upgrade", "--db", url)
    assert result.exit_code == 0 and f"from schema revision 0001 to {head_revision()}" in result.stdout
    assert invoke("experiments", "--db", url).stdout.startswith("old  running")
    assert json.loads(invoke("db", "upgrade", "--db", url, "--json").stdout)["before"] == head_revision()
