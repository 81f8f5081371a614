"""An in-memory cluster: the Cluster port without Kubernetes.

Like Helm's in-memory storage driver, this is part of the product, not a test double:
``--dry-run`` plans run against a throwaway copy of it, and every test of the engine and
CLI uses it. It therefore behaves like the real thing where callers can tell:

* objects are keyed by ObjectKey and carry the fields an API server adds (``uid``,
  ``resourceVersion``, ``generation``, ``creationTimestamp``); an apply that changes
  nothing keeps the resourceVersion, so code that checksums live objects must strip them;
* Helm releases follow helm's revision rules: install is revision 1, every upgrade and
  rollback adds one, the previous deployed revision becomes ``superseded``, a failed
  upgrade leaves a ``failed`` revision, a release left ``pending-*`` refuses upgrades
  ("another operation is in progress") until it is rolled back;
* charts are rendered by the real ``helm template`` (through HelmClient), and the
  rendered objects become live objects; objects an upgrade no longer renders are deleted.

With ``path`` the state lives in a JSON file, re-read before and written (atomically)
after every operation under an advisory file lock, so separate ``sbkube`` processes (the
CLI tests) share one cluster.

Test hooks: ``fail_on`` / ``SBKUBE_MEMORY_FAIL_ON=name1,name2`` make an apply of that
object name, or a helm upgrade of that release name (or of a chart rendering an object of
that name), raise ClusterError; ``SBKUBE_MEMORY_BLOCK_ON=name`` makes the process print
``BLOCKED name`` to stderr and sleep until it is killed, to test interrupted deployments
(a blocked upgrade first records a ``pending-*`` revision, as a killed helm would). Rollback,
delete and uninstall are never failed or blocked, so recovery paths stay testable.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sbkube.cluster.port import (
    PENDING_STATUSES,
    RELEASE_STATUSES,
    STATUS_DEPLOYED,
    STATUS_FAILED,
    STATUS_PENDING_INSTALL,
    STATUS_PENDING_UPGRADE,
    STATUS_SUPERSEDED,
    STATUS_UNINSTALLED,
    ChartRef,
    Cluster,
    ObjectKey,
    ReleaseInfo,
    format_key,
    object_key,
    strip_volatile,
)
from sbkube.errors import ClusterError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process locking
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from sbkube.cluster.helm import HelmClient

FAIL_ON_ENV_VAR = "SBKUBE_MEMORY_FAIL_ON"
BLOCK_ON_ENV_VAR = "SBKUBE_MEMORY_BLOCK_ON"
SNAPSHOT_FORMAT = 1

# What helm stamps on every object it manages (helm >= 3.2); it is how `helm upgrade`
# recognises objects it owns, and the live objects of a real cluster carry it too.
HELM_MANAGED_BY_LABEL = ("app.kubernetes.io/managed-by", "Helm")
HELM_RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"

ReleaseId = tuple[str, str]  # (namespace, name)


@dataclass
class _Revision:
    """One stored revision of a release (what helm keeps in its release Secret)."""

    revision: int
    status: str
    chart: str
    chart_version: str
    app_version: str | None
    values: dict[str, Any]
    manifests: list[dict[str, Any]]
    updated: datetime
    description: str

    def info(self, name: str, namespace: str) -> ReleaseInfo:
        return ReleaseInfo(
            name=name,
            namespace=namespace,
            revision=self.revision,
            status=self.status,
            chart=self.chart,
            chart_version=self.chart_version,
            app_version=self.app_version,
            values=copy.deepcopy(self.values),
            updated=self.updated,
            description=self.description,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "status": self.status,
            "chart": self.chart,
            "chart_version": self.chart_version,
            "app_version": self.app_version,
            "values": self.values,
            "manifests": self.manifests,
            "updated": self.updated.isoformat(),
            "description": self.description,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Revision:
        return cls(
            revision=int(data["revision"]),
            status=str(data["status"]),
            chart=str(data.get("chart") or ""),
            chart_version=str(data.get("chart_version") or ""),
            app_version=data.get("app_version"),
            values=dict(data.get("values") or {}),
            manifests=list(data.get("manifests") or []),
            updated=datetime.fromisoformat(data["updated"]),
            description=str(data.get("description") or ""),
        )


@dataclass
class _Release:
    revisions: list[_Revision] = field(default_factory=list)
    # Objects of this release that are live now; differs from the last revision's
    # manifests when that revision failed or is still pending.
    live_keys: list[ObjectKey] = field(default_factory=list)

    @property
    def current(self) -> _Revision:
        return self.revisions[-1]


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    # The API server's format: RFC 3339, seconds, "Z".
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _content(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: a change here bumps metadata.generation."""
    return {k: v for k, v in manifest.items() if k not in ("metadata", "status")}


