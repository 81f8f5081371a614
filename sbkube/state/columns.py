"""Column types of the state store, in SQLAlchemy Core only (no ORM import).

Shared by ``schema.py`` (the ORM tables) and ``views.py`` (the ORM-free read path), so
both store and read timestamps and JSON the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store; use UTC-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JsonType(TypeDecorator[Any]):
    """JSONB on PostgreSQL (compact, indexable); JSON text elsewhere.

    A TypeDecorator rather than ``JSON().with_variant(JSONB())`` so that the PostgreSQL
    dialect (and asyncio, which it pulls in) is imported only by processes that talk to
    PostgreSQL: every SQLite ``sbkube state list`` would otherwise pay ~40 ms for it.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())
