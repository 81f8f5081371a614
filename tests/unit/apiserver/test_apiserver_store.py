"""The state file and the process around the server: persistence, refusals of foreign
files, the exclusive lock, ``serve()`` in the foreground, and the fault hooks' env vars."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sbkube.apiserver import ApiServer
from sbkube.errors import ClusterError, ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]

CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "kept", "namespace": "default"},
    "data": {"k": "v"},
}


def test_objects_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    with ApiServer(path) as server:
        created = server.api.create(server.registry.for_kind("v1", "ConfigMap"), "default", CM)
    saved = json.loads(path.read_text())
    assert saved["format"] == 2
    assert saved["resource_version"] >= int(created["metadata"]["resourceVersion"])
    with ApiServer(path) as again:
        kept = again.get("v1", "ConfigMap", "default", "kept")
        assert kept is not None
        assert kept["metadata"]["uid"] == created["metadata"]["uid"]
        names = {o["metadata"]["name"] for o in again.objects() if o["kind"] == "Namespace"}
        assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
        # The counter goes on from the file: no resourceVersion is handed out twice.
        second = again.api.create(
            again.registry.for_kind("v1", "ConfigMap"),
            "default",
            {**CM, "metadata": {"name": "new"}},
        )
        assert int(second["metadata"]["resourceVersion"]) > saved["resource_version"]


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Cluster",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [{"name": "v1", "served": True, "storage": True}],
    },
}


def test_custom_kinds_come_back_from_the_stored_crds(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    with ApiServer(path) as server:
        crds = server.registry.for_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        server.api.create(crds, "", CRD)
        gadgets = server.registry.resource("example.com", "v1", "gadgets")
        assert gadgets is not None and not gadgets.namespaced
        gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
        server.api.create(gadgets, "", gadget)
    with ApiServer(path) as again:
        assert again.get("example.com/v1", "Gadget", None, "g") is not None
        crds = again.registry.for_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        again.api.delete(crds, "", "gadgets.example.com")
        assert again.registry.resource("example.com", "v1", "gadgets") is None
        assert not [o for o in again.objects() if o["kind"] == "Gadget"]


def _kube_system_uid(server: ApiServer) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/api/v1/namespaces/kube-system") as resp:
        return str(json.load(resp)["metadata"]["uid"])


def test_a_new_file_keeps_the_identity_once_kept(tmp_path: Path) -> None:
    """A run that only read the cluster (a deploy of noop apps records the kube-system UID)
    must find the same cluster next time: once a client keeps the identity, the new file is
    written though nothing changed."""
    path = tmp_path / "cluster.json"
    with ApiServer(path) as server:
        seen = _kube_system_uid(server)
        server.keep()
    assert path.exists()
    with ApiServer(path) as again:
        assert _kube_system_uid(again) == seen


def test_a_new_file_only_read_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    with ApiServer(path) as server:
        _kube_system_uid(server)  # read, never kept: bad input may stop here
    assert not path.exists()


def test_memory_only_server_writes_no_file(tmp_path: Path) -> None:
    with ApiServer() as server:
        assert server.path is None
        server.flush()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"objects": {}, "releases": {}}', "format-1 memory cluster file"),
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "invalid JSON"),
        ('{"format": 3, "objects": []}', "format 3"),
        (
            '{"format": 2, "resource_version": 1, "objects": [{"kind": "ConfigMap"}]}',
            "objects[0] is not a Kubernetes object",
        ),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "cluster.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as refused:
        ApiServer(path).start()
    message = str(refused.value)
    assert str(path) in message and expected in message
    assert "\n" not in message
    # A refused file stays as it was, and unlocked.
    assert path.read_text() == content
    with pytest.raises(ConfigError):
        ApiServer(path).start()


def test_a_second_server_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    with ApiServer(path) as first:
        with pytest.raises(ClusterError) as refused:
            ApiServer(path).start()
        message = str(refused.value)
        assert message.startswith(f"{path} is served by pid {os.getpid()} at {first.url} (")
        assert message.endswith("point --kubeconfig at its kubeconfig instead")
    with ApiServer(path):  # free again once the first one stopped
        pass


def serve_process(path: Path, kubeconfig: Path, **env: str) -> subprocess.Popen[str]:
    code = (
        "import sys; from pathlib import Path; from sbkube.apiserver import serve; "
        "sys.exit(serve(Path(sys.argv[1]), Path(sys.argv[2])))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(path), str(kubeconfig)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
    )


@pytest.mark.kube
def test_serve_writes_a_kubeconfig_and_saves_on_sigterm(
    tmp_path: Path, kubectl_binary: str
) -> None:
    path, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    process = serve_process(path, kubeconfig)
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line.startswith(f"serving {path} at http://127.0.0.1:")
    assert line.rstrip().endswith(f"; kubeconfig {kubeconfig}")
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ClusterError, match=f"served by pid {process.pid}"):
        ApiServer(path).start()
    subprocess.run(
        [kubectl_binary, "--kubeconfig", str(kubeconfig), "create", "configmap", "c"],
        check=True,
        capture_output=True,
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    names = {o["metadata"]["name"] for o in json.loads(path.read_text())["objects"]}
    assert "c" in names


@pytest.mark.kube
def test_block_on_saves_says_blocked_and_holds_the_write(
    tmp_path: Path, kubectl_binary: str
) -> None:
    path, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    process = serve_process(path, kubeconfig, SBKUBE_MEMORY_BLOCK_ON="stuck")
    assert process.stderr is not None
    process.stderr.readline()
    kubectl = [kubectl_binary, "--kubeconfig", str(kubeconfig)]
    subprocess.run([*kubectl, "create", "configmap", "before"], check=True, capture_output=True)
    writer = subprocess.Popen(
        [*kubectl, "create", "configmap", "stuck"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stderr.readline() == "BLOCKED stuck\n"
        # Saved before blocking: what a killed process leaves behind is on disk.
        names = {o["metadata"]["name"] for o in json.loads(path.read_text())["objects"]}
        assert "before" in names and "stuck" not in names
        assert writer.poll() is None
        # Only that one write is held: the next client gets through.
        again = subprocess.run(
            [*kubectl, "create", "configmap", "stuck"], capture_output=True, text=True, timeout=30
        )
        assert again.returncode == 0, again.stderr
    finally:
        process.kill()
        process.wait(timeout=30)
        writer.kill()
        writer.wait(timeout=30)


def test_fault_hooks_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBKUBE_MEMORY_FAIL_ON", "a, b")
    monkeypatch.setenv("SBKUBE_MEMORY_BLOCK_ON", "c")
    monkeypatch.setenv("SBKUBE_MEMORY_UNREADY", "d")
    monkeypatch.setenv("SBKUBE_MEMORY_LATENCY_MS", "2.5")
    server = ApiServer()
    assert server.faults.fail_on == {"a", "b"}
    assert server.faults.block_on == {"c"}
    assert server.controller.unready == {"d"}
    assert server.faults.latency_ms == 2.5
    explicit = ApiServer(fail_on=set(), unready={"x"}, latency_ms=0)
    assert explicit.faults.fail_on == set()
    assert explicit.controller.unready == {"x"}
    assert explicit.faults.latency_ms == 0


def test_fail_on_spares_helm_release_secrets_and_deletes() -> None:
    with ApiServer(fail_on={"rel"}) as server:
        secrets = server.registry.for_kind("v1", "Secret")
        assert secrets is not None
        release = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": "sh.helm.release.v1.rel.v1",
                "labels": {"owner": "helm", "name": "rel"},
            },
        }
        server.api.create(secrets, "default", release)
        owned = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "annotations": {"meta.helm.sh/release-name": "rel"}},
        }
        from sbkube.apiserver.resources import ApiError

        with pytest.raises(ApiError) as failed:
            server.api.create(secrets, "default", owned)
        assert failed.value.code == 500
        assert failed.value.message == "sbkube memory cluster: injected failure for rel"
        server.api.create(secrets, "default", owned, dry_run=True)  # dry runs are spared
        server.faults.fail_on.clear()
        server.api.create(secrets, "default", owned)
        server.faults.fail_on.add("rel")
        server.api.delete(secrets, "default", "s")
        assert server.get("v1", "Secret", "default", "s") is None
