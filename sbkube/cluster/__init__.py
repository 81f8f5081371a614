"""The cluster port and its implementations.

``port`` holds the protocol and its value types; ``kube`` (helm + kubectl binaries) and
``memory`` (in-memory, for dry runs and tests) implement it. Names are imported lazily on
first access, so ``import sbkube.cluster`` costs nothing for commands that never touch a
cluster (``sbkube state list`` must start fast).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sbkube.cluster.helm import HelmClient
    from sbkube.cluster.kube import KubeCluster
    from sbkube.cluster.kubectl import KubectlClient
    from sbkube.cluster.memory import MemoryCluster
    from sbkube.cluster.port import (
        PENDING_STATUSES,
        ChartRef,
        Cluster,
        ObjectKey,
        ReleaseInfo,
        object_key,
        strip_volatile,
    )

_EXPORTS: dict[str, str] = {
    "Cluster": "port",
    "ChartRef": "port",
    "ReleaseInfo": "port",
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
    "object_key",
    "strip_volatile",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
