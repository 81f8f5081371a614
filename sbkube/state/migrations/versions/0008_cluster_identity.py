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
    # No table is rebuilt: on SQLite a rebuild of ``deployments`` (what a batch
    # ``alter_column`` does) would drop the parent table under its children's ON DELETE
    # CASCADE. The column is added in place, so nullable (on both backends, as the model
    # says); every row has one.
    inspector = sa.inspect(op.get_bind())
    if not any(c["name"] == "cluster_id" for c in inspector.get_columns("deployments")):
        op.add_column("deployments", sa.Column("cluster_id", sa.String(length=253)))
    op.execute("UPDATE deployments SET cluster_id = cluster WHERE cluster_id IS NULL")
    if "ix_deployments_identity_started" not in {
        i["name"] for i in inspector.get_indexes("deployments")
    }:
        op.create_index(
            "ix_deployments_identity_started",
            "deployments",
            ["cluster_id", "namespace", "started_at"],
        )


def downgrade() -> None:
    op.drop_index("ix_deployments_identity_started", table_name="deployments")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("cluster_id")
