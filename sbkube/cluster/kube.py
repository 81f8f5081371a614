"""The real cluster: the Cluster port implemented with the helm and kubectl binaries."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.kubectl import KubectlClient
from sbkube.cluster.port import ChartRef, Cluster, ObjectKey, ReleaseInfo, object_key
from sbkube.errors import ClusterError


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
        # Only on a dry-run view: what its dry runs would have left, so that later steps of
        # one plan see the earlier ones (None marks a planned delete).
        self._planned: dict[ObjectKey, dict[str, Any] | None] | None = None

    @property
    def name(self) -> str:
        # Resolved on first use: asking kubectl costs a subprocess that commands which never
        # record a deployment should not pay.
        if self._name is None:
            self._name = self.kubectl.current_context() or "default"
        return self._name

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

    def check_reachable(self) -> None:
        try:
            self.kubectl.probe()
        except ClusterError as exc:
            server = self.kubectl.server()
            where = f"{self.name} ({server})" if server else self.name
            reason = exc.message.partition(" failed: ")[2] or exc.message
            raise ClusterError(f"cluster {where} is unreachable: {reason}") from exc

    def chart_crds(self, chart: ChartRef) -> list[dict[str, Any]]:
        return self.helm.show_crds(chart)

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        if self._planned is None:
            return self.kubectl.apply(manifest)
        key = object_key(manifest)
        live = copy.deepcopy(dict(manifest)) if self._only_planned(key[2]) else None
        live = live or self.kubectl.apply(manifest)
        self._planned[key] = live
        return copy.deepcopy(live)

    def delete(self, key: ObjectKey) -> bool:
        if self._planned is None:
            return self.kubectl.delete(key)
        existed = self.get(key) is not None
        if existed and not self._only_planned(key[2]):
            self.kubectl.delete(key)
        self._planned[key] = None
        return existed

    def helm_upgrade_install(
        self,
        chart: ChartRef,
        *,
        release_name: str,
        namespace: str,
        values: Mapping[str, Any],
        wait: bool = False,
        timeout: str | None = None,
        force_conflicts: bool = False,
    ) -> ReleaseInfo:
        info = self.helm.upgrade_install(
            chart,
            release_name=release_name,
            namespace=namespace,
            values=values,
            wait=wait,
            timeout=timeout,
            force_conflicts=force_conflicts,
        )
        if self._planned is not None:
            # --create-namespace: the plan's later steps find the namespace there.
            ns_key: ObjectKey = ("v1", "Namespace", "", namespace)
            if self.get(ns_key) is None:
                self._planned[ns_key] = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace},
                }
        return info

    def helm_status(self, release_name: str, namespace: str) -> ReleaseInfo | None:
        return self.helm.status(release_name, namespace)

    def helm_history(self, release_name: str, namespace: str) -> list[ReleaseInfo]:
        return self.helm.history(release_name, namespace)

    def helm_rollback(self, release_name: str, namespace: str, revision: int) -> ReleaseInfo:
        return self.helm.rollback(release_name, namespace, revision)

    def helm_uninstall(self, release_name: str, namespace: str) -> None:
        self.helm.uninstall(release_name, namespace)

    def helm_get_values(
        self, release_name: str, namespace: str, revision: int | None = None
    ) -> dict[str, Any]:
        return self.helm.get_values(release_name, namespace, revision)
