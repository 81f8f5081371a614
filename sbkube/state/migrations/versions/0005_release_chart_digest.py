"""release chart digest: the digest of the chart files a recorded Helm revision came from

A redeploy whose inputs match the release's current revision does not upgrade it. Helm's
release keeps the chart's name and version but nothing that says whether a local chart's
files changed under the same version, so the record keeps a digest of them
(``sha256:<hex>`` over the chart directory or ``.tgz``). NULL for older rows and for charts
sbkube cannot read (a repository or OCI ref): such a revision is never taken as unchanged
on the strength of its chart, so existing rows need no rewrite.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("helm_releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chart_digest", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("helm_releases", schema=None) as batch_op:
        batch_op.drop_column("chart_digest")
