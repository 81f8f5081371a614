"""Fixtures for the local API server: a started server on a temp file, the real kubectl and
helm pointed at it through its kubeconfig, and raw HTTP for what the binaries do not show."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sbkube.apiserver import ApiServer

CHARTS = Path(__file__).resolve().parents[2] / "fixtures" / "apiserver" / "charts"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    with ApiServer(tmp_path / "cluster.json") as started:
        yield started


@dataclass
class Kube:
    """The real kubectl and helm, pointed at one server by a kubeconfig."""

    server: ApiServer
    kubeconfig: Path
    kubectl_binary: str
    helm_binary: str
    home: Path

    def _run(
        self, argv: list[str], stdin: str | None, check: bool
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(self.home / "helm-cache"),
            "HELM_CONFIG_HOME": str(self.home / "helm-config"),
            "HELM_DATA_HOME": str(self.home / "helm-data"),
        }
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} failed ({done.returncode}): {done.stderr}")
        return done

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self._run([self.kubectl_binary, *args], stdin, check)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([self.helm_binary, *args], None, check)

    def get(self, *args: str) -> dict[str, Any]:
        """``kubectl get ARGS -o json``, parsed."""
        result: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return result

    def http(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """One raw request; (status code, parsed JSON answer)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.server.url + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


@pytest.fixture
def kube(server: ApiServer, tmp_path: Path, kubectl_binary: str, helm_binary: str) -> Kube:
    kubeconfig = tmp_path / "kubeconfig"
    server.write_kubeconfig(kubeconfig)
    home = tmp_path / "home"
    home.mkdir()
    return Kube(server, kubeconfig, kubectl_binary, helm_binary, home)


@pytest.fixture
def charts() -> Path:
    return CHARTS
