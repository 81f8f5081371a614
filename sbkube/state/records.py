"""Frozen records: the only shape in which deployment state leaves ``sbkube/state/``.

Every record is built while its session is still open, from rows loaded eagerly (see
``rows.py``), and holds plain Python values only: strings, ints, tz-aware UTC datetimes,
and JSON data frozen into :class:`~sbkube.model.FrozenDict` / tuples. Records compare by
value, hash, pickle, and cannot be changed, so there is nothing for a closed session to
invalidate: ``DetachedInstanceError`` is impossible by construction.

Their words (statuses, actions, :class:`~sbkube.model.Record`) live in :mod:`sbkube.model`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Required, TypedDict

from sbkube.model import (
    AppStatus,
    AppType,
    Command,
    DeploymentStatus,
    FrozenDict,
    Record,
    ResourceAction,
)


def _sealed() -> Any:
    """A record's sealed secret leaves: opaque, kept out of ``repr`` and of ``to_dict()``."""
    return field(default=None, repr=False, metadata={"jsonable": False})


@dataclass(frozen=True, slots=True)
class ResourceInput:
    """One resource to record: the manifest before and after, as the engine saw them."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    action: ResourceAction | str
    previous_state: Mapping[str, Any] | None = None
    current_state: Mapping[str, Any] | None = None
    source_file: str | None = None
    hook: str | None = None
    """For a Helm hook object, its ``helm.sh/hook`` value (``"pre-install,pre-upgrade"``);
    None for a release object or a YAML app's object."""

    @classmethod
    def from_manifest(
        cls,
        manifest: Mapping[str, Any],
        action: ResourceAction | str,
        *,
        previous: Mapping[str, Any] | None = None,
        source_file: str | None = None,
        hook: str | None = None,
    ) -> ResourceInput:
        meta = manifest.get("metadata") or {}
        deleted = ResourceAction(action) == ResourceAction.DELETE
        return cls(
            api_version=str(manifest.get("apiVersion", "")),
            kind=str(manifest.get("kind", "")),
            name=str(meta.get("name", "")),
            namespace=meta.get("namespace"),
            action=action,
            previous_state=manifest if deleted and previous is None else previous,
            current_state=None if deleted else manifest,
            source_file=source_file,
            hook=hook,
        )


class AppFields(TypedDict, total=False):
    """An app the engine starts recording: the keyword arguments of ``track_app`` (the
    tracker) and ``start_app`` (the store). ``config`` and ``metadata`` are redacted when
    written; ``rollback_info`` is what a rollback of the app needs."""

    name: Required[str]
    type: Required[AppType | str]
    namespace: str | None
    config: Mapping[str, Any] | None
    metadata: Mapping[str, Any] | None
    rollback_info: Mapping[str, Any] | None


class ReleaseFields(TypedDict, total=False):
    """A Helm revision an app made, as helm reported it: the keyword arguments of
    ``record_helm_release`` (the tracker), ``add_helm_release`` and ``settle_app`` (the
    store) and ``rows.prepare_release``. ``values`` are redacted when written."""

    release_name: Required[str]
    namespace: Required[str]
    chart: Required[str]
    revision: Required[int]
    status: Required[str]
    chart_version: str | None
    app_version: str | None
    values: Mapping[str, Any] | None
    chart_digest: str | None


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
    chart_digest: str | None = None
    """``sha256:<hex>`` of the chart files the revision was made from (a local chart
    directory or .tgz); None when unknown (a repository chart, an older record)."""
    sealed: str | None = _sealed()
    """The secret leaves of ``values`` (``{"values": leaves}``), sealed: see
    :mod:`sbkube.sealing`. Never shown (not in ``to_dict()``); ``state export`` carries it."""


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
    hook: str | None = None
    sealed: str | None = _sealed()
    """The secret leaves of the two states (``{"previous_state": leaves, …}``), sealed."""

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
    """The cluster's display name (config.yaml's ``cluster:``, else ``context@host:port``)."""
    cluster_id: str
    """The cluster's identity: its ``kube-system`` UID (the display name before first
    contact); what every read of a target and the lock go by."""
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
    reverts_id: str | None = None
    """The failed deployment this one rolled back (its failure policy's rollback)."""
    apps: tuple[AppDeploymentRecord, ...] = ()
    profile: str | None = None
    """``--profile ENV`` the deployment was made with (None: none)."""
    steps: tuple[FrozenDict, ...] = ()
    """The commands the deployment ran itself, not as one of its apps (the command-level
    hooks ``hooks.deploy.pre|post|on_failure``), in the order they ran: each as an exec
    app's steps are (``phase``, masked ``command`` and ``output_tail``, ``exit_code``,
    ``seconds``)."""

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
    cluster_id: str = ""
    profile: str | None = None

    @property
    def app_total(self) -> int:
        return sum(self.app_counts.values())


@dataclass(frozen=True, slots=True)
class AppHistoryEntry(Record):
    """One line of an app's timeline (``state history APP``)."""

    deployment_id: str
    cluster: str
    cluster_id: str
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
    profile: str | None = None
    """``--profile ENV`` the deployment was made with."""


@dataclass(frozen=True, slots=True)
class UnsettledApp(Record):
    """An app recording whose outcome the cluster may know better than the store: not
    ``success`` or ``skipped``, and no Helm revision recorded (its store writes may have
    failed after helm made one). ``window_end`` bounds when its revision can have been
    made: its own end, else its deployment's, else the next recording of the app on the
    target (None: none yet)."""

    app_id: int
    app_name: str
    app_status: AppStatus
    started_at: datetime
    window_end: datetime | None
    deployment_id: str
    deployment_status: DeploymentStatus
    host: str | None
    pid: int | None


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
    #: ``target`` as a person reads it: the cluster's recorded name in place of its
    #: identity (``dev/shop`` for ``<kube-system uid>/shop``), or ``target`` itself.
    shown: str = ""
