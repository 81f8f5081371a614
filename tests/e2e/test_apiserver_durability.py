"""A write the local API server has answered survives a kill -9 of the process serving it.

The server runs as a user runs it, ``sbkube memory-cluster serve FILE --kubeconfig OUT`` in
a subprocess; the test creates objects one by one (each answered before the next), kills the
process with SIGKILL right after the last answer (well within the background save's
interval), serves the same file again, and counts.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.kube

REPO_ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 10
CREATES = 40


class Served:
    """One ``sbkube memory-cluster serve`` process, started and known to be listening."""

    def __init__(self, sbkube: str, file: Path, kubeconfig: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBKUBE_")}
        env["PYTHONPATH"] = str(REPO_ROOT)
        self.proc = subprocess.Popen(
            [sbkube, "memory-cluster", "serve", str(file), "--kubeconfig", str(kubeconfig)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self.url = self._wait_until_serving()

    def _wait_until_serving(self, timeout: float = 60) -> str:
        """The URL from the line serve prints once it listens and the kubeconfig is written."""
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        seen = b""
        while b"\n" not in seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stderr], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"not serving within {timeout}s: {seen!r}")
            chunk = os.read(self.proc.stderr.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"serve exited ({self.proc.wait()}): {seen!r}")
            seen += chunk
        line = seen.decode().splitlines()[0]
        assert line.startswith("serving "), line
        return line.split(" at ", 1)[1].split(";", 1)[0]

    def request(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@pytest.fixture
def serving(sbkube_exe: str, tmp_path: Path) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:
        if served.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                served.kill()


def configmap_names(served: Served) -> set[str]:
    _, listed = served.request("GET", "/api/v1/namespaces/durable/configmaps")
    return {item["metadata"]["name"] for item in listed["items"]}


def test_acknowledged_creates_survive_kill_9_round_after_round(
    sbkube_exe: str, tmp_path: Path, serving: list[Served]
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    acknowledged: set[str] = set()
    uid_of_kube_system = None
    for round_number in range(ROUNDS):
        served = Served(sbkube_exe, file, kubeconfig)
        serving.append(served)
        # Everything acknowledged before every earlier kill is there.
        if round_number:
            assert configmap_names(served) == acknowledged, f"round {round_number}"
        else:
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "durable"}}
            assert served.request("POST", "/api/v1/namespaces", namespace)[0] == 201
        _, kube_system = served.request("GET", "/api/v1/namespaces/kube-system")
        # The cluster's identity outlives the kills as well.
        uid_of_kube_system = uid_of_kube_system or kube_system["metadata"]["uid"]
        assert kube_system["metadata"]["uid"] == uid_of_kube_system
        for index in range(CREATES):
            name = f"cm-{round_number}-{index}"
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": {"round": str(round_number), "index": str(index)},
            }
            code, _ = served.request("POST", "/api/v1/namespaces/durable/configmaps", body)
            assert code == 201
            acknowledged.add(name)
        # Deletes and updates are writes too.
        gone = f"cm-{round_number}-0"
        served.request("DELETE", f"/api/v1/namespaces/durable/configmaps/{gone}")
        acknowledged.discard(gone)
        served.kill()

    last = Served(sbkube_exe, file, kubeconfig)
    serving.append(last)
    assert configmap_names(last) == acknowledged
    assert len(acknowledged) == ROUNDS * (CREATES - 1)
    _, kept = last.request("GET", "/api/v1/namespaces/durable/configmaps/cm-9-39")
    assert kept["data"] == {"round": "9", "index": "39"}


def test_kill_9_right_after_an_in_process_deploy_reports_success(
    sbkube_exe: str, helm_binary: str, kubectl_binary: str, tmp_path: Path
) -> None:
    """``--memory-cluster FILE`` serves in the deploying process, which saves at exit: a kill
    the moment it has printed success (before that save) still leaves every recorded object."""
    from sbkube.apiserver import ApiServer

    demo = Path(shutil.copytree(REPO_ROOT / "examples" / "demo", tmp_path / "demo"))
    file = tmp_path / "cluster.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBKUBE_")}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "SBKUBE_STATE_URL": str(tmp_path / "state.db"),
            "SBKUBE_HELM": helm_binary,
            "SBKUBE_KUBECTL": kubectl_binary,
            "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
            "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
            "HELM_DATA_HOME": str(tmp_path / "helm-data"),
        }
    )
    deploy = subprocess.Popen(
        [sbkube_exe, "deploy", "--app-dir", str(demo), "--memory-cluster", str(file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        assert deploy.stdout is not None
        first = deploy.stdout.readline().decode()  # the summary's first line, once recorded
        assert ": success" in first, first
        os.killpg(deploy.pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(deploy.pid, signal.SIGKILL)
        deploy.wait(60)

    shown = subprocess.run(
        [sbkube_exe, "state", "show", "latest", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    recorded = [
        (r["api_version"], r["kind"], r["namespace"], r["name"])
        for app in json.loads(shown.stdout)["apps"]
        for r in app["resources"]
    ]
    assert len(recorded) == 7
    with ApiServer(file, tick_seconds=0) as fresh:
        missing = [key for key in recorded if fresh.get(*key) is None]
    assert missing == []
