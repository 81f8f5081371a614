"""app history index: one app's recordings in time order without a sort

``state history APP`` asks for an app's newest recordings. With only (name,
deployment_pk) to go on, SQLite read every recording of the app and sorted them before
the LIMIT: 27x slower at 100,000 deployments than at 1,000. This index returns them
already ordered, so the read does not grow with the history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_deployments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_app_deployments_name_started", ["name", "started_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("app_deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_app_deployments_name_started")
