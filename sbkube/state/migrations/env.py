"""Alembic environment for the state store.

sbkube runs migrations itself when a database is opened (``DeploymentDatabase``): it
hands Alembic an open connection inside the transaction that holds the write lock, so
two processes opening a new database at once cannot both migrate it.
"""

from __future__ import annotations

from alembic import context

from sbkube.state.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for `alembic` run by hand
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
