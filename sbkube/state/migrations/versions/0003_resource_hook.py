"""resource hook: Helm hook objects recorded apart from release objects

A Helm app's record holds what Helm installed. Its hooks (``helm.sh/hook``: pre-install
Jobs, post-upgrade Jobs...) are not release objects: Helm runs them around an operation and
does not prune them with the release. ``hook`` keeps the annotation's value for them, NULL
for release objects and YAML apps' objects, so existing rows need no rewrite.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployed_resources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hook", sa.String(length=253), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployed_resources", schema=None) as batch_op:
        batch_op.drop_column("hook")
