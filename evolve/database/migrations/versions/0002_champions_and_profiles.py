"""Champion history (paired comparisons against the incumbent) and profiler summaries.

A separate revision from the first, so that upgrading an existing database is exercised by the
test suite from the first release on.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "champion_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("incumbent_id", sa.Integer(), nullable=True),
        sa.Column("statistics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_champion_changes_experiment_id_experiments", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"], name="fk_champion_changes_candidate_id_candidates"),
        sa.ForeignKeyConstraint(["incumbent_id"], ["candidates.id"], name="fk_champion_changes_incumbent_id_candidates"),
        sa.PrimaryKeyConstraint("id", name="pk_champion_changes"),
    )
    op.create_index("ix_champion_changes_experiment_id", "champion_changes", ["experiment_id"])
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("profile", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.drop_column("profile")
    op.drop_table("champion_changes")
