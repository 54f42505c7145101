"""The lineage is the truth: full-set identity, the seed set's sources, and the search's state.

- candidates.set_hash: the identity of a candidate (its whole component set and the harness
  settings that change its behaviour) replaces (component, source_hash) as the unique key.
  Rows written before this revision cannot be rehashed without guessing their seed set, so they
  get a legacy key of their own (sha256 of "component:source_hash"): unique, as before, but
  never equal to a full-set identity.
- candidates.description: what changed and why.
- experiments.completed_generations, and the tables seed_components, proposals, promotion_queue
  and migrants: everything a resumed search needs.
- seed_components of existing experiments are filled from the component set installed at
  upgrade time: the best record there is of what they started from.

Revision ID: 0004
Revises: 0002
"""

import hashlib

import sqlalchemy as sa
from alembic import op

from components import COMPONENT_NAMES, SHIPPED_SETS
from evaluator.component_set import ComponentSet

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def legacy_key(component: str, source_hash: str) -> str:
    return hashlib.sha256(f"{component}:{source_hash}".encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("completed_generations", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("set_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))

    connection = op.get_bind()
    candidates = sa.table("candidates", sa.column("id", sa.Integer), sa.column("component", sa.String),
                          sa.column("source_hash", sa.String), sa.column("set_hash", sa.String))
    for row in connection.execute(sa.select(candidates.c.id, candidates.c.component, candidates.c.source_hash)).all():
        connection.execute(
            candidates.update().where(candidates.c.id == row.id).values(set_hash=legacy_key(row.component, row.source_hash))
        )
    with op.batch_alter_table("candidates") as batch:
        batch.alter_column("set_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("description", existing_type=sa.Text(), server_default=None)
        batch.drop_constraint("uq_candidates_experiment_id_component_source_hash", type_="unique")
        batch.create_unique_constraint("uq_candidates_experiment_id_set_hash", ["experiment_id", "set_hash"])
    with op.batch_alter_table("experiments") as batch:
        batch.alter_column("completed_generations", existing_type=sa.Integer(), server_default=None)

    op.create_table(
        "seed_components",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_seed_components_experiment_id_experiments", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_seed_components"),
        sa.UniqueConstraint("experiment_id", "component", name="uq_seed_components_experiment_id_component"),
    )
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("component", sa.String(100), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("island", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("llm_call_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_proposals_experiment_id_experiments", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["candidates.id"], name="fk_proposals_parent_id_candidates"),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"], name="fk_proposals_candidate_id_candidates"),
        sa.ForeignKeyConstraint(["llm_call_id"], ["llm_calls.id"], name="fk_proposals_llm_call_id_llm_calls"),
        sa.PrimaryKeyConstraint("id", name="pk_proposals"),
    )
    op.create_index("ix_proposals_experiment_id", "proposals", ["experiment_id"])
    op.create_table(
        "promotion_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("promoted", sa.Boolean(), nullable=True),
        sa.Column("gpu_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_promotion_queue_experiment_id_experiments", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"], name="fk_promotion_queue_candidate_id_candidates"),
        sa.PrimaryKeyConstraint("id", name="pk_promotion_queue"),
    )
    op.create_index("ix_promotion_queue_experiment_id", "promotion_queue", ["experiment_id"])
    op.create_table(
        "migrants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("island", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_migrants_experiment_id_experiments", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"], name="fk_migrants_candidate_id_candidates"),
        sa.PrimaryKeyConstraint("id", name="pk_migrants"),
        sa.UniqueConstraint("experiment_id", "candidate_id", "island", name="uq_migrants_experiment_id_candidate_id_island"),
    )
    op.create_index("ix_migrants_experiment_id", "migrants", ["experiment_id"])
    backfill_seed_components(connection)


def backfill_seed_components(connection: sa.Connection) -> None:
    """Existing experiments: the seed set as installed now (the package held it until this revision)."""
    experiments = sa.table("experiments", sa.column("id", sa.Integer), sa.column("baseline", sa.String))
    seeds = sa.table("seed_components", sa.column("experiment_id", sa.Integer), sa.column("component", sa.String),
                     sa.column("source", sa.Text))
    for row in connection.execute(sa.select(experiments.c.id, experiments.c.baseline)).all():
        if row.baseline not in SHIPPED_SETS:
            continue
        sources = ComponentSet.shipped(row.baseline).sources  # resolved over its base: a set folder may hold only some modules
        connection.execute(seeds.insert(), [
            {"experiment_id": row.id, "component": name, "source": sources[name]} for name in COMPONENT_NAMES
        ])


def downgrade() -> None:
    for table in ("migrants", "promotion_queue", "proposals", "seed_components"):
        op.drop_table(table)
    with op.batch_alter_table("candidates") as batch:
        batch.drop_constraint("uq_candidates_experiment_id_set_hash", type_="unique")
        batch.create_unique_constraint(
            "uq_candidates_experiment_id_component_source_hash", ["experiment_id", "component", "source_hash"]
        )
        batch.drop_column("description")
        batch.drop_column("set_hash")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("completed_generations")
