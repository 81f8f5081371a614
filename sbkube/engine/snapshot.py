"""One batched read of what a deploy needs from the cluster, taken before any app runs.

An unchanged redeploy of many apps should cost a few requests, not a few processes per app
(Argo CD keeps one cached view of the cluster; sbkube has the record, which says what each
app should look like). Under the deploy lock, before recovery and before any app runs,
:func:`read_snapshot` asks the cluster, whatever the number of apps:

* Helm's releases: ``Cluster.helm_releases`` (one label-selector LIST of the Secrets
  labelled ``owner=helm``: per namespace, or one for the cluster), each release's current
  revision with its status, values, chart and manifest. Recovery's pending check reads
  it too (``recovery.recover_pending_releases``);
* the live objects: each YAML app's objects and the namespaces they need, the objects of
  each Helm release's current revision, and every app's namespace (``Cluster.list_many``:
  one LIST per kind and namespace across all apps);
* the prune candidates: the objects of the kinds the YAML apps recorded before that carry
  the app dir's ownership label (``Cluster.list_labelled``: one LIST per kind).

A :class:`Snapshot` holds the answers; :class:`SnapshotView` is an ``Objects`` that reads
from it (and from the cluster for anything it does not hold) and refuses to write: an app
applied through it that has nothing to change is decided (and recorded) from the record and
the snapshot alone, with no process at all; one that has something to write raises
:class:`Stale` before anything is applied or recorded, and is then applied against the
cluster as before, from fresh reads. The snapshot is live: an object edited behind
sbkube's back differs from its manifest there as it would in a read of its own.

:func:`unchanged_inputs` is the other half, asked before the lock while the apps are
prepared: a Helm app whose chart and values are those of its last recording is not
rendered (``helm template``); the snapshot then decides it, and if it turns out changed
after all, ``helm upgrade`` renders it (what is recorded is always what Helm installed).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbkube.cluster.port import Objects, ReleaseStatus
from sbkube.engine.live import chart_name_of, normalised_values
from sbkube.engine.namespaces import namespace_key, needed_namespaces
from sbkube.engine.work import APP_DIR_LABEL, AppWork, app_dir_label
from sbkube.interrupts import at_once
from sbkube.manifests import ObjectKey, object_key
from sbkube.model import ResourceAction, thaw
from sbkube.redaction import KEYED_CHECKSUM_PREFIX, learn_manifests, redact_values

if TYPE_CHECKING:
    from sbkube.cluster.port import Cluster, ReleaseInfo
    from sbkube.state import AppDeploymentRecord, DeploymentReader


class Stale(Exception):
    """An app read through a :class:`SnapshotView` has something to write: apply it
    against the cluster instead (nothing was applied or recorded yet)."""


@dataclass(slots=True)
class Snapshot:
    """What :func:`read_snapshot` read (see the module docstring)."""

    releases: dict[tuple[str, str], ReleaseInfo] | None = None
    """The current revision of each release, by (namespace, name); None: not read."""
    release_namespaces: frozenset[str] = frozenset()
    live: dict[ObjectKey, dict[str, Any] | None] = field(default_factory=dict)
    labelled: list[dict[str, Any]] = field(default_factory=list)
    labelled_kinds: frozenset[tuple[str, str]] = frozenset()
    selector: dict[str, str] = field(default_factory=dict)
    forgotten: set[tuple[str, str]] = field(default_factory=set)

    def release(self, name: str, namespace: str) -> tuple[bool, ReleaseInfo | None]:
        """``(known, current revision)``: known is False when the snapshot cannot say
        (the namespace was not read, or recovery changed the release since): ask helm."""
        key = (namespace, name)
        if self.releases is None or namespace not in self.release_namespaces:
            return False, None
        if key in self.forgotten:
            return False, None
        return True, self.releases.get(key)

    def pending(self) -> list[tuple[str, str]]:
        """(name, namespace) of the releases whose current revision is pending."""
        return [(n, ns) for (ns, n), info in (self.releases or {}).items() if info.pending]

    def forget(self, name: str, namespace: str) -> None:
        """The release changed since it was read (recovery rolled it back)."""
        self.forgotten.add((namespace, name))


def _object_works(works: Sequence[AppWork]) -> list[AppWork]:
    return [w for w in works if w.type not in ("helm", "exec", "noop")]


def _left_in_place(app: AppDeploymentRecord) -> list[ObjectKey]:
    """The keys of the resources an app recording left in place (as ``apply.py``'s
    ``live_resources``: all but its deletes)."""
    return [r.key for r in app.resources if r.action != ResourceAction.DELETE]


def read_snapshot(
    cluster: Cluster,
    works: Sequence[AppWork],
    previous: Mapping[str, AppDeploymentRecord | None],
    failed: Mapping[str, AppDeploymentRecord | None],
    app_dir: str,
) -> Snapshot:
    """Read the snapshot of ``works`` (see the module docstring); ``previous`` and
    ``failed``: each app's last successful and failed-since recordings (their kinds are
    the prune's). The secrets of each Helm release's manifest are learned, as its render
    would have taught them."""
    helm = [w for w in works if w.type == "helm" and w.release_name]
    namespaces = sorted({w.namespace for w in helm})
    keys: dict[ObjectKey, None] = {}
    for work in works:
        prev = previous.get(work.name)
        if work.type == "helm":
            keys[namespace_key(work.namespace)] = None
            if prev is not None:
                # What the release held when it was recorded: what it holds now, unless
                # it changed since (read below, once the releases are known).
                keys.update((key, None) for key in _left_in_place(prev))
        elif work.objects and prev is not None:
            # An app never recorded has objects to create, or to refuse: not unchanged.
            manifests = [o.manifest for o in work.objects]
            keys.update((namespace_key(n), None) for n in needed_namespaces(manifests))
            keys.update((o.key, None) for o in work.objects)
    kinds = sorted(
        {
            (key[0], key[1])
            for work in _object_works(works)
            if previous.get(work.name) is not None
            for rec in (failed.get(work.name), previous.get(work.name))
            if rec is not None
            for key in _left_in_place(rec)
        }
    )
    selector = {APP_DIR_LABEL: app_dir_label(app_dir)}
    # Three independent reads (one process each), at once; all of them are waited for
    # (none runs on after an error is told), unless a signal stops them.
    reading = at_once(
        {
            "releases": lambda: cluster.helm_releases(namespaces) if namespaces else {},
            "live": lambda: cluster.list_many(list(keys)) if keys else {},
            "labelled": lambda: cluster.list_labelled(kinds, selector) if kinds else [],
        },
        name="sbkube-snapshot",
    )
    wait(reading.values())
    releases = reading["releases"].result()
    live = reading["live"].result()
    labelled = reading["labelled"].result()
    missing: dict[ObjectKey, None] = {}
    for work in helm:
        info = (releases or {}).get((work.namespace, work.release_name or ""))
        if info is not None:
            learn_manifests(info.manifest)
            missing.update((k, None) for m in info.manifest if (k := object_key(m)) not in live)
    if missing:
        live = {**live, **cluster.list_many(list(missing))}
    return Snapshot(
        releases=releases,
        release_namespaces=frozenset(namespaces) if releases is not None else frozenset(),
        live=live,
        labelled=labelled,
        labelled_kinds=frozenset(kinds),
        selector=selector,
    )


class SnapshotView(Objects):
    """The cluster's ``Objects`` as the snapshot saw them: reads it holds come from it
    (the rest from ``cluster``); any write raises :class:`Stale`."""

    def __init__(self, snapshot: Snapshot, cluster: Objects) -> None:
        self.snapshot = snapshot
        self.cluster = cluster

    def _held(self, keys: Sequence[ObjectKey]) -> bool:
        return all(key in self.snapshot.live for key in keys)

    def namespaced(self, api_version: str, kind: str) -> bool | None:
        return self.cluster.namespaced(api_version, kind)

    def command_kubeconfig(self) -> str | None:
        return self.cluster.command_kubeconfig()

    def render_kustomization(self, path: str) -> list[dict[str, Any]]:
        return self.cluster.render_kustomization(path)

    def identity(self) -> str | None:
        return self.cluster.identity()

    def check_reachable(self) -> None:
        self.cluster.check_reachable()

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        if key in self.snapshot.live:
            return copy.deepcopy(self.snapshot.live[key])
        return self.cluster.get(key)

    def get_many(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
        if not self._held(keys):
            return self.cluster.get_many(keys)
        return {key: self.snapshot.live[key] for key in keys}

    def list_many(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
        if not self._held(keys):
            return self.cluster.list_many(keys)
        return {key: self.snapshot.live[key] for key in keys}

    def list_labelled(
        self, kinds: Sequence[tuple[str, str]], labels: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        snap = self.snapshot
        if not set(kinds) <= snap.labelled_kinds or not snap.selector.items() <= labels.items():
            return self.cluster.list_labelled(kinds, labels)
        wanted = {kind for _api, kind in kinds}
        return [
            obj
            for obj in snap.labelled
            if obj.get("kind") in wanted
            and labels.items() <= ((obj.get("metadata") or {}).get("labels") or {}).items()
        ]

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        raise Stale(f"apply {object_key(manifest)}")

    def apply_many(self, manifests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if manifests:
            raise Stale(f"apply of {len(manifests)} object(s)")
        return []

    def delete(self, key: ObjectKey) -> bool:
        raise Stale(f"delete {key}")

    def delete_many(self, keys: Sequence[ObjectKey]) -> list[ObjectKey]:
        if keys:
            raise Stale(f"delete of {len(keys)} object(s)")
        return []


def unchanged_inputs(
    reader: DeploymentReader,
    namespace: str,
    secret_keys: Sequence[str],
    apps: Sequence[str] = (),
) -> Callable[[AppWork], bool]:
    """A test, for a prepared Helm app: are its inputs (chart digest, or repository chart
    name and pinned version; values after ``-f``/``--set``/profile merging, compared in
    the store's form) those its last successful recording in ``namespace`` holds, on any
    cluster? Then its chart need not be rendered now: the snapshot decides (the record of
    the target, read under the lock, and the live release), and a chart that turns out
    changed is rendered by ``helm upgrade`` itself. Reads the store only (the cluster is
    not asked before the charts that must render have). The recordings of ``apps`` are
    read at once, on the first test."""
    keys = tuple(secret_keys)
    known: dict[str, AppDeploymentRecord | None] = {}
    lock = threading.Lock()

    def recorded(app: str) -> AppDeploymentRecord | None:
        with lock:
            if not known:
                names = list(dict.fromkeys([*apps, app]))
                known.update(
                    reader.last_successful_apps(cluster=None, namespace=namespace, apps=names)
                )
            if app not in known:
                known[app] = reader.last_successful_app(cluster=None, namespace=namespace, app=app)
            return known[app]

    def test(work: AppWork) -> bool:
        if work.chart is None:
            return False
        prev = recorded(work.name)
        rel = prev.helm_release if prev is not None else None
        if rel is None or rel.status != ReleaseStatus.DEPLOYED:
            return False
        if work.chart_digest is not None:
            if rel.chart_digest != work.chart_digest:
                # An older record's digest (not keyed) is compared by the full check.
                legacy = rel.chart_digest is not None and not rel.chart_digest.startswith(
                    KEYED_CHECKSUM_PREFIX
                )
                if not legacy:
                    return False
                from sbkube.config.charts import chart_matches

                if not chart_matches(Path(work.chart.ref), rel.chart_digest):
                    return False
        elif (
            not work.chart.version
            or chart_name_of(work.chart.ref) != rel.chart
            or work.chart.version.lstrip("v") != (rel.chart_version or "").lstrip("v")
        ):
            return False
        stored = redact_values(work.values, keys)
        return normalised_values(stored) == normalised_values(thaw(rel.values))

    return test
