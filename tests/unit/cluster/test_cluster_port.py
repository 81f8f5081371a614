"""The port's value types and helpers, and the package's lazy imports."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest

from sbkube.cluster.port import (
    PENDING_STATUSES,
    ChartRef,
    Cluster,
    ReleaseInfo,
    ReleaseStatus,
    is_cluster_scoped,
    strip_volatile,
)
from sbkube.errors import ConfigError
from sbkube.manifests import format_key, object_key


def test_object_key_of_namespaced_object() -> None:
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod"},
    }
    assert object_key(manifest) == ("apps/v1", "Deployment", "prod", "web")


def test_object_key_without_namespace_is_empty_string() -> None:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}
    assert object_key(manifest) == ("v1", "ConfigMap", "", "cfg")


def test_object_key_drops_namespace_of_cluster_scoped_kinds() -> None:
    manifest = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader", "namespace": "ignored"},
    }
    assert object_key(manifest) == ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "reader")
    assert is_cluster_scoped("Namespace")
    assert not is_cluster_scoped("Secret")


@pytest.mark.parametrize(
    ("manifest", "missing"),
    [
        ({"kind": "ConfigMap", "metadata": {"name": "x"}}, "apiVersion"),
        ({"apiVersion": "v1", "metadata": {"name": "x"}}, "kind"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "metadata.name"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "metadata.name"),
    ],
)
def test_object_key_rejects_incomplete_manifests(manifest: dict, missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        object_key(manifest)


def test_format_key() -> None:
    assert format_key(("v1", "Secret", "ns", "pw")) == "Secret/ns/pw"
    assert format_key(("v1", "Namespace", "", "ns")) == "Namespace/ns"


def test_strip_volatile_removes_server_fields_and_copies() -> None:
    live: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cfg",
            "uid": "1234",
            "resourceVersion": "7",
            "generation": 2,
            "creationTimestamp": "2026-11-26T08:51:20Z",
            "managedFields": [{"manager": "kubectl"}],
            "labels": {"a": "b"},
        },
        "data": {"k": "v"},
        "status": {"phase": "Active"},
    }
    stripped = strip_volatile(live)
    assert stripped == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "labels": {"a": "b"}},
        "data": {"k": "v"},
    }
    stripped["metadata"]["labels"]["a"] = "changed"
    assert live["metadata"]["labels"]["a"] == "b"  # deep copy, input untouched
    assert "uid" in live["metadata"]


@pytest.mark.parametrize(
    ("ref", "url", "expected"),
    [
        ("bitnami/redis", "https://charts.bitnami.com/bitnami", "bitnami"),
        ("bitnami/redis", None, None),  # no repos: entry: nothing to add
        ("/abs/charts/redis", "https://x", None),
        ("./charts/redis", "https://x", None),
        ("oci://registry.example/charts/redis", "https://x", None),
        ("a/b/c", "https://x", None),
    ],
)
def test_chart_ref_repo_name(ref: str, url: str | None, expected: str | None) -> None:
    assert ChartRef(ref, repo_url=url).repo_name == expected


def test_value_types_are_frozen() -> None:
    ref = ChartRef("repo/chart", version="1.2.3", repo_url="https://charts.example.com")
    info = ReleaseInfo(
        name="r",
        namespace="ns",
        revision=1,
        status="pending-upgrade",
        chart="chart",
        chart_version="1.2.3",
        app_version=None,
        values={"a": 1},
        updated=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.version = "2"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.revision = 2  # type: ignore[misc]
    assert info.pending
    assert {"pending-install", "pending-upgrade", "pending-rollback"} == PENDING_STATUSES
    assert "deployed" not in PENDING_STATUSES


def test_implementations_satisfy_the_protocol() -> None:
    from sbkube.cluster import KubeCluster, MemoryCluster

    assert isinstance(MemoryCluster(), Cluster)
    assert isinstance(KubeCluster(context="ctx"), Cluster)
    assert KubeCluster(context="ctx").name == "ctx"
    assert MemoryCluster(name="plan").name == "plan"


def test_package_exports_resolve_lazily() -> None:
    # A fresh interpreter: importing the package must not load helm/kubectl/memory/yaml.
    code = textwrap.dedent(
        """
        import sys
        import sbkube.cluster as c
        heavy = ["sbkube.cluster.helm", "sbkube.cluster.memory", "sbkube.cluster.kube",
                 "sbkube.cluster.kubectl", "yaml", "subprocess"]
        loaded = [m for m in heavy if m in sys.modules]
        assert not loaded, loaded
        assert c.MemoryCluster.__name__ == "MemoryCluster"
        assert "sbkube.cluster.memory" in sys.modules
        key = c.object_key({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})
        assert key == ("v1", "Namespace", "", "n")
        try:
            c.Nope
        except AttributeError:
            pass
        else:
            raise SystemExit("no AttributeError")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_package_all_names_import() -> None:
    import sbkube.cluster as pkg

    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
    assert "MemoryCluster" in dir(pkg)


def test_release_statuses_are_a_str_enum() -> None:
    from sbkube.cluster.helm import parse_history_json, parse_status_json

    assert (
        ReleaseStatus.DEPLOYED == "deployed" and "pending-upgrade" == ReleaseStatus.PENDING_UPGRADE
    )
    assert ReleaseStatus("pending-rollback").pending and not ReleaseStatus.FAILED.pending
    assert ReleaseStatus("a-status-helm-adds-later") is ReleaseStatus.UNKNOWN
    assert f"{ReleaseStatus.UNINSTALLED}" == "uninstalled"
    assert {"deployed": 1}[ReleaseStatus.DEPLOYED] == 1  # hashes as its string
    status = parse_status_json('{"name": "r", "version": 2, "info": {"status": "superseded"}}')
    assert status.status is ReleaseStatus.SUPERSEDED
    (first,) = parse_history_json('[{"revision": 1, "status": "pending-install"}]', "r", "n")
    assert first.status is ReleaseStatus.PENDING_INSTALL and first.pending


def test_the_port_is_two_small_roles_and_their_union() -> None:
    from sbkube.cluster import KubeCluster, Objects, Releases

    def members(role: type) -> set[str]:
        return {n for n in vars(role) if not n.startswith("_")}

    releases, objects = members(Releases), members(Objects)
    assert not releases & objects
    chart_ops = {"render_chart", "chart_crds", "pull_chart"}
    assert all(n.startswith("helm_") for n in releases - chart_ops)
    assert {"get", "apply", "delete", "namespaced", "check_reachable"} <= objects
    # The union adds only the identity, the reads ahead of a command and the dry-run view.
    assert members(Cluster) == {"name", "read_ahead", "dry_run", "as_dry_run"}
    assert issubclass(Cluster, Releases) and issubclass(Cluster, Objects)
    cluster = KubeCluster(context="ctx")
    assert isinstance(cluster, Releases) and isinstance(cluster, Objects)
    assert not isinstance(object(), Releases)
