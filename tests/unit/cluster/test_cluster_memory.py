"""MemoryCluster through its Cluster interface: the real kubectl and helm against the local
API server it starts, the fault hooks, the file behind it, and when it starts at all.

The server itself (HTTP, patches, watches, the store) is tested in ``apiserver/``; here it
is what a caller of ``MemoryCluster`` sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sbkube.cluster.memory import MemoryCluster
from sbkube.cluster.port import ChartRef, ReleaseInfo, UpgradeRequest, strip_volatile
from sbkube.errors import ClusterError, ConfigError
from sbkube.manifests import object_key

pytestmark = pytest.mark.kube

WEB = ChartRef(
    str(Path(__file__).resolve().parents[2] / "fixtures" / "apiserver" / "charts" / "web")
)


@pytest.fixture(autouse=True)
def binaries(
    helm_binary: str, kubectl_binary: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # MemoryCluster builds its own clients, which find their binaries through these.
    monkeypatch.setenv("SBKUBE_HELM", helm_binary)
    monkeypatch.setenv("SBKUBE_KUBECTL", kubectl_binary)
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    for var in ("SBKUBE_MEMORY_FAIL_ON", "SBKUBE_MEMORY_BLOCK_ON", "SBKUBE_MEMORY_UNREADY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def cluster() -> Iterator[MemoryCluster]:
    with MemoryCluster() as started:
        started.apply(namespace("apps"))
        yield started


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def cm(name: str, data: Mapping[str, str] | None = None, ns: str = "apps") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": dict(data or {"k": "v"}),
    }


def install(cluster: MemoryCluster, values: Mapping[str, Any], name: str = "shop") -> ReleaseInfo:
    return cluster.helm_upgrade_install(
        UpgradeRequest(WEB, release_name=name, namespace="data", values=values)
    )


def names(cluster: MemoryCluster) -> list[tuple[str, str]]:
    return sorted((o["kind"], o["metadata"]["name"]) for o in cluster.objects())


# ---------------------------------------------------------------- objects


def test_apply_adds_server_fields(cluster: MemoryCluster) -> None:
    live = cluster.apply(cm("a"))
    meta = live["metadata"]
    assert meta["uid"]
    assert int(meta["resourceVersion"]) > 0
    assert meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    assert strip_volatile(live) == cm("a")
    # Read back with the fields sbkube's apply owns (managedFields), which apply's answer
    # leaves out.
    got = cluster.get(object_key(cm("a")))
    assert got is not None
    [entry] = got["metadata"].pop("managedFields")
    assert (entry["manager"], entry["operation"]) == ("sbkube", "Apply")
    assert got == live


def test_unchanged_apply_keeps_resource_version(cluster: MemoryCluster) -> None:
    first = cluster.apply(cm("a"))
    again = cluster.apply(cm("a"))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again == first


def test_changed_apply_bumps_version_keeps_uid(cluster: MemoryCluster) -> None:
    first = cluster.apply(cm("a", {"k": "1"}))
    second = cluster.apply(cm("a", {"k": "2"}))
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["creationTimestamp"] == first["metadata"]["creationTimestamp"]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert second["data"] == {"k": "2"}


def test_objects_leave_out_what_every_cluster_has(cluster: MemoryCluster) -> None:
    cluster.apply(cm("a"))
    install(cluster, {})
    assert names(cluster) == [
        ("ConfigMap", "a"),
        ("ConfigMap", "shop-config"),
        ("Deployment", "shop-web"),
        ("Namespace", "apps"),
        ("Namespace", "data"),
        ("Service", "shop-web"),
    ]
    # ...which the server does hold: helm's release record and the built-in namespaces.
    every = {(o["kind"], o["metadata"]["name"]) for o in cluster.server.objects()}
    assert ("Secret", "sh.helm.release.v1.shop.v1") in every
    assert ("Namespace", "kube-system") in every


def test_get_delete_and_objects_return_copies(cluster: MemoryCluster) -> None:
    cluster.apply(cm("a"))
    objects = cluster.objects()
    [mine] = [o for o in objects if o["kind"] == "ConfigMap"]
    mine["data"]["k"] = "mutated"
    got = cluster.get(("v1", "ConfigMap", "apps", "a"))
    assert got is not None and got["data"] == {"k": "v"}
    got["data"]["k"] = "mutated"
    assert cluster.server.get("v1", "ConfigMap", "apps", "a")["data"] == {"k": "v"}  # type: ignore[index]
    assert cluster.delete(("v1", "ConfigMap", "apps", "a")) is True
    assert cluster.delete(("v1", "ConfigMap", "apps", "a")) is False
    assert cluster.get(("v1", "ConfigMap", "apps", "a")) is None
    assert names(cluster) == [("Namespace", "apps")]


def test_apply_does_not_keep_a_reference_to_the_input(cluster: MemoryCluster) -> None:
    manifest = cm("a")
    cluster.apply(manifest)
    manifest["data"]["k"] = "changed later"
    assert manifest == cm("a", {"k": "changed later"})  # not given server fields either
    live = cluster.get(("v1", "ConfigMap", "apps", "a"))
    assert live is not None and live["data"] == {"k": "v"}


def test_an_object_in_a_missing_namespace_is_refused_in_one_line(cluster: MemoryCluster) -> None:
    with pytest.raises(ClusterError) as refused:
        cluster.apply(cm("a", ns="nowhere"))
    message = str(refused.value)
    assert message.startswith("kubectl apply ConfigMap/nowhere/a failed: ")
    assert 'namespaces "nowhere" not found' in message
    assert "\n" not in message


# ---------------------------------------------------------------- fault hooks


def test_fail_on_object_name() -> None:
    with MemoryCluster(fail_on={"bad"}) as cluster:
        cluster.apply(namespace("apps"))
        with pytest.raises(ClusterError, match="injected failure for bad") as err:
            cluster.apply(cm("bad"))
        assert "ConfigMap/apps/bad" in str(err.value)
        assert cluster.get(("v1", "ConfigMap", "apps", "bad")) is None
        cluster.apply(cm("good"))  # other names unaffected
        # The set is live: a test can change it between calls.
        cluster.server.faults.fail_on.discard("bad")
        cluster.apply(cm("bad"))
        assert ("ConfigMap", "bad") in names(cluster)


def test_fail_on_from_the_environment_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBKUBE_MEMORY_FAIL_ON", "one, two")
    with MemoryCluster() as cluster:
        cluster.apply(namespace("apps"))
        for name in ("one", "two"):
            with pytest.raises(ClusterError, match=f"injected failure for {name}"):
                cluster.apply(cm(name))
        cluster.apply(cm("three"))
    with MemoryCluster(fail_on={"three"}) as cluster:
        cluster.apply(namespace("apps"))
        cluster.apply(cm("one"))  # the constructor's set replaces the environment's
        with pytest.raises(ClusterError, match="injected failure for three"):
            cluster.apply(cm("three"))


def test_fail_on_release_name_makes_helm_record_a_failed_revision(
    cluster: MemoryCluster,
) -> None:
    install(cluster, {"message": "red"})
    cluster.server.faults.fail_on.add("shop")
    with pytest.raises(ClusterError, match="injected failure for shop") as err:
        install(cluster, {"message": "green"})
    assert str(err.value).startswith("helm upgrade --install shop failed: ")
    history = cluster.helm_history("shop", "data")
    assert [(r.revision, r.status) for r in history] == [(1, "deployed"), (2, "failed")]
    assert "injected failure" in history[1].description
    # Every write of the release failed, so the old config is still live.
    live = cluster.get(("v1", "ConfigMap", "data", "shop-config"))
    assert live is not None and live["data"] == {"message": "red"}
    # A failed release can be upgraded once the cause is gone.
    cluster.server.faults.fail_on.clear()
    info = install(cluster, {"message": "green"})
    assert (info.revision, info.status) == (3, "deployed")
    assert [r.status for r in cluster.helm_history("shop", "data")] == [
        "superseded",
        "failed",
        "deployed",
    ]


def test_release_is_what_helm_reports(cluster: MemoryCluster) -> None:
    assert cluster.release("shop", "data") is None
    installed = install(cluster, {"message": "hi"})
    release = cluster.release("shop", "data")
    assert release is not None
    assert (release.name, release.namespace, release.revision, release.status) == (
        "shop",
        "data",
        1,
        "deployed",
    )
    assert (release.chart, release.chart_version) == ("web", "0.1.0")
    assert release.values == {"message": "hi"}
    assert release.revision == installed.revision


# ---------------------------------------------------------------- the file


def test_building_one_starts_nothing_and_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cluster.json"
    cluster = MemoryCluster(path)
    assert "not started" in repr(cluster)
    assert not path.parent.exists()
    cluster.close()
    assert not path.parent.exists()  # closing an unstarted cluster writes nothing either
    with pytest.raises(ClusterError, match="is closed"):
        cluster.objects()


def test_state_persists_across_instances_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    with MemoryCluster(path) as first:
        first.apply(namespace("apps"))
        first.apply(cm("a"))
        install(first, {"message": "red"})
        before = first.objects()
        release = first.release("shop", "data")
    assert json.loads(path.read_text())["format"] == 2

    with MemoryCluster(path) as second:
        assert second.objects() == before
        assert second.release("shop", "data") == release
        # helm finds its release history there and continues it.
        assert install(second, {"message": "green"}).revision == 2
        second.delete(("v1", "ConfigMap", "apps", "a"))
    with MemoryCluster(path) as third:
        assert third.get(("v1", "ConfigMap", "apps", "a")) is None
        assert [r.revision for r in third.helm_history("shop", "data")] == [1, 2]
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.json", "cluster.json.lock"]


def test_a_file_in_use_is_refused_naming_the_process(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    with MemoryCluster(path) as first:
        first.apply(namespace("apps"))
        second = MemoryCluster(path)
        with pytest.raises(ClusterError) as refused:
            second.objects()
        message = str(refused.value)
        assert message.startswith(f"{path} is served by pid {os.getpid()} at {first.server.url}")
        assert "\n" not in message
        second.close()
    with MemoryCluster(path) as again:  # free once the first one closed
        assert names(again) == [("Namespace", "apps")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not a memory cluster file (invalid JSON"),
        ('{"objects": [], "releases": []}', "a format-1 memory cluster file"),
        ('{"format": 7, "objects": []}', "format 7, expected 2"),
    ],
)
def test_a_bad_or_old_file_is_refused_in_one_line(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "cluster.json"
    path.write_text(content)
    cluster = MemoryCluster(path)
    with pytest.raises(ConfigError) as refused:
        cluster.objects()
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message
    cluster.close()
    assert path.read_text() == content  # refused, not overwritten
