"""deployment profile: the ``--profile ENV`` a deployment was made with

``sbkube deploy --profile prod`` reads the config's ``environments.prod`` overlay (or the
original tool's ``sources-prod.yaml``); the deployment now records that name, so ``state
list --profile prod`` finds it and ``state show`` says it. Deployments made without a
profile, and every row before this revision, hold NULL.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added in place, nullable: a batch rebuild of ``deployments`` on SQLite would drop the
    # parent table under its children's ON DELETE CASCADE.
    inspector = sa.inspect(op.get_bind())
    if not any(c["name"] == "profile" for c in inspector.get_columns("deployments")):
        op.add_column("deployments", sa.Column("profile", sa.String(length=63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("profile")
