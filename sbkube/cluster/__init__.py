"""The cluster port and its implementations.

``port`` holds the protocol and its value types; ``kube`` (helm + kubectl binaries) and
``memory`` (in-memory, for dry runs and tests) implement it; ``helm`` and ``kubectl`` build
command lines and parse output, ``process`` runs the binaries. Names are imported lazily on
first access, so ``import sbkube.cluster`` costs nothing for commands that never touch a
cluster (``sbkube state list`` must start fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbkube._lazy import lazy_exports

if TYPE_CHECKING:
    from sbkube.cluster.helm import HelmClient
    from sbkube.cluster.kube import KubeCluster
    from sbkube.cluster.kubectl import KubectlClient
    from sbkube.cluster.memory import MemoryCluster
    from sbkube.cluster.port import (
        PENDING_STATUSES,
        ChartRef,
        Cluster,
        ReleaseInfo,
        ReleaseStatus,
        TemplateRequest,
        UpgradeRequest,
        strip_volatile,
    )
    from sbkube.manifests import ObjectKey, object_key

_EXPORTS: dict[str, str] = {
    "Cluster": "port",
    "ChartRef": "port",
    "ReleaseInfo": "port",
    "ReleaseStatus": "port",
    "TemplateRequest": "port",
    "UpgradeRequest": "port",
    "ObjectKey": "port",
    "object_key": "port",
    "strip_volatile": "port",
    "PENDING_STATUSES": "port",
    "MemoryCluster": "memory",
    "KubeCluster": "kube",
    "HelmClient": "helm",
    "KubectlClient": "kubectl",
}

__all__ = [
    "PENDING_STATUSES",
    "ChartRef",
    "Cluster",
    "HelmClient",
    "KubeCluster",
    "KubectlClient",
    "MemoryCluster",
    "ObjectKey",
    "ReleaseInfo",
    "ReleaseStatus",
    "TemplateRequest",
    "UpgradeRequest",
    "object_key",
    "strip_volatile",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
