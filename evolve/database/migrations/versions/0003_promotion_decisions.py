"""Promotion decisions (every paired comparison, promoted or not) and noise calibrations.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "promotion_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("incumbent_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("alpha_spent", sa.Float(), nullable=False),
        sa.Column("min_gain_seconds", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_promotion_decisions_experiment_id_experiments", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"], name="fk_promotion_decisions_candidate_id_candidates"),
        sa.ForeignKeyConstraint(["incumbent_id"], ["candidates.id"], name="fk_promotion_decisions_incumbent_id_candidates"),
        sa.PrimaryKeyConstraint("id", name="pk_promotion_decisions"),
    )
    for column in ("experiment_id", "candidate_id", "incumbent_id"):
        op.create_index(f"ix_promotion_decisions_{column}", "promotion_decisions", [column])
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("pairs", sa.Integer(), nullable=False),
        sa.Column("time_noise_seconds", sa.Float(), nullable=False),
        sa.Column("accuracy_std", sa.Float(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calibrations"),
    )
    op.create_index("ix_calibrations_device_name", "calibrations", ["device_name"])


def downgrade() -> None:
    op.drop_table("calibrations")
    op.drop_table("promotion_decisions")
