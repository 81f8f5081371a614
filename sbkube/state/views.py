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
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

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
    "cluster_id",
    "profile",
)
_SUMMARY_SQL = ", ".join(SUMMARY_NAMES)
_SUMMARY_GROUP = ", ".join(f"p.{n}" for n in SUMMARY_NAMES)


class DeploymentFilters(TypedDict, total=False):
    """The filters every listing of deployments shares, all optional: a target
    (``cluster``, ``namespace``), an ``app`` it contains, one or several ``status``, a
    time window (``since`` inclusive, ``until`` exclusive), the ``command``, the
    ``profile`` it was made with, and whether
    dry runs count (``include_dry_run``, default True)."""

    cluster: str | None
    namespace: str | None
    app: str | None
    status: str | Sequence[str] | None
    since: datetime | None
    until: datetime | None
    command: str | None
    profile: str | None
    include_dry_run: bool


def _where(
    **filters: Unpack[DeploymentFilters],
) -> tuple[str, dict[str, Any], builtins.list[Any]]:
    """The filters every listing of deployments shares: `` WHERE ...`` (or ""), its
    parameters and its typed bind parameters."""
    status, app = filters.get("status"), filters.get("app")
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
    cluster, namespace = filters.get("cluster"), filters.get("namespace")
    if cluster is not None:
        # A display name or an identity: every deployment of the clusters it names (the
        # SQL twin of ``reads.on_target``).
        where.append(
            "cluster_id IN (SELECT cluster_id FROM deployments "
            "WHERE cluster = :cluster OR cluster_id = :cluster)"
        )
        params["cluster"] = cluster
    if namespace is not None:
        where.append("namespace = :namespace")
        params["namespace"] = namespace
    profile = filters.get("profile")
    if profile is not None:
        where.append("profile = :profile")
        params["profile"] = profile
    command = filters.get("command")
    if command is not None:
        where.append("command = :command")
        params["command"] = str(Command(command))
    if statuses is not None:
        where.append("status IN :statuses")
        params["statuses"] = statuses
        binds.append(bindparam("statuses", expanding=True))
    for name, op in (("since", ">="), ("until", "<")):
        moment = filters.get(name)
        if moment is not None:
            where.append(f"started_at {op} :{name}")
            params[name] = moment
            binds.append(bindparam(name, type_=UTCDateTime()))
    if not filters.get("include_dry_run", True):
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


def count_deployments(db: DeploymentDatabase, **filters: Unpack[DeploymentFilters]) -> int:
    """How many deployments match the filters of :func:`list_deployments`."""
    where, params, binds = _where(**filters)
    return int(_run(db, f"SELECT count(*) FROM deployments{where}", params, binds)[0][0])


def nth_newest_id(
    db: DeploymentDatabase, n: int, **filters: Unpack[DeploymentFilters]
) -> str | None:
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
    **filters: Unpack[DeploymentFilters],
) -> builtins.list[DeploymentSummary]:
    """Deployments newest first, with per-status app counts, in ONE statement.

    Filters: :class:`DeploymentFilters`.
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
        if r[17] is not None:
            per_status[r[17]] = int(r[18])
    return summaries(heads, counts)
