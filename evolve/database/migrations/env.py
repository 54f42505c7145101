"""Alembic environment, run programmatically by evolve.database.migrate (no alembic.ini).

The caller passes an open connection in `config.attributes["connection"]`; the migrations run
inside the caller's transaction, so creating or upgrading a database is one atomic step.
"""

from alembic import context

from evolve.database.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through evolve.database.migrate (evolve db upgrade), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
