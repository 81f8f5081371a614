"""The cluster port: the one interface the engine uses to talk to Kubernetes and Helm.

Modelled on Helm's ``pkg/storage`` driver interface: small role protocols here
(:class:`Releases`, Helm's part; :class:`Objects`, kubectl's; :class:`Cluster`, their union)
and one implementation, ``kube.py``, which drives the real helm and kubectl binaries against
a kubeconfig (a real cluster, or sbkube's local API server: ``memory.py``). What travels
through the port are frozen values: requests (:class:`UpgradeRequest`,
:class:`TemplateRequest`, passed unchanged down to helm's argv builder) and answers
(:class:`ReleaseInfo` with its :class:`ReleaseStatus`). Everything in this module is cheap
to import: plain dataclasses and functions, no subprocesses.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from sbkube import manifests
from sbkube.manifests import (  # noqa: F401  (re-exported: the port's vocabulary)
    CLUSTER_SCOPED_KINDS,
    VOLATILE_METADATA,
    ObjectKey,
    is_cluster_scoped,
    object_key,
)


class ReleaseStatus(StrEnum):
    """A Helm release revision's status (helm.sh/helm/v4/pkg/release/common/status.go).

    A ``StrEnum``: ``info.status == "deployed"`` holds, and a status is recorded as its
    string. A status this sbkube does not know reads as ``UNKNOWN``."""

    DEPLOYED = "deployed"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    UNINSTALLED = "uninstalled"
    UNINSTALLING = "uninstalling"
    PENDING_INSTALL = "pending-install"
    PENDING_UPGRADE = "pending-upgrade"
    PENDING_ROLLBACK = "pending-rollback"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> ReleaseStatus:
        return cls.UNKNOWN

    @property
    def pending(self) -> bool:
        """True for a status left by an operation that did not finish."""
        return self in PENDING_STATUSES


PENDING_STATUSES: frozenset[ReleaseStatus] = frozenset(
    {ReleaseStatus.PENDING_INSTALL, ReleaseStatus.PENDING_UPGRADE, ReleaseStatus.PENDING_ROLLBACK}
)
"""A release in one of these states was left by an operation that did not finish; helm
refuses to upgrade it ("another operation is in progress") until it is rolled back."""


def strip_volatile(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``manifest`` without the fields the API server maintains
    (:func:`sbkube.manifests.strip_volatile`), safe for a cluster to store and mutate."""
    return copy.deepcopy(manifests.strip_volatile(manifest))


@dataclass(frozen=True, slots=True)
class ChartRef:
    """Where a chart comes from.

    ``ref`` is whatever ``helm template``/``helm upgrade`` accept as CHART: a local chart
    directory, a packaged ``.tgz``, an ``oci://`` reference, or ``repo/chart``.
    ``repo_url`` is the URL of the config's ``repos:`` entry for a ``repo/chart`` ref: the
    helm client adds that repository to the repository config sbkube owns before use.
    """

    ref: str
    version: str | None = None
    repo_url: str | None = None

    @property
    def repo_name(self) -> str | None:
        """``repo`` of a ``repo/chart`` ref that has a repository URL; None otherwise."""
        if not self.repo_url or self.ref.startswith(("/", "./", "../")) or "://" in self.ref:
            return None
        name, sep, chart = self.ref.partition("/")
        return name if sep and name and chart and "/" not in chart else None


@dataclass(frozen=True, slots=True)
class TemplateRequest:
    """One release of a chart, as ``helm template`` renders it: the chart, the release's
    name and namespace, and the user-supplied values (which reach helm on stdin).

    The request travels unchanged from the engine through the port to helm's argv builder:
    a new helm flag is a field here and a line in ``helm.py``, nothing in between."""

    chart: ChartRef
    release_name: str
    namespace: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpgradeRequest(TemplateRequest):
    """``helm upgrade --install`` of what a :class:`TemplateRequest` renders."""

    wait: bool = False
    """Wait for the release's objects to be ready (``--wait``)."""
    timeout: str | None = None
    """How long helm waits (``--timeout``, a Go duration such as ``5m``)."""
    create_namespace: bool = True
    """Create the release's namespace when it does not exist (``--create-namespace``)."""
    force_conflicts: bool = False
    """A server-side apply takes over fields another manager changed (``kubectl patch``
    drift), as a deploy of the declared state must; only for a release Helm applies
    server-side (``ReleaseInfo.apply_method == "ssa"``), helm refuses it otherwise."""


