"""What data migrations share: reading a whole table in keyset batches.

A migration that rewrites rows (re-keying digests, say) reads them ``BATCH`` at a time by
ascending ``id``, so a large store never sits in memory at once and an update of a row
already read never shifts the next batch (no OFFSET).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

BATCH = 500


def each_row(bind: Any, table: sa.TableClause, batch: int = BATCH) -> Iterator[Any]:
    """Every row of ``table`` (which has an integer ``id`` column), by ascending id."""
    last = 0
    while True:
        rows = bind.execute(
            sa.select(table).where(table.c.id > last).order_by(table.c.id).limit(batch)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        yield from rows
