"""Two searches and an `evolve ui` on one PostgreSQL database: nothing lost, nothing mixed (issue 28, part 5).

Two processes each run the real loop, store and built-in mutator (the stub evaluator of
tests/stub_search.py: results at once) as two experiments of one database, at the same time,
while this process serves the ui (evolve/ui/app.py, uvicorn on loopback) and reads its data
endpoints over HTTP as a browser would poll them. Afterwards each experiment must hold all of its
own proposals and candidates and nothing of the other's: parents, inspirations, proposals,
promotions and champions all within it; every candidate evaluated; every row the ui served
during the searches one of that experiment's, and its last answer the whole experiment.
PostgreSQL only (SQLite's single writer is tested in test_database_processes.py): skipped
without a server, as the other PostgreSQL tests are (tests/database_support.py).
"""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browser_support import running
from database_support import fresh_url

from evolve.database import Store
from evolve.ui.app import create_app

ROOT = Path(__file__).resolve().parents[1]
CHILDREN = 24  # proposals per search: enough for promotions and champion changes, a few seconds each
SEARCH = """
import sys
from tests.ray_support import run_stub_search
from tests.stub_search import StubExecutor
print(run_stub_search(StubExecutor(slots=2), sys.argv[1], {children}, name=sys.argv[2]))
"""


@pytest.fixture
def postgres_url(tmp_path):
    yield from fresh_url("postgresql", tmp_path)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as reply:
        assert reply.status == 200, url
        return json.loads(reply.read())


def start_search(url: str, name: str) -> subprocess.Popen:
    """A search in its own process, importing this checkout's code (not an installed copy)."""
    return subprocess.Popen([sys.executable, "-c", SEARCH.format(children=CHILDREN), url, name], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def served_ids(data: dict) -> set[int]:
    at = data["columns"].index("id")
    return {row[at] for row in data["nodes"]}


def test_two_searches_and_the_ui_share_one_postgresql_database(postgres_url):
    names = ("left", "right")
    with Store.open(postgres_url) as store:  # the schema, before the ui opens the database read-only
        assert store.experiments() == []
    seen: dict[str, set[int]] = {name: set() for name in names}
    polls = 0
    with running(create_app(postgres_url)) as base:
        searches = {name: start_search(postgres_url, name) for name in names}
        deadline = time.monotonic() + 240
        while any(p.poll() is None for p in searches.values()):
            assert time.monotonic() < deadline, "the searches did not finish in 4 minutes"
            get_json(f"{base}/api/version")
            for name in names:
                try:
                    data = get_json(f"{base}/api/experiments/{name}")
                except urllib.error.HTTPError as error:  # the search has not created its experiment yet
                    assert error.code == 404, error
                    continue
                seen[name] |= served_ids(data)
                polls += 1
            time.sleep(0.2)
        for name, process in searches.items():
            out, err = process.communicate()
            assert process.returncode == 0, f"search {name} failed:\n{err[-3000:]}"
            assert out.strip().startswith("all "), out
        final = {name: get_json(f"{base}/api/experiments/{name}") for name in names}
    assert polls > 0

    with Store.open(postgres_url) as store:
        experiments = {name: store.experiment(name) for name in names}
        ids = {name: {c.id for c in store.candidates(experiments[name].id)} for name in names}
        assert not ids["left"] & ids["right"]
        for name in names:
            experiment = experiments[name]
            mine = ids[name]
            candidates = store.candidates(experiment.id)
            proposals = store.proposal_counts(experiment.id)
            assert sum(proposals.values()) == CHILDREN, proposals  # every proposal stored
            assert len(candidates) == 1 + proposals.get("new", 0)  # the seed and every new program, no other
            assert [c.origin for c in candidates].count("seed") == 1
            for c in candidates:
                assert c.experiment_id == experiment.id
                assert c.status in ("evaluated", "champion"), (c.id, c.status, c.verdict)  # nothing lost on the way
                assert c.origin == "seed" or c.parent_id in mine, (name, c.id, c.parent_id)
                assert set(c.inspiration_ids) <= mine
                assert store.samples(c.id, ["timed"]), c.id
            assert not store.candidates(experiment.id, ["pending", "running"])
            for promotion in store.promotions(experiment.id):
                assert promotion.candidate_id in mine and promotion.status == "done"
            history = store.champion_history(experiment.id)
            assert history and all(h.experiment_id == experiment.id and h.candidate_id in mine for h in history)
            assert all(h.incumbent_id is None or h.incumbent_id in mine for h in history)
            champion = store.current_champion(experiment.id)
            assert champion is not None and champion.id == history[-1].candidate_id
            assert [c.id for c in candidates if c.status == "champion"] == [champion.id]
            for parent_id, _, _ in store.proposal_outcomes_by_parent(experiment.id):
                assert parent_id in mine

            assert seen[name] <= mine  # every row served while the searches ran was this experiment's
            assert served_ids(final[name]) == mine  # and the last answer all of it
            assert {c["candidate_id"] for c in final[name]["champions"]} == {h.candidate_id for h in history}
            assert set(final[name]["champion_path"]) <= mine and final[name]["champion_path"][0] == champion.id