@dataclass(frozen=True, slots=True)
class HookInfo:
    """One hook object of a release revision (a manifest with ``helm.sh/hook``)."""

    events: tuple[str, ...]
    """Helm's hook events (``pre-install``, ``post-upgrade``, ``test``...)."""
    manifest: Mapping[str, Any]
    ran: bool = True
    """False when Helm's release says the hook did not run in this revision (an install
    stores its post-upgrade hooks too); True when it ran or Helm does not say."""

    @property
    def annotation(self) -> str:
        """The ``helm.sh/hook`` annotation's value, as the chart wrote it."""
        meta = self.manifest.get("metadata") or {}
        value = (meta.get("annotations") or {}).get("helm.sh/hook")
        return str(value) if value else ",".join(self.events)

    @property
    def is_test(self) -> bool:
        return "test" in self.events or "test-success" in self.events


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """One revision of a Helm release, as ``helm status``/``helm history`` report it."""

    name: str
    namespace: str
    revision: int
    status: ReleaseStatus
    chart: str
    chart_version: str
    app_version: str | None
    values: Mapping[str, Any] = field(default_factory=dict)
    """The user-supplied values of this revision (``helm get values``), not computed ones."""
    updated: datetime | None = None
    """When this revision was deployed; timezone-aware UTC."""
    description: str = ""
    """Helm's log line for the revision ("Install complete", "Rollback to 2", an error)."""
    manifest: tuple[Mapping[str, Any], ...] = ()
    """The release objects of this revision exactly as Helm installed them (its stored
    manifest, hooks excluded); empty when the command that produced this did not report it."""
    hooks: tuple[HookInfo, ...] = ()
    """The revision's hooks as Helm stored them, test hooks included (never applied by an
    install or upgrade: only ``helm test`` runs them)."""
    apply_method: str | None = None
    """How Helm applied the revision's objects: ``ssa`` (server-side apply, helm v4's
    default), ``csa`` (client-side), or None when helm does not say (helm v3)."""
    uses_lookup: bool = False
    """The chart's templates call ``lookup``: the manifest may hold values read from live
    objects (a Secret's password). Known when helm printed the chart with the release
    (install, upgrade); False when it did not (``helm status``)."""

    @property
    def pending(self) -> bool:
        """True when the revision was left by an operation that did not finish."""
        return self.status in PENDING_STATUSES


# The port is a few small roles, as Helm's storage driver is (pkg/storage/driver/driver.go:
# Creator, Updater, Deleter, Queryor): an engine function names the role it needs, and
# ``Cluster`` is their union, which KubeCluster implements.


@runtime_checkable
class Releases(Protocol):
    """Helm's part: charts rendered, releases installed, upgraded, rolled back, uninstalled
    and read back (``helm template|show|upgrade|rollback|uninstall|status|history|get|list``)."""

    def render_chart(self, request: TemplateRequest) -> list[dict[str, Any]]:
        """Manifests of the request's chart rendered with its values (``helm template``);
        namespaced objects that name no namespace get the request's namespace."""
        ...

    def chart_crds(self, chart: ChartRef) -> list[dict[str, Any]]:
        """The objects in the chart's ``crds/`` (``helm show crds``), which Helm installs on
        a release's first install only and never upgrades or deletes."""
        ...

    def pull_chart(self, chart: ChartRef, into: str) -> None:
        """Unpack a repository or OCI chart into directory ``into`` (``helm pull --untar``:
        offline of the cluster), to be built with overrides and removes."""
        ...

    def helm_upgrade_install(self, request: UpgradeRequest) -> ReleaseInfo:
        """``helm upgrade --install``; returns the new revision."""
        ...

    def helm_rollback(
        self, release_name: str, namespace: str, revision: int, *, force_conflicts: bool = False
    ) -> ReleaseInfo:
        """Roll back to ``revision``; returns the new revision that the rollback created,
        as Helm stored it (values, manifest and hooks included). ``force_conflicts``: take
        over fields others changed (server-side apply; refused by helm otherwise)."""
        ...

    def helm_uninstall(
        self, release_name: str, namespace: str, *, keep_history: bool = False
    ) -> None:
        """Uninstall the release and its objects; a release that does not exist is not an
        error. With ``keep_history`` the revisions stay (the current one ``uninstalled``),
        so ``helm_rollback`` can bring the release back."""
        ...

    def helm_status(
        self, release_name: str, namespace: str, *, chart: bool = True
    ) -> ReleaseInfo | None:
        """The current revision, or None when the release does not exist. Without
        ``chart`` its chart name, version and app version may be left empty (one call
        less: a caller that knows them from the revision's record asks so)."""
        ...

    def helm_releases(self, namespaces: Sequence[str]) -> dict[tuple[str, str], ReleaseInfo] | None:
        """The current revision (manifest, values, chart and status included) of every
        release in ``namespaces``, by ``(namespace, release name)``: read from Helm's own
        storage, the Secrets labelled ``owner=helm``, with one label-selector LIST for one
        namespace, or one cluster-wide for several, whatever the number of releases. None
        when Helm keeps its releases elsewhere (``HELM_DRIVER``): ask ``helm_status``."""
        ...

    def helm_history(self, release_name: str, namespace: str) -> list[ReleaseInfo]:
        """All stored revisions, oldest first; ``[]`` when the release does not exist."""
        ...

    def helm_histories(
        self, namespaces: Sequence[str]
    ) -> dict[tuple[str, str], list[ReleaseInfo]] | None:
        """Every stored revision (oldest first, values included) of every release in
        ``namespaces``, by ``(namespace, release name)``: as :meth:`helm_releases`, one
        LIST of Helm's storage Secrets whatever the number of releases (a release with
        none is absent). None when Helm keeps its releases elsewhere: ask
        ``helm_history``."""
        ...

    def helm_get_values(
        self, release_name: str, namespace: str, revision: int | None = None
    ) -> dict[str, Any]:
        """User-supplied values of ``revision`` (default: the current one)."""
        ...

    def helm_pending(self, namespace: str) -> list[str]:
        """Names of the releases of ``namespace`` whose current revision is pending
        (``helm list --pending``): what recovery must look at, in one call."""
        ...


