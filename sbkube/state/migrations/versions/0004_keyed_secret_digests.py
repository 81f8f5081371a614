"""keyed secret digests: re-key the plain sha256 digests of secrets recorded before

Secrets used to be stored as ``sha256:<hex>``, which lets anyone holding the database
test guesses of a weak password offline. They are now ``hmac-sha256:<hex>`` =
HMAC(key, sha256_hex(value)) under a key kept outside the database (see
``sbkube.redaction``), so a recorded ``sha256:H`` becomes HMAC(key, H) without the plain
text: exactly the digest the same secret gets today, and "changed"/"unchanged" keeps
working across the upgrade. Resource checksums are recomputed over the re-keyed form.
The key is the running user's (``SBKUBE_DIGEST_KEY`` or their key file): a team sharing
one store must share it before upgrading. There is no way back (downgrade is a no-op:
older versions still mask the new digests' text, they only cannot compare them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from sbkube.redaction import digest_key, manifest_checksum, rekey_legacy
from sbkube.state.migrations.batched import each_row

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# table -> its JSON columns that may hold secret digests
_COLUMNS = {
    "deployments": ("config_snapshot",),
    "app_deployments": ("config", "metadata"),
    "helm_releases": ("values",),
    "deployed_resources": ("previous_state", "current_state"),
}


def _table(name: str, columns: tuple[str, ...]) -> sa.TableClause:
    extra = ("checksum",) if name == "deployed_resources" else ()
    return sa.table(
        name,
        sa.column("id", sa.Integer),
        *(sa.column(c, sa.JSON) for c in columns),
        *(sa.column(c, sa.String) for c in extra),
    )


def _rekeyed(row: Any, columns: tuple[str, ...], key: bytes) -> dict[str, Any] | None:
    changes: dict[str, Any] = {}
    for column in columns:
        old = row._mapping[column]
        new = rekey_legacy(old, key) if old is not None else None
        if new != old:
            changes[column] = new
    if not changes:
        return None
    if "current_state" in columns:
        current = changes.get("current_state", row._mapping["current_state"])
        basis = current or changes.get("previous_state", row._mapping["previous_state"])
        if basis is not None:
            changes["checksum"] = manifest_checksum(basis)
    return changes


def upgrade() -> None:
    bind = op.get_bind()
    key: bytes | None = None
    for name, columns in _COLUMNS.items():
        table = _table(name, columns)
        for row in each_row(bind, table):
            if key is None and not _mentions_legacy(row, columns):
                continue
            key = key or digest_key()
            changes = _rekeyed(row, columns, key)
            if changes:
                bind.execute(sa.update(table).where(table.c.id == row.id).values(**changes))


def _mentions_legacy(row: Any, columns: tuple[str, ...]) -> bool:
    # A store with nothing to re-key never needs the key (nor creates a key file).
    return any("sha256:" in repr(row._mapping[c]) for c in columns)


def downgrade() -> None:
    pass
