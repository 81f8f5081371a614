"""``wait_healthy`` against the local API server, its controller ticked by the injected sleep
and time told by an injected clock: no test waits on the wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.memory import MemoryCluster
from sbkube.engine.wait import NotHealthy, wait_healthy
from sbkube.manifests import ObjectKey, object_key


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": "nginx:1.27-alpine"}]},
            },
        },
    }


def job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": name, "image": "busybox:1.36"}],
                }
            }
        },
    }


class Clock:
    """Time that passes only when the waiter sleeps; each sleep is one controller tick."""

    def __init__(self, cluster: MemoryCluster) -> None:
        self.cluster = cluster
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.cluster.server.tick()


@pytest.fixture
def cluster(helm_binary: str) -> Iterator[MemoryCluster]:
    with MemoryCluster(
        helm=HelmClient(helm_binary), progressing={"web": 3}, tick_seconds=0
    ) as memory:
        memory.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        yield memory


def apply(cluster: MemoryCluster, *manifests: dict[str, Any]) -> list[ObjectKey]:
    return [object_key(m) for m in cluster.apply_many(list(manifests))]


def test_progressing_for_three_ticks_then_healthy(cluster: MemoryCluster) -> None:
    keys = apply(cluster, deployment("web"), job("migrate"))
    clock = Clock(cluster)

    seconds = wait_healthy(cluster, keys, 60, clock=clock, sleep=clock.sleep, interval=2)

    # Three ticks held it Progressing: three sleeps of the interval, then Healthy.
    assert clock.sleeps == [2, 2, 2]
    assert seconds == 6
    web = cluster.get(keys[0])
    assert web is not None and web["status"]["availableReplicas"] == 2


def test_timeout_names_every_unhealthy_object(cluster: MemoryCluster) -> None:
    cluster.server.hold("web")  # until released: never within the timeout
    cluster.server.hold("migrate")
    keys = apply(cluster, deployment("web"), job("migrate"), deployment("api"))
    clock = Clock(cluster)

    with pytest.raises(NotHealthy) as caught:
        wait_healthy(cluster, keys, 5, clock=clock, sleep=clock.sleep, interval=2)

    assert clock.now - 100 == 5  # the last sleep is cut to the deadline
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("not healthy within 5s: ")
    assert "Deployment/shop/web Progressing (Waiting for rollout to finish: 0 of 2" in message
    assert "Job/shop/migrate Progressing" in message
    assert "api" not in message  # healthy objects are not named
    live = cluster.get(keys[0])
    assert live is not None and live["status"].get("availableReplicas", 0) == 0


def test_degraded_fails_at_once(cluster: MemoryCluster) -> None:
    cluster.server.degrade("migrate")
    keys = apply(cluster, deployment("api"), job("migrate"))
    clock = Clock(cluster)

    with pytest.raises(NotHealthy) as caught:
        wait_healthy(cluster, keys, 300, clock=clock, sleep=clock.sleep)

    assert clock.sleeps == []
    assert caught.value.message == (
        "degraded after 0s: Job/shop/migrate Degraded (Job has reached the specified backoff limit)"
    )


def test_missing_object_is_waited_for(cluster: MemoryCluster) -> None:
    keys = [*apply(cluster, deployment("api")), object_key(deployment("gone"))]
    clock = Clock(cluster)

    with pytest.raises(NotHealthy) as caught:
        wait_healthy(cluster, keys, 3, clock=clock, sleep=clock.sleep)

    assert "Deployment/shop/gone Missing" in caught.value.message
    assert cluster.get(keys[1]) is None
