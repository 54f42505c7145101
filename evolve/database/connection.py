"""Engines for SQLite and PostgreSQL, their per-connection settings, and clear errors.

SQLite: foreign keys on, WAL journal (readers never block the writer), a busy timeout, and
write transactions opened with BEGIN IMMEDIATE so that concurrent writers queue on the busy
timeout instead of failing when a read lock would have to be upgraded. PostgreSQL goes through
psycopg 3.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from evolve.database.errors import DatabaseError
from evolve.database.location import URL_EXAMPLES, locate
from evolve.database.location import explain as explain_text

if TYPE_CHECKING:
    from evolve.database.reader import Reader


def parse_url(url: str) -> URL:
    """A supported SQLAlchemy URL (location.py's rules and messages)."""
    location = locate(url)
    try:
        return make_url(location.url)
    except sa_exc.ArgumentError:
        raise DatabaseError(f"{url!r} is not a database URL: pass --db {URL_EXAMPLES}") from None


def describe(url: URL) -> str:
    """The URL without its password, for messages."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {Path(url.database or '').resolve()}"
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path:
    return Path(url.database or "")


def make_engine(url: URL, busy_timeout: float = 30.0) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": busy_timeout})
        install_sqlite_settings(engine, busy_timeout)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def install_sqlite_settings(engine: Engine, busy_timeout: float) -> None:
    """Pragmas on every connection; transactions begun by us, IMMEDIATE when they will write."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling defers it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-32768")  # 32 MiB of pages (default 2): a long search's rows stay in memory
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        immediate = connection.get_execution_options().get("sqlite_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def explain(error: sa_exc.DBAPIError, url: URL, busy_timeout: float) -> DatabaseError:
    """One message naming what went wrong with the database and what to do about it (location.py)."""
    original = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
    return explain_text(original, url.get_backend_name(), describe(url), busy_timeout,
                        isinstance(error, sa_exc.OperationalError))


class Database:
    """An engine plus sessions that commit as one transaction and explain failures."""

    def __init__(self, url: URL, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.engine = make_engine(url, busy_timeout)
        self._write_engine = self.engine.execution_options(sqlite_write=True)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    def describe(self) -> str:
        return describe(self.url)

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        factory = self._write if write else self._read
        with self.translate_errors():
            with factory() as session, session.begin():
                yield session

    @contextmanager
    def connect(self, write: bool = False, schema_change: bool = False):
        """A bare connection in one transaction, for schema checks, migrations and the loop's hot
        Core statements (candidate_writes.py).

        With `schema_change` on SQLite, foreign keys are off for the transaction: SQLite alters a
        table by copying it and dropping the original, and with foreign keys on, that drop would
        cascade to every row that refers to it. The keys are checked before the commit instead."""
        engine = self._write_engine if write else self.engine
        with self.translate_errors():
            if not (schema_change and self.backend == "sqlite"):
                with engine.begin() as connection:
                    yield connection
                return
            with engine.connect() as connection:
                raw = connection.connection.driver_connection  # outside any transaction, or SQLite ignores the pragma
                raw.execute("PRAGMA foreign_keys=OFF")
                try:
                    with connection.begin():
                        yield connection
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise DatabaseError(f"the schema change would break {len(broken)} reference(s), e.g. {broken[0]}")
                finally:
                    raw.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        try:
            yield
        except sa_exc.OperationalError as e:
            raise explain(e, self.url, self.busy_timeout) from e
        except sa_exc.DatabaseError as e:
            if self.backend == "sqlite" and "not a database" in str(e.orig):
                raise explain(e, self.url, self.busy_timeout) from e
            raise

    @contextmanager
    def reader(self) -> Iterator["Reader"]:
        """The shared plain-SQL reads (reader.py) on a connection of this engine's pool."""
        from evolve.database.reader import Reader

        with self.translate_errors():
            connection = self.engine.raw_connection()
        try:
            yield Reader(connection, self.backend, self.describe(), self.busy_timeout)
        finally:
            connection.close()  # back to the pool, its transaction rolled back

    def dispose(self) -> None:
        self.engine.dispose()
