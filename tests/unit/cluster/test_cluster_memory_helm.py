"""MemoryCluster with real charts, and its fault hooks across processes.

A chart's life (install, upgrade with pruning, rollback, uninstall), what a revision
reports (its manifest and hooks as helm stored them), and what a process killed in the
middle of ``helm upgrade`` leaves behind for the next one.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbkube.cluster.memory import MemoryCluster
from sbkube.cluster.port import ChartRef, UpgradeRequest
from sbkube.errors import ClusterError
from sbkube.manifests import object_key

pytestmark = pytest.mark.kube

REPO_ROOT = Path(__file__).resolve().parents[3]
CHARTS = REPO_ROOT / "tests" / "fixtures" / "apiserver" / "charts"
WEB = ChartRef(str(CHARTS / "web"))


@pytest.fixture
def child_env(
    helm_binary: str, kubectl_binary: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, str]:
    """The environment of this process and of the children a test starts."""
    env = {
        "SBKUBE_HELM": helm_binary,
        "SBKUBE_KUBECTL": kubectl_binary,
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    for var in ("SBKUBE_MEMORY_FAIL_ON", "SBKUBE_MEMORY_BLOCK_ON", "SBKUBE_MEMORY_UNREADY"):
        monkeypatch.delenv(var, raising=False)
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture
def cluster(child_env: dict[str, str]) -> Iterator[MemoryCluster]:
    with MemoryCluster() as started:
        yield started


def _spawn(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    # A session of its own, so that the helm it starts can be cleaned up with it.
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def _first_stderr_line(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    # readline() alone would hang the test if the child never blocks and never exits.
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stderr = proc.stderr
    threading.Thread(target=lambda: lines.put(stderr.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("child process neither blocked nor exited")


def test_chart_objects_become_live_and_are_pruned(cluster: MemoryCluster) -> None:
    info = cluster.helm_upgrade_install(
        UpgradeRequest(WEB, release_name="shop", namespace="data", values={"message": "one"})
    )
    assert (info.revision, info.status, info.chart, info.chart_version) == (
        1,
        "deployed",
        "web",
        "0.1.0",
    )
    keys = {object_key(o) for o in cluster.objects()}
    assert keys == {
        ("v1", "Namespace", "", "data"),
        ("v1", "ConfigMap", "data", "shop-config"),
        ("apps/v1", "Deployment", "data", "shop-web"),
        ("v1", "Service", "data", "shop-web"),
    }
    # The revision reports the objects as helm installed them.
    assert {object_key(o) for o in info.manifest} == keys - {("v1", "Namespace", "", "data")}

    first = cluster.get(("apps/v1", "Deployment", "data", "shop-web"))
    service = cluster.get(("v1", "Service", "data", "shop-web"))
    cluster.helm_upgrade_install(
        UpgradeRequest(
            WEB, release_name="shop", namespace="data", values={"message": "two", "replicas": 3}
        )
    )
    second = cluster.get(("apps/v1", "Deployment", "data", "shop-web"))
    assert first is not None and second is not None
    assert second["spec"]["replicas"] == 3
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["generation"] == 2
    # The Service did not change, so the server did not touch it.
    assert cluster.get(("v1", "Service", "data", "shop-web")) == service

    rolled = cluster.helm_rollback("shop", "data", 1)
    assert (rolled.revision, rolled.status, dict(rolled.values)) == (
        3,
        "deployed",
        {"message": "one"},
    )
    config = cluster.get(("v1", "ConfigMap", "data", "shop-config"))
    assert config is not None and config["data"] == {"message": "one"}
    cluster.helm_uninstall("shop", "data")
    assert cluster.release("shop", "data") is None
    assert {object_key(o) for o in cluster.objects()} == {("v1", "Namespace", "", "data")}


def test_hooks_are_reported_apart_and_test_hooks_never_run(cluster: MemoryCluster) -> None:
    hooks = ChartRef(str(CHARTS / "hooks"))
    info = cluster.helm_upgrade_install(
        UpgradeRequest(hooks, release_name="h", namespace="jobs", values={})
    )
    assert [object_key(o) for o in info.manifest] == [("v1", "ConfigMap", "jobs", "h-main")]
    assert sorted((h.annotation, h.manifest["metadata"]["name"]) for h in info.hooks) == [
        ("post-upgrade", "h-post-upgrade"),
        ("pre-install", "h-pre-install"),
        ("test", "h-test"),
    ]
    live = {(o["kind"], o["metadata"]["name"]) for o in cluster.objects()}
    assert ("Job", "h-pre-install") in live  # ran, and kept (no delete policy)
    assert ("Job", "h-post-upgrade") not in live  # not an install hook
    assert ("Pod", "h-test") not in live  # only `helm test` runs it
    job = cluster.get(("batch/v1", "Job", "jobs", "h-pre-install"))
    assert job is not None and job["status"]["succeeded"] == 1

    cluster.helm_upgrade_install(
        UpgradeRequest(hooks, release_name="h", namespace="jobs", values={})
    )
    live = {(o["kind"], o["metadata"]["name"]) for o in cluster.objects()}
    assert ("Job", "h-post-upgrade") in live
    assert ("Pod", "h-test") not in live


def test_broken_chart_leaves_no_revision(cluster: MemoryCluster) -> None:
    broken = ChartRef(str(REPO_ROOT / "tests" / "fixtures" / "charts" / "broken"))
    with pytest.raises(ClusterError, match="parse error"):
        cluster.helm_upgrade_install(
            UpgradeRequest(broken, release_name="b", namespace="n", values={})
        )
    assert cluster.helm_history("b", "n") == []
    assert cluster.objects() == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_a_process_stopped_in_a_blocked_upgrade_leaves_a_pending_release(
    child_env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    path = tmp_path / "cluster.json"
    with MemoryCluster(path) as cluster:
        cluster.helm_upgrade_install(
            UpgradeRequest(WEB, release_name="shop", namespace="data", values={"replicas": 1})
        )
    code = (
        "from sbkube.cluster import MemoryCluster, ChartRef, UpgradeRequest\n"
        f"c = MemoryCluster({str(path)!r})\n"
        f"c.helm_upgrade_install(UpgradeRequest(ChartRef({WEB.ref!r}), release_name='shop',"
        " namespace='data', values={'replicas': 5}))\n"
        "print('NOT BLOCKED')\n"
    )
    proc = _spawn(code, {**child_env, "SBKUBE_MEMORY_BLOCK_ON": "shop"})
    try:
        assert _first_stderr_line(proc) == "BLOCKED shop\n"
        # While the child holds it, the file is refused, naming the child.
        with pytest.raises(ClusterError, match=f"is served by pid {proc.pid} at "):
            MemoryCluster(path).objects()
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        # The helm the child started may still wait for its answer: end it too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -sig
    assert proc.stdout is not None and "NOT BLOCKED" not in proc.stdout.read()

    with MemoryCluster(path) as cluster:
        # Helm's own history shows what the stopped upgrade left.
        history = cluster.helm_history("shop", "data")
        assert [(r.revision, r.status) for r in history] == [
            (1, "deployed"),
            (2, "pending-upgrade"),
        ]
        assert history[1].pending and history[1].values == {"replicas": 5}
        # The objects were not touched by the interrupted upgrade.
        live = cluster.get(("apps/v1", "Deployment", "data", "shop-web"))
        assert live is not None and live["spec"]["replicas"] == 1
        with pytest.raises(ClusterError, match="another operation"):
            cluster.helm_upgrade_install(
                UpgradeRequest(WEB, release_name="shop", namespace="data", values={})
            )
        info = cluster.helm_rollback("shop", "data", 1)
        assert (info.revision, info.status) == (3, "deployed")


def test_fault_hooks_in_the_environment_reach_a_subprocess(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "from sbkube.cluster import MemoryCluster\n"
        "from sbkube.errors import ClusterError\n"
        f"c = MemoryCluster({str(tmp_path / 'cluster.json')!r})\n"
        "c.apply({'apiVersion': 'v1', 'kind': 'ConfigMap',"
        " 'metadata': {'name': 'good', 'namespace': 'default'}})\n"
        "try:\n"
        "    c.apply({'apiVersion': 'v1', 'kind': 'ConfigMap',"
        " 'metadata': {'name': 'bad', 'namespace': 'default'}})\n"
        "except ClusterError as e:\n"
        "    print(e)\n"
    )
    proc = _spawn(code, {**child_env, "SBKUBE_MEMORY_FAIL_ON": "bad"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.startswith("kubectl apply ConfigMap/default/bad failed: ")
    assert "injected failure for bad" in out
