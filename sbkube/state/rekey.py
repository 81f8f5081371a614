"""``sbkube state rekey``: every sealed value of the store re-sealed under a new key.

One transaction over both tables that hold seals (resources, Helm releases): either every
seal the old key opens is re-sealed under the new key, or none is. A seal already under
the new key is left as it is, so a run that resumes a killed rotation
(:func:`sbkube.sealing.begin_rotation`) finishes it; a seal under a key neither opens (an
imported history, another team's key) is counted and left as it is. The same statements
run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, select, update

from sbkube.model import Record
from sbkube.sealing import SealKey, key_id_of, reseal
from sbkube.state.database import DeploymentDatabase
from sbkube.state.schema import DeployedResource, HelmRelease
from sbkube.state.sessions import write_session

_TABLES = (cast(Table, DeployedResource.__table__), cast(Table, HelmRelease.__table__))


@dataclass(frozen=True, slots=True)
class RekeyResult(Record):
    key_id: str
    """The id of the new key."""
    resealed: int
    """Seals moved from the old key to the new one."""
    unchanged: int
    """Seals under the new key already (a resumed rotation)."""
    foreign: int = 0
    """Seals under a key neither the old nor the new one: left as they are."""
    foreign_keys: tuple[str, ...] = ()


def rekey_store(
    db: DeploymentDatabase,
    old: Sequence[SealKey],
    new: SealKey,
    *,
    step: Callable[[], None] | None = None,
) -> RekeyResult:
    """Re-seal under ``new`` every seal one of ``old`` opens, in one transaction.
    ``step`` is called after each value re-sealed (a progress or fault hook)."""
    known = {k.key_id for k in old}
    resealed = unchanged = 0
    foreign: dict[str, int] = {}
    with write_session(db) as session:
        for table in _TABLES:
            rows = session.execute(
                select(table.c.id, table.c.sealed)
                .where(table.c.sealed.is_not(None))
                .order_by(table.c.id)
            ).all()
            for row_id, blob in rows:
                key_id = key_id_of(blob)
                if key_id == new.key_id:
                    unchanged += 1
                    continue
                if key_id not in known:
                    foreign[key_id] = foreign.get(key_id, 0) + 1
                    continue
                session.execute(
                    update(table).where(table.c.id == row_id).values(sealed=reseal(blob, old, new))
                )
                resealed += 1
                if step is not None:
                    step()
    return RekeyResult(
        key_id=new.key_id,
        resealed=resealed,
        unchanged=unchanged,
        foreign=sum(foreign.values()),
        foreign_keys=tuple(sorted(foreign)),
    )
