"""MemoryCluster: objects, API-server fields, persistence, test hooks, Helm release rules.

Release rules are tested with a stub renderer (fast, no helm needed); the real ``helm
template`` path is covered in test_memory_helm.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.memory import MemoryCluster
from sbkube.cluster.port import ChartRef, ReleaseInfo, object_key, strip_volatile
from sbkube.errors import ClusterError

CHART = ChartRef(str(Path(__file__).resolve().parents[2] / "fixtures" / "charts" / "demo-redis"))


def cm(name: str, data: Mapping[str, str] | None = None, namespace: str = "apps") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(data or {"k": "v"}),
    }


class StubHelm(HelmClient):
    """Renders a ConfigMap always, and a Secret only when values have ``secret``."""

    def __init__(self) -> None:
        super().__init__(binary="helm-is-not-needed")
        self.renders = 0

    def template(
        self,
        chart: ChartRef,
        *,
        release_name: str,
        namespace: str,
        values: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        self.renders += 1
        out = [cm(f"{release_name}-config", {"color": str(values.get("color", "blue"))}, namespace)]
        if "secret" in values:
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": f"{release_name}-auth", "namespace": namespace},
                    "stringData": {"password": str(values["secret"])},
                }
            )
        return out


@pytest.fixture
def cluster() -> MemoryCluster:
    return MemoryCluster(helm=StubHelm())


def install(cluster: MemoryCluster, values: Mapping[str, Any], name: str = "cache") -> ReleaseInfo:
    return cluster.helm_upgrade_install(CHART, release_name=name, namespace="data", values=values)


# ---------------------------------------------------------------- objects


def test_apply_adds_server_fields(cluster: MemoryCluster) -> None:
    live = cluster.apply(cm("a"))
    meta = live["metadata"]
    assert meta["uid"]
    assert meta["resourceVersion"] == "1"
    assert meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    assert strip_volatile(live) == cm("a")
    assert cluster.get(object_key(cm("a"))) == live


def test_unchanged_apply_keeps_resource_version(cluster: MemoryCluster) -> None:
    first = cluster.apply(cm("a"))
    again = cluster.apply(cm("a"))
    assert again == first
    # applying the live object back (volatile fields included) is a no-op too
    assert cluster.apply(first)["metadata"]["resourceVersion"] == "1"


def test_changed_apply_bumps_version_keeps_uid(cluster: MemoryCluster) -> None:
    first = cluster.apply(cm("a", {"k": "1"}))
    second = cluster.apply(cm("a", {"k": "2"}))
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["creationTimestamp"] == first["metadata"]["creationTimestamp"]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert second["metadata"]["generation"] == 2
    assert second["data"] == {"k": "2"}
    labelled = cm("a", {"k": "2"})
    labelled["metadata"]["labels"] = {"team": "x"}
    third = cluster.apply(labelled)
    # a metadata-only change is a new resourceVersion but not a new generation
    assert third["metadata"]["generation"] == 2
    assert third["metadata"]["resourceVersion"] != second["metadata"]["resourceVersion"]


def test_get_delete_and_objects_return_copies(cluster: MemoryCluster) -> None:
    cluster.apply(cm("b"))
    cluster.apply(cm("a"))
    objects = cluster.objects()
    assert [o["metadata"]["name"] for o in objects] == ["a", "b"]
    objects[0]["data"]["k"] = "mutated"
    got = cluster.get(("v1", "ConfigMap", "apps", "a"))
    assert got is not None and got["data"] == {"k": "v"}
    got["data"]["k"] = "mutated"
    assert cluster.objects()[0]["data"] == {"k": "v"}
    assert cluster.delete(("v1", "ConfigMap", "apps", "a")) is True
    assert cluster.delete(("v1", "ConfigMap", "apps", "a")) is False
    assert cluster.get(("v1", "ConfigMap", "apps", "a")) is None
    assert len(cluster.objects()) == 1


def test_apply_does_not_keep_a_reference_to_the_input(cluster: MemoryCluster) -> None:
    manifest = cm("a")
    cluster.apply(manifest)
    manifest["data"]["k"] = "changed later"
    assert cluster.objects()[0]["data"] == {"k": "v"}
    assert "uid" not in manifest["metadata"]


# ---------------------------------------------------------------- test hooks


def test_fail_on_object_name(cluster: MemoryCluster) -> None:
    cluster.fail_on["bad"] = "admission webhook denied the request"
    with pytest.raises(ClusterError, match="admission webhook denied") as err:
        cluster.apply(cm("bad"))
    assert "ConfigMap/apps/bad" in str(err.value)
    assert cluster.get(("v1", "ConfigMap", "apps", "bad")) is None
    cluster.apply(cm("good"))  # other names unaffected


def test_fail_on_from_constructor_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBKUBE_MEMORY_FAIL_ON", "one, two")
    cluster = MemoryCluster(helm=StubHelm(), fail_on={"three": "nope"})
    for name in ("one", "two", "three"):
        with pytest.raises(ClusterError):
            cluster.apply(cm(name))
    cluster.apply(cm("four"))
    assert [o["metadata"]["name"] for o in cluster.objects()] == ["four"]


def test_fail_on_release_records_failed_revision(cluster: MemoryCluster) -> None:
    install(cluster, {"color": "red"})
    cluster.fail_on["cache"] = "timed out waiting for the condition"
    with pytest.raises(ClusterError, match="timed out waiting") as err:
        install(cluster, {"color": "green"})
    assert str(err.value).startswith("helm upgrade --install cache failed: ")
    history = cluster.helm_history("cache", "data")
    assert [(r.revision, r.status) for r in history] == [(1, "deployed"), (2, "failed")]
    assert "timed out" in history[1].description
    # nothing changed on the cluster: the old config is still live
    live = cluster.get(("v1", "ConfigMap", "data", "cache-config"))
    assert live is not None and live["data"] == {"color": "red"}
    # a failed release can be upgraded once the cause is gone
    del cluster.fail_on["cache"]
    info = install(cluster, {"color": "green"})
    assert (info.revision, info.status) == (3, "deployed")
    assert [r.status for r in cluster.helm_history("cache", "data")] == [
        "superseded",
        "failed",
        "deployed",
    ]


def test_fail_on_rendered_object_fails_the_upgrade(cluster: MemoryCluster) -> None:
    cluster.fail_on["cache-auth"] = "secrets are forbidden"
    with pytest.raises(ClusterError, match="secrets are forbidden"):
        install(cluster, {"secret": "pw"})
    status = cluster.helm_status("cache", "data")
    assert status is not None and (status.revision, status.status) == (1, "failed")
    assert cluster.objects() == []


def test_pending_release_refuses_upgrade_until_rolled_back(cluster: MemoryCluster) -> None:
    install(cluster, {"color": "red"})
    install(cluster, {"color": "green"})
    cluster.set_release_status("cache", "data", "pending-upgrade")
    status = cluster.release("cache", "data")
    assert status is not None and status.status == "pending-upgrade" and status.pending
    with pytest.raises(ClusterError, match="another operation"):
        install(cluster, {"color": "blue"})
    rolled = cluster.helm_rollback("cache", "data", 1)
    assert (rolled.revision, rolled.status, dict(rolled.values)) == (
        3,
        "deployed",
        {"color": "red"},
    )
    assert install(cluster, {"color": "blue"}).revision == 4


def test_set_release_status_validates(cluster: MemoryCluster) -> None:
    with pytest.raises(ClusterError, match="not found"):
        cluster.set_release_status("ghost", "data", "failed")
    install(cluster, {})
    with pytest.raises(ValueError, match="unknown helm release status"):
        cluster.set_release_status("cache", "data", "sleeping")


# ---------------------------------------------------------------- releases


def test_install_is_revision_one(cluster: MemoryCluster) -> None:
    assert cluster.helm_status("cache", "data") is None
    assert cluster.helm_history("cache", "data") == []
    info = install(cluster, {"color": "red"})
    assert (info.name, info.namespace, info.revision, info.status) == (
        "cache",
        "data",
        1,
        "deployed",
    )
    assert (info.chart, info.chart_version, info.app_version) == ("demo-redis", "0.1.0", "7.2.4")
    assert info.values == {"color": "red"}
    assert info.description == "Install complete"
    assert info.updated is not None and info.updated.utcoffset() is not None
    assert cluster.helm_status("cache", "data") == info


def test_upgrades_add_revisions_and_supersede(cluster: MemoryCluster) -> None:
    install(cluster, {"color": "red"})
    install(cluster, {"color": "green"})
    info = install(cluster, {"color": "blue"})
    assert info.revision == 3
    assert info.description == "Upgrade complete"
    history = cluster.helm_history("cache", "data")
    assert [(r.revision, r.status) for r in history] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]
    assert [r.values for r in history] == [{"color": "red"}, {"color": "green"}, {"color": "blue"}]
    assert cluster.helm_get_values("cache", "data") == {"color": "blue"}
    assert cluster.helm_get_values("cache", "data", 1) == {"color": "red"}
    with pytest.raises(ClusterError, match="not found"):
        cluster.helm_get_values("cache", "data", 9)
    with pytest.raises(ClusterError, match="release: not found"):
        cluster.helm_get_values("ghost", "data")


def test_values_are_copied_not_shared(cluster: MemoryCluster) -> None:
    values: dict[str, Any] = {"color": "red", "nested": {"a": 1}}
    install(cluster, values)
    values["nested"]["a"] = 2
    assert cluster.helm_get_values("cache", "data") == {"color": "red", "nested": {"a": 1}}
    got = cluster.helm_get_values("cache", "data")
    got["color"] = "mutated"
    assert cluster.helm_get_values("cache", "data")["color"] == "red"


def test_rollback_copies_target_values_into_new_revision(cluster: MemoryCluster) -> None:
    install(cluster, {"color": "red", "secret": "one"})
    install(cluster, {"color": "green"})
    install(cluster, {"color": "blue"})
    info = cluster.helm_rollback("cache", "data", 1)
    assert (info.revision, info.status, info.description) == (4, "deployed", "Rollback to 1")
    assert info.values == {"color": "red", "secret": "one"}
    assert [r.status for r in cluster.helm_history("cache", "data")] == [
        "superseded",
        "superseded",
        "superseded",
        "deployed",
    ]
    # the rolled-back objects are live again, including the Secret only revision 1 had
    config = cluster.get(("v1", "ConfigMap", "data", "cache-config"))
    assert config is not None and config["data"] == {"color": "red"}
    assert cluster.get(("v1", "Secret", "data", "cache-auth")) is not None
    # rollback 0 = previous revision (helm's convention)
    assert cluster.helm_rollback("cache", "data", 0).values == {"color": "blue"}


def test_rollback_errors(cluster: MemoryCluster) -> None:
    with pytest.raises(ClusterError, match="release: not found"):
        cluster.helm_rollback("cache", "data", 1)
    install(cluster, {})
    with pytest.raises(ClusterError, match="release has no 7 version"):
        cluster.helm_rollback("cache", "data", 7)
    assert len(cluster.helm_history("cache", "data")) == 1


def test_upgrade_prunes_objects_no_longer_rendered(cluster: MemoryCluster) -> None:
    install(cluster, {"secret": "pw"})
    assert cluster.get(("v1", "Secret", "data", "cache-auth")) is not None
    install(cluster, {})
    assert cluster.get(("v1", "Secret", "data", "cache-auth")) is None
    assert cluster.get(("v1", "ConfigMap", "data", "cache-config")) is not None


def test_helm_objects_carry_release_ownership(cluster: MemoryCluster) -> None:
    install(cluster, {})
    live = cluster.get(("v1", "ConfigMap", "data", "cache-config"))
    assert live is not None
    assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert live["metadata"]["annotations"]["meta.helm.sh/release-name"] == "cache"
    assert live["metadata"]["annotations"]["meta.helm.sh/release-namespace"] == "data"
    assert cluster.release_manifests("cache", "data") == [
        cm("cache-config", {"color": "blue"}, "data")
    ]


def test_uninstall_removes_release_and_its_objects_only(cluster: MemoryCluster) -> None:
    install(cluster, {"secret": "pw"})
    install(cluster, {}, name="other")
    cluster.apply(cm("unrelated", namespace="data"))
    cluster.helm_uninstall("cache", "data")
    assert cluster.helm_status("cache", "data") is None
    assert cluster.helm_history("cache", "data") == []
    names = sorted(o["metadata"]["name"] for o in cluster.objects())
    assert names == ["other-config", "unrelated"]
    cluster.helm_uninstall("cache", "data")  # already gone: not an error
    # installing again starts over at revision 1
    assert install(cluster, {}).revision == 1


def test_releases_are_per_namespace(cluster: MemoryCluster) -> None:
    install(cluster, {})
    cluster.helm_upgrade_install(CHART, release_name="cache", namespace="other", values={})
    assert cluster.helm_status("cache", "other") is not None
    assert [(r.namespace, r.revision) for r in cluster.releases()] == [("data", 1), ("other", 1)]


# ---------------------------------------------------------------- snapshot, copy, seed


def test_copy_is_independent(cluster: MemoryCluster) -> None:
    install(cluster, {"color": "red"})
    cluster.apply(cm("a"))
    plan = cluster.copy()
    assert plan.objects() == cluster.objects()
    assert plan.helm_history("cache", "data") == cluster.helm_history("cache", "data")
    plan.apply(cm("a", {"k": "changed"}))
    plan.helm_upgrade_install(CHART, release_name="cache", namespace="data", values={})
    assert cluster.get(("v1", "ConfigMap", "apps", "a"))["data"] == {"k": "v"}  # type: ignore[index]
    status = cluster.helm_status("cache", "data")
    assert status is not None and status.revision == 1


def test_snapshot_round_trip_is_json(cluster: MemoryCluster) -> None:
    install(cluster, {"color": "red"})
    install(cluster, {"color": "green"})
    cluster.apply(cm("a"))
    data = json.loads(json.dumps(cluster.snapshot()))
    restored = MemoryCluster.from_snapshot(data, helm=StubHelm())
    assert restored.name == "memory"
    assert restored.objects() == cluster.objects()
    assert restored.helm_history("cache", "data") == cluster.helm_history("cache", "data")
    # the resourceVersion counter continues instead of restarting
    assert int(restored.apply(cm("b"))["metadata"]["resourceVersion"]) > 3
    # pruning still works after the round trip
    restored.helm_rollback("cache", "data", 1)
    assert restored.helm_status("cache", "data").values == {"color": "red"}  # type: ignore[union-attr]


def test_seed_from_recorded_state(cluster: MemoryCluster) -> None:
    owned = cm("cache-config", {"color": "red"}, "data")
    owned["metadata"]["annotations"] = {
        "meta.helm.sh/release-name": "cache",
        "meta.helm.sh/release-namespace": "data",
    }
    plan = MemoryCluster(name="k3s", helm=StubHelm())
    plan.seed(
        [cm("plain"), owned],
        [
            ReleaseInfo("cache", "data", 4, "superseded", "demo-redis", "0.1.0", None, {"n": 4}),
            ReleaseInfo("cache", "data", 5, "deployed", "demo-redis", "0.1.0", "7.2.4", {"n": 5}),
        ],
    )
    assert plan.name == "k3s"
    assert len(plan.objects()) == 2
    assert plan.objects()[0]["metadata"]["uid"]  # seeded objects look live
    history = plan.helm_history("cache", "data")
    assert [(r.revision, r.status) for r in history] == [(4, "superseded"), (5, "deployed")]
    assert history[1].updated is not None
    # an upgrade continues the seeded history and prunes the seeded release objects
    info = plan.helm_upgrade_install(
        CHART, release_name="cache", namespace="data", values={"secret": "x"}
    )
    assert info.revision == 6
    assert plan.helm_get_values("cache", "data", 5) == {"n": 5}
    assert plan.get(("v1", "Secret", "data", "cache-auth")) is not None
    # rolling back to the seeded revision restores its objects
    plan.helm_rollback("cache", "data", 5)
    assert plan.get(("v1", "Secret", "data", "cache-auth")) is None
    restored = plan.get(("v1", "ConfigMap", "data", "cache-config"))
    assert restored is not None and restored["data"] == {"color": "red"}


# ---------------------------------------------------------------- persistence


def test_state_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    first = MemoryCluster(path, helm=StubHelm())
    install(first, {"color": "red"})
    first.apply(cm("a"))
    assert path.is_file()
    assert json.loads(path.read_text())["format"] == 1

    second = MemoryCluster(path, helm=StubHelm())
    assert second.objects() == first.objects()
    assert second.helm_status("cache", "data") == first.helm_status("cache", "data")

    # each instance sees the other's later writes without being rebuilt
    install(second, {"color": "green"})
    status = first.helm_status("cache", "data")
    assert status is not None and status.revision == 2
    first.delete(("v1", "ConfigMap", "apps", "a"))
    assert second.get(("v1", "ConfigMap", "apps", "a")) is None
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.json", "cluster.json.lock"]


def test_missing_file_starts_empty_and_bad_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cluster.json"
    cluster = MemoryCluster(path)
    assert cluster.objects() == []
    assert not path.exists()  # nothing written until something changes
    cluster.apply(cm("a"))
    assert path.exists()
    path.write_text("{not json")
    with pytest.raises(ClusterError, match="cannot read memory cluster state"):
        MemoryCluster(path)


def test_concurrent_writers_do_not_lose_updates(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            cluster = MemoryCluster(path)  # one instance per writer, like separate processes
            for i in range(15):
                cluster.apply(cm(f"{prefix}-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("x", "y", "z")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    objects = MemoryCluster(path).objects()
    assert len(objects) == 45
    versions = [int(o["metadata"]["resourceVersion"]) for o in objects]
    assert sorted(versions) == list(range(1, 46))  # one counter, no two writes collided
