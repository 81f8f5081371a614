"""The readiness controller's holds: Progressing for N ticks or until released, Degraded, a
failed Job; seen by raw reads and by the real helm --wait and kubectl rollout/wait."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sbkube.apiserver import ApiServer
from sbkube.cluster.memory import MemoryCluster

pytestmark = pytest.mark.kube

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"""

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox, command: ["true"]}]
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    # No ticker thread: the tests tick by hand.
    with ApiServer(tmp_path / "cluster.json", tick_seconds=0) as started:
        yield started


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj["status"].get("conditions", ())}


def test_progressing_for_n_ticks_counted_from_the_first_write(kube) -> None:
    server = kube.server
    server.hold("web", ticks=2)
    assert server.tick() == 0  # nothing written yet: no tick counts
    kube.kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    held = kube.get("deployment", "web")
    assert held["status"]["readyReplicas"] == 0
    assert conditions(held)["Progressing"] == ("True", "ReplicaSetUpdated")
    assert conditions(held)["Available"] == ("False", "MinimumReplicasUnavailable")

    assert server.tick() == 0
    assert kube.get("deployment", "web")["status"]["readyReplicas"] == 0
    assert server.tick() == 1
    ready = kube.get("deployment", "web")
    assert ready["status"]["readyReplicas"] == 2
    assert conditions(ready)["Available"] == ("True", "MinimumReplicasAvailable")
    # The rewrite is a change like any other: a new resourceVersion.
    assert int(ready["metadata"]["resourceVersion"]) > int(held["metadata"]["resourceVersion"])
    assert kube.kubectl("rollout", "status", "deployment/web", "--timeout=5s").returncode == 0


def test_helm_wait_sees_a_held_rollout_finish_when_it_is_released(kube, charts: Path) -> None:
    kube.server.hold("held-web")
    home = kube.home
    waiting = subprocess.Popen(
        [kube.helm_binary, "install", "held", str(charts / "web"), "--wait", "--timeout", "60s"],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "KUBECONFIG": str(kube.kubeconfig),
            "HELM_CACHE_HOME": str(home / "helm-cache"),
            "HELM_CONFIG_HOME": str(home / "helm-config"),
            "HELM_DATA_HOME": str(home / "helm-data"),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Once helm has created the Deployment (kubectl wait watches for it: no sleeps).
        kube.kubectl("wait", "--for=create", "deployment/held-web", "--timeout=60s")
        assert conditions(kube.get("deployment", "held-web"))["Progressing"] == (
            "True",
            "ReplicaSetUpdated",
        )
        assert waiting.poll() is None  # still waiting: the rollout is held
        kube.server.release("held-web")
        _, stderr = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, stderr
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait(30)
    assert kube.get("deployment", "held-web")["status"]["availableReplicas"] == 2


def test_a_ticking_server_finishes_a_rollout_within_helms_timeout(
    tmp_path: Path, kube, charts: Path
) -> None:
    with ApiServer(
        tmp_path / "ticking.json", progressing={"tick-web": 3}, tick_seconds=0.05
    ) as ticking:
        ticking.write_kubeconfig(kube.kubeconfig)
        kube.server = ticking
        kube.helm("install", "tick", str(charts / "web"), "--wait", "--timeout", "60s")
        assert kube.get("deployment", "tick-web")["status"]["readyReplicas"] == 2
        assert "tick-web" not in ticking.controller.progressing


def test_a_degraded_deployment_is_past_its_progress_deadline(kube) -> None:
    kube.kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    kube.server.degrade("web")
    degraded = kube.get("deployment", "web")
    assert conditions(degraded)["Progressing"] == ("False", "ProgressDeadlineExceeded")
    assert conditions(degraded)["Available"] == ("False", "MinimumReplicasUnavailable")
    rollout = kube.kubectl("rollout", "status", "deployment/web", "--timeout=30s", check=False)
    assert rollout.returncode == 1
    assert 'deployment "web" exceeded its progress deadline' in rollout.stderr
    # Ticks do not heal it; a release does.
    kube.server.tick()
    assert kube.get("deployment", "web")["status"]["readyReplicas"] == 0
    kube.server.release("web")
    assert kube.kubectl("rollout", "status", "deployment/web", "--timeout=5s").returncode == 0


def test_a_degraded_job_fails_past_its_backoff_limit(kube, charts: Path) -> None:
    kube.server.controller.degraded.add("migrate")
    kube.kubectl("apply", "-f", "-", stdin=JOB)
    job = kube.get("job", "migrate")
    assert job["status"]["failed"] == 3
    assert conditions(job)["Failed"] == ("True", "BackoffLimitExceeded")
    assert "Complete" not in conditions(job)
    kube.kubectl("wait", "--for=condition=Failed", "job/migrate", "--timeout=5s")

    # helm waits on a hook Job and fails the release with it.
    kube.server.controller.degraded.add("h-pre-install")
    failed = kube.helm(
        "install", "h", str(charts / "hooks"), "--wait", "--timeout", "30s", check=False
    )
    assert failed.returncode == 1
    # helm reads the Job as failed for good, not as one still running.
    assert (
        "failed pre-install: resource Job/default/h-pre-install not ready. status: Failed"
        in failed.stderr
    ), failed.stderr


def test_holds_come_from_the_environment_and_the_memory_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SBKUBE_MEMORY_PROGRESSING", "web:3, api")
    monkeypatch.setenv("SBKUBE_MEMORY_DEGRADED", "job")
    monkeypatch.setenv("SBKUBE_MEMORY_TICK_SECONDS", "0.5")
    server = ApiServer()
    assert server.controller.progressing == {"web": 3, "api": None}
    assert server.controller.degraded == {"job"}
    assert server.tick_seconds == 0.5
    monkeypatch.setenv("SBKUBE_MEMORY_PROGRESSING", "web:soon")
    with pytest.raises(ValueError, match="SBKUBE_MEMORY_PROGRESSING"):
        ApiServer()

    with MemoryCluster(
        tmp_path / "m.json", progressing={"x": 1}, degraded=["y"], tick_seconds=0
    ) as cluster:
        assert cluster.server.controller.progressing == {"x": 1}
        assert cluster.server.controller.degraded == {"y"}
        assert cluster.server.tick_seconds == 0
