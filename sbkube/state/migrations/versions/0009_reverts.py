"""reverts: a deployment that undid another one names it

A run whose failure policy rolled back what it changed (``on_failure: rollback``,
``deploy --atomic``) records that rollback as a deployment of its own. ``reverts_id``
on the rollback names the failed deployment it undid; the failed one finds its rollback
by the index on that column, so ``state show`` of each names the other.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added in place, nullable: a batch rebuild of ``deployments`` on SQLite would drop
    # the parent table under its children's ON DELETE CASCADE.
    inspector = sa.inspect(op.get_bind())
    if not any(c["name"] == "reverts_id" for c in inspector.get_columns("deployments")):
        op.add_column("deployments", sa.Column("reverts_id", sa.String(length=64)))
    if "ix_deployments_reverts" not in {i["name"] for i in inspector.get_indexes("deployments")}:
        op.create_index("ix_deployments_reverts", "deployments", ["reverts_id"])


def downgrade() -> None:
    op.drop_index("ix_deployments_reverts", table_name="deployments")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("reverts_id")
