"""sealed values: the secret leaves of recorded manifests and Helm values, encrypted

The store keeps a secret only as its keyed digest, so a rollback could not restore a
Secret or a chart's password. Each resource row and Helm release row now also keeps a
``sealed`` text: the leaves redaction replaced, by their path, encrypted with AES-256-GCM
under a key kept outside the store (``SBKUBE_SEAL_KEY`` or ``seal.key``, see
``sbkube.sealing``). NULL for rows without secrets and for rows recorded before this
revision: their secrets exist only as digests, and rolling back to them keeps the old
behaviour (refused, or left as they are with ``--force``). No row needs a rewrite.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("deployed_resources", "helm_releases")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in _TABLES:
        # A store stamped at an older revision that already has the column (put back by
        # hand, or a half-restored backup) is brought to head rather than refused.
        if any(c["name"] == "sealed" for c in inspector.get_columns(table)):
            continue
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("sealed")
