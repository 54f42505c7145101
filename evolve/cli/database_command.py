"""`evolve db upgrade`: bring an older lineage database to this version's schema.
Its own module because it loads Alembic, which the inspection commands never need.
The options and their help are declared in evolve/cli/app.py."""

from evolve.cli.inspect_commands import console, fail, print_json
from evolve.database import DatabaseError
from evolve.database.connection import Database, parse_url, sqlite_path
from evolve.database.migrate import upgrade


def db_upgrade(*, db: str, as_json: bool) -> None:
    """Upgrade the database at `db` in one transaction and say from which revision to which."""
    try:
        url = parse_url(db)
        if url.get_backend_name() == "sqlite" and not sqlite_path(url).exists():
            raise DatabaseError(f"there is no database at {sqlite_path(url).resolve()}: pass the --db of the one to upgrade")
        database = Database(url)
        try:
            before, after = upgrade(database)
        finally:
            database.dispose()
    except DatabaseError as e:
        fail(str(e))
    if as_json:
        print_json({"database": database.describe(), "before": before, "after": after})
    elif before == after:
        console().out(f"the {database.describe()} is at schema revision {after} already", highlight=False)
    else:
        console().out(f"upgraded the {database.describe()} from schema revision {before or 'none'} to {after}", highlight=False)
