"""The lineage store on SQLite and PostgreSQL: schema, lineage, evaluations, champions, errors."""

import math
import socket
import sqlite3

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from database_support import database_url, evaluation, rejection, sample  # noqa: F401 (fixture)
from evaluator.results import KernelShare, ProfileSummary
from evaluator.settings import ScoreSettings
from evolve.database import DatabaseError, LLMCallRecord, NewCandidate, NotFound, Store
from evolve.database.canonical import source_hash
from evolve.database.connection import Database, parse_url
from evolve.database.migrate import alembic_config, current_revision, head_revision, scripts, upgrade
from evolve.database.models import Base, Candidate

SEED_SOURCE = '"""The optimizer."""\n\ndef lr():\n    return 0.1  # tuned\n'
CHILD_SOURCE = '"""The optimizer."""\n\ndef lr():\n    return 0.2\n'


@pytest.fixture
def store(database_url):
    with Store.open(database_url) as store:
        yield store


def new_experiment(store: Store, name: str = "exp"):
    return store.create_experiment(name, ["optimizer"], {"runs": 5, "target": 0.94}, "baseline", "cuda", version="0.1.0+test")


def add(store, experiment, source, origin="llm", **fields):
    return store.add_candidate(NewCandidate(experiment_id=experiment.id, component="optimizer", source=source, origin=origin, **fields))


def test_head_revision_constant_is_alembics_newest_migration():
    """migrate.HEAD_REVISION spares every command Alembic's import; a new migration must move it."""
    assert head_revision() == scripts().get_current_head()


def test_new_database_is_created_at_head_and_matches_the_models(database_url):
    with Store.open(database_url) as store, store.db.connect() as connection:
        assert current_revision(connection) == head_revision()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        if store.db.backend == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_lineage_round_trip(store):
    experiment = new_experiment(store)
    assert store.experiment().name == "exp" and store.experiment(str(experiment.id)).id == experiment.id
    seed, created = add(store, experiment, SEED_SOURCE, origin="seed")
    assert created and seed.status == "pending" and seed.diff == ""
    same, created = add(store, experiment, SEED_SOURCE.replace("  # tuned", "").replace('"""The optimizer."""', '"""Other words."""'))
    assert not created and same.id == seed.id, "comments and docstrings do not make a new program"

    call_id = store.record_llm_call(
        LLMCallRecord(experiment_id=experiment.id, model="gpt-x", endpoint="https://api", prompt="make it faster",
                      response="```python\n...```", tokens_in=1200, tokens_out=300, latency_seconds=4.2, cost=0.01)
    )
    child, created = add(store, experiment, CHILD_SOURCE, parent_id=seed.id, inspiration_ids=[seed.id], generation=1,
                         island=2, llm_call_id=call_id)
    assert created and child.parent_id == seed.id and child.inspiration_ids == [seed.id]
    assert "-    return 0.1  # tuned" in child.diff and "+    return 0.2" in child.diff

    claimed = store.claim_pending(experiment.id, limit=5, worker="w1")
    assert [c.id for c in claimed] == [seed.id, child.id] and all(c.status == "running" and c.claimed_by == "w1" for c in claimed)
    assert store.claim_pending(experiment.id) == []

    good = evaluation([0.940, 0.941, 0.942], [3.0, 3.1, 3.05])
    good.profile = ProfileSummary(device="cuda", kernel_seconds=0.5, phases={"forward": 1.0},
                                  top_kernels=[KernelShare(name="gemm", seconds=0.5, share=1.0, calls=3)])
    stored = store.record_evaluation(seed.id, good)
    assert stored.status == "evaluated" and stored.verdict == "evaluated" and stored.error is None
    assert stored.score == pytest.approx(good.summary.score) and stored.runs == 3
    assert stored.accuracy_lower_bound == pytest.approx(good.summary.accuracy_lower_bound)
    assert ProfileSummary.model_validate(stored.profile) == good.profile
    failed = store.record_evaluation(child.id, rejection("line 3: imports os"))
    assert failed.status == "rejected" and failed.verdict == "rejected at static" and failed.error == "line 3: imports os"
    with pytest.raises(DatabaseError, match="already evaluated"):
        store.record_evaluation(child.id, rejection())

    detail = store.detail(seed.id)
    assert [s.stage for s in detail.stages] == ["static", "contracts", "smoke", "timed"]
    assert [(s.run, s.accuracy, s.stage) for s in detail.samples] == [(0, 0.940, "timed"), (1, 0.941, "timed"), (2, 0.942, "timed")]
    assert detail.samples[0].device_name.startswith("NVIDIA") and detail.samples[0].driver_version == "550.54"
    assert store.detail(child.id).llm_call.prompt == "make it faster"

    store.record_samples(seed.id, [sample(0, 0.943, 3.0, seed=77)], stage="confirm")
    assert [s.seed for s in store.samples(seed.id, stages=["confirm"])] == [77]
    assert [c.id for c in store.ancestry(child.id)] == [child.id, seed.id]
    assert [c.id for c in store.top(experiment.id)] == [seed.id], "only scored candidates rank"


