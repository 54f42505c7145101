"""Schema versions: Alembic migrations shipped in the package and run from code.

A new, empty database is created at the newest revision on first use. A database at an older
revision is refused until `evolve db upgrade`; one from a newer cifar-evolve is refused too.
Nothing ever reads a database whose schema it does not know.

Opening a database at the newest revision, the common case, reads its version with one query and
compares it with HEAD_REVISION; Alembic itself is imported only to create, upgrade or judge an
unknown revision (it costs a tenth of a second of every command's start-up).
"""

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from evolve.database.connection import Database
from evolve.database.errors import DatabaseError
from evolve.database.reader import HEAD_REVISION

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
# HEAD_REVISION (reader.py, which reads without SQLAlchemy): the newest revision in migrations/versions;
# tests/test_database.py checks it against Alembic's head.
# Any constant: serializes first-use creation and upgrades between processes on PostgreSQL.
POSTGRES_LOCK_KEY = 7_349_115_402


def alembic_config(connection: Connection | None = None) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def scripts() -> "ScriptDirectory":
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    return HEAD_REVISION


def current_revision(connection: Connection) -> str | None:
    """The stored revision, as Alembic's own version table holds it; None for a database without one."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_to_head(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def is_known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return scripts().get_revision(revision) is not None
    except CommandError:
        return False


def has_foreign_tables(connection: Connection) -> bool:
    """Tables other than Alembic's own version table (left, empty, by a full downgrade)."""
    return any(name != "alembic_version" for name in inspect(connection).get_table_names())


def lock_for_schema_change(connection: Connection) -> None:
    """On PostgreSQL an advisory lock (SQLite's BEGIN IMMEDIATE already serializes writers)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY})


def check_schema(database: Database, create: bool) -> None:
    """Create an empty database at head, accept one at head, refuse any other with the fix."""
    where = database.describe()
    with database.connect(write=create, schema_change=create) as connection:
        if create:
            lock_for_schema_change(connection)
        revision = current_revision(connection)
        if revision is None:
            if has_foreign_tables(connection):
                raise DatabaseError(
                    f"the {where} holds tables but no evolve schema version: it is not an evolve database. "
                    "Pass another --db"
                )
            if not create:
                raise DatabaseError(f"the {where} is empty: run a search first, or pass the --db of one")
            upgrade_to_head(connection)
            return
    refuse_unless_head(revision, where)


def refuse_unless_head(revision: str, where: str) -> None:
    head = head_revision()
    if revision == head:
        return
    if is_known(revision):
        raise DatabaseError(
            f"the {where} has schema revision {revision}, older than this cifar-evolve's {head}: "
            f"back it up, then run `evolve db upgrade --db URL` to upgrade it"
        )
    raise DatabaseError(
        f"the {where} has schema revision {revision}, made by a newer cifar-evolve (this one knows up to {head}): "
        "upgrade cifar-evolve (pip install -U cifar-evolve), or pass another --db"
    )


def upgrade(database: Database) -> tuple[str | None, str]:
    """Bring the database to the newest schema in one transaction; returns (before, after)."""
    with database.connect(write=True, schema_change=True) as connection:
        lock_for_schema_change(connection)
        before = current_revision(connection)
        if before is None and has_foreign_tables(connection):
            raise DatabaseError(f"the {database.describe()} holds tables but no evolve schema version: not upgrading it")
        if before is not None and not is_known(before):
            refuse_unless_head(before, database.describe())
        upgrade_to_head(connection)
        return before, current_revision(connection) or ""
