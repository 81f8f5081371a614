"""Frozen records: the only shape in which deployment state leaves ``sbkube/state/``.

Every record is built while its session is still open, from rows loaded eagerly, and
holds plain Python values only: strings, ints, tz-aware UTC datetimes, and JSON data
frozen into :class:`FrozenDict` / tuples. Records compare by value, hash, pickle, and
cannot be changed, so there is nothing for a closed session to invalidate:
``DetachedInstanceError`` is impossible by construction.

Statuses and actions are ``StrEnum`` members, so ``record.status == "success"`` holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class DeploymentStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially_failed"
    ROLLED_BACK = "rolled_back"
    INTERRUPTED = "interrupted"


class AppStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


class Command(StrEnum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"


class AppType(StrEnum):
    HELM = "helm"
    YAML = "yaml"


class ResourceAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    DELETE = "delete"


class FrozenDict(dict[str, Any]):
    """A dict that refuses mutation, hashes by content and pickles as itself.

    Chosen over ``MappingProxyType`` because records must pickle, and over plain dicts
    because a frozen record whose JSON fields can be edited in place is not frozen.
    ``json.dumps`` accepts it unchanged; :func:`thaw` gives back plain containers.
    """

    __slots__ = ()

    def _immutable(self, *_: Any, **__: Any) -> Any:
        raise TypeError("FrozenDict is immutable")

    __setitem__ = _immutable
    __delitem__ = _immutable
    clear = _immutable
    pop = _immutable
    popitem = _immutable
    setdefault = _immutable
    update = _immutable
    __ior__ = _immutable

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """Deep-freeze JSON-like data: dicts -> FrozenDict, lists -> tuples."""
    if type(value) in _SCALARS:  # the common case, checked without isinstance() chains
        return value
    if type(value) is dict:
        return FrozenDict({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict((str(k), freeze(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists, ready for YAML or editing."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """Plain JSON-ready data from records, results, enums and datetimes.

    Datetimes are ISO 8601 with microseconds always written, so the same instant always
    gives the same text (``state export`` lines must compare byte for byte); dataclasses
    become dicts of their fields (so ``to_dict()`` is this, one level down).
    """
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    return value


class Record:
    """Mixin for every frozen result type of sbkube (records, plans, diffs, outcomes)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict with stable snake_case keys (datetimes as ISO 8601)."""
        out: dict[str, Any] = jsonable(self)
        return out


@dataclass(frozen=True, slots=True)
class HelmReleaseRecord(Record):
    release_name: str
    namespace: str
    chart: str
    chart_version: str | None
    app_version: str | None
    revision: int
    values: FrozenDict
    status: str


@dataclass(frozen=True, slots=True)
class ResourceRecord(Record):
    api_version: str
    kind: str
    name: str
    namespace: str | None
    action: ResourceAction
    previous_state: FrozenDict | None
    current_state: FrozenDict | None
    checksum: str | None
    source_file: str | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(api_version, kind, namespace, name) — the identity of the object in a cluster."""
        return (self.api_version, self.kind, self.namespace or "", self.name)


@dataclass(frozen=True, slots=True)
class AppDeploymentRecord(Record):
    app_id: int
    deployment_id: str
    name: str
    type: AppType
    namespace: str | None
    status: AppStatus
    error_message: str | None
    config: FrozenDict
    metadata: FrozenDict
    rollback_info: FrozenDict | None
    started_at: datetime
    finished_at: datetime | None
    resources: tuple[ResourceRecord, ...] = ()
    helm_releases: tuple[HelmReleaseRecord, ...] = ()

    @property
    def helm_release(self) -> HelmReleaseRecord | None:
        return self.helm_releases[0] if self.helm_releases else None


@dataclass(frozen=True, slots=True)
class DeploymentRecord(Record):
    deployment_id: str
    cluster: str
    namespace: str
    app_dir: str | None
    config_file: str | None
    command: Command
    command_args: tuple[Any, ...]
    dry_run: bool
    status: DeploymentStatus
    error_message: str | None
    config_snapshot: FrozenDict | None
    sources_snapshot: FrozenDict | None
    sbkube_version: str
    operator: str | None
    host: str | None
    pid: int | None
    started_at: datetime
    finished_at: datetime | None
    rollback_target_id: str | None
    apps: tuple[AppDeploymentRecord, ...] = ()

    def app(self, name: str) -> AppDeploymentRecord | None:
        return next((a for a in self.apps if a.name == name), None)

    def iter_resources(self) -> Iterator[tuple[AppDeploymentRecord, ResourceRecord]]:
        for app in self.apps:
            for res in app.resources:
                yield app, res


@dataclass(frozen=True, slots=True)
class DeploymentSummary(Record):
    """One row of ``list()``: the deployment without its contents, plus app counts."""

    deployment_id: str
    cluster: str
    namespace: str
    app_dir: str | None
    command: Command
    dry_run: bool
    status: DeploymentStatus
    error_message: str | None
    operator: str | None
    host: str | None
    pid: int | None
    started_at: datetime
    finished_at: datetime | None
    rollback_target_id: str | None
    app_counts: FrozenDict = field(default_factory=FrozenDict)

    @property
    def app_total(self) -> int:
        return sum(self.app_counts.values())


@dataclass(frozen=True, slots=True)
class AppHistoryEntry(Record):
    """One line of an app's timeline (``state history APP``)."""

    deployment_id: str
    cluster: str
    namespace: str
    command: Command
    deployment_status: DeploymentStatus
    app_name: str
    app_type: AppType
    app_status: AppStatus
    started_at: datetime
    operator: str | None
    chart: str | None
    chart_version: str | None
    revision: int | None
    resource_count: int


@dataclass(frozen=True, slots=True)
class LockRecord(Record):
    """Who holds the deploy lock of a (cluster, namespace) target."""

    target: str
    holder_id: str
    operator: str | None
    host: str | None
    pid: int | None
    command: str | None
    deployment_id: str | None
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