@runtime_checkable
class Objects(Protocol):
    """Kubernetes objects read, applied and deleted (``kubectl``), and what the API server
    says of itself: which kinds it serves (discovery) and whether it answers at all."""

    def namespaced(self, api_version: str, kind: str) -> bool | None:
        """Whether the cluster serves ``kind`` (of ``api_version``'s group) in namespaces,
        from its discovery; None when it does not serve the kind (or cannot tell: this
        default, for clusters without discovery, leaves it to the offline list)."""
        return None

    def command_kubeconfig(self) -> str | None:
        """A kubeconfig file whose current context is this cluster, for the commands sbkube
        runs (exec apps, hooks: their ``kubectl`` talks to the same cluster); None: the
        environment's own selects it already."""
        ...

    def render_kustomization(self, path: str) -> list[dict[str, Any]]:
        """The objects of the kustomization in directory ``path`` (``kubectl kustomize``:
        offline, no cluster asked)."""
        ...

    def identity(self) -> str | None:
        """The identity the cluster itself carries: the UID of its ``kube-system``
        namespace, which no change of address, context or kubeconfig alters and a rebuilt
        cluster does not share. None when it cannot be read (unreachable, no such
        namespace, offline)."""
        ...

    def check_reachable(self) -> None:
        """Raise ClusterError, one line naming the cluster (context and server), when its
        API server does not answer: a plan or diff against it would be no plan at all."""
        ...

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        ...

    def get_many(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
        """The live objects of ``keys`` (None for those that do not exist), read together:
        one request for a whole release instead of one per object."""
        ...

    def list_many(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
        """The live objects of ``keys`` (None for those that do not exist), read by listing:
        one LIST request per kind and namespace, whatever the number of objects (a kind the
        cluster does not serve has none). For many objects of few kinds, as a YAML app's."""
        ...

    def list_labelled(
        self, kinds: Sequence[tuple[str, str]], labels: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """The live objects of ``kinds`` (``(api_version, kind)`` pairs), in every namespace,
        that carry all of ``labels``: one label-selector LIST request per kind."""
        ...

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update the object (``kubectl apply --server-side``); returns the live
        object."""
        ...

    def apply_many(self, manifests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Create or update every object in one server-side apply (``kubectl apply
        --server-side -f -`` of a ``List``); returns the live objects, in order. A failure
        of any object is a ClusterError naming what kubectl named."""
        ...

    def delete(self, key: ObjectKey) -> bool:
        """Delete the object; False if it was not there."""
        ...

    def delete_many(self, keys: Sequence[ObjectKey]) -> list[ObjectKey]:
        """Delete the objects in one call; returns those that were there (and are gone)."""
        ...


@runtime_checkable
class Cluster(Releases, Objects, Protocol):
    """What the engine needs from a cluster: both roles, an identity, and a dry-run view.
    One implementation, KubeCluster (the real helm and kubectl); MemoryCluster is a
    KubeCluster pointed at sbkube's local API server."""

    # A read-only property, so that implementations may compute it lazily (KubeCluster asks
    # kubectl for the current context) or store it as a plain attribute.
    @property
    def name(self) -> str:
        """Identity recorded in the state store and the scope of its deploy locks: the kube
        context and the API server it points at (``default@10.0.0.5:6443``), or
        ``"memory"``. config.yaml's ``cluster:`` overrides it (the engine's choice)."""
        ...

    @property
    def dry_run(self) -> bool:
        """True for a view made by :meth:`as_dry_run` (writes change nothing)."""
        ...

    def read_ahead(self) -> None:
        """Start, in the background, the reads a command that records makes before any
        other: discovery (:meth:`namespaced`), :attr:`name` and :meth:`identity`. Each is
        still read once; who asks for it first waits for that read (and gets its error)."""
        ...

    def as_dry_run(self) -> Cluster:
        """The same cluster, with every write made a server-side dry run (``kubectl
        --dry-run=server``, ``helm --dry-run=server``): reads are real, nothing changes.
        ``deploy --dry-run`` plans through it, so a plan is what the cluster would do."""
        ...
