"""`evolve ui` without a browser: read-only queries on SQLite and PostgreSQL, HTTP safety, the command."""

import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from typer.testing import CliRunner

from evolve.cli.app import app as cli
from evolve.database import DatabaseError, LLMCallRecord, NewCandidate, Store
from evolve.ui import queries, server
from evolve.ui.app import create_app
from browser_support import running
from database_support import database_url, evaluation, rejection, sample  # noqa: F401 (fixture)

SEED = "def step(x):\n    return x + 1\n"
REPLY = "<script>alert('reply')</script> & <img src=x onerror=alert(1)>"


def fill(url: str) -> dict[str, int]:
    """Seed (first champion), a promoted child with paired samples on both sides, and a rejected LLM child."""
    with Store.open(url) as store:
        experiment = store.create_experiment("ui", ["optimizer"], {"seed_set": "baseline", "budget_usd": 2.0}, "baseline", "cpu")
        seed, _ = store.add_candidate(NewCandidate(experiment_id=experiment.id, component="optimizer", source=SEED, origin="seed"))
        store.record_evaluation(seed.id, evaluation([0.94, 0.95, 0.94], [3.0, 3.1, 3.0]))
        store.record_champion(experiment.id, seed.id, None, {"reason": "the first evaluated candidate"})
        child, _ = store.add_candidate(NewCandidate(
            experiment_id=experiment.id, component="optimizer", source=SEED.replace("1", "2"), origin="mutator",
            parent_id=seed.id, generation=1, island=1,
        ))
        store.record_evaluation(child.id, evaluation([0.95, 0.95, 0.96], [2.5, 2.6, 2.5]))
        store.record_samples(child.id, [sample(i, 0.95, 2.5, seed=50 + i) for i in range(2)], "confirm")
        store.record_samples(seed.id, [sample(i, 0.94, 3.0, seed=50 + i) for i in range(2)], "confirm")
        store.record_champion(experiment.id, child.id, seed.id, {"reason": "faster", "pairs": 2})
        call = store.record_llm_call(LLMCallRecord(experiment_id=experiment.id, model="m", prompt="p", response=REPLY, cost=0.25))
        llm, _ = store.add_candidate(NewCandidate(
            experiment_id=experiment.id, component="optimizer", source=SEED + "import os\n", origin="llm",
            parent_id=child.id, generation=2, llm_call_id=call,
        ))
        store.record_evaluation(llm.id, rejection())
    return {"experiment": experiment.id, "seed": seed.id, "child": child.id, "llm": llm.id}


def test_queries_read_both_backends_and_never_write(database_url):  # noqa: F811
    ids = fill(database_url)
    with queries.open_read_only(database_url) as store:
        [row] = queries.experiments(store)
        assert row.llm_usd == pytest.approx(0.25) and row.budget_usd == 2.0 and row.seed_set == "baseline"
        assert row.overview.champion.id == ids["child"] and row.overview.counts == {"champion": 1, "evaluated": 1, "rejected": 1}
        data = queries.experiment_data(store, ids["experiment"])
        nodes = [dict(zip(data["columns"], row)) for row in data["nodes"]]
        assert [n["id"] for n in nodes] == [ids["seed"], ids["child"], ids["llm"]]
        assert data["champion_path"] == [ids["child"], ids["seed"]] and len(data["champions"]) == 2
        stored = queries.utc(store.candidate(ids["seed"]).created_at).timestamp() * 1000  # epoch ms, read as UTC
        assert isinstance(nodes[0]["created_at"], int) and abs(nodes[0]["created_at"] - stored) < 2
        page = queries.candidate_page(store, ids["child"], database_url)
        [first, promoted] = queries.candidate_page(store, ids["seed"], database_url).promotions
        assert first.change.incumbent_id is None and promoted.role == "incumbent"
        [promotion] = page.promotions
        assert promotion.role == "candidate" and [s.seed for s in promotion.incumbent_samples] == [50, 51]
        assert [s.seed for s in promotion.candidate_samples] == [50, 51]
        assert page.children[0].id == ids["llm"] and f"--candidate {ids['child']}" in page.export_command
        assert queries.candidate_page(store, ids["llm"], database_url).detail.llm_call.response == REPLY
        before, elsewhere = queries.fingerprint(store), queries.fingerprint(store, candidate_id=ids["llm"])
        of_seed = queries.fingerprint(store, experiment_id=ids["experiment"], candidate_id=ids["seed"])
        with pytest.raises((DatabaseError, sa_exc.DBAPIError), match="(?i)read-only"):
            with store.db.session(write=True) as session:
                session.execute(text("DELETE FROM samples"))
        with Store.open(database_url) as writer:
            late, _ = writer.add_candidate(NewCandidate(experiment_id=ids["experiment"], component="optimizer",
                                                        source=SEED.replace("1", "3"), origin="mutator", parent_id=ids["seed"]))
        assert queries.fingerprint(store) != before  # a new child of the seed:
        assert queries.fingerprint(store, experiment_id=ids["experiment"], candidate_id=ids["seed"]) != of_seed
        assert queries.fingerprint(store, candidate_id=ids["llm"]) == elsewhere  # not news for an unrelated page
        assert len(store.samples(ids["seed"])) == 5  # nothing was deleted
        with Store.open(database_url) as writer:  # compared with the champion and not promoted
            writer.record_evaluation(late.id, evaluation([0.95, 0.95], [2.4, 2.4]))
            writer.record_samples(late.id, [sample(i, 0.95, 2.4, seed=70 + i) for i in range(2)], "confirm")
            writer.record_samples(ids["child"], [sample(i, 0.95, 2.5, seed=70 + i) for i in range(2)], "confirm")
        comparison = queries.candidate_page(store, late.id, database_url).comparison
        assert comparison.incumbent_id == ids["child"] and not queries.candidate_page(store, late.id, database_url).promotions
        assert [s.seed for s in comparison.candidate_samples] == [s.seed for s in comparison.incumbent_samples] == [70, 71]
        assert queries.candidate_page(store, ids["child"], database_url).comparison is None  # it was promoted


