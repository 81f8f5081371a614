"""Row <-> record: the one place where the store's rows become frozen records.

Every mapper is called while the row's session is still open (the rows were loaded
eagerly), and copies plain values only, so what leaves ``sbkube/state/`` is a record and
never an ORM instance. :func:`prepare_resources` and :func:`prepare_release` go the
other way: the rows to insert for what the engine recorded, and the records those rows
read back as (shared by writes and unrecorded dry runs, so a dry run shows exactly what a
real run would store).

This module imports no ORM at run time: ``views.py`` (the ORM-free read path of
``state list``) builds its summaries here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from sbkube.model import (
    AppStatus,
    AppType,
    Command,
    DeploymentStatus,
    FrozenDict,
    ResourceAction,
    freeze,
    thaw,
)
from sbkube.redaction import (
    DEFAULT_SECRET_KEYS,
    Redactor,
    manifest_checksum,
    redact_values,
    scan_manifests,
)
from sbkube.sealing import SealKey, seal, seal_key, sealed_leaves
from sbkube.state.records import (
    AppDeploymentRecord,
    AppHistoryEntry,
    DeploymentRecord,
    DeploymentSummary,
    HelmReleaseRecord,
    LockRecord,
    ReleaseFields,
    ResourceInput,
    ResourceRecord,
)

if TYPE_CHECKING:
    from sbkube.state.schema import (
        AppDeployment,
        DeployedResource,
        DeployLock,
        Deployment,
        HelmRelease,
    )

R = TypeVar("R")

_STATUSES = {s.value: s for s in DeploymentStatus}
_COMMANDS = {c.value: c for c in Command}

# The columns of a resource row, in ResourceRecord's order; read by attribute from an
# ORM row and by key from a row about to be inserted (prepare_resources).
_RESOURCE_COLUMNS = tuple(ResourceRecord.__dataclass_fields__)
_resource_from_orm = attrgetter(*_RESOURCE_COLUMNS)
_resource_from_dict = itemgetter(*_RESOURCE_COLUMNS)


def _frozen_or_none(value: Any) -> Any:
    return freeze(value) if value is not None else None


def resource_record(row: DeployedResource | Mapping[str, Any]) -> ResourceRecord:
    """A resource row, loaded or about to be inserted, as the record it reads back as."""
    values = _resource_from_dict(row) if isinstance(row, dict) else _resource_from_orm(row)
    (
        api_version,
        kind,
        name,
        namespace,
        action,
        previous,
        current,
        checksum,
        source,
        hook,
        sealed,
    ) = values
    return ResourceRecord(
        api_version=api_version,
        kind=kind,
        name=name,
        namespace=namespace,
        action=ResourceAction(action),
        previous_state=_frozen_or_none(previous),
        current_state=_frozen_or_none(current),
        checksum=checksum,
        source_file=source,
        hook=hook,
        sealed=sealed,
    )


def _copy(cls: type[R], row: Any, **converted: Any) -> R:
    """A ``cls`` record from the same-named attributes of ``row``, but for the fields
    given in ``converted`` (enums, frozen JSON, renamed or nested values)."""
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{f: converted[f] if f in converted else getattr(row, f) for f in fields})


def release_record(h: HelmRelease) -> HelmReleaseRecord:
    return _copy(HelmReleaseRecord, h, values=freeze(h.values or {}))


def app_record(
    a: AppDeployment | Any,
    deployment_id: str,
    *,
    contents: bool,
    resources: Iterable[Any] | None = None,
    releases: Iterable[Any] | None = None,
) -> AppDeploymentRecord:
    """An app row; with ``contents``, its resources and releases too: the rows given, or
    the row's own (loaded eagerly). A Core row reads the ``metadata`` column labelled
    ``app_metadata``, the ORM attribute's name."""
    if contents:
        resources = a.resources if resources is None else resources
        releases = a.helm_releases if releases is None else releases
    return _copy(
        AppDeploymentRecord,
        a,
        app_id=a.id,
        deployment_id=deployment_id,
        type=AppType(a.type),
        status=AppStatus(a.status),
        config=freeze(a.config or {}),
        metadata=freeze(a.app_metadata or {}),
        rollback_info=_frozen_or_none(a.rollback_info),
        resources=tuple(resource_record(r) for r in resources) if contents and resources else (),
        helm_releases=tuple(release_record(h) for h in releases) if contents and releases else (),
    )


