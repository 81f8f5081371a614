"""cluster identity: deployments are keyed by the cluster's identity, shown by its name

A deployment recorded its cluster as a name only: config.yaml's ``cluster:``, else
``context@host:port``. A cluster whose API address changed split its history, and a
cluster rebuilt at the same address was taken for the old one. ``cluster_id`` now holds
the identity the cluster itself carries, the UID of its ``kube-system`` namespace; the
``cluster`` column stays the display name.

Existing rows get their display name as identity. The first command that reads the
cluster adopts them (``adopt_identity``: one UPDATE of the rows still keyed by the name),
as the renamed-context history was adopted before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not any(c["name"] == "cluster_id" for c in inspector.get_columns("deployments")):
        with op.batch_alter_table("deployments", schema=None) as batch_op:
            batch_op.add_column(sa.Column("cluster_id", sa.String(length=253), nullable=True))
    op.execute("UPDATE deployments SET cluster_id = cluster WHERE cluster_id IS NULL")
    indexes = {i["name"] for i in inspector.get_indexes("deployments")}
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.alter_column("cluster_id", existing_type=sa.String(length=253), nullable=False)
        if "ix_deployments_identity_started" not in indexes:
            batch_op.create_index(
                "ix_deployments_identity_started",
                ["cluster_id", "namespace", "started_at"],
                unique=False,
            )


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_identity_started")
        batch_op.drop_column("cluster_id")
