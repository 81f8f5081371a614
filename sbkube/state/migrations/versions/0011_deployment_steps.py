"""deployment steps: the commands a deployment ran itself, not as one of its apps

The original tool's command-level hooks (``hooks.deploy.pre|post|on_failure``) run once
per deploy, before and after its apps. Each run is a recorded step, as an exec app's
commands are (its phase, the masked command and output tail, its exit code and seconds);
they belong to the deployment, so the deployment keeps them, in the order they ran. NULL
for older rows and for deployments that ran none.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Frozen copy of schema.JsonType: a migration must not change when the models do.
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Added in place (never a batch rebuild of ``deployments``: on SQLite that would drop
    # the parent table under its children's ON DELETE CASCADE); nullable, as the model says.
    inspector = sa.inspect(op.get_bind())
    if not any(c["name"] == "steps" for c in inspector.get_columns("deployments")):
        op.add_column("deployments", sa.Column("steps", JSON_TYPE, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("steps")
