"""Engines for SQLite and PostgreSQL, their per-connection settings, and clear errors.

SQLite: foreign keys on, WAL journal (readers never block the writer), a busy timeout, and
write transactions opened with BEGIN IMMEDIATE so that concurrent writers queue on the busy
timeout instead of failing when a read lock would have to be upgraded. PostgreSQL goes through
psycopg 3.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from evolve.database.errors import DatabaseError

URL_EXAMPLES = "sqlite:///evolve.db or postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE"


def parse_url(url: str) -> URL:
    """A supported SQLAlchemy URL; plain postgresql:// means psycopg 3, the driver we ship."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise DatabaseError(f"{url!r} is not a database URL: pass --db {URL_EXAMPLES}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername != "sqlite":
            raise DatabaseError(f"SQLite driver {parsed.drivername!r} is not supported: use sqlite:///PATH")
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseError(
                "an in-memory SQLite database cannot be shared by the search's processes: use sqlite:///PATH/evolve.db"
            )
    elif backend == "postgresql":
        if parsed.drivername != "postgresql+psycopg":
            raise DatabaseError(
                f"PostgreSQL driver {parsed.drivername!r} is not supported: use postgresql+psycopg://, which is installed"
            )
    else:
        raise DatabaseError(f"database {backend!r} is not supported: use {URL_EXAMPLES}")
    return parsed


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
    """One message naming what went wrong with the database and what to do about it."""
    original = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
    where = describe(url)
    if url.get_backend_name() == "sqlite":
        if "locked" in original or "busy" in original:
            return DatabaseError(
                f"the {where} is locked: another process held it for more than {busy_timeout:g} s. "
                "Wait for that process (a running search?) to finish or stop it, or pass another --db"
            )
        if "unable to open" in original:
            return DatabaseError(
                f"cannot open the {where}: check that its folder exists and is writable, or pass another --db"
            )
        if "not a database" in original:
            return DatabaseError(f"the {where} is not an SQLite database: pass the path of an evolve database with --db")
        if "readonly" in original:
            return DatabaseError(f"the {where} is read-only: make it writable or pass another --db")
    elif isinstance(error, sa_exc.OperationalError):
        return DatabaseError(
            f"cannot use the database at {where}: {original}. "
            "Check that the server is running and the host, port, user, password and database name are right, "
            "or pass another --db"
        )
    return DatabaseError(f"database error on {where}: {original}")


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

    def dispose(self) -> None:
        self.engine.dispose()