def started_app_record(
    app_id: int, deployment_id: str, values: Mapping[str, Any]
) -> AppDeploymentRecord:
    """The record of an app row just inserted from ``values`` (its columns by name, as
    written): not finished, no error yet, no contents yet."""
    rollback_info = values.get("rollback_info")
    return AppDeploymentRecord(
        app_id=app_id,
        deployment_id=deployment_id,
        name=values["name"],
        type=AppType(values["type"]),
        namespace=values.get("namespace"),
        status=AppStatus(values["status"]),
        error_message=None,
        config=freeze(values.get("config") or {}),
        metadata=freeze(values.get("metadata") or {}),
        rollback_info=freeze(rollback_info) if rollback_info is not None else None,
        started_at=values["started_at"],
        finished_at=None,
    )


def deployment_record(
    d: Deployment | Any, *, apps: bool, app_records: Iterable[AppDeploymentRecord] | None = None
) -> DeploymentRecord:
    """A deployment row; with ``apps``, every app with its contents: ``app_records``, or
    the row's own apps (loaded eagerly)."""
    if not apps:
        made: tuple[AppDeploymentRecord, ...] = ()
    elif app_records is not None:
        made = tuple(app_records)
    else:
        made = tuple(app_record(a, d.deployment_id, contents=True) for a in d.apps)
    return _copy(
        DeploymentRecord,
        d,
        command=Command(d.command),
        command_args=freeze(d.command_args or []),
        status=DeploymentStatus(d.status),
        config_snapshot=_frozen_or_none(d.config_snapshot),
        sources_snapshot=_frozen_or_none(d.sources_snapshot),
        apps=made,
        steps=tuple(freeze(s) for s in (getattr(d, "steps", None) or ())),
    )


def history_entry(r: Any) -> AppHistoryEntry:
    """One row of the ``app_history`` statement (its labelled columns)."""
    return _copy(
        AppHistoryEntry,
        r,
        command=Command(r.command),
        deployment_status=DeploymentStatus(r.status),
        app_name=r.name,
        app_type=AppType(r.type),
        app_status=AppStatus(r.app_status),
        resource_count=int(r.resource_count),
    )


def lock_record(row: DeployLock, shown: str | None = None) -> LockRecord:
    return _copy(LockRecord, row, shown=shown or row.target)


def _utc(value: Any) -> datetime:
    """A timestamp read without type processing: SQLite text or a PostgreSQL datetime."""
    if type(value) is str:  # SQLite: naive UTC text; parsing it with its zone saves a replace()
        return datetime.fromisoformat(value + "+00:00")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def summaries(
    heads: Sequence[Any], counts: Mapping[int, Mapping[str, int]]
) -> list[DeploymentSummary]:
    """The summaries of ``views.list_deployments``: ``heads`` are its rows by position
    (``views.SUMMARY_NAMES`` first), ``counts`` their per-status app counts by row id."""
    # Positional arguments and raw timestamps: this is the hottest read (every `state list`).
    return [
        DeploymentSummary(
            r[1],
            r[2],
            r[3],
            r[4],
            _COMMANDS[r[5]],
            bool(r[6]),
            _STATUSES[r[7]],
            r[8],
            r[9],
            r[10],
            r[11],
            _utc(r[12]),
            _utc(r[13]) if r[13] is not None else None,
            r[14],
            FrozenDict(sorted(counts[r[0]].items())),
            r[15],
            r[16],
        )
        for r in heads
    ]


