"""The real cluster: the Cluster port implemented with the helm and kubectl binaries."""

from __future__ import annotations

import atexit
import contextlib
import copy
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sbkube.cluster.helm import (
    RELEASE_SECRET_LABELS,
    HelmClient,
    current_releases,
    release_histories,
)
from sbkube.cluster.kubectl import KubectlClient, Served, match_objects
from sbkube.cluster.port import ChartRef, Cluster, ReleaseInfo, TemplateRequest, UpgradeRequest
from sbkube.errors import ClusterError
from sbkube.guard import refuse_unsendable
from sbkube.interrupts import at_once
from sbkube.manifests import ObjectKey, api_group, format_key, object_key

# deployments.cluster is a String(253) column.
_MAX_IDENTITY = 253
_T = TypeVar("_T")
KUBE_SYSTEM: ObjectKey = ("v1", "Namespace", "", "kube-system")


def cluster_identity(context: str | None, server: str | None) -> str:
    """The name a cluster is recorded (and locked) under: ``context@host:port[/path]``.

    The context alone does not tell clusters apart: every k3s kubeconfig calls its context
    ``default``. The API server's address does, and its path too (Rancher serves many
    clusters from one host as ``/k8s/clusters/<id>``). Credentials in the URL are left out.
    """
    name = context or "default"
    if not server:
        return name
    parts = urlsplit(server)
    where = parts.netloc.rpartition("@")[2] + parts.path.rstrip("/")
    if not where:
        return name
    identity = f"{name}@{where}"
    if len(identity) > _MAX_IDENTITY:
        identity = f"{name[:200]}@{hashlib.sha256(where.encode()).hexdigest()[:16]}"
    return identity


