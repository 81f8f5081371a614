"""Moving a history between stores: ``sbkube state export`` / ``sbkube state import``.

The format is JSON Lines, one deployment per line, oldest first: the deployment's
columns with its apps, and each app's resources and Helm releases — the records'
``to_dict()`` shape, minus the app's ``app_id`` (a primary key of one database, which
means nothing in another). Times are tz-aware UTC ISO 8601 with microseconds, so they
round-trip exactly; JSON values are written and read back as they are stored (already
redacted: nothing is redacted twice, nothing is revealed).

Export pages through the store in batches of :data:`EXPORT_BATCH` deployments (keyset
pagination on ``(started_at, id)``, 4 statements a batch), so memory stays flat however
long the history. Import is idempotent: a deployment whose id already exists is skipped;
each new one is written in its own transaction with bulk inserts, keeping its id. A
history exported from SQLite, imported into PostgreSQL and exported again gives the
same lines, byte for byte (:func:`dump_line`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import selectinload

from sbkube.errors import UsageError
from sbkube.model import (
    AppStatus,
    AppType,
    Command,
    DeploymentStatus,
    Record,
    ResourceAction,
    jsonable,
    utcnow,
)
from sbkube.state.database import DeploymentDatabase
from sbkube.state.identity import is_deployment_id
from sbkube.state.records import DeploymentRecord
from sbkube.state.rows import deployment_record
from sbkube.state.schema import AppDeployment, DeployedResource, Deployment, HelmRelease
from sbkube.state.sessions import read_session, write_session

EXPORT_BATCH = 200
#: How far in the future an imported time may lie (clocks of two machines disagree a
#: little; a start in the year 9999 would stay ``latest`` for ever).
CLOCK_SKEW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ImportResult(Record):
    imported: int
    skipped: int
    imported_ids: tuple[str, ...] = ()
    skipped_ids: tuple[str, ...] = ()


# -- export ------------------------------------------------------------------------------


def _export(record: DeploymentRecord) -> dict[str, Any]:
    """The record's JSON form without the apps' ``app_id`` (one database's primary key)."""
    data: dict[str, Any] = jsonable(record)
    for app in data["apps"]:
        del app["app_id"]
    return data


def dump_line(item: Mapping[str, Any]) -> str:
    """One exported deployment as one line of JSON (sorted keys, compact, no newline)."""
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def export_deployments(
    db: DeploymentDatabase, *, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Every deployment (started at or after ``since``), oldest first, as plain dicts."""
    last: tuple[datetime, int] | None = None
    while True:
        conds: list[Any] = []
        if since is not None:
            conds.append(Deployment.started_at >= since)
        if last is not None:
            conds.append(
                or_(
                    Deployment.started_at > last[0],
                    and_(Deployment.started_at == last[0], Deployment.id > last[1]),
                )
            )
        stmt = (
            select(Deployment)
            .where(*conds)
            .order_by(Deployment.started_at, Deployment.id)
            .limit(EXPORT_BATCH)
            .options(
                selectinload(Deployment.apps).selectinload(AppDeployment.resources),
                selectinload(Deployment.apps).selectinload(AppDeployment.helm_releases),
            )
        )
        with read_session(db) as session:
            rows = session.execute(stmt).scalars().all()
            if rows:
                last = (rows[-1].started_at, rows[-1].id)
            batch = [_export(deployment_record(r, apps=True)) for r in rows]
        yield from batch
        if len(rows) < EXPORT_BATCH:
            return


# -- import ------------------------------------------------------------------------------


class _Bad(Exception):
    """A field of a line is missing or malformed (turned into a UsageError with file:line)."""


def _get(obj: Mapping[str, Any], key: str, where: str, kind: Any, *, optional: bool = False) -> Any:
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise _Bad(f"{where}{key}: missing")
    value = obj[key]
    if kind is int and isinstance(value, bool):
        raise _Bad(f"{where}{key}: expected an integer, got {value!r}")
    if not isinstance(value, kind):
        name = getattr(kind, "__name__", str(kind))
        raise _Bad(f"{where}{key}: expected {name}, got {type(value).__name__}")
    return value


def _enum(obj: Mapping[str, Any], key: str, where: str, enum: type[StrEnum]) -> str:
    value = _get(obj, key, where, str)
    try:
        return str(enum(value))
    except ValueError:
        allowed = ", ".join(str(m) for m in enum)
        raise _Bad(f"{where}{key}: {value!r} is not one of {allowed}") from None


def _time(obj: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Any:
    value = _get(obj, key, where, str, optional=optional)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(f"{where}{key}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise _Bad(f"{where}{key}: {value!r} has no time zone")
    return parsed.astimezone(UTC)


def _json(obj: Mapping[str, Any], key: str) -> Any:
    return obj.get(key)


@dataclass(frozen=True)
class _Parsed:
    deployment: dict[str, Any]
    apps: list[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]

    @property
    def deployment_id(self) -> str:
        return str(self.deployment["deployment_id"])


def _parse(item: Any) -> _Parsed:
    if not isinstance(item, Mapping):
        raise _Bad(f"expected a JSON object, got {type(item).__name__}")
    dep = {
        "deployment_id": _get(item, "deployment_id", "", str),
        "cluster": _get(item, "cluster", "", str),
        "namespace": _get(item, "namespace", "", str),
        "app_dir": _get(item, "app_dir", "", str, optional=True),
        "config_file": _get(item, "config_file", "", str, optional=True),
        "command": _enum(item, "command", "", Command),
        "command_args": _get(item, "command_args", "", list, optional=True) or [],
        "dry_run": _get(item, "dry_run", "", bool),
        "status": _enum(item, "status", "", DeploymentStatus),
        "error_message": _get(item, "error_message", "", str, optional=True),
        "config_snapshot": _json(item, "config_snapshot"),
        "sources_snapshot": _json(item, "sources_snapshot"),
        "sbkube_version": _get(item, "sbkube_version", "", str),
        "operator": _get(item, "operator", "", str, optional=True),
        "host": _get(item, "host", "", str, optional=True),
        "pid": _get(item, "pid", "", int, optional=True),
        "started_at": _time(item, "started_at", ""),
        "finished_at": _time(item, "finished_at", "", optional=True),
        "rollback_target_id": _get(item, "rollback_target_id", "", str, optional=True),
    }
    for key in ("deployment_id", "rollback_target_id"):
        value = dep[key]
        if value is not None and not is_deployment_id(value):
            shown = repr(value) if len(value) <= 40 else repr(value[:37] + "...")
            raise _Bad(f"{key}: {shown} is not a deployment id (dep-YYYYMMDD-HHMMSS-xxxxxx)")
    horizon = utcnow() + CLOCK_SKEW
    for key in ("started_at", "finished_at"):
        if dep[key] is not None and dep[key] > horizon:
            raise _Bad(f"{key}: {dep[key].isoformat()} is more than a day in the future")
    apps = []
    names: set[str] = set()
    for i, app in enumerate(_get(item, "apps", "", list, optional=True) or []):
        w = f"apps[{i}]."
        if not isinstance(app, Mapping):
            raise _Bad(f"apps[{i}]: expected a JSON object")
        row = {
            "name": _get(app, "name", w, str),
            "type": _enum(app, "type", w, AppType),
            "namespace": _get(app, "namespace", w, str, optional=True),
            "status": _enum(app, "status", w, AppStatus),
            "error_message": _get(app, "error_message", w, str, optional=True),
            "config": _json(app, "config"),
            "app_metadata": _json(app, "metadata"),
            "rollback_info": _json(app, "rollback_info"),
            "started_at": _time(app, "started_at", w),
            "finished_at": _time(app, "finished_at", w, optional=True),
        }
        if row["name"] in names:
            raise _Bad(f"{w}name: app {row['name']!r} appears twice")
        names.add(row["name"])
        resources = []
        for j, res in enumerate(_get(app, "resources", w, list, optional=True) or []):
            rw = f"{w}resources[{j}]."
            if not isinstance(res, Mapping):
                raise _Bad(f"{w}resources[{j}]: expected a JSON object")
            resources.append(
                {
                    "api_version": _get(res, "api_version", rw, str),
                    "kind": _get(res, "kind", rw, str),
                    "name": _get(res, "name", rw, str),
                    "namespace": _get(res, "namespace", rw, str, optional=True),
                    "action": _enum(res, "action", rw, ResourceAction),
                    "previous_state": _get(res, "previous_state", rw, dict, optional=True),
                    "current_state": _get(res, "current_state", rw, dict, optional=True),
                    "checksum": _get(res, "checksum", rw, str, optional=True),
                    "source_file": _get(res, "source_file", rw, str, optional=True),
                    "hook": _get(res, "hook", rw, str, optional=True),
                }
            )
        releases = []
        for j, rel in enumerate(_get(app, "helm_releases", w, list, optional=True) or []):
            hw = f"{w}helm_releases[{j}]."
            if not isinstance(rel, Mapping):
                raise _Bad(f"{w}helm_releases[{j}]: expected a JSON object")
            releases.append(
                {
                    "release_name": _get(rel, "release_name", hw, str),
                    "namespace": _get(rel, "namespace", hw, str),
                    "chart": _get(rel, "chart", hw, str),
                    "chart_version": _get(rel, "chart_version", hw, str, optional=True),
                    "app_version": _get(rel, "app_version", hw, str, optional=True),
                    "revision": _get(rel, "revision", hw, int),
                    "values": _get(rel, "values", hw, dict, optional=True) or {},
                    "status": _get(rel, "status", hw, str),
                    "chart_digest": _get(rel, "chart_digest", hw, str, optional=True),
                }
            )
        apps.append((row, resources, releases))
    return _Parsed(dep, apps)


def _items(
    lines: Iterable[Mapping[str, Any] | str],
    source: str,
    in_store: Callable[[str], bool] | None = None,
) -> Iterator[tuple[int, _Parsed]]:
    """Parse ``lines``. A rollback target must be a deployment of the same input (on any
    line) or, with ``in_store``, of the store: one that is neither by the last line is
    refused then, naming the line that points to it."""
    seen: set[str] = set()
    wanted: dict[str, int] = {}  # rollback target -> first line that names it
    for lineno, line in enumerate(lines, start=1):
        try:
            if isinstance(line, str):
                if not line.strip():
                    continue
                try:
                    item: Any = json.loads(line)
                except json.JSONDecodeError as err:
                    raise _Bad(f"invalid JSON ({err.msg} at column {err.colno})") from None
            else:
                item = line
            parsed = _parse(item)
            target = parsed.deployment["rollback_target_id"]
            if (
                target is not None
                and target not in seen
                and target not in wanted
                and (in_store is None or not in_store(target))
            ):
                wanted[target] = lineno
            seen.add(parsed.deployment_id)
            wanted.pop(parsed.deployment_id, None)
            yield lineno, parsed
        except _Bad as err:
            raise UsageError(f"{source}:{lineno}: {err}") from None
    if wanted:
        target, lineno = min(wanted.items(), key=lambda kv: kv[1])
        raise UsageError(
            f"{source}:{lineno}: rollback_target_id: {target} is neither in the store "
            "nor in this file"
        )


def check_lines(
    lines: Iterable[Mapping[str, Any] | str],
    *,
    source: str = "<input>",
    db: DeploymentDatabase | None = None,
) -> int:
    """Validate an export without writing; returns the number of deployments. With
    ``db``, a rollback target may also be a deployment already in that store.

    Raises :class:`~sbkube.errors.UsageError` naming ``source`` and the line.
    """
    in_store = (lambda dep_id: _exists(db, dep_id)) if db is not None else None
    return sum(1 for _ in _items(lines, source, in_store))


def _exists(db: DeploymentDatabase, deployment_id: str) -> bool:
    with read_session(db) as session:
        found = session.execute(
            select(Deployment.id).where(Deployment.deployment_id == deployment_id)
        ).scalar_one_or_none()
    return found is not None


def import_deployments(
    db: DeploymentDatabase,
    lines: Iterable[Mapping[str, Any] | str],
    *,
    source: str = "<input>",
) -> ImportResult:
    """Import exported deployments; those whose id already exists are skipped.

    ``lines`` are parsed dicts, or raw JSON lines (blank ones ignored). A malformed one
    raises :class:`~sbkube.errors.UsageError` naming ``source`` and the line number;
    the deployments before it stay imported (run :func:`check_lines` first to refuse a
    bad file as a whole). Each deployment is one transaction of five statements: the
    existence check, the deployment, its apps, their resources, their Helm releases.
    """
    imported: list[str] = []
    skipped: list[str] = []
    for _lineno, parsed in _items(lines, source, lambda dep_id: _exists(db, dep_id)):
        if _write(db, parsed):
            imported.append(parsed.deployment_id)
        else:
            skipped.append(parsed.deployment_id)
    return ImportResult(
        imported=len(imported),
        skipped=len(skipped),
        imported_ids=tuple(imported),
        skipped_ids=tuple(skipped),
    )


def _write(db: DeploymentDatabase, parsed: _Parsed) -> bool:
    with write_session(db) as session:
        found = session.execute(
            select(Deployment.id).where(Deployment.deployment_id == parsed.deployment_id)
        ).scalar_one_or_none()
        if found is not None:
            return False
        pk = session.execute(
            insert(Deployment).values(**parsed.deployment).returning(Deployment.id)
        ).scalar_one()
        if not parsed.apps:
            return True
        app_pks = (
            session.execute(
                insert(AppDeployment).returning(AppDeployment.id, sort_by_parameter_order=True),
                [{**row, "deployment_pk": pk} for row, _, _ in parsed.apps],
            )
            .scalars()
            .all()
        )
        resources = [
            {**res, "app_deployment_pk": app_pk}
            for app_pk, (_, res_rows, _) in zip(app_pks, parsed.apps, strict=True)
            for res in res_rows
        ]
        releases = [
            {**rel, "app_deployment_pk": app_pk}
            for app_pk, (_, _, rel_rows) in zip(app_pks, parsed.apps, strict=True)
            for rel in rel_rows
        ]
        if resources:
            session.execute(insert(DeployedResource), resources)
        if releases:
            session.execute(insert(HelmRelease), releases)
    return True
