"""Where a database URL points, and what a failure there means, without importing SQLAlchemy.

The inspection commands read through the DB-API drivers directly (reader.py), so that their
start-up does not pay for SQLAlchemy (about 0.2 s; docs/BENCHMARKS.md, "CLI start-up"). The
rules and messages for URLs and errors live here once: connection.py uses them for its
SQLAlchemy engines too.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from evolve.database.errors import DatabaseError

URL_EXAMPLES = "sqlite:///evolve.db or postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE"
SCHEME = re.compile(r"^(?P<driver>[\w+]+)://(?P<rest>.*)$", re.DOTALL)
PASSWORD = re.compile(r"^(?P<user>[^:@/]*):[^@/]*@")


@dataclass(frozen=True)
class Location:
    """A supported database URL: its backend (sqlite or postgresql) and what the driver needs."""

    backend: str
    driver: str  # the SQLAlchemy driver name: sqlite or postgresql+psycopg
    rest: str  # the URL after "DRIVER://"

    @property
    def url(self) -> str:
        return f"{self.driver}://{self.rest}"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file: sqlite:///relative/path or sqlite:////absolute/path."""
        return Path(unquote(self.rest.partition("/")[2].partition("?")[0]))

    @property
    def libpq_uri(self) -> str:
        """The URL as psycopg (libpq) reads it: the same, without SQLAlchemy's driver suffix."""
        return f"postgresql://{self.rest}"

    def describe(self) -> str:
        """The location without its password, for messages."""
        if self.backend == "sqlite":
            return f"SQLite file {self.sqlite_path.resolve()}"
        return f"{self.driver}://{PASSWORD.sub(lambda m: m['user'] + ':***@', self.rest)}"


def locate(url: str) -> Location:
    """A supported URL; plain postgresql:// means psycopg 3, the driver we ship. Refuses the rest
    with a message naming the fix."""
    match = SCHEME.match(url.strip())
    if match is None:
        raise DatabaseError(f"{url!r} is not a database URL: pass --db {URL_EXAMPLES}")
    driver, rest = match["driver"], match["rest"]
    if driver in ("postgresql", "postgres"):
        driver = "postgresql+psycopg"
    backend = driver.partition("+")[0]
    if backend == "sqlite":
        if driver != "sqlite":
            raise DatabaseError(f"SQLite driver {driver!r} is not supported: use sqlite:///PATH")
        path = rest.partition("/")[2].partition("?")[0]
        if not path or path == ":memory:":
            raise DatabaseError(
                "an in-memory SQLite database cannot be shared by the search's processes: use sqlite:///PATH/evolve.db"
            )
    elif backend == "postgresql":
        if driver != "postgresql+psycopg":
            raise DatabaseError(
                f"PostgreSQL driver {driver!r} is not supported: use postgresql+psycopg://, which is installed"
            )
    else:
        raise DatabaseError(f"database {backend!r} is not supported: use {URL_EXAMPLES}")
    return Location(backend=backend, driver=driver, rest=rest)


def missing_sqlite(path: Path) -> DatabaseError:
    return DatabaseError(f"there is no database at {path.resolve()}: run a search first, or pass --db URL of one")


def explain(original: str, backend: str, where: str, busy_timeout: float, operational: bool) -> DatabaseError:
    """One message naming what went wrong with the database and what to do about it; `original` is
    the driver's first line, `operational` whether the driver called it an OperationalError."""
    if backend == "sqlite":
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
    elif operational:
        return DatabaseError(
            f"cannot use the database at {where}: {original}. "
            "Check that the server is running and the host, port, user, password and database name are right, "
            "or pass another --db"
        )
    return DatabaseError(f"database error on {where}: {original}")
