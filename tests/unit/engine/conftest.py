"""Fixtures for the engine tests: an app dir copied from ``tests/fixtures/engine/shop``, an
in-memory cluster rendering charts with the real helm, and helpers to edit the app dir and
to compare live objects.

The ``shop`` app dir deploys, in this order: ``cache`` (a local Helm chart with a ConfigMap
and a Secret), ``web`` (YAML: ConfigMap, Deployment, Service; depends on cache) and
``worker`` (YAML: ConfigMap and Secret; independent).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbkube.cluster.helm import HelmClient, upgrade_install_argv
from sbkube.cluster.memory import MemoryCluster
from sbkube.cluster.port import ChartRef, UpgradeRequest, strip_volatile
from sbkube.cluster.process import VALUES_FROM_STDIN, values_json

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "engine"
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def helm(helm_binary: str) -> HelmClient:
    return HelmClient(helm_binary)


@pytest.fixture
def cluster(helm: HelmClient) -> Iterator[MemoryCluster]:
    with MemoryCluster(helm=helm) as memory:
        yield memory


@pytest.fixture
def make_cluster(helm: HelmClient) -> Iterator[Callable[..., MemoryCluster]]:
    made: list[MemoryCluster] = []

    def make(**kwargs: Any) -> MemoryCluster:
        made.append(MemoryCluster(helm=helm, **kwargs))
        return made[-1]

    yield make
    for memory in made:
        memory.close()


def _pending(cluster: MemoryCluster, release: str, namespace: str) -> bool:
    # Helm's storage labels each release Secret with its status.
    return any(
        o["kind"] == "Secret"
        and o["metadata"].get("namespace") == namespace
        and (o["metadata"].get("labels") or {}).get("name") == release
        and (o["metadata"].get("labels") or {}).get("status", "").startswith("pending")
        for o in cluster.server.objects()
    )


class AppDir:
    """An editable app dir copied into tmp_path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def docs(self, relative: str) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all((self.path / relative).read_text()) if d]

    def edit(
        self, relative: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
    ) -> None:
        """Rewrite a manifest file: ``change`` gets its documents and returns the new ones."""
        docs = change(self.docs(relative))
        (self.path / relative).write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def set_values(self, **values: Any) -> None:
        """Rewrite the values file of the ``cache`` Helm app."""
        (self.path / "values" / "cache.yaml").write_text(yaml.safe_dump(values))

    @staticmethod
    def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
        """The document of ``kind`` and ``name`` among a manifest's ``docs`` (for ``edit``)."""
        return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.fixture
def shop(tmp_path: Path) -> AppDir:
    """A fresh, editable copy of the ``shop`` app dir."""
    return AppDir(Path(shutil.copytree(FIXTURES / "shop", tmp_path / "shop")))


@pytest.fixture
def demo(tmp_path: Path) -> AppDir:
    """A fresh, editable copy of ``examples/demo``."""
    return AppDir(Path(shutil.copytree(REPO_ROOT / "examples" / "demo", tmp_path / "demo")))


class ClusterProbe:
    """What the engine tests read from a memory cluster (its live objects, Helm's own
    storage) and the one state they arrange on it (a release left pending by a killed
    helm). A fixture object: conftest modules are not importable by name."""

    @staticmethod
    def leave_pending(
        cluster: MemoryCluster,
        chart: ChartRef,
        release: str,
        namespace: str,
        values: Mapping[str, Any],
    ) -> None:
        """What a run killed in the middle of ``helm upgrade --install`` leaves: the real helm
        is started against the cluster, held by the server's block hook once it has stored its
        pending revision, and killed there."""
        cluster.server.faults.block_on.add(release)
        try:
            argv = upgrade_install_argv(
                cluster.helm.binary,
                UpgradeRequest(chart, release_name=release, namespace=namespace),
                values_file=VALUES_FROM_STDIN,
                flags=cluster.helm.flags,
            )
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdin is not None
            proc.stdin.write(values_json(values))
            proc.stdin.close()
            try:
                deadline = time.monotonic() + 30
                while not _pending(cluster, release, namespace):
                    assert proc.poll() is None, "helm finished before the block hook held it"
                    assert time.monotonic() < deadline, "helm never stored a pending revision"
                    time.sleep(0.05)
            finally:
                proc.kill()
                proc.wait()
        finally:
            cluster.server.faults.block_on.discard(release)

    @staticmethod
    def live_state(cluster: MemoryCluster) -> list[dict[str, Any]]:
        """Every live object without the fields the API server maintains or allocates (a
        re-created Service gets a new cluster IP, as on any cluster)."""
        state = [strip_volatile(o) for o in cluster.objects()]
        for obj in state:
            if obj["kind"] == "Service":
                obj["spec"].pop("clusterIP", None)
                obj["spec"].pop("clusterIPs", None)
        return state

    @staticmethod
    def live_names(cluster: MemoryCluster) -> set[tuple[str, str]]:
        """Kinds and names of the live objects but namespaces (made by helm --create-namespace
        or for a YAML app's target, not objects of the apps)."""
        return {
            (o["kind"], o["metadata"]["name"])
            for o in cluster.objects()
            if o["kind"] != "Namespace"
        }

    @staticmethod
    def helm_releases(cluster: MemoryCluster) -> list[tuple[str, str, str, str]]:
        """Helm's own storage: (namespace, release, revision, status) of every release Secret."""
        rows = []
        for obj in cluster.server.objects():
            labels = obj["metadata"].get("labels") or {}
            if obj["kind"] == "Secret" and labels.get("owner") == "helm":
                rows.append(
                    (
                        obj["metadata"]["namespace"],
                        labels["name"],
                        labels["version"],
                        labels["status"],
                    )
                )
        return sorted(rows)


@pytest.fixture
def probe() -> ClusterProbe:
    return ClusterProbe()