def test_champions_and_resume(store):
    experiment = new_experiment(store)
    first, _ = add(store, experiment, "a = 1", origin="seed")
    second, _ = add(store, experiment, "a = 2", parent_id=first.id)
    third, _ = add(store, experiment, "a = 3", parent_id=second.id)
    for candidate in store.claim_pending(experiment.id, limit=2):
        store.record_evaluation(candidate.id, evaluation([0.94, 0.95, 0.945], [3.0, 2.9, 3.1]))
    assert store.current_champion(experiment.id) is None
    store.record_champion(experiment.id, first.id, None, {"reason": "seed"})
    change = store.record_champion(experiment.id, second.id, first.id, ScoreSettings(target=0.93))
    assert change.incumbent_id == first.id and change.statistics["target"] == 0.93
    assert store.current_champion(experiment.id).id == second.id
    assert store.candidate(first.id).status == "evaluated" and store.candidate(second.id).status == "champion"
    assert [c.candidate_id for c in store.champion_history(experiment.id)] == [first.id, second.id]
    with pytest.raises(DatabaseError, match="only an evaluated candidate"):
        store.record_champion(experiment.id, third.id, second.id, {})

    store.claim_pending(experiment.id)
    assert store.candidate(third.id).status == "running"
    assert store.requeue_unfinished(experiment.id) == 1
    assert store.candidate(third.id).status == "pending" and store.candidate(third.id).claimed_by is None

    overview = store.overview()[0]
    assert overview.counts == {"evaluated": 1, "champion": 1, "pending": 1}
    assert overview.champion.id == second.id and overview.best_score == pytest.approx(max(c.score for c in store.top(experiment.id)))
    store.set_experiment_status(experiment.id, "finished")
    assert store.experiment("exp").status == "finished" and store.experiment("exp").finished_at is not None


def test_a_single_run_is_stored_with_a_finite_score(store):
    """One run has no bound of its own (0, clipped) but a score at the reference runs with the prior std."""
    experiment = new_experiment(store)
    candidate, _ = add(store, experiment, "b = 1", origin="seed")
    stored = store.record_evaluation(candidate.id, evaluation([0.95], [3.0]))
    assert stored.accuracy_lower_bound == 0.0 and math.isfinite(stored.score)
    assert stored.summary["accuracy_lower_bound"] == 0.0 and stored.summary["penalty"] == 0.0
    assert store.top(experiment.id)[0].id == candidate.id


def test_config_may_be_a_settings_model(store):
    settings = ScoreSettings(target=0.93)
    experiment = store.create_experiment("cfg", ["tta"], settings, "baseline", "cpu")
    assert store.experiment("cfg").config == settings.model_dump() and experiment.code_version.startswith("0.")


def test_references_are_checked(store):
    experiment = new_experiment(store)
    with pytest.raises(NotFound, match="no candidate with id 999"):
        add(store, experiment, "c = 1", parent_id=999)
    with pytest.raises(DatabaseError, match="exists already"):
        new_experiment(store)
    with pytest.raises(NotFound, match="no experiment named 'nope'"):
        store.experiment("nope")
    # The database itself enforces foreign keys (PRAGMA foreign_keys on SQLite), not only the store.
    with pytest.raises(IntegrityError), store.db.session(write=True) as session:
        session.execute(insert(Candidate).values(
            experiment_id=experiment.id, component="optimizer", source="x", diff="", source_hash=source_hash("x"),
            parent_id=12345, inspiration_ids=[], generation=0, island=0, origin="llm", status="pending", flags=[],
            created_at=experiment.created_at,
        ))


def downgrade_to(url: str, revision: str) -> None:
    database = Database(parse_url(url))
    with database.connect(write=True, schema_change=True) as connection:
        command.downgrade(alembic_config(connection), revision)
    database.dispose()


def test_an_older_database_is_refused_until_upgraded(database_url):
    with Store.open(database_url) as store:
        experiment = new_experiment(store)
        add(store, experiment, "d = 1", origin="seed")
    downgrade_to(database_url, "0001")
    with pytest.raises(DatabaseError, match=r"older than this cifar-evolve.*evolve db upgrade"):
        Store.open(database_url)
    database = Database(parse_url(database_url))
    assert upgrade(database) == ("0001", head_revision())
    database.dispose()
    with Store.open(database_url) as store:
        assert [c.source for c in store.candidates(store.experiment().id)] == ["d = 1"]


def test_a_newer_or_foreign_database_is_refused(database_url):
    Store.open(database_url).close()
    database = Database(parse_url(database_url))
    with database.connect(write=True) as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseError, match=r"revision 9999, made by a newer cifar-evolve.*upgrade cifar-evolve"):
        Store.open(database_url)
    with pytest.raises(DatabaseError, match="newer cifar-evolve"):
        upgrade(database)
    with database.connect(write=True) as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    with pytest.raises(DatabaseError, match="not an evolve database"):
        Store.open(database_url)
    database.dispose()


@pytest.mark.parametrize(
    "url, message",
    [
        ("not a url", "is not a database URL"),
        ("mysql://u@h/db", "database 'mysql' is not supported"),
        ("sqlite://", "in-memory SQLite"),
        ("postgresql+psycopg2://u@h/db", "psycopg2' is not supported"),
    ],
)
def test_wrong_urls_get_one_clear_message(url, message):
    with pytest.raises(DatabaseError, match=message):
        Store.open(url)


def test_unreachable_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(DatabaseError, match=r"cannot use the database at postgresql\+psycopg://evolve:\*\*\*@127.0.0.1.*server is running"):
        Store.open(f"postgresql://evolve:secret@127.0.0.1:{port}/evolve")


def test_sqlite_file_problems(tmp_path):
    with pytest.raises(DatabaseError, match="check that its folder exists"):
        Store.open(f"sqlite:///{tmp_path}/missing/evolve.db")
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="is not an SQLite database"):
        Store.open(f"sqlite:///{tmp_path}/junk.db")
    with pytest.raises(DatabaseError, match="there is no database at .*run a search first"):
        Store.open(f"sqlite:///{tmp_path}/absent.db", create=False)


def test_a_locked_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path}/evolve.db"
    with Store.open(url) as store:
        new_experiment(store)
    holder = sqlite3.connect(tmp_path / "evolve.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseError, match=r"is locked: another process held it for more than 0.2 s"):
            with Store.open(url, busy_timeout=0.2) as store:
                new_experiment(store, "other")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
