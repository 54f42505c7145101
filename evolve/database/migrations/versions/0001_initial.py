"""Experiments, LLM calls, candidates with their ancestry, cascade verdicts and run samples.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("baseline", sa.String(200), nullable=False),
        sa.Column("code_version", sa.String(200), nullable=False),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(500), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=True),
        sa.Column("tokens_out", sa.Integer(), nullable=True),
        sa.Column("latency_seconds", sa.Float(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_llm_calls_experiment_id_experiments", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_llm_calls"),
    )
    op.create_index("ix_llm_calls_experiment_id", "llm_calls", ["experiment_id"])
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("second_parent_id", sa.Integer(), nullable=True),
        sa.Column("inspiration_ids", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("island", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("llm_call_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("verdict", sa.String(200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("time_mean", sa.Float(), nullable=True),
        sa.Column("accuracy_mean", sa.Float(), nullable=True),
        sa.Column("accuracy_lower_bound", sa.Float(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("claimed_at", TIMESTAMP, nullable=True),
        sa.Column("evaluated_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_candidates_experiment_id_experiments", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["candidates.id"], name="fk_candidates_parent_id_candidates"),
        sa.ForeignKeyConstraint(["second_parent_id"], ["candidates.id"], name="fk_candidates_second_parent_id_candidates"),
        sa.ForeignKeyConstraint(["llm_call_id"], ["llm_calls.id"], name="fk_candidates_llm_call_id_llm_calls"),
        sa.PrimaryKeyConstraint("id", name="pk_candidates"),
        sa.UniqueConstraint(
            "experiment_id", "component", "source_hash", name="uq_candidates_experiment_id_component_source_hash"
        ),
    )
    op.create_index("ix_candidates_experiment_status", "candidates", ["experiment_id", "status"])
    op.create_index("ix_candidates_experiment_score", "candidates", ["experiment_id", "score"])
    op.create_index("ix_candidates_parent_id", "candidates", ["parent_id"])
    op.create_index("ix_candidates_llm_call_id", "candidates", ["llm_call_id"])
    op.create_table(
        "stage_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidates.id"], name="fk_stage_results_candidate_id_candidates", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stage_results"),
    )
    op.create_index("ix_stage_results_candidate_id", "stage_results", ["candidate_id"])
    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("time_seconds", sa.Float(), nullable=False),
        sa.Column("device_time_seconds", sa.Float(), nullable=True),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("device_name", sa.String(200), nullable=False),
        sa.Column("driver_version", sa.String(100), nullable=True),
        sa.Column("torch_version", sa.String(100), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidates.id"], name="fk_samples_candidate_id_candidates", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_samples"),
    )
    op.create_index("ix_samples_candidate_id", "samples", ["candidate_id"])


def downgrade() -> None:
    for table in ("samples", "stage_results", "candidates", "llm_calls", "experiments"):
        op.drop_table(table)
