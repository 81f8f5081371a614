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
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import selectinload

from sbkube.errors import UsageError
from sbkube.messages import describe, describe_value, error_line, error_text, first_error
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
from sbkube.sealing import PREFIX as SEAL_PREFIX
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
    """The record's JSON form without the apps' ``app_id`` (one database's primary key),
    with the sealed secret leaves of resources and releases that have some, still sealed
    (``to_dict()`` never shows them; a line without secrets reads as before)."""
    data: dict[str, Any] = jsonable(record)
    for app, app_record in zip(data["apps"], record.apps, strict=True):
        del app["app_id"]
        sealed: list[tuple[dict[str, Any], str | None]] = [
            *zip(app["resources"], (r.sealed for r in app_record.resources), strict=True),
            *zip(app["helm_releases"], (h.sealed for h in app_record.helm_releases), strict=True),
        ]
        for item, blob in sealed:
            if blob is not None:
                item["sealed"] = blob
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


def _utc_time(value: Any) -> Any:
    """An ISO 8601 string with a time zone, as an aware UTC datetime."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected str, got {describe(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{describe_value(value)} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{describe_value(value)} has no time zone")
    return parsed.astimezone(UTC)


def _not_future(value: datetime | None) -> datetime | None:
    if value is not None and value > utcnow() + CLOCK_SKEW:
        raise ValueError(f"{value.isoformat()} is more than a day in the future")
    return value


def _deployment_id(value: str | None) -> str | None:
    if value is not None and not is_deployment_id(value):
        raise ValueError(
            f"{describe_value(value)} is not a deployment id (dep-YYYYMMDD-HHMMSS-xxxxxx)"
        )
    return value


def _sealed(value: str) -> str:
    # Imported as it is, still sealed: a store without the key shows and diffs the record
    # (by its digests) but cannot roll back to it.
    if not value.startswith(SEAL_PREFIX) or value.count(":") != 2:
        raise ValueError(f"{describe_value(value[:40])} is not a sealed value")
    return value


_Time = Annotated[datetime, BeforeValidator(_utc_time)]
_DeploymentTime = Annotated[_Time, AfterValidator(_not_future)]
_DeploymentId = Annotated[StrictStr, AfterValidator(_deployment_id)]
_Sealed = Annotated[StrictStr, AfterValidator(_sealed)]


class _Line(BaseModel):
    """One object of an exported line: the JSON types as they are exported (no coercion:
    ``"2"`` is not a revision), unknown keys ignored (a newer sbkube may add some), JSON
    columns (snapshots, configs, metadata) taken as they are."""

    # An enum field is not strict (``Field(strict=False)``): it takes the JSON string.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, use_enum_values=True)


class _ResourceLine(_Line):
    api_version: StrictStr
    kind: StrictStr
    name: StrictStr
    namespace: StrictStr | None = None
    action: Annotated[ResourceAction, Field(strict=False)]
    previous_state: dict[str, Any] | None = None
    current_state: dict[str, Any] | None = None
    checksum: StrictStr | None = None
    source_file: StrictStr | None = None
    hook: StrictStr | None = None
    sealed: _Sealed | None = None


class _ReleaseLine(_Line):
    release_name: StrictStr
    namespace: StrictStr
    chart: StrictStr
    chart_version: StrictStr | None = None
    app_version: StrictStr | None = None
    revision: StrictInt
    values: dict[str, Any] | None = None
    status: StrictStr
    chart_digest: StrictStr | None = None
    sealed: _Sealed | None = None

    def row(self) -> dict[str, Any]:
        return {**self.model_dump(), "values": self.values or {}}


class _AppLine(_Line):
    name: StrictStr
    type: Annotated[AppType, Field(strict=False)]
    namespace: StrictStr | None = None
    status: Annotated[AppStatus, Field(strict=False)]
    error_message: StrictStr | None = None
    config: Any = None
    metadata: Any = None
    rollback_info: Any = None
    started_at: _Time
    finished_at: _Time | None = None
    resources: list[_ResourceLine] | None = None
    helm_releases: list[_ReleaseLine] | None = None

    def row(self) -> dict[str, Any]:
        row = self.model_dump(exclude={"metadata", "resources", "helm_releases"})
        return {**row, "app_metadata": self.metadata}


class _DeploymentLine(_Line):
    deployment_id: _DeploymentId
    cluster: StrictStr
    cluster_id: StrictStr | None = None  # exports made before identities: the display name
    namespace: StrictStr
    app_dir: StrictStr | None = None
    config_file: StrictStr | None = None
    command: Annotated[Command, Field(strict=False)]
    command_args: list[Any] | None = None
    dry_run: StrictBool
    status: Annotated[DeploymentStatus, Field(strict=False)]
    error_message: StrictStr | None = None
    config_snapshot: Any = None
    sources_snapshot: Any = None
    sbkube_version: StrictStr
    operator: StrictStr | None = None
    host: StrictStr | None = None
    pid: StrictInt | None = None
    started_at: _DeploymentTime
    finished_at: _DeploymentTime | None = None
    rollback_target_id: _DeploymentId | None = None
    reverts_id: _DeploymentId | None = None
    profile: Annotated[StrictStr, Field(max_length=63)] | None = None
    steps: list[dict[str, Any]] | None = None
    apps: list[_AppLine] | None = None

    @model_validator(mode="after")
    def _app_names_unique(self) -> _DeploymentLine:
        names: set[str] = set()
        for i, app in enumerate(self.apps or ()):
            if app.name in names:
                raise ValueError(f"apps[{i}].name: app {app.name!r} appears twice")
            names.add(app.name)
        return self

    def row(self) -> dict[str, Any]:
        return {
            **self.model_dump(exclude={"apps"}),
            "cluster_id": self.cluster_id or self.cluster,
            "command_args": self.command_args or [],
        }


#: How an import words what pydantic finds: in JSON's terms, as the export writes them.
_EXPECTED = {
    "string_type": "str",
    "int_type": "int",
    "bool_type": "bool",
    "list_type": "list",
    "dict_type": "dict",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
}


@dataclass(frozen=True)
class ParsedDeployment:
    deployment: dict[str, Any]
    apps: list[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]

    @property
    def deployment_id(self) -> str:
        return str(self.deployment["deployment_id"])


def _parse(item: Any, shown: str) -> ParsedDeployment:
    """One line's object, validated, as the rows to insert; a bad one raises a UsageError
    naming ``shown`` (``file:line``), the field and what is wrong."""
    if isinstance(item, Mapping) and not isinstance(item, dict):
        item = dict(item)
    try:
        line = _DeploymentLine.model_validate(item)
    except ValidationError as err:
        first = first_error(err)
        text = error_text(first, missing="missing", expected=_EXPECTED)
        raise UsageError(error_line(shown, first["loc"], text)) from None
    apps = [
        (
            app.row(),
            [res.model_dump() for res in app.resources or ()],
            [rel.row() for rel in app.helm_releases or ()],
        )
        for app in line.apps or ()
    ]
    return ParsedDeployment(line.row(), apps)


def _items(
    lines: Iterable[Mapping[str, Any] | str],
    source: str,
    in_store: Callable[[str], bool] | None = None,
) -> Iterator[tuple[int, ParsedDeployment]]:
    """Parse ``lines``. A rollback target must be a deployment of the same input (on any
    line) or, with ``in_store``, of the store: one that is neither by the last line is
    refused then, naming the line that points to it."""
    seen: set[str] = set()
    wanted: dict[str, int] = {}  # rollback target -> first line that names it
    for lineno, line in enumerate(lines, start=1):
        shown = f"{source}:{lineno}"
        if isinstance(line, str):
            if not line.strip():
                continue
            try:
                item: Any = json.loads(line)
            except json.JSONDecodeError as err:
                raise UsageError(
                    f"{shown}: invalid JSON ({err.msg} at column {err.colno})"
                ) from None
        else:
            item = line
        parsed = _parse(item, shown)
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
        if write_parsed(db, parsed):
            imported.append(parsed.deployment_id)
        else:
            skipped.append(parsed.deployment_id)
    return ImportResult(
        imported=len(imported),
        skipped=len(skipped),
        imported_ids=tuple(imported),
        skipped_ids=tuple(skipped),
    )


def write_parsed(db: DeploymentDatabase, parsed: ParsedDeployment) -> bool:
    """Write one deployment's rows in one transaction, keeping its id; False (nothing
    written) when that id is already in the store. Shared with ``legacy.py``."""
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