def prepare_resources(
    app_id: int | None, resources: Iterable[ResourceInput], secret_values: Iterable[str] = ()
) -> tuple[list[dict[str, Any]], tuple[ResourceRecord, ...]]:
    """The rows to insert for ``resources`` (in the store's form: volatile fields dropped,
    secrets digested or scrubbed, checksummed) and the records they read back as.

    The rows' documents are the records' frozen ones (one copy, shared by both, and
    never aliasing the caller's manifests)."""
    inputs = list(resources)
    states = [s for r in inputs for s in (r.previous_state, r.current_state) if s is not None]
    # Every state is searched once, by scan_manifests; the one Redactor then digests and
    # scrubs what was found, and a state that the search saw holds nothing to redact is
    # not walked again (nor compared for sealing): the per-manifest cost of recording.
    found, scans = scan_manifests(states)
    redactor = Redactor(known=(*secret_values, *found))
    next_scan = iter(scans).__next__
    sealer = _Sealer()
    rows: list[dict[str, Any]] = []
    records: list[ResourceRecord] = []
    for res in inputs:
        prev = cur = None
        changed: dict[str, tuple[Any, Any]] = {}
        if res.previous_state is not None:
            stored, redacted = redactor.stored_form(res.previous_state, next_scan())
            prev = freeze(stored)
            if redacted:
                changed["previous_state"] = (res.previous_state, prev)
        if res.current_state is not None:
            stored, redacted = redactor.stored_form(res.current_state, next_scan())
            cur = freeze(stored)
            if redacted:
                changed["current_state"] = (res.current_state, cur)
        basis = cur if cur is not None else prev
        row = {
            "app_deployment_pk": app_id,
            "api_version": res.api_version,
            "kind": res.kind,
            "name": res.name,
            "namespace": res.namespace,
            "action": str(ResourceAction(res.action)),
            "previous_state": prev,
            "current_state": cur,
            "checksum": manifest_checksum(basis) if basis is not None else None,
            "source_file": res.source_file,
            "hook": res.hook,
            "sealed": sealer.seal(**changed) if changed else None,
        }
        rows.append(row)
        records.append(resource_record(row))
    return rows, tuple(records)


class _Sealer:
    """Seals what redaction replaced in a row's documents (:mod:`sbkube.sealing`); the key
    is read once, on the first row that has a secret."""

    def __init__(self) -> None:
        self._key: SealKey | None = None

    def seal(self, **documents: tuple[Any, Any]) -> str | None:
        """The seal of ``{column: leaves}`` for ``column=(plain, stored)``; None when no
        column lost anything to redaction."""
        leaves = {
            column: found
            for column, (plain, stored) in documents.items()
            if plain is not None and stored is not None
            for found in (sealed_leaves(plain, stored),)
            if found
        }
        if not leaves:
            return None
        if self._key is None:
            self._key = seal_key()
            assert self._key is not None  # created on first use
        return seal(leaves, self._key)


def prepare_release(
    app_id: int | None,
    *,
    secret_keys: Sequence[str] = DEFAULT_SECRET_KEYS,
    **release: Unpack[ReleaseFields],
) -> tuple[dict[str, Any], HelmReleaseRecord]:
    """The row for a Helm release (values redacted, what redaction replaced sealed) and the
    record it reads back as."""
    plain = thaw(release.get("values") or {})
    stored = redact_values(plain, tuple(secret_keys))
    given: dict[str, Any] = {"chart_version": None, "app_version": None, **release}
    given["revision"] = int(release["revision"])
    given["values"] = freeze(stored)
    given["sealed"] = _Sealer().seal(values=(plain, stored))
    record = HelmReleaseRecord(**given)
    row = {f: getattr(record, f) for f in HelmReleaseRecord.__dataclass_fields__}
    row["values"] = thaw(record.values)
    row["app_deployment_pk"] = app_id
    return row, record
