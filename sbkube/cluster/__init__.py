"""The cluster port and its implementations.

``port`` holds the protocols (the ``Releases`` and ``Objects`` roles, ``Cluster`` their
union) and their value types; ``kube`` (helm + kubectl binaries) implements them, and
``memory`` points it at sbkube's local API server; ``helm`` and ``kubectl`` build
command lines and parse output, ``process`` runs the binaries. Names are imported lazily on
first access, so ``import sbkube.cluster`` costs nothing for commands that never touch a
cluster (``sbkube state list`` must start fast).
"""

from __future__ import annotations

from sbkube._lazy import lazy_exports

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from sbkube.cluster.helm import HelmClient
    from sbkube.cluster.kube import KubeCluster
    from sbkube.cluster.kubectl import KubectlClient
    from sbkube.cluster.memory import MemoryCluster
    from sbkube.cluster.port import (
        PENDING_STATUSES,
        ChartRef,
        Cluster,
        Objects,
        ReleaseInfo,
        Releases,
        ReleaseStatus,
        TemplateRequest,
        UpgradeRequest,
        strip_volatile,
    )
    from sbkube.manifests import ObjectKey, object_key

_EXPORTS: dict[str, str] = {
    "Cluster": "port",
    "Releases": "port",
    "Objects": "port",
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
    "Objects",
    "ReleaseInfo",
    "ReleaseStatus",
    "Releases",
    "TemplateRequest",
    "UpgradeRequest",
    "object_key",
    "strip_volatile",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
