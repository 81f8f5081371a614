"""The reads a plan or diff makes: many objects in one kubectl call, whether the cluster
answers at all, a chart's crds/, and the pure pieces they rest on.

The reads run the real kubectl and helm against the local API server (marker ``kube``);
an unreachable cluster is a kubeconfig pointing at a loopback port nothing listens on.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sbkube.cluster import kubectl as k
from sbkube.cluster.kube import KubeCluster
from sbkube.cluster.memory import MemoryCluster
from sbkube.cluster.port import ChartRef, TemplateRequest
from sbkube.errors import ClusterError

CHARTS = Path(__file__).resolve().parents[2] / "fixtures" / "apiserver" / "charts"


def cm(name: str, ns: str = "apps") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"k": name},
    }


# ---------------------------------------------------------------- pure


def test_get_many_argv_reads_the_list_on_stdin_and_skips_the_missing() -> None:
    argv = k.get_many_argv("kubectl", flags=k.cluster_flags(context="c"))
    assert argv == [
        "kubectl",
        "get",
        "--filename",
        "-",
        "--ignore-not-found",
        "--output",
        "json",
        "--show-managed-fields",
        "--context",
        "c",
    ]


def test_stub_names_the_object_and_nothing_else() -> None:
    assert k.stub(("apps/v1", "Deployment", "web", "api")) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "web"},
    }
    assert k.stub(("v1", "Namespace", "", "web"))["metadata"] == {"name": "web"}


def test_parse_list_takes_a_list_or_one_object() -> None:
    one = cm("a")
    assert k.parse_list(json.dumps(one), "w") == [one]
    assert k.parse_list(json.dumps({"kind": "List", "items": [one, one]}), "w") == [one, one]
    assert k.parse_list("", "w") == []
    with pytest.raises(ClusterError, match="invalid JSON"):
        k.parse_list("{", "w")


def test_match_objects_by_group_kind_namespace_and_name() -> None:
    widget_v2 = {"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w"}}
    items = [cm("a"), widget_v2]
    keys = [
        ("v1", "ConfigMap", "apps", "a"),
        ("v1", "ConfigMap", "apps", "b"),
        # Another version of the group, and a namespace the cluster-scoped kind dropped.
        ("example.com/v1", "Widget", "apps", "w"),
    ]
    found = k.match_objects(keys, items)
    assert found[keys[0]] == cm("a")
    assert found[keys[1]] is None
    assert found[keys[2]] == widget_v2
    other_group = ("other.io/v1", "ConfigMap", "apps", "a")
    assert k.match_objects([other_group], [cm("a"), {**cm("a"), "apiVersion": "x.io/v1"}]) == {
        other_group: None
    }


# ---------------------------------------------------------------- real kubectl and helm


@pytest.fixture
def binaries(
    helm_binary: str, kubectl_binary: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SBKUBE_HELM", helm_binary)
    monkeypatch.setenv("SBKUBE_KUBECTL", kubectl_binary)
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))


@pytest.fixture
def cluster(binaries: None) -> Iterator[MemoryCluster]:
    with MemoryCluster() as started:
        started.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
        yield started


@pytest.mark.kube
def test_get_many_reads_present_and_missing_objects_in_one_call(cluster: MemoryCluster) -> None:
    cluster.apply(cm("a"))
    cluster.apply(cm("b"))
    keys = [
        ("v1", "ConfigMap", "apps", "b"),
        ("v1", "ConfigMap", "apps", "gone"),
        ("v1", "ConfigMap", "apps", "a"),
        ("v1", "Namespace", "", "apps"),
    ]
    found = cluster.get_many(keys)
    assert list(found) == keys
    assert found[keys[0]]["data"] == {"k": "b"}
    assert found[keys[1]] is None
    assert found[keys[2]]["data"] == {"k": "a"}
    assert found[keys[3]]["metadata"]["name"] == "apps"
    assert cluster.get_many([]) == {}


@pytest.mark.kube
def test_get_many_with_a_kind_the_server_does_not_serve(cluster: MemoryCluster) -> None:
    cluster.apply(cm("a"))
    unknown = ("example.com/v1", "Gadget", "apps", "g")
    found = cluster.get_many([unknown, ("v1", "ConfigMap", "apps", "a")])
    assert found[unknown] is None
    assert found[("v1", "ConfigMap", "apps", "a")]["data"] == {"k": "a"}


@pytest.mark.kube
def test_get_many_on_a_dry_run_view_sees_its_plan(cluster: MemoryCluster) -> None:
    cluster.apply(cm("a"))
    view = cluster.as_dry_run()
    view.apply({**cm("a"), "data": {"k": "planned"}})
    view.delete(("v1", "ConfigMap", "apps", "a"))
    view.apply(cm("b"))
    found = view.get_many([("v1", "ConfigMap", "apps", "a"), ("v1", "ConfigMap", "apps", "b")])
    assert found[("v1", "ConfigMap", "apps", "a")] is None
    assert found[("v1", "ConfigMap", "apps", "b")]["data"] == {"k": "b"}
    # Nothing changed on the server.
    assert cluster.get(("v1", "ConfigMap", "apps", "b")) is None


@pytest.mark.kube
def test_a_reachable_cluster_passes_the_check(cluster: MemoryCluster) -> None:
    cluster.check_reachable()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.kube
def test_an_unreachable_cluster_is_one_line_naming_it(binaries: None, tmp_path: Path) -> None:
    port = closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "k3s", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "lab", "context": {"cluster": "k3s", "user": "u"}}],
                "current-context": "lab",
            }
        )
    )
    with pytest.raises(ClusterError) as caught:
        KubeCluster(kubeconfig=str(kubeconfig)).check_reachable()
    message = caught.value.message
    assert message.startswith(f"cluster lab (http://127.0.0.1:{port}) is unreachable: "), message
    assert "\n" not in message


@pytest.mark.kube
def test_chart_crds_are_the_files_of_its_crds_dir(cluster: MemoryCluster) -> None:
    crds = cluster.chart_crds(ChartRef(str(CHARTS / "crd")))
    assert [(c["kind"], c["metadata"]["name"]) for c in crds] == [
        ("CustomResourceDefinition", "widgets.example.com")
    ]
    assert cluster.chart_crds(ChartRef(str(CHARTS / "web"))) == []


@pytest.mark.kube
def test_template_includes_a_charts_crds(cluster: MemoryCluster) -> None:
    rendered = cluster.render_chart(
        TemplateRequest(ChartRef(str(CHARTS / "crd")), release_name="w", namespace="kit", values={})
    )
    kinds = [o["kind"] for o in rendered]
    assert "CustomResourceDefinition" in kinds and "Widget" in kinds


def test_a_local_chart_without_crds_or_subcharts_asks_no_helm(tmp_path: Path) -> None:
    """``helm show crds`` only where it could print something: a helm that cannot be
    started shows which charts it was asked about."""
    from sbkube.cluster.helm import HelmClient

    helm = HelmClient(binary=str(tmp_path / "no-helm"))
    plain = Path(shutil.copytree(CHARTS / "web", tmp_path / "web"))
    assert helm.show_crds(ChartRef(str(plain))) == []
    for extra in ("crds", "charts"):
        chart = Path(shutil.copytree(CHARTS / "web", tmp_path / f"web-{extra}"))
        (chart / extra).mkdir()
        with pytest.raises(ClusterError, match="helm binary not found"):
            helm.show_crds(ChartRef(str(chart)))


# ---------------------------------------------------------------- a kind with many objects


def test_raw_list_path_of_core_group_and_cluster_scoped_kinds() -> None:
    assert k.raw_list_path("v1", "configmaps", "apps") == "/api/v1/namespaces/apps/configmaps"
    assert k.raw_list_path("apps/v1", "deployments", "web") == (
        "/apis/apps/v1/namespaces/web/deployments"
    )
    assert k.raw_list_path("rbac.authorization.k8s.io/v1", "clusterroles", None) == (
        "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    )


class _RawSpy:
    """Records each ``list_raw`` kubectl makes (the real call still runs)."""

    def __init__(self, cluster: KubeCluster) -> None:
        self.kinds: list[tuple[str, str | None]] = []
        real = cluster.kubectl.list_raw

        def spy(api_version: str, kind: str, resource: str, namespace: str | None) -> Any:
            self.kinds.append((kind, namespace))
            return real(api_version, kind, resource, namespace)

        cluster.kubectl.list_raw = spy  # type: ignore[method-assign]


READ_KEYS = [
    ("v1", "ConfigMap", "apps", "cm-0001"),
    ("v1", "ConfigMap", "apps", "absent"),
    ("apps/v1", "Deployment", "apps", "web"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "reader"),
    ("v1", "Namespace", "", "apps"),
    ("apps/v1beta1", "Deployment", "apps", "web"),  # a version no longer served
    ("example.com/v1", "Gadget", "apps", "g"),  # a kind not served at all
]


def _objects_for_reads(cluster: MemoryCluster, configmaps: int) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader"},
        "rules": [],
    }
    cluster.apply_many([*(cm(f"cm-{i:04d}") for i in range(configmaps)), deployment, role])


@pytest.mark.kube
def test_every_kind_listed_raw_reads_as_kubectl_get_does(cluster: MemoryCluster) -> None:
    _objects_for_reads(cluster, 3)
    by_get = cluster.list_many(READ_KEYS)
    spy = _RawSpy(cluster)
    cluster.RAW_LIST_FROM = 0  # every kind listed before is listed alone, raw
    by_raw = cluster.list_many(READ_KEYS)
    assert by_raw == by_get
    assert by_get[READ_KEYS[0]]["data"] == {"k": "cm-0001"}
    assert by_get[READ_KEYS[0]]["kind"] == "ConfigMap"
    assert by_get[READ_KEYS[1]] is None
    # The object is matched by its group, whatever version answered (match_objects).
    assert by_get[READ_KEYS[5]] == by_get[READ_KEYS[2]]
    assert by_get[READ_KEYS[6]] is None
    assert by_get[READ_KEYS[3]]["metadata"]["name"] == "reader"
    # The served kinds went raw, in their scope (a cluster-scoped one with no namespace);
    # the version the server does not serve fell back to kubectl get.
    assert sorted(spy.kinds) == [
        ("ClusterRole", None),
        ("ConfigMap", "apps"),
        ("Deployment", "apps"),
        ("Deployment", "apps"),
        ("Namespace", None),
    ]


@pytest.mark.kube
def test_a_kind_whose_last_list_was_large_is_listed_alone(cluster: MemoryCluster) -> None:
    _objects_for_reads(cluster, KubeCluster.RAW_LIST_FROM)
    spy = _RawSpy(cluster)
    keys = READ_KEYS[:5]
    first = cluster.list_many(keys)
    assert spy.kinds == []  # nothing known yet: one kubectl get
    second = cluster.list_many(keys)
    assert spy.kinds == [("ConfigMap", "apps")]  # only the kind with that many objects
    assert second == first
    assert first[keys[0]]["data"] == {"k": "cm-0001"}