class KubeCluster(Cluster):
    """A Kubernetes cluster reached through one kubeconfig and context.

    ``name`` (recorded with every deployment) is ``name=`` when given, else
    :func:`cluster_identity` of the selected context and its API server URL.
    ``context_name`` is the context alone: what sbkube recorded as the cluster's name before
    the identity named the server, so the engine can take over those records.

    Shared by the runner's worker threads: the discovery cache and the write count are
    guarded by a lock, the name and the identity by one each (each is read once, by its
    first asker). A dry-run view's planned objects are not: dry runs run one app at a time
    (``sbkube.engine.deployer``).

    ``RAW_LIST_FROM``: see :meth:`_list_kinds` (kubectl's cost per object printed against
    the ~45 ms of one more process, measured with ``kubectl get`` 1.33).

    :meth:`read_ahead` starts the three reads every recording command makes first
    (discovery, ``kubectl config view`` for the name, the ``kube-system`` namespace for the
    identity) at once, each in a thread of its own: each is still one process, and whoever
    asks for its answer waits for it (or gets its error) instead of reading it again.
    """

    RAW_LIST_FROM = 300

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        helm: HelmClient | None = None,
        kubectl: KubectlClient | None = None,
        name: str | None = None,
        offline: bool = False,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.helm = helm or HelmClient(kubeconfig=kubeconfig, context=context)
        self.kubectl = kubectl or KubectlClient(kubeconfig=kubeconfig, context=context)
        self._name: str | None = name
        self._context_name: str | None = None
        # Discovery, fetched once; fetched again only for a kind it lacks after this object
        # changed the cluster (a CRD applied, a chart installed) since it was fetched.
        self._scopes: dict[tuple[str, str], Served] | None = None
        self._writes = 0
        self._scopes_writes = 0
        # Offline (``template``): never asks the cluster anything, so no discovery either.
        self._offline = offline
        # Only on a dry-run view: what its dry runs would have left, so that later steps of
        # one plan see the earlier ones (None marks a planned delete).
        self._planned: dict[ObjectKey, dict[str, Any] | None] | None = None
        self._lock = threading.Lock()
        self._names_lock = threading.Lock()
        self._identity_lock = threading.Lock()
        self._command_kubeconfig: str | None = None
        self._identity: str | None = None
        self._identity_read = False
        # read_ahead's reads not asked for yet, by what they read.
        self._ahead: dict[str, Future[Any]] = {}
        # How many objects the last LIST of a kind held, by (group, kind, namespace).
        self._sizes: dict[tuple[str, str, str], int] = {}

    def read_ahead(self) -> None:
        if self._offline or self._ahead:
            return
        reads: dict[str, Callable[[], Any]] = {}
        with self._lock:
            if self._scopes is None:
                writes = self._writes
                reads["scopes"] = lambda: (self.kubectl.api_resources(), writes)
        if self._context_name is None:
            reads["names"] = lambda: self.kubectl.selected_cluster(self.kubeconfig, self.context)
        if not self._identity_read:
            reads["identity"] = self._read_identity
        if not reads:
            return
        # Under a Stop a SIGTERM or Ctrl-C marks: nothing starts after the command said
        # it was interrupted.
        self._ahead = at_once(reads, name="sbkube-read-ahead")

    def _ahead_of(self, what: str, read: Callable[[], _T]) -> _T:
        """The answer of ``read``: read_ahead's, when it started one (its error raised
        here, to this first asker), else read now."""
        ahead = self._ahead.pop(what, None)
        return ahead.result() if ahead is not None else read()

    def _resolve_names(self) -> None:
        # One subprocess, on first use: commands that never record pay nothing.
        with self._names_lock:
            if self._context_name is not None:
                return
            context, server = self._ahead_of(
                "names", lambda: self.kubectl.selected_cluster(self.kubeconfig, self.context)
            )
            if self._name is None:
                self._name = cluster_identity(context, server)
            self._context_name = context or "default"

    @property
    def name(self) -> str:
        if self._name is None:
            self._resolve_names()
        assert self._name is not None
        return self._name

    @property
    def context_name(self) -> str:
        """The selected context's name (``"default"`` when none is selected)."""
        if self._context_name is None:
            self._resolve_names()
        assert self._context_name is not None
        return self._context_name

    def __repr__(self) -> str:
        return f"KubeCluster(kubeconfig={self.kubeconfig!r}, context={self.context!r})"

    @property
    def dry_run(self) -> bool:
        return self.kubectl.dry_run

    def as_dry_run(self) -> KubeCluster:
        planned = copy.copy(self)
        planned.helm = copy.copy(self.helm)
        planned.helm.dry_run = True
        planned.kubectl = copy.copy(self.kubectl)
        planned.kubectl.dry_run = True
        planned._planned = {}
        return planned

    def _only_planned(self, namespace: str) -> bool:
        """True when ``namespace`` exists only in this plan: the server cannot dry-run
        anything in it (it answers NotFound), as it would on any cluster."""
        key: ObjectKey = ("v1", "Namespace", "", namespace)
        return bool(namespace) and self._planned is not None and self._planned.get(key) is not None

    def namespaced(self, api_version: str, kind: str) -> bool | None:
        served = self._served_as(api_version, kind)
        return None if served is None else served.namespaced

    def _served_as(self, api_version: str, kind: str) -> Served | None:
        if self._offline:
            return None
        key = (api_group(api_version), kind)
        with self._lock:
            stale = self._scopes is not None and key not in self._scopes
            if self._scopes is None or (stale and self._scopes_writes != self._writes):
                # The writes counted when the read started: later ones may add kinds.
                self._scopes, self._scopes_writes = self._ahead_of(
                    "scopes", lambda: (self.kubectl.api_resources(), self._writes)
                )
            return self._scopes.get(key)

    def _wrote(self) -> None:
        with self._lock:
            self._writes += 1

    def render_chart(self, request: TemplateRequest) -> list[dict[str, Any]]:
        return self.helm.template(request)

    def pull_chart(self, chart: ChartRef, into: str) -> None:
        self.helm.pull(chart, into)

    def render_kustomization(self, path: str) -> list[dict[str, Any]]:
        return self.kubectl.kustomize(path)

    def command_kubeconfig(self) -> str | None:
        if self.context is None:
            return self.kubeconfig
        with self._lock:
            if self._command_kubeconfig is None:
                text = self.kubectl.flattened_config()
                fd, path = tempfile.mkstemp(prefix="sbkube-commands-", suffix=".kubeconfig")
                with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mode 0600 (mkstemp)
                    handle.write(text)
                atexit.register(_remove, path)
                self._command_kubeconfig = path
            return self._command_kubeconfig

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        if self._planned is not None and key in self._planned:
            planned = self._planned[key]
            return copy.deepcopy(planned) if planned is not None else None
        if self._only_planned(key[2]):
            return None
        return self.kubectl.get(key)

    def get_many(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
        found: dict[ObjectKey, dict[str, Any] | None] = {}
        asked = []
        for key in keys:
            if (self._planned is not None and key in self._planned) or self._only_planned(key[2]):
                found[key] = self.get(key)
            else:
                asked.append(key)
        found.update(self.kubectl.get_many(asked))
        return {key: found[key] for key in keys}

    # Many objects at once (a YAML app): one kubectl process per call ------------------------

    def _served(self, api_version: str, kind: str) -> bool:
        return self._offline or self.namespaced(api_version, kind) is not None

    def list_many(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
        found: dict[ObjectKey, dict[str, Any] | None] = {}
        # Per namespace, the kinds to list there; cluster-scoped kinds ride along with the
        # first namespace's call (kubectl lists them whole whatever -n says).
        kinds: dict[str, set[tuple[str, str]]] = {}
        for key in keys:
            planned = self._planned is not None and key in self._planned
            if planned or self._only_planned(key[2]) or not self._served(key[0], key[1]):
                found[key] = self.get(key) if planned else None
            else:
                kinds.setdefault(key[2], set()).add((key[0], key[1]))
        namespaced = sorted(ns for ns in kinds if ns)
        if "" in kinds and namespaced:
            kinds[namespaced[0]] |= kinds.pop("")
        listed: list[dict[str, Any]] = []
        for namespace, wanted in sorted(kinds.items()):
            listed += self._list_kinds(wanted, namespace)
        asked = [key for key in keys if key not in found]
        found.update(match_objects(asked, listed))
        return {key: found[key] for key in keys}

    def _list_kinds(self, kinds: set[tuple[str, str]], namespace: str) -> list[dict[str, Any]]:
        """Every object of ``kinds`` in ``namespace`` (cluster-scoped kinds whole): in one
        ``kubectl get``, but for a kind whose last LIST here held ``RAW_LIST_FROM`` objects
        or more, which is listed alone with ``kubectl get --raw`` (``list_raw``): a kind
        shared by many apps in one namespace would otherwise cost every app's read time
        in proportion to all of them (n apps reading n apps' objects)."""
        alone: dict[tuple[str, str], Served] = {}
        for pair in kinds:
            served = self._served_as(*pair) if self._many(pair, namespace) else None
            if served is not None:
                alone[pair] = served
        listed = self.kubectl.list_kinds(sorted(kinds - alone.keys()), namespace)
        for (api_version, kind), served in sorted(alone.items()):
            scope = namespace if served.namespaced else None
            try:
                listed += self.kubectl.list_raw(api_version, kind, served.resource, scope)
            except ClusterError:
                # Not served at that version (discovery names groups, not versions):
                # kubectl get picks the version, or tells what is wrong.
                listed += self.kubectl.list_kinds([(api_version, kind)], namespace)
        sizes: dict[tuple[str, str, str], int] = {
            (api_group(api_version), kind, namespace): 0 for api_version, kind in kinds
        }
        for item in listed:
            size = (api_group(str(item.get("apiVersion", ""))), str(item.get("kind")), namespace)
            if size in sizes:
                sizes[size] += 1
        with self._lock:
            self._sizes.update(sizes)
        return listed

    def _many(self, kind: tuple[str, str], namespace: str) -> bool:
        with self._lock:
            size = self._sizes.get((api_group(kind[0]), kind[1], namespace), 0)
        return size >= self.RAW_LIST_FROM

    def list_labelled(
        self, kinds: Sequence[tuple[str, str]], labels: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        served = sorted({kind for kind in kinds if self._served(*kind)})
        listed = self.kubectl.list_kinds(served, None, labels)
        if not self._planned:
            return listed
        # A plan's earlier steps: planned deletes are gone, planned applies are as planned.
        out = [obj for obj in listed if object_key(obj) not in self._planned]
        wanted = {kind for _, kind in served}
        for key, obj in self._planned.items():
            obj_labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
            if obj is not None and key[1] in wanted and labels.items() <= obj_labels.items():
                out.append(copy.deepcopy(obj))
        return out

    def apply_many(self, manifests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if not manifests:
            return []
        for manifest in manifests:
            refuse_unsendable(manifest, format_key(object_key(manifest)))
        # kubectl maps every object of a List before applying any: a custom resource whose
        # CRD is in the same List would be refused, so kinds not served yet go second.
        served = [self._served(*object_key(m)[:2]) for m in manifests]
        first = [i for i, ok in enumerate(served) if ok]
        later = [i for i, ok in enumerate(served) if not ok]
        live: dict[int, dict[str, Any]] = {}
        for batch in (first, later):
            if self._planned is None:
                done = self.kubectl.apply_many([manifests[i] for i in batch])
                live.update(zip(batch, done, strict=True))
            else:
                live.update(self._plan_many(manifests, batch))
            # Counted after the write: discovery read before it may lack the kinds it added.
            self._wrote()
        return [live[i] for i in range(len(manifests))]

    def _plan_many(
        self, manifests: Sequence[Mapping[str, Any]], batch: Sequence[int]
    ) -> dict[int, dict[str, Any]]:
        """Dry-run applies of ``manifests[i] for i in batch``, as :meth:`apply` plans one:
        namespaces first, then the objects; those in a namespace that exists only in this
        plan are planned as they are, without asking the server."""
        assert self._planned is not None
        live: dict[int, dict[str, Any]] = {}
        is_ns = {i for i in batch if object_key(manifests[i])[:2] == ("v1", "Namespace")}
        for group in ([i for i in batch if i in is_ns], [i for i in batch if i not in is_ns]):
            asked = [i for i in group if not self._only_planned(object_key(manifests[i])[2])]
            done = self.kubectl.apply_many([manifests[i] for i in asked])
            live.update(zip(asked, done, strict=True))
            for i in group:
                live.setdefault(i, copy.deepcopy(dict(manifests[i])))
                self._planned[object_key(manifests[i])] = live[i]
        return {i: copy.deepcopy(obj) for i, obj in live.items()}

    def delete_many(self, keys: Sequence[ObjectKey]) -> list[ObjectKey]:
        if not keys:
            return []
        self._wrote()
        if self._planned is None:
            return self.kubectl.delete_many(keys)
        there = self.get_many(keys)
        asked = [k for k in keys if there[k] is not None and not self._only_planned(k[2])]
        self.kubectl.delete_many(asked)
        for key in keys:
            self._planned[key] = None
        return [key for key in keys if there[key] is not None]

    def identity(self) -> str | None:
        if self._offline:
            return None
        with self._identity_lock:
            if self._identity is None:
                self._identity = self._ahead_of("identity", self._read_identity)
                self._identity_read = True
            return self._identity

    def _read_identity(self) -> str | None:
        """The UID of ``kube-system``; None when it cannot be read."""
        try:
            ns = self.kubectl.get(KUBE_SYSTEM)
        except ClusterError:
            return None
        uid = ((ns or {}).get("metadata") or {}).get("uid")
        return uid if isinstance(uid, str) and uid else None

    def check_reachable(self) -> None:
        try:
            self.kubectl.probe()
        except ClusterError as exc:
            context, server = self.kubectl.selected_cluster(self.kubeconfig, self.context)
            where = f"{context or 'default'} ({server})" if server else (context or "default")
            reason = exc.message.partition(" failed: ")[2] or exc.message
            raise ClusterError(f"cluster {where} is unreachable: {reason}") from exc

    def chart_crds(self, chart: ChartRef) -> list[dict[str, Any]]:
        return self.helm.show_crds(chart)

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        refuse_unsendable(manifest, format_key(object_key(manifest)))
        self._wrote()
        if self._planned is None:
            return self.kubectl.apply(manifest)
        key = object_key(manifest)
        live = copy.deepcopy(dict(manifest)) if self._only_planned(key[2]) else None
        live = live or self.kubectl.apply(manifest)
        self._planned[key] = live
        return copy.deepcopy(live)

    def delete(self, key: ObjectKey) -> bool:
        self._wrote()
        if self._planned is None:
            return self.kubectl.delete(key)
        existed = self.get(key) is not None
        if existed and not self._only_planned(key[2]):
            self.kubectl.delete(key)
        self._planned[key] = None
        return existed

    def helm_upgrade_install(self, request: UpgradeRequest) -> ReleaseInfo:
        refuse_unsendable(request.values, f"the values of release {request.release_name}")
        self._wrote()
        info = self.helm.upgrade_install(request)
        if self._planned is not None:
            # --create-namespace: the plan's later steps find the namespace there.
            ns_key: ObjectKey = ("v1", "Namespace", "", request.namespace)
            if self.get(ns_key) is None:
                self._planned[ns_key] = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": request.namespace},
                }
        return info

    def helm_status(
        self, release_name: str, namespace: str, *, chart: bool = True
    ) -> ReleaseInfo | None:
        return self.helm.status(release_name, namespace, chart=chart)

    def helm_releases(self, namespaces: Sequence[str]) -> dict[tuple[str, str], ReleaseInfo] | None:
        if not _secret_driver():
            return None
        wanted = sorted(set(namespaces))
        if not wanted:
            return {}
        selector = dict(RELEASE_SECRET_LABELS)
        # One namespace: a LIST there (what a namespaced user may do); several: one LIST
        # of the cluster, kept to those namespaces.
        secrets = self.kubectl.list_kinds(
            [("v1", "Secret")], wanted[0] if len(wanted) == 1 else None, selector
        )
        found = current_releases(secrets)
        return {key: info for key, info in found.items() if key[0] in wanted}

    def helm_histories(
        self, namespaces: Sequence[str]
    ) -> dict[tuple[str, str], list[ReleaseInfo]] | None:
        if not _secret_driver():
            return None
        wanted = sorted(set(namespaces))
        if not wanted:
            return {}
        secrets = self.kubectl.list_kinds(
            [("v1", "Secret")], wanted[0] if len(wanted) == 1 else None, RELEASE_SECRET_LABELS
        )
        found = release_histories(secrets)
        return {key: revs for key, revs in found.items() if key[0] in wanted}

    def helm_history(self, release_name: str, namespace: str) -> list[ReleaseInfo]:
        return self.helm.history(release_name, namespace)

    def helm_pending(self, namespace: str) -> list[str]:
        return self.helm.pending(namespace)

    def helm_rollback(
        self, release_name: str, namespace: str, revision: int, *, force_conflicts: bool = False
    ) -> ReleaseInfo:
        self._wrote()
        self.helm.rollback(release_name, namespace, revision, force_conflicts=force_conflicts)
        # What the rollback made, read from Helm's storage: one LIST of the release's own
        # Secrets instead of helm status, helm get metadata and helm get values.
        info = self._stored_release(release_name, namespace)
        if info is None:  # pragma: no cover - helm just rolled it back
            raise ClusterError(f"helm rollback {release_name}: release vanished")
        return info

    def _stored_release(self, release_name: str, namespace: str) -> ReleaseInfo | None:
        """The release's current revision, its values, manifest and hooks included."""
        if not _secret_driver():
            info = self.helm.status(release_name, namespace)
            if info is None:
                return None
            return replace(info, values=self.helm.get_values(release_name, namespace))
        selector = {**RELEASE_SECRET_LABELS, "name": release_name}
        secrets = self.kubectl.list_kinds([("v1", "Secret")], namespace, selector)
        return current_releases(secrets).get((namespace, release_name))

    def helm_uninstall(
        self, release_name: str, namespace: str, *, keep_history: bool = False
    ) -> None:
        self._wrote()
        self.helm.uninstall(release_name, namespace, keep_history=keep_history)

    def helm_get_values(
        self, release_name: str, namespace: str, revision: int | None = None
    ) -> dict[str, Any]:
        return self.helm.get_values(release_name, namespace, revision)


def _secret_driver() -> bool:
    """True when Helm keeps its releases as Secrets (its default storage driver)."""
    return os.environ.get("HELM_DRIVER", "secret").lower() in ("", "secret", "secrets")


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