def test_a_missing_or_foreign_database_is_refused_with_the_fix(tmp_path):
    with pytest.raises(DatabaseError, match="run a search first"):
        queries.open_read_only(f"sqlite:///{tmp_path / 'none.db'}")
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(DatabaseError, match="empty"):
        queries.open_read_only(f"sqlite:///{tmp_path / 'empty.db'}")
    assert not (tmp_path / "none.db").exists()


def get(url: str, host: str | None = None, method: str = "GET") -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=20) as reply:
            return reply.status, dict(reply.headers), reply.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_http_pages_escape_and_refuse_what_they_should(tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    ids = fill(url)
    with running(create_app(url)) as base:
        status, headers, body = get(f"{base}/candidates/{ids['llm']}")
        assert status == 200 and "script-src 'self'" in headers["content-security-policy"]
        assert "&lt;script&gt;alert(&#39;reply&#39;)&lt;/script&gt;" in body and "<script>alert" not in body
        assert "<img src=x" not in body
        for page in ("/", f"/experiments/{ids['experiment']}", "/experiments/ui", f"/candidates/{ids['seed']}",
                     f"/candidates/{ids['child']}/diff", f"/api/experiments/{ids['experiment']}", "/api/version",
                     "/static/echarts.min.js", "/highlight.css"):
            assert get(base + page)[0] == 200, page
        assert get(f"{base}/candidates/999")[0] == 404
        assert get(f"{base}/experiments/nope")[0] == 404
        assert get(base + "/", method="POST")[0] == 405
        assert get(base + "/", host="attacker.example")[0] == 400  # DNS rebinding


def test_binding_beyond_loopback_warns():
    assert server.exposure_warning("127.0.0.1") is None and server.exposure_warning("localhost") is None
    assert server.exposure_warning("::1") is None
    assert "anyone who can reach" in server.exposure_warning("0.0.0.0")
    assert server.allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "::1", "[::1]"]


def test_the_command_serves_read_only_and_warns(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    fill(url)
    calls = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: calls.append(kw))
    result = CliRunner().invoke(cli, ["ui", "--db", url, "--host", "0.0.0.0", "--port", "9876"])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "0.0.0.0" in result.output and "read-only" in result.output
    assert calls == [{"host": "0.0.0.0", "port": 9876, "log_level": "warning", "access_log": False}]
    missing = CliRunner().invoke(cli, ["ui", "--db", f"sqlite:///{tmp_path / 'nothing.db'}"])
    assert missing.exit_code == 1 and "run a search first" in missing.output and not calls[1:]


def test_the_web_stack_does_not_import_torch():
    code = "import sys, evolve.ui.server, evolve.cli.ui_command; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