def _names_from_env(var: str) -> set[str]:
    return {part.strip() for part in os.environ.get(var, "").split(",") if part.strip()}


def _block_forever(name: str) -> None:
    """Simulate a cluster call that never returns, until a signal ends the process.

    A signal handler that raises (the CLI's SIGTERM handler) interrupts time.sleep, so the
    interruption path of the caller is what gets exercised.
    """
    sys.stderr.write(f"BLOCKED {name}\n")
    sys.stderr.flush()
    while True:
        time.sleep(3600)


class MemoryCluster(Cluster):
    """A cluster kept in memory (optionally mirrored to a JSON file)."""

    def __init__(
        self,
        path: str | Path | None = None,
        name: str = "memory",
        helm: HelmClient | None = None,
        *,
        fail_on: Mapping[str, str] | None = None,
    ) -> None:
        self._name = name
        self.path = Path(path) if path is not None else None
        self._helm = helm
        # Mutable on purpose: a test can make a name fail after the cluster was built.
        self.fail_on: dict[str, str] = dict(fail_on or {})
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._releases: dict[ReleaseId, _Release] = {}
        self._resource_version = 0
        self._lock = threading.RLock()
        self._file_signature: tuple[int, int, int] | None = None
        if self.path is not None:
            with self._read():
                pass

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"MemoryCluster(path={self.path!r}, name={self._name!r})"

    @property
    def helm(self) -> HelmClient:
        """The HelmClient that renders charts; built on first use, so a cluster that only
        applies plain YAML never needs helm."""
        if self._helm is None:
            from sbkube.cluster.helm import HelmClient

            self._helm = HelmClient()
        return self._helm

    # ------------------------------------------------------------------ persistence

    def _signature(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        # os.replace gives every save a new inode, so this changes on every write.
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextmanager
    def _file_lock(self, *, exclusive: bool) -> Iterator[None]:
        if self.path is None or fcntl is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _reload_if_changed(self) -> None:
        if self.path is None:
            return
        signature = self._signature()
        if signature is None or signature == self._file_signature:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ClusterError(f"cannot read memory cluster state {self.path}: {exc}") from exc
        self._restore(data)
        self._file_signature = signature

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self._state(), handle, indent=1, sort_keys=True, default=str)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._file_signature = self._signature()

    @contextmanager
    def _read(self) -> Iterator[None]:
        with self._lock, self._file_lock(exclusive=False):
            self._reload_if_changed()
            yield

    @contextmanager
    def _mutate(self) -> Iterator[None]:
        """Load, change, save under an exclusive lock. Operations validate before they
        change anything, so an exception leaves the state as it was; should one escape
        half-way anyway, the file copy is reloaded on the next operation."""
        with self._lock, self._file_lock(exclusive=True):
            self._reload_if_changed()
            try:
                yield
            except BaseException:
                self._file_signature = None
                raise
            self._save()

    def _state(self) -> dict[str, Any]:
        # Shares structure with the live state: only for serialising, never handed out.
        return {
            "format": SNAPSHOT_FORMAT,
            "name": self._name,
            "resource_version": self._resource_version,
            "objects": [self._objects[key] for key in sorted(self._objects)],
            "releases": [
                {
                    "namespace": namespace,
                    "name": name,
                    "live_keys": [list(key) for key in release.live_keys],
                    "revisions": [rev.to_json() for rev in release.revisions],
                }
                for (namespace, name), release in sorted(self._releases.items())
            ],
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-compatible data (deep copies); see ``from_snapshot``."""
        with self._read():
            return copy.deepcopy(self._state())

    def _restore(self, data: Mapping[str, Any]) -> None:
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ClusterError(f"unsupported memory cluster state format: {data.get('format')!r}")
        objects = {object_key(obj): copy.deepcopy(obj) for obj in data.get("objects", [])}
        releases: dict[ReleaseId, _Release] = {}
        for entry in data.get("releases", []):
            releases[(entry["namespace"], entry["name"])] = _Release(
                revisions=[_Revision.from_json(rev) for rev in entry.get("revisions", [])],
                live_keys=[_as_key(key) for key in entry.get("live_keys", [])],
            )
        self._objects = objects
        self._releases = releases
        self._resource_version = int(data.get("resource_version", 0))

    @classmethod
    def from_snapshot(
        cls,
        data: Mapping[str, Any],
        *,
        name: str | None = None,
        helm: HelmClient | None = None,
        fail_on: Mapping[str, str] | None = None,
    ) -> MemoryCluster:
        """A new, unpersisted cluster holding ``data`` (from ``snapshot()``)."""
        cluster = cls(name=name or str(data.get("name") or "memory"), helm=helm, fail_on=fail_on)
        cluster._restore(data)
        return cluster

    def copy(self) -> MemoryCluster:
        """A throwaway in-memory copy (no file): what a dry run plans against."""
        return MemoryCluster.from_snapshot(
            self.snapshot(), name=self._name, helm=self._helm, fail_on=self.fail_on
        )

    def seed(
        self,
        objects: Iterable[Mapping[str, Any]] = (),
        releases: Iterable[ReleaseInfo] = (),
    ) -> None:
        """Add live objects and release revisions, e.g. rebuilt from recorded state.

        Objects that carry helm's release annotations become the live objects of that
        release and the manifests of its newest seeded revision, so a seeded release can be
        upgraded (and its dropped objects pruned) like an installed one.
        """
        with self._mutate():
            for manifest in objects:
                self._store(manifest)
            touched: set[ReleaseId] = set()
            for info in sorted(releases, key=lambda r: (r.namespace, r.name, r.revision)):
                rid = (info.namespace, info.name)
                release = self._releases.setdefault(rid, _Release())
                release.revisions = [r for r in release.revisions if r.revision != info.revision]
                release.revisions.append(
                    _Revision(
                        revision=info.revision,
                        status=info.status,
                        chart=info.chart,
                        chart_version=info.chart_version,
                        app_version=info.app_version,
                        values=copy.deepcopy(dict(info.values)),
                        manifests=[],
                        updated=info.updated or _now(),
                        description=info.description,
                    )
                )
                release.revisions.sort(key=lambda r: r.revision)
                touched.add(rid)
            for rid in touched:
                release = self._releases[rid]
                owned = sorted(key for key, obj in self._objects.items() if _owner(obj) == rid)
                release.live_keys = owned
                release.current.manifests = [
                    _strip_helm_metadata(strip_volatile(self._objects[key])) for key in owned
                ]

    # ------------------------------------------------------------------ test hooks

    def _failure_for(self, names: Iterable[str]) -> tuple[str, str] | None:
        from_env = _names_from_env(FAIL_ON_ENV_VAR)
        for name in names:
            if name in self.fail_on:
                return name, self.fail_on[name]
            if name in from_env:
                return name, f"simulated failure for {name} ({FAIL_ON_ENV_VAR})"
        return None

    @staticmethod
    def _block_for(names: Iterable[str]) -> str | None:
        blocked = _names_from_env(BLOCK_ON_ENV_VAR)
        if not blocked:
            return None
        return next((name for name in names if name in blocked), None)

    def set_release_status(self, release_name: str, namespace: str, status: str) -> None:
        """Force the current revision's status, e.g. to ``pending-upgrade`` to simulate a
        run that was killed in the middle of ``helm upgrade``."""
        if status not in RELEASE_STATUSES:
            raise ValueError(f"unknown helm release status {status!r}")
        with self._mutate():
            release = self._require_release(release_name, namespace, "helm status")
            release.current.status = status

    # ------------------------------------------------------------------ objects

    def objects(self) -> list[dict[str, Any]]:
        """Every live object (deep copies), sorted by key."""
        with self._read():
            return [copy.deepcopy(self._objects[key]) for key in sorted(self._objects)]

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        with self._read():
            live = self._objects.get(_as_key(key))
            return copy.deepcopy(live) if live is not None else None

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        key = object_key(manifest)
        failure = self._failure_for([key[3]])
        if failure is not None:
            raise ClusterError(f"kubectl apply {format_key(key)} failed: {failure[1]}")
        blocked = self._block_for([key[3]])
        if blocked is not None:
            _block_forever(blocked)
        with self._mutate():
            return copy.deepcopy(self._store(manifest))

    def delete(self, key: ObjectKey) -> bool:
        with self._mutate():
            return self._objects.pop(_as_key(key), None) is not None

    def _store(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update one object the way an API server would; returns the live one."""
        key = object_key(manifest)
        desired = strip_volatile(manifest)
        existing = self._objects.get(key)
        if existing is not None and strip_volatile(existing) == desired:
            return existing
        metadata = desired.setdefault("metadata", {})
        self._resource_version += 1
        if existing is None:
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = _timestamp(_now())
            metadata["generation"] = 1
        else:
            old = existing.get("metadata", {})
            metadata["uid"] = old.get("uid") or str(uuid.uuid4())
            metadata["creationTimestamp"] = old.get("creationTimestamp") or _timestamp(_now())
            generation = int(old.get("generation") or 1)
            if _content(existing) != _content(desired):
                generation += 1
            metadata["generation"] = generation
        metadata["resourceVersion"] = str(self._resource_version)
        self._objects[key] = desired
        return desired

    # ------------------------------------------------------------------ helm

    def render_chart(
        self,
        chart: ChartRef,
        *,
        release_name: str,
        namespace: str,
        values: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        return self.helm.template(
            chart, release_name=release_name, namespace=namespace, values=values
        )

    def _chart_metadata(self, chart: ChartRef) -> dict[str, Any]:
        # A local chart directory is read directly (no subprocess); packaged and repository
        # charts are asked of helm, which knows how to fetch them.
        chart_yaml = Path(chart.ref) / "Chart.yaml"
        if chart_yaml.is_file():
            data = yaml.safe_load(chart_yaml.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                return data
        return self.helm.show_chart(chart)

    def helm_upgrade_install(
        self,
        chart: ChartRef,
        *,
        release_name: str,
        namespace: str,
        values: Mapping[str, Any],
        wait: bool = False,
        timeout: str | None = None,
    ) -> ReleaseInfo:
        """Install or upgrade like helm; ``wait``/``timeout`` are accepted and ignored
        (stored objects are ready at once). Raises ClusterError, after recording a failed
        revision, when ``fail_on`` names the release or one of its objects."""
        what = f"helm upgrade --install {release_name}"
        # Render before touching the release: like helm, a chart that does not render
        # leaves no revision behind.
        manifests = self.render_chart(
            chart, release_name=release_name, namespace=namespace, values=values
        )
        meta = self._chart_metadata(chart)
        keys = [object_key(m) for m in manifests]
        touched = [release_name, *(key[3] for key in keys)]
        failure = self._failure_for(touched)
        blocked = self._block_for(touched)
        rid = (namespace, release_name)
        with self._mutate():
            release = self._releases.setdefault(rid, _Release())
            installing = not release.revisions
            if not installing and release.current.status in PENDING_STATUSES:
                raise ClusterError(
                    f"{what} failed: another operation (install/upgrade/rollback) is in progress"
                )
            revision = _Revision(
                revision=1 if installing else release.current.revision + 1,
                status=STATUS_DEPLOYED,
                chart=str(meta.get("name") or ""),
                chart_version=str(meta.get("version") or ""),
                app_version=str(meta["appVersion"]) if meta.get("appVersion") else None,
                values=copy.deepcopy(dict(values)),
                manifests=copy.deepcopy(manifests),
                updated=_now(),
                description="Install complete" if installing else "Upgrade complete",
            )
            if blocked is not None:
                # What a killed `helm upgrade` leaves behind: a pending revision.
                revision.status = STATUS_PENDING_INSTALL if installing else STATUS_PENDING_UPGRADE
                revision.description = (
                    "Initial install underway" if installing else "Preparing upgrade"
                )
            elif failure is not None:
                revision.status = STATUS_FAILED
                verb = "Install" if installing else "Upgrade"
                revision.description = f'{verb} "{release_name}" failed: {failure[1]}'
            else:
                self._switch_objects(release, manifests, release_name, namespace)
                self._supersede(release)
            release.revisions.append(revision)
            info = revision.info(release_name, namespace)
        if blocked is not None:
            _block_forever(blocked)
        if failure is not None:
            raise ClusterError(f"{what} failed: {failure[1]}")
        return info

    def _supersede(self, release: _Release) -> None:
        # Only one revision is "deployed"; failed ones keep their status as a record, and
        # a pending one (its operation is being replaced) is superseded too.
        for rev in release.revisions:
            if rev.status == STATUS_DEPLOYED or rev.status in PENDING_STATUSES:
                rev.status = STATUS_SUPERSEDED

    def _switch_objects(
        self,
        release: _Release,
        manifests: list[dict[str, Any]],
        release_name: str,
        namespace: str,
    ) -> None:
        """Make ``manifests`` the release's live objects; delete the ones dropped."""
        new_keys = [object_key(m) for m in manifests]
        for key in release.live_keys:
            if key not in new_keys:
                self._objects.pop(key, None)
        for manifest in manifests:
            self._store(_with_helm_metadata(manifest, release_name, namespace))
        release.live_keys = sorted(set(new_keys))

    def helm_status(self, release_name: str, namespace: str) -> ReleaseInfo | None:
        with self._read():
            release = self._releases.get((namespace, release_name))
            if release is None or not release.revisions:
                return None
            return release.current.info(release_name, namespace)

    def release(self, name: str, namespace: str) -> ReleaseInfo | None:
        """The current revision of a release, or None (same as ``helm_status``)."""
        return self.helm_status(name, namespace)

    def releases(self) -> list[ReleaseInfo]:
        """The current revision of every release, sorted by (namespace, name)."""
        with self._read():
            return [
                rel.current.info(name, namespace)
                for (namespace, name), rel in sorted(self._releases.items())
                if rel.revisions
            ]

    def helm_history(self, release_name: str, namespace: str) -> list[ReleaseInfo]:
        with self._read():
            release = self._releases.get((namespace, release_name))
            if release is None:
                return []
            return [rev.info(release_name, namespace) for rev in release.revisions]

    def release_manifests(
        self, release_name: str, namespace: str, revision: int | None = None
    ) -> list[dict[str, Any]]:
        """The manifests stored with a revision (``helm get manifest``)."""
        with self._read():
            rev = self._require_revision(release_name, namespace, revision, "helm get manifest")
            return copy.deepcopy(rev.manifests)

    def helm_rollback(self, release_name: str, namespace: str, revision: int) -> ReleaseInfo:
        what = f"helm rollback {release_name} {revision}"
        with self._mutate():
            release = self._require_release(release_name, namespace, what)
            if revision == 0:  # helm: 0 means "the previous revision"
                revision = release.current.revision - 1
            target = next((r for r in release.revisions if r.revision == revision), None)
            if target is None:
                raise ClusterError(f"{what} failed: release has no {revision} version")
            new = _Revision(
                revision=release.current.revision + 1,
                status=STATUS_DEPLOYED,
                chart=target.chart,
                chart_version=target.chart_version,
                app_version=target.app_version,
                values=copy.deepcopy(target.values),
                manifests=copy.deepcopy(target.manifests),
                updated=_now(),
                description=f"Rollback to {revision}",
            )
            self._switch_objects(release, new.manifests, release_name, namespace)
            self._supersede(release)
            release.revisions.append(new)
            return new.info(release_name, namespace)

    def helm_uninstall(
        self, release_name: str, namespace: str, *, keep_history: bool = False
    ) -> None:
        with self._mutate():
            if keep_history:  # `helm uninstall --keep-history`: objects go, revisions stay
                kept = self._releases.get((namespace, release_name))
                if kept is None or not kept.revisions:
                    return
                for key in kept.live_keys:
                    self._objects.pop(key, None)
                kept.live_keys = []
                kept.current.status = STATUS_UNINSTALLED
                kept.current.description = "Uninstallation complete"
                return
            release = self._releases.pop((namespace, release_name), None)
            if release is None:
                return  # like `helm uninstall --ignore-not-found`
            for key in release.live_keys:
                self._objects.pop(key, None)

    def helm_get_values(
        self, release_name: str, namespace: str, revision: int | None = None
    ) -> dict[str, Any]:
        with self._read():
            rev = self._require_revision(release_name, namespace, revision, "helm get values")
            return copy.deepcopy(rev.values)

    def _require_release(self, release_name: str, namespace: str, what: str) -> _Release:
        release = self._releases.get((namespace, release_name))
        if release is None or not release.revisions:
            raise ClusterError(f"{what} failed: release: not found")
        return release

    def _require_revision(
        self, release_name: str, namespace: str, revision: int | None, what: str
    ) -> _Revision:
        release = self._require_release(release_name, namespace, f"{what} {release_name}")
        if revision is None:
            return release.current
        for rev in release.revisions:
            if rev.revision == revision:
                return rev
        raise ClusterError(
            f"{what} {release_name} --revision {revision} failed: release: not found"
        )


def _as_key(key: Iterable[str]) -> ObjectKey:
    api_version, kind, namespace, name = key
    return (api_version, kind, namespace, name)


def _with_helm_metadata(
    manifest: Mapping[str, Any], release_name: str, namespace: str
) -> dict[str, Any]:
    result = copy.deepcopy(dict(manifest))
    metadata = result.setdefault("metadata", {})
    labels = metadata.get("labels") or {}
    labels[HELM_MANAGED_BY_LABEL[0]] = HELM_MANAGED_BY_LABEL[1]
    metadata["labels"] = labels
    annotations = metadata.get("annotations") or {}
    annotations[HELM_RELEASE_NAME_ANNOTATION] = release_name
    annotations[HELM_RELEASE_NAMESPACE_ANNOTATION] = namespace
    metadata["annotations"] = annotations
    return result


def _strip_helm_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    metadata = manifest.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    for name in (HELM_RELEASE_NAME_ANNOTATION, HELM_RELEASE_NAMESPACE_ANNOTATION):
        annotations.pop(name, None)
    if "annotations" in metadata and not annotations:
        del metadata["annotations"]
    labels = metadata.get("labels") or {}
    if labels.get(HELM_MANAGED_BY_LABEL[0]) == HELM_MANAGED_BY_LABEL[1]:
        del labels[HELM_MANAGED_BY_LABEL[0]]
    if "labels" in metadata and not labels:
        del metadata["labels"]
    return manifest


def _owner(manifest: Mapping[str, Any]) -> ReleaseId | None:
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    name = annotations.get(HELM_RELEASE_NAME_ANNOTATION)
    namespace = annotations.get(HELM_RELEASE_NAMESPACE_ANNOTATION)
    if isinstance(name, str) and isinstance(namespace, str):
        return (namespace, name)
    return None
