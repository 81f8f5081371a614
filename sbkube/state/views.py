"""The ORM-free read path: what ``sbkube state list`` needs, and nothing heavier.

``sbkube state list`` runs on every "what happened?" a user types, so it should start
about as fast as SQLAlchemy itself imports. This module therefore uses plain SQL text on
a Core connection — it imports neither ``sqlalchemy.orm`` nor ``schema.py`` — and builds
the same frozen :class:`DeploymentSummary` records as the rest of the store.
:meth:`DeploymentRepository.list` delegates here.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text

from sbkube.errors import UsageError
from sbkube.model import Command, DeploymentStatus
from sbkube.state.columns import UTCDateTime
from sbkube.state.records import DeploymentSummary
from sbkube.state.rows import summaries
from sbkube.state.sessions import retry_idempotent, single_read

if TYPE_CHECKING:
    from sbkube.state.database import DeploymentDatabase


SUMMARY_NAMES = (
    "id",
    "deployment_id",
    "cluster",
    "namespace",
    "app_dir",
    "command",
    "dry_run",
    "status",
    "error_message",
    "operator",
    "host",
    "pid",
    "started_at",
    "finished_at",
    "rollback_target_id",
)
_SUMMARY_SQL = ", ".join(SUMMARY_NAMES)
_SUMMARY_GROUP = ", ".join(f"p.{n}" for n in SUMMARY_NAMES)


def _where(
    *,
    cluster: str | None = None,
    namespace: str | None = None,
    app: str | None = None,
    status: str | Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    command: str | None = None,
    include_dry_run: bool = True,
) -> tuple[str, dict[str, Any], builtins.list[Any]]:
    """The filters every listing of deployments shares: `` WHERE ...`` (or ""), its
    parameters and its typed bind parameters."""
    statuses = None
    if status is not None:
        statuses = [status] if isinstance(status, str) else builtins.list(status)
        try:
            statuses = [str(DeploymentStatus(s)) for s in statuses]
        except ValueError as err:
            raise UsageError(f"--status: {err}") from err
    where: builtins.list[str] = []
    params: dict[str, Any] = {}
    binds: builtins.list[Any] = []
    for column, value in (("cluster", cluster), ("namespace", namespace)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    if command is not None:
        where.append("command = :command")
        params["command"] = str(Command(command))
    if statuses is not None:
        where.append("status IN :statuses")
        params["statuses"] = statuses
        binds.append(bindparam("statuses", expanding=True))
    for name, op, moment in (("since", ">=", since), ("until", "<", until)):
        if moment is not None:
            where.append(f"started_at {op} :{name}")
            params[name] = moment
            binds.append(bindparam(name, type_=UTCDateTime()))
    if not include_dry_run:
        where.append("dry_run = :false")
        params["false"] = False
    if app is not None:
        where.append(
            "EXISTS (SELECT 1 FROM app_deployments AS x "
            "WHERE x.deployment_pk = deployments.id AND x.name = :app)"
        )
        params["app"] = app
    return (" WHERE " + " AND ".join(where) if where else ""), params, binds


@retry_idempotent
def _run(
    db: DeploymentDatabase, sql: str, params: dict[str, Any], binds: builtins.list[Any]
) -> Any:
    stmt = text(sql)
    if binds:
        stmt = stmt.bindparams(*binds)
    with single_read(db) as conn:
        return conn.execute(stmt, params).all()


def count_deployments(db: DeploymentDatabase, **filters: Any) -> int:
    """How many deployments match the filters of :func:`list_deployments`."""
    where, params, binds = _where(**filters)
    return int(_run(db, f"SELECT count(*) FROM deployments{where}", params, binds)[0][0])


def nth_newest_id(db: DeploymentDatabase, n: int, **filters: Any) -> str | None:
    """The id of the ``n``-th newest matching deployment (0 = newest), if there is one."""
    where, params, binds = _where(**filters)
    rows = _run(
        db,
        f"SELECT deployment_id FROM deployments{where} "
        "ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET :n",
        {**params, "n": int(n)},
        binds,
    )
    return str(rows[0][0]) if rows else None


def list_deployments(
    db: DeploymentDatabase,
    *,
    limit: int | None = 50,
    offset: int = 0,
    **filters: Any,
) -> builtins.list[DeploymentSummary]:
    """Deployments newest first, with per-status app counts, in ONE statement.

    Filters (all optional): ``cluster``, ``namespace``, ``app``, ``status`` (one or
    several), ``since``, ``until``, ``command``, ``include_dry_run`` (default True).
    """
    # The hottest read (every `state list`): plain SQL text, built once per filter shape
    # and compiled once by SQLAlchemy's cache, with no ORM and no per-row type
    # processing; timestamps are parsed below with datetime.fromisoformat.
    where, params, binds = _where(**filters)
    page_sql = f"SELECT {_SUMMARY_SQL} FROM deployments{where} ORDER BY started_at DESC, id DESC"
    if limit is not None:
        page_sql += " LIMIT :limit"
        params["limit"] = int(limit)
    elif offset:
        page_sql += " LIMIT -1" if db.dialect == "sqlite" else " LIMIT ALL"
    if offset:
        page_sql += " OFFSET :offset"
        params["offset"] = int(offset)
    rows = _run(
        db,
        f"SELECT p.*, a.status AS app_status, count(a.id) AS app_count FROM ({page_sql}) AS p "
        "LEFT JOIN app_deployments AS a ON a.deployment_pk = p.id "
        f"GROUP BY {_SUMMARY_GROUP}, a.status ORDER BY p.started_at DESC, p.id DESC",
        params,
        binds,
    )
    heads: builtins.list[Any] = []
    counts: dict[int, dict[str, int]] = {}
    for r in rows:
        per_status = counts.get(r[0])
        if per_status is None:
            per_status = counts[r[0]] = {}
            heads.append(r)
        if r[15] is not None:
            per_status[r[15]] = int(r[16])
    return summaries(heads, counts)
