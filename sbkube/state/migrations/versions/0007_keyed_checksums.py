"""keyed checksums: re-key the plain sha256 of recorded input files and chart files

A deployment's ``sources_snapshot`` kept ``sha256:<hex>`` of config.yaml and of every values
and manifest file, and a Helm release row the ``sha256:<hex>`` of its chart's files. A
small values file holding a weak password could then be guessed offline from its
checksum. They are now ``hmac-checksum:<hex>`` = HMAC(key, sha256_hex(bytes)) under the
digest key (see ``sbkube.redaction``), so a recorded ``sha256:H`` becomes HMAC(key, H)
without the file: exactly the checksum the same file gets today, and "chart files
changed" keeps its answer across the upgrade. Resource checksums (of the stored form,
which holds keyed digests only) are left as they are. A store with nothing to re-key
never needs the key. There is no way back (downgrade is a no-op: older versions only
record, never read, these checksums, but for the chart's, which then reads "changed").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

from sbkube.redaction import digest_key, rekey_checksum
from sbkube.state.migrations.batched import each_row

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_LEGACY = re.compile(r"sha256:([0-9a-f]{64})")


def _rekeyed(value: Any, key: bytes) -> Any:
    if isinstance(value, str):
        m = _LEGACY.fullmatch(value)
        return rekey_checksum(m.group(1), key) if m else value
    return value


def upgrade() -> None:
    bind = op.get_bind()
    key: bytes | None = None
    deployments = sa.table(
        "deployments", sa.column("id", sa.Integer), sa.column("sources_snapshot", sa.JSON)
    )
    for row in each_row(bind, deployments):
        snapshot = row.sources_snapshot
        if not isinstance(snapshot, dict) or not any(
            isinstance(v, str) and _LEGACY.fullmatch(v) for v in snapshot.values()
        ):
            continue
        key = key or digest_key()
        new = {k: _rekeyed(v, key) for k, v in snapshot.items()}
        bind.execute(
            sa.update(deployments).where(deployments.c.id == row.id).values(sources_snapshot=new)
        )
    releases = sa.table(
        "helm_releases", sa.column("id", sa.Integer), sa.column("chart_digest", sa.String)
    )
    for row in each_row(bind, releases):
        if row.chart_digest is None or not _LEGACY.fullmatch(row.chart_digest):
            continue
        key = key or digest_key()
        bind.execute(
            sa.update(releases)
            .where(releases.c.id == row.id)
            .values(chart_digest=_rekeyed(row.chart_digest, key))
        )


def downgrade() -> None:
    pass
