"""The memory cluster: sbkube's local Kubernetes API server, driven by the real helm and kubectl.

``MemoryCluster(path)`` starts :class:`sbkube.apiserver.ApiServer` in this process on
a free loopback port, writes a kubeconfig for it (mode 0600, in a private temp file), and is
from then on a :class:`~sbkube.cluster.kube.KubeCluster` like any other: charts are installed
by ``helm upgrade --install``, objects applied by ``kubectl``, and Helm keeps its own release
records (Secrets of type ``helm.sh/release.v1``) in the server, as it would on k3s. Nothing
here knows Helm's rules: there is one cluster path.

With ``path`` the server's state lives in that JSON file, so consecutive ``sbkube`` runs see
one cluster. While a process uses the file, any other use of it is refused with one line
naming that process; to share one file between processes at the same time, serve it
(``sbkube memory-cluster serve FILE --kubeconfig OUT``) and point them at OUT.

``objects()`` and ``release()`` are conveniences for tests and scripts: they read what the
server holds and what helm reports.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.kube import KubeCluster
from sbkube.cluster.kubectl import KubectlClient
from sbkube.cluster.port import ChartRef, ReleaseInfo, TemplateRequest
from sbkube.errors import ClusterError

if TYPE_CHECKING:
    from sbkube.apiserver import ApiServer

MEMORY_CONTEXT = "memory"
HELM_RELEASE_SECRET_TYPE = "helm.sh/release.v1"
# The namespaces every cluster starts with: not something a deploy made.
BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class MemoryCluster(KubeCluster):
    """A cluster served from this process (optionally persisted to a JSON file).

    ``fail_on``, ``block_on``, ``unready``, ``progressing``, ``degraded`` and
    ``tick_seconds`` are the server's fault hooks and readiness holds (see
    sbkube.apiserver.faults); None takes them from the ``SBKUBE_MEMORY_*`` variables.

    The server starts on the first use of the cluster, not when the object is built, so a
    command that stops at bad input never creates, locks or rewrites the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        name: str = MEMORY_CONTEXT,
        helm: HelmClient | None = None,
        *,
        fail_on: Iterable[str] | Mapping[str, str] | None = None,
        block_on: Iterable[str] | None = None,
        unready: Iterable[str] | None = None,
        progressing: Mapping[str, int | None] | None = None,
        degraded: Iterable[str] | None = None,
        tick_seconds: float | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._fail_on = set(fail_on) if fail_on is not None else None
        self._block_on = set(block_on) if block_on is not None else None
        self._unready = set(unready) if unready is not None else None
        self._progressing = dict(progressing) if progressing is not None else None
        self._degraded = set(degraded) if degraded is not None else None
        self._tick_seconds = tick_seconds
        self._server: ApiServer | None = None
        self._closed = False
        # Concurrent apps' first commands must not start two servers.
        self._starting = threading.Lock()
        fd, kubeconfig = tempfile.mkstemp(prefix="sbkube-memory-", suffix=".kubeconfig")
        os.close(fd)
        self.kubeconfig_file = Path(kubeconfig)
        # A given HelmClient lends its binary and environment; the target is always ours.
        helm_binary = helm.binary if helm is not None else None
        helm_env = helm.env if helm is not None else None
        self._offline_helm = HelmClient(helm_binary, None, None, helm_env)
        super().__init__(
            kubeconfig=kubeconfig,
            context=name,
            helm=HelmClient(helm_binary, kubeconfig, name, helm_env),
            kubectl=KubectlClient(None, kubeconfig, name),
            # Recorded (and locked) as the context's name: the server's address is a fresh
            # loopback port each time, not an identity.
            name=name,
        )
        atexit.register(self.close)

    @property
    def server(self) -> ApiServer:
        """The API server, started (and the file locked and loaded) on first use."""
        if self._server is None:
            with self._starting:
                if self._server is None:
                    self._start()
        assert self._server is not None
        return self._server

    def _start(self) -> None:
        from sbkube.apiserver import ApiServer

        if self._closed:
            raise ClusterError(f"{self!r} is closed")
        server = ApiServer(
            self.path,
            fail_on=self._fail_on,
            block_on=self._block_on,
            unready=self._unready,
            progressing=self._progressing,
            degraded=self._degraded,
            tick_seconds=self._tick_seconds,
        ).start()
        server.write_kubeconfig(self.kubeconfig_file, context=self.context or MEMORY_CONTEXT)
        self._server = server

    # Every helm and kubectl call goes through these, so the server is up before the first.
    @property
    def helm(self) -> HelmClient:
        _ = self.server
        return self._helm

    @helm.setter
    def helm(self, client: HelmClient) -> None:
        self._helm = client

    @property
    def kubectl(self) -> KubectlClient:
        _ = self.server
        return self._kubectl

    @kubectl.setter
    def kubectl(self, client: KubectlClient) -> None:
        self._kubectl = client

    @property
    def fail_on(self) -> set[str]:
        """The server's live ``fail_on`` set (``SBKUBE_MEMORY_FAIL_ON``): writes of objects
        of these names, or of these Helm releases, fail until the name is removed."""
        return self.server.faults.fail_on

    def as_dry_run(self) -> KubeCluster:
        # The view shares this server: start it first, or the view would start a second one.
        _ = self.server
        return super().as_dry_run()

    def __repr__(self) -> str:
        url = self._server.url if self._server is not None else "not started"
        return f"MemoryCluster(path={self.path!r}, url={url!r})"

    def command_kubeconfig(self) -> str | None:
        # The server's own kubeconfig (current context: this cluster), once it is serving.
        _ = self.server
        return str(self.kubeconfig_file)

    def identity(self) -> str | None:
        uid = super().identity()
        if uid is not None:
            # What is recorded from now on goes by this UID: a new file keeps it even when
            # the command writes nothing (a deploy of noop apps), so the next run on the file
            # is the same cluster. Bad input stops before anyone asks, and leaves no file.
            self.server.keep()
        return uid

    def render_chart(self, request: TemplateRequest) -> list[dict[str, Any]]:
        # `helm template` is offline: rendering needs no server.
        return self._offline_helm.template(request)

    def pull_chart(self, chart: ChartRef, into: str) -> None:
        # `helm pull` is offline of the cluster, too.
        self._offline_helm.pull(chart, into)

    def close(self) -> None:
        """Save the file and stop the server; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.stop()
        with suppress(FileNotFoundError):
            self.kubeconfig_file.unlink()
        atexit.unregister(self.close)

    def __enter__(self) -> MemoryCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def objects(self) -> list[dict[str, Any]]:
        """Every object the server holds, except Helm's own release records (its storage,
        not something a chart asked for) and the namespaces every cluster starts with."""
        return [obj for obj in self.server.objects() if not _is_background(obj)]

    def release(self, name: str, namespace: str) -> ReleaseInfo | None:
        """The release's current revision as helm reports it (None when there is none)."""
        return self.helm_status(name, namespace)


def _is_background(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("kind")
    if kind == "Secret":
        return obj.get("type") == HELM_RELEASE_SECRET_TYPE
    if kind == "Namespace":
        return (obj.get("metadata") or {}).get("name") in BUILTIN_NAMESPACES
    return False
