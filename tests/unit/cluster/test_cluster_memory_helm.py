"""MemoryCluster with the real ``helm template``, and the blocking hook across processes."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.memory import MemoryCluster
from sbkube.cluster.port import ChartRef, object_key
from sbkube.errors import ClusterError

REPO_ROOT = Path(__file__).resolve().parents[3]


def _spawn(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
    )


def _first_stderr_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    # readline() alone would hang the test if the child never blocks and never exits.
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stderr = proc.stderr
    threading.Thread(target=lambda: lines.put(stderr.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        pytest.fail("child process neither blocked nor exited")


@pytest.mark.helm
def test_chart_objects_become_live_and_are_pruned(helm: HelmClient, demo_chart: ChartRef) -> None:
    cluster = MemoryCluster(helm=helm)
    info = cluster.helm_upgrade_install(
        demo_chart,
        release_name="cache",
        namespace="data",
        values={"auth": {"password": "s3cret"}, "rbac": {"create": True}},
    )
    assert (info.revision, info.chart, info.chart_version, info.app_version) == (
        1,
        "demo-redis",
        "0.1.0",
        "7.2.4",
    )
    keys = {object_key(o) for o in cluster.objects()}
    assert keys == {
        ("v1", "ConfigMap", "data", "cache-redis-config"),
        ("apps/v1", "Deployment", "data", "cache-redis"),
        ("v1", "Service", "data", "cache-redis"),
        ("v1", "Secret", "data", "cache-redis-auth"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "cache-redis-reader"),
    }
    secret = cluster.get(("v1", "Secret", "data", "cache-redis-auth"))
    assert secret is not None and secret["stringData"]["password"] == "s3cret"

    deployment_v1 = cluster.get(("apps/v1", "Deployment", "data", "cache-redis"))
    cluster.helm_upgrade_install(
        demo_chart,
        release_name="cache",
        namespace="data",
        values={"auth": {"enabled": False}, "replicaCount": 2},
    )
    keys = {object_key(o) for o in cluster.objects()}
    assert ("v1", "Secret", "data", "cache-redis-auth") not in keys
    assert ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "cache-redis-reader") not in keys
    deployment_v2 = cluster.get(("apps/v1", "Deployment", "data", "cache-redis"))
    assert deployment_v1 is not None and deployment_v2 is not None
    assert deployment_v2["spec"]["replicas"] == 2
    assert deployment_v2["metadata"]["uid"] == deployment_v1["metadata"]["uid"]
    assert deployment_v2["metadata"]["generation"] == 2
    # the Service did not change, so the API server would not have touched it
    service = cluster.get(("v1", "Service", "data", "cache-redis"))
    assert service is not None and service["metadata"]["generation"] == 1

    cluster.helm_rollback("cache", "data", 1)
    secret = cluster.get(("v1", "Secret", "data", "cache-redis-auth"))
    assert secret is not None and secret["stringData"]["password"] == "s3cret"
    cluster.helm_uninstall("cache", "data")
    assert cluster.objects() == []


@pytest.mark.helm
def test_broken_chart_leaves_no_revision(helm: HelmClient, broken_chart: ChartRef) -> None:
    cluster = MemoryCluster(helm=helm)
    with pytest.raises(ClusterError, match="parse error"):
        cluster.helm_upgrade_install(broken_chart, release_name="b", namespace="n", values={})
    assert cluster.helm_history("b", "n") == []
    assert cluster.objects() == []


@pytest.mark.helm
def test_blocked_upgrade_leaves_pending_release(
    helm_binary: str, demo_chart: ChartRef, tmp_path: Path
) -> None:
    path = tmp_path / "cluster.json"
    cluster = MemoryCluster(path, helm=HelmClient(binary=helm_binary))
    cluster.helm_upgrade_install(
        demo_chart, release_name="cache", namespace="data", values={"replicaCount": 1}
    )
    code = (
        "from sbkube.cluster import MemoryCluster, ChartRef\n"
        f"c = MemoryCluster({str(path)!r})\n"
        f"c.helm_upgrade_install(ChartRef({demo_chart.ref!r}), release_name='cache',"
        " namespace='data', values={'replicaCount': 5})\n"
        "print('NOT BLOCKED')\n"
    )
    proc = _spawn(code, {"SBKUBE_MEMORY_BLOCK_ON": "cache", "SBKUBE_HELM": helm_binary})
    try:
        assert _first_stderr_line(proc) == "BLOCKED cache\n"
        # While the child hangs, the state file is readable (no lock held while blocked)
        # and shows what a killed helm leaves behind.
        status = cluster.helm_status("cache", "data")
        assert status is not None
        assert (status.revision, status.status) == (2, "pending-upgrade")
        assert status.values == {"replicaCount": 5}
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # the objects were not touched by the interrupted upgrade
    live = cluster.get(("apps/v1", "Deployment", "data", "cache-redis"))
    assert live is not None and live["spec"]["replicas"] == 1
    with pytest.raises(ClusterError, match="another operation"):
        cluster.helm_upgrade_install(demo_chart, release_name="cache", namespace="data", values={})
    info = cluster.helm_rollback("cache", "data", 1)
    assert info.revision == 3
    assert [r.status for r in cluster.helm_history("cache", "data")] == [
        "superseded",
        "superseded",
        "deployed",
    ]


def test_blocked_apply_is_interruptible_by_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    code = (
        "import signal, sys\n"
        "def stop(signum, frame):\n"
        "    raise SystemExit(130)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "from sbkube.cluster import MemoryCluster\n"
        f"c = MemoryCluster({str(path)!r})\n"
        "c.apply({'apiVersion': 'v1', 'kind': 'ConfigMap',"
        " 'metadata': {'name': 'first', 'namespace': 'n'}})\n"
        "c.apply({'apiVersion': 'v1', 'kind': 'ConfigMap',"
        " 'metadata': {'name': 'web', 'namespace': 'n'}})\n"
    )
    proc = _spawn(code, {"SBKUBE_MEMORY_BLOCK_ON": "web"})
    try:
        assert _first_stderr_line(proc) == "BLOCKED web\n"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130  # the handler ran: the sleep did not swallow the signal
    names = [o["metadata"]["name"] for o in MemoryCluster(path).objects()]
    assert names == ["first"]


def test_fail_on_env_reaches_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    code = (
        "from sbkube.cluster import MemoryCluster\n"
        "from sbkube.errors import ClusterError\n"
        f"c = MemoryCluster({str(path)!r})\n"
        "try:\n"
        "    c.apply({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'bad'}})\n"
        "except ClusterError as e:\n"
        "    print(e)\n"
    )
    proc = _spawn(code, {"SBKUBE_MEMORY_FAIL_ON": "bad"})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.startswith("kubectl apply ConfigMap/bad failed: simulated failure for bad")
