"""The cluster port refuses, before any request, an object or Helm values that hold a
recorded digest (``sbkube.guard``), on the local API server with the real helm."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbkube.cluster.memory import MemoryCluster
from sbkube.cluster.port import ChartRef, UpgradeRequest
from sbkube.guard import UnsendableValue
from sbkube.redaction import digest

pytestmark = pytest.mark.helm

KEYED = digest("hunter2-hunter2")
CHART = Path(__file__).resolve().parents[2] / "fixtures" / "engine" / "shop" / "charts" / "cache"


def test_apply_and_helm_upgrade_refuse_a_digest(cluster: MemoryCluster) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "data": {"pw": KEYED},
    }
    with pytest.raises(UnsendableValue, match="Secret/default/s"):
        cluster.apply(secret)
    with pytest.raises(UnsendableValue):
        cluster.apply_many([secret])
    assert cluster.get(("v1", "Secret", "default", "s")) is None
    request = UpgradeRequest(
        ChartRef(str(CHART)),
        release_name="cache",
        namespace="default",
        values={"password": KEYED},
    )
    with pytest.raises(UnsendableValue, match="values of release cache"):
        cluster.helm_upgrade_install(request)
    assert cluster.helm_status("cache", "default") is None
