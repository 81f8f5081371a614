"""The real cluster: the Cluster port implemented with the helm and kubectl binaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.kubectl import KubectlClient
from sbkube.cluster.port import ChartRef, Cluster, ObjectKey, ReleaseInfo


class KubeCluster(Cluster):
    """A Kubernetes cluster reached through one kubeconfig and context.

    ``name`` (recorded with every deployment) is the context given, else the kubeconfig's
    current context, else ``"default"``.
    """

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        helm: HelmClient | None = None,
        kubectl: KubectlClient | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.helm = helm or HelmClient(kubeconfig=kubeconfig, context=context)
        self.kubectl = kubectl or KubectlClient(kubeconfig=kubeconfig, context=context)
        self._name: str | None = context or None

    @property
    def name(self) -> str:
        # Resolved on first use: asking kubectl costs a subprocess that commands which never
        # record a deployment should not pay.
        if self._name is None:
            self._name = self.kubectl.current_context() or "default"
        return self._name

    def __repr__(self) -> str:
        return f"KubeCluster(kubeconfig={self.kubeconfig!r}, context={self.context!r})"

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

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        return self.kubectl.get(key)

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return self.kubectl.apply(manifest)

    def delete(self, key: ObjectKey) -> bool:
        return self.kubectl.delete(key)

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
        return self.helm.upgrade_install(
            chart,
            release_name=release_name,
            namespace=namespace,
            values=values,
            wait=wait,
            timeout=timeout,
        )

    def helm_status(self, release_name: str, namespace: str) -> ReleaseInfo | None:
        return self.helm.status(release_name, namespace)

    def helm_history(self, release_name: str, namespace: str) -> list[ReleaseInfo]:
        return self.helm.history(release_name, namespace)

    def helm_rollback(self, release_name: str, namespace: str, revision: int) -> ReleaseInfo:
        return self.helm.rollback(release_name, namespace, revision)

    def helm_uninstall(
        self, release_name: str, namespace: str, *, keep_history: bool = False
    ) -> None:
        self.helm.uninstall(release_name, namespace, keep_history=keep_history)

    def helm_get_values(
        self, release_name: str, namespace: str, revision: int | None = None
    ) -> dict[str, Any]:
        return self.helm.get_values(release_name, namespace, revision)
