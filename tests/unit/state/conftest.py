"""Fixtures for the state-store tests: repository/tracker on the ``db`` fixture, a SQL
statement counter, and a walker that touches every attribute of a returned record.

Everything here runs against the real databases of ``tests/conftest.py`` (an SQLite file
and a per-test PostgreSQL schema); nothing is mocked.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, inspect

from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker

# Transaction control is not a query: SQLite's BEGIN [IMMEDIATE] goes through the cursor
# (see database.py), PostgreSQL's BEGIN does not, so counting it would make the budgets
# backend-dependent.
_TXN_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


@dataclass
class Statement:
    sql: str
    executemany: bool
    rows: int

    @property
    def is_txn_control(self) -> bool:
        return bool(_TXN_CONTROL.match(self.sql))

    def __str__(self) -> str:
        flat = " ".join(self.sql.split())
        many = f" [executemany x{self.rows}]" if self.executemany else ""
        return f"{flat[:110]}{many}"


@dataclass
class StatementCounter:
    """Every cursor execution on an engine (an ``executemany`` counts once)."""

    statements: list[Statement] = field(default_factory=list)
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0

    @property
    def queries(self) -> list[Statement]:
        return [s for s in self.statements if not s.is_txn_control]

    @property
    def count(self) -> int:
        return len(self.queries)

    def of_kind(self, verb: str) -> list[Statement]:
        return [s for s in self.queries if s.sql.lstrip().upper().startswith(verb.upper())]

    def reset(self) -> None:
        self.statements.clear()
        self.begins = self.commits = self.rollbacks = 0

    def report(self) -> str:
        lines = [f"{self.count} statement(s), {self.begins} transaction(s):"]
        lines += [f"  {s}" for s in self.queries]
        return "\n".join(lines)


@pytest.fixture
def count_statements() -> Iterator[Callable[[DeploymentDatabase], Any]]:
    """``with count_statements(db) as c: ...`` records the statements issued in the block."""
    from contextlib import contextmanager

    registered: list[tuple[Any, str, Any]] = []

    @contextmanager
    def _count(db: DeploymentDatabase) -> Iterator[StatementCounter]:
        counter = StatementCounter()

        def on_execute(_conn, _cursor, statement, parameters, _ctx, executemany):  # type: ignore[no-untyped-def]
            rows = len(parameters) if executemany else 1
            counter.statements.append(Statement(statement, bool(executemany), rows))

        def on_begin(_conn):  # type: ignore[no-untyped-def]
            counter.begins += 1

        def on_commit(_conn):  # type: ignore[no-untyped-def]
            counter.commits += 1

        def on_rollback(_conn):  # type: ignore[no-untyped-def]
            counter.rollbacks += 1

        # Every engine of the store: on PostgreSQL single-statement reads use their own
        # autocommit pool, and their statements must be counted too.
        hooks = [
            hook
            for engine in db.engines
            for hook in (
                (engine, "before_cursor_execute", on_execute),
                (engine, "begin", on_begin),
                (engine, "commit", on_commit),
                (engine, "rollback", on_rollback),
            )
        ]
        for target, name, fn in hooks:
            event.listen(target, name, fn)
            registered.append((target, name, fn))
        try:
            yield counter
        finally:
            for target, name, fn in hooks:
                event.remove(target, name, fn)
                registered.remove((target, name, fn))

    yield _count
    for target, name, fn in registered:
        event.remove(target, name, fn)


@pytest.fixture
def repo(db: DeploymentDatabase) -> DeploymentRepository:
    return DeploymentRepository(db)


@pytest.fixture
def tracker(db: DeploymentDatabase) -> DeploymentTracker:
    return DeploymentTracker(db)


# -- walking records ---------------------------------------------------------------------


def _properties(obj: Any) -> list[str]:
    return [
        name
        for klass in type(obj).__mro__
        for name, value in vars(klass).items()
        if isinstance(value, property)
    ]


def walk(obj: Any, visit: Callable[[Any], None] | None = None, _path: str = "value") -> int:
    """Read every field (and property) of ``obj`` recursively; returns the number read.

    Dataclasses (records and tracker handles) are walked field by field with ``getattr``,
    so a lazy load or a detached ORM instance anywhere fails here, not in a user's hands.
    Private fields (``_repo``) of the tracker handles are skipped.
    """
    if visit is not None:
        visit(obj)
    seen = 1
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        assert inspect(obj, raiseerr=False) is None, f"{_path} is an ORM instance"
        for f in dataclasses.fields(obj):
            if f.name.startswith("_"):
                continue
            seen += walk(getattr(obj, f.name), visit, f"{_path}.{f.name}")
        for name in _properties(obj):
            seen += walk(getattr(obj, name), visit, f"{_path}.{name}")
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            seen += walk(v, visit, f"{_path}[{k!r}]")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            seen += walk(v, visit, f"{_path}[{i}]")
    else:
        assert inspect(obj, raiseerr=False) is None, f"{_path} is an ORM instance"
    return seen


def assert_utc(value: datetime | None, what: str = "time") -> None:
    if value is None:
        return
    assert isinstance(value, datetime), what
    assert value.tzinfo is not None, f"{what} is naive: {value!r}"
    assert value.utcoffset() == timedelta(0), f"{what} is not UTC: {value!r}"
    assert value.tzinfo == UTC, f"{what} has tzinfo {value.tzinfo!r}, expected UTC"


@pytest.fixture
def walk_record() -> Callable[..., int]:
    return walk


@pytest.fixture
def check_utc() -> Callable[..., None]:
    return assert_utc
