"""Merges, behavioural fingerprints, novelty skips and the model bandit's record.

- candidates.behaviour: each component's behavioural fingerprint on the fixed probe inputs, as the
  sandboxed CPU stage measured it (evaluator/behaviour.py); a child whose changed component behaves
  exactly like its parent's is skipped before any device time.
- candidates.second_parent_id gets an index: merges (origin `merge`) store both parents, and the
  lineage views look children up by either.
- proposals.origin, proposals.second_parent_id: what kind of proposal it was (llm, mutator, merge)
  and a merge's other parent.
- proposals.model, proposals.cost_usd: the model the bandit chose for it and what its calls cost;
  with the candidates' scores and device seconds they are the bandit's whole state
  (evolve/llm/bandit.py), so a resumed search continues with what it learned.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("behaviour", sa.JSON(), nullable=True))
        batch.create_index("ix_candidates_second_parent_id", ["second_parent_id"])
    with op.batch_alter_table("proposals") as batch:
        batch.add_column(sa.Column("origin", sa.String(20), nullable=False, server_default=""))
        batch.add_column(sa.Column("second_parent_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("model", sa.String(200), nullable=True))
        batch.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
        batch.create_foreign_key("fk_proposals_second_parent_id_candidates", "candidates", ["second_parent_id"], ["id"])
    with op.batch_alter_table("proposals") as batch:
        batch.alter_column("origin", existing_type=sa.String(20), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("proposals") as batch:
        batch.drop_constraint("fk_proposals_second_parent_id_candidates", type_="foreignkey")
        for column in ("cost_usd", "model", "second_parent_id", "origin"):
            batch.drop_column(column)
    with op.batch_alter_table("candidates") as batch:
        batch.drop_index("ix_candidates_second_parent_id")
        batch.drop_column("behaviour")
