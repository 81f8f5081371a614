"""KubectlClient: command lines, a fake kubectl for the answers, real kubectl for config."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sbkube.cluster import kubectl as k
from sbkube.cluster.kube import KubeCluster, cluster_identity
from sbkube.cluster.kubectl import KubectlClient
from sbkube.cluster.process import first_error_line
from sbkube.errors import ClusterError

DEPLOY_KEY = ("apps/v1", "Deployment", "data", "web")
NS_KEY = ("v1", "Namespace", "", "data")


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("apps/v1", "Deployment", "Deployment.v1.apps"),
        ("v1", "ConfigMap", "ConfigMap"),
        ("cert-manager.io/v1", "Certificate", "Certificate.v1.cert-manager.io"),
    ],
)
def test_resource_arg(api_version: str, kind: str, expected: str) -> None:
    assert k.resource_arg(api_version, kind) == expected


def test_get_argv() -> None:
    assert k.get_argv(
        "kubectl", DEPLOY_KEY, flags=k.cluster_flags(kubeconfig="/k", context="c")
    ) == [
        "kubectl",
        "get",
        "Deployment.v1.apps",
        "web",
        "--namespace",
        "data",
        "--ignore-not-found",
        "--output",
        "json",
        "--show-managed-fields",
        "--kubeconfig",
        "/k",
        "--context",
        "c",
    ]
    # cluster-scoped: no --namespace at all
    assert "--namespace" not in k.get_argv("kubectl", NS_KEY)


def test_apply_argv() -> None:
    assert k.apply_argv("kubectl") == ["kubectl", "apply", "--filename", "-", "--output", "json"]
    server_side = k.apply_argv("kubectl", server_side=True, flags=k.cluster_flags(context="c"))
    assert server_side[-5:] == [
        "--server-side",
        "--field-manager=sbkube",
        "--force-conflicts",
        "--context",
        "c",
    ]


def test_delete_argv() -> None:
    assert k.delete_argv("kubectl", DEPLOY_KEY) == [
        "kubectl",
        "delete",
        "Deployment.v1.apps",
        "web",
        "--namespace",
        "data",
        "--ignore-not-found",
        "--wait=true",
        "--output",
        "name",
    ]


def test_list_argv_lists_kinds_in_a_namespace_or_everywhere_by_labels() -> None:
    kinds = [("v1", "ConfigMap"), ("apps/v1", "Deployment")]
    assert k.list_argv("kubectl", kinds, namespace="data") == [
        "kubectl",
        "get",
        "ConfigMap,Deployment.v1.apps",
        "--namespace",
        "data",
        "--output",
        "json",
        "--show-managed-fields",
    ]
    labelled = k.list_argv("kubectl", kinds, namespace=None, selector={"b": "2", "a": "1"})
    assert labelled[3:6] == ["--all-namespaces", "--selector", "a=1,b=2"]


def test_delete_many_argv_and_the_names_kubectl_prints() -> None:
    assert k.delete_many_argv("kubectl", dry_run=True) == [
        "kubectl",
        "delete",
        "--filename",
        "-",
        "--ignore-not-found",
        "--wait=true",
        "--dry-run=server",
        "--output",
        "name",
    ]
    assert k.deleted_name(DEPLOY_KEY) == "deployment.apps/web"
    assert k.deleted_name(("v1", "ConfigMap", "data", "c")) == "configmap/c"


def test_current_context_argv() -> None:
    assert k.current_context_argv("kubectl", kubeconfig="/k") == [
        "kubectl",
        "config",
        "current-context",
        "--kubeconfig",
        "/k",
    ]


LIVE = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "data", "uid": "u-1", "resourceVersion": "9"},
    "spec": {"replicas": 2},
}


@pytest.fixture
def fake_kubectl(fake_binary: Callable[..., Any]) -> Any:
    return fake_binary(
        "kubectl",
        {
            ("get", "Deployment.v1.apps", "web"): (0, json.dumps(LIVE), ""),
            ("get", "Deployment.v1.apps", "gone"): (0, "", ""),
            ("get", "Widget.v1.example.com"): (
                1,
                "",
                'error: the server doesn\'t have a resource type "Widget"\n',
            ),
            ("get", "Secret"): (
                1,
                "",
                'Error from server (Forbidden): secrets "pw" is forbidden: User "u" cannot get\n',
            ),
            ("apply",): (0, json.dumps(LIVE), ""),
            ("delete", "Deployment.v1.apps", "web"): (0, "deployment.apps/web\n", ""),
            ("delete", "Deployment.v1.apps", "gone"): (0, "", ""),
        },
    )


@pytest.fixture
def client(fake_kubectl: Any) -> KubectlClient:
    return KubectlClient(binary=str(fake_kubectl.path), context="k3s")


def test_get_returns_live_object_or_none(client: KubectlClient) -> None:
    assert client.get(DEPLOY_KEY) == LIVE
    assert client.get(("apps/v1", "Deployment", "data", "gone")) is None
    # a kind the server does not serve (CRD not installed): no such object either
    assert client.get(("example.com/v1", "Widget", "data", "w")) is None


def test_get_error_is_cluster_error(client: KubectlClient) -> None:
    with pytest.raises(ClusterError) as err:
        client.get(("v1", "Secret", "data", "pw"))
    assert str(err.value).startswith(
        "kubectl get Secret/data/pw failed: Error from server (Forbidden)"
    )


def test_apply_sends_manifest_on_stdin(client: KubectlClient, fake_kubectl: Any) -> None:
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "data"},
        "spec": {"replicas": 2},
    }
    assert client.apply(manifest) == LIVE
    call = fake_kubectl.calls()[0]
    assert call["argv"][:4] == ["apply", "--filename", "-", "--output"]
    assert "--server-side" in call["argv"] and "--field-manager=sbkube" in call["argv"]
    assert json.loads(call["stdin"]) == manifest


def test_delete_reports_whether_it_existed(client: KubectlClient) -> None:
    assert client.delete(DEPLOY_KEY) is True
    assert client.delete(("apps/v1", "Deployment", "data", "gone")) is False


def test_missing_kubectl_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBKUBE_KUBECTL", "kubectl-nope")
    with pytest.raises(ClusterError, match="kubectl-nope"):
        KubectlClient().get(DEPLOY_KEY)


def _kubeconfig(path: Path, current: str | None) -> str:
    text = """apiVersion: v1
kind: Config
clusters:
  - name: dead
    cluster: {server: "https://127.0.0.1:1"}
contexts:
  - name: staging
    context: {cluster: dead, user: u}
users:
  - name: u
    user: {token: t}
"""
    if current:
        text += f"current-context: {current}\n"
    path.write_text(text)
    return str(path)


def test_kube_cluster_name_is_current_context_at_its_server(
    kubectl_binary: str, tmp_path: Path
) -> None:
    config = _kubeconfig(tmp_path / "config", "staging")
    cluster = KubeCluster(kubeconfig=config, kubectl=KubectlClient(kubectl_binary, config))
    assert cluster.name == "staging@127.0.0.1:1"
    assert cluster.context_name == "staging"
    given = KubeCluster(kubeconfig=config, context="staging", kubectl=KubectlClient(kubectl_binary))
    assert given.name == "staging@127.0.0.1:1"


def test_kube_cluster_name_defaults(kubectl_binary: str, tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "config", None)
    cluster = KubeCluster(kubeconfig=config, kubectl=KubectlClient(kubectl_binary, config))
    assert cluster.name == "default"
    # A context the kubeconfig does not have: its name is all there is to record.
    given = KubeCluster(kubeconfig=config, context="prod", kubectl=KubectlClient(kubectl_binary))
    assert given.name == "prod"
    named = KubeCluster(kubeconfig=config, name="k3s-lab", kubectl=KubectlClient(kubectl_binary))
    assert named.name == "k3s-lab"


@pytest.mark.parametrize(
    ("context", "server", "expected"),
    [
        ("default", "https://10.0.0.5:6443", "default@10.0.0.5:6443"),
        ("default", "https://10.0.0.6:6443/", "default@10.0.0.6:6443"),
        ("rancher", "https://r.example/k8s/clusters/c-m-1", "rancher@r.example/k8s/clusters/c-m-1"),
        ("x", "https://user:pw@h:6443", "x@h:6443"),  # credentials are not a name
        ("x", "https://[::1]:6443", "x@[::1]:6443"),
        (None, "https://h", "default@h"),
        ("x", None, "x"),
    ],
)
def test_cluster_identity(context: str | None, server: str | None, expected: str) -> None:
    assert cluster_identity(context, server) == expected


def test_cluster_identity_fits_the_column() -> None:
    name = cluster_identity("c" * 300, "https://h/" + "p" * 300)
    assert len(name) <= 253 and name.startswith("c" * 200 + "@")


def test_real_kubectl_reports_unreachable_cluster(kubectl_binary: str, tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "config", "staging")
    client = KubectlClient(kubectl_binary, config)
    with pytest.raises(ClusterError) as err:
        client.get(DEPLOY_KEY)
    message = str(err.value)
    assert message.startswith("kubectl get Deployment/data/web failed: ")
    assert "127.0.0.1:1" in message
    assert "memcache.go" not in message  # client-go log noise is not the reason
    assert "\n" not in message


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            'E1126 09:54:35.957490   21844 memcache.go:265] "Unhandled Error" err="x"\n'
            'E1126 09:54:35.958490   21844 memcache.go:265] "Unhandled Error" err="x"\n'
            "The connection to the server 127.0.0.1:1 was refused - did you specify the right "
            "host or port?\n",
            "The connection to the server 127.0.0.1:1 was refused - did you specify the right "
            "host or port?",
        ),
        ('error: error parsing STDIN: invalid "kind"\n', 'error parsing STDIN: invalid "kind"'),
        (
            'Error from server (NotFound): namespaces "nope" not found\n',
            'Error from server (NotFound): namespaces "nope" not found',
        ),
        ('E1126 09:54:35.957490   21844 memcache.go:265] "boom"\n', '"boom"'),
        ("", ""),
    ],
)
def test_first_error_line(stderr: str, expected: str) -> None:
    assert first_error_line(stderr) == expected


# What kubectl 1.33 prints (SHORTNAMES and CATEGORIES may be empty; a CRD's kind too).
API_RESOURCES = """\
NAME                      SHORTNAMES   APIVERSION                NAMESPACED   KIND                    VERBS                 CATEGORIES
configmaps                cm           v1                        true         ConfigMap               create,delete,get
namespaces                ns           v1                        false        Namespace               create,delete,get
deployments               deploy       apps/v1                   true         Deployment              create,delete,get     all
volumeattributesclasses   vac          storage.k8s.io/v1         false        VolumeAttributesClass   create,delete,get
clustersecretstores                    external-secrets.io/v1    false        ClusterSecretStore      create,delete,get
"""  # noqa: E501


def test_parse_api_resources_reads_scope_by_group_and_kind() -> None:
    assert k.parse_api_resources(API_RESOURCES) == {
        ("", "ConfigMap"): k.Served(True, "configmaps"),
        ("", "Namespace"): k.Served(False, "namespaces"),
        ("apps", "Deployment"): k.Served(True, "deployments"),
        ("storage.k8s.io", "VolumeAttributesClass"): k.Served(False, "volumeattributesclasses"),
        ("external-secrets.io", "ClusterSecretStore"): k.Served(False, "clustersecretstores"),
    }
    assert k.parse_api_resources("") == {}
    with pytest.raises(ClusterError, match="unknown table"):
        k.parse_api_resources("NAME  SOMETHING\nx  y\n")


def test_api_resources_keeps_what_kubectl_could_discover(fake_binary) -> None:
    # One aggregated API down: kubectl prints the rest and exits 1.
    partial = fake_binary(
        "kubectl",
        {
            ("api-resources",): (
                1,
                API_RESOURCES,
                "error: unable to retrieve the complete list of server APIs: "
                "metrics.k8s.io/v1beta1: the server is currently unable to handle the request\n",
            )
        },
    )
    scopes = KubectlClient(str(partial.path)).api_resources()
    assert scopes[("external-secrets.io", "ClusterSecretStore")].namespaced is False


def test_api_resources_of_an_unreachable_cluster_is_an_error(fake_binary) -> None:
    down = fake_binary(
        "kubectl",
        {("api-resources",): (1, "", "The connection to the server 127.0.0.1:1 was refused\n")},
    )
    with pytest.raises(ClusterError, match="kubectl api-resources failed: The connection"):
        KubectlClient(str(down.path)).api_resources()


class _ThreeReads(KubectlClient):
    """A kubectl whose discovery, ``config view`` and ``get`` of kube-system each wait
    until all three have started (so they only end when run at once), counted."""

    def __init__(self, *, discovery_error: str | None = None) -> None:
        super().__init__("kubectl")
        self.started = threading.Barrier(3, timeout=60)
        self.calls: Counter[str] = Counter()
        self.discovery_error = discovery_error

    def _read(self, what: str) -> None:
        self.calls[what] += 1
        self.started.wait()

    def api_resources(self) -> dict[tuple[str, str], k.Served]:
        self._read("discovery")
        if self.discovery_error:
            raise ClusterError(self.discovery_error)
        return {("", "ConfigMap"): k.Served(True, "configmaps")}

    def selected_cluster(
        self, kubeconfig: str | None = None, context: str | None = None
    ) -> tuple[str | None, str | None]:
        self._read("config view")
        return "lab", "https://10.0.0.5:6443"

    def get(self, key: Any) -> dict[str, Any] | None:
        self._read("get")
        return {"metadata": {"uid": "uid-1"}}


def test_read_ahead_reads_discovery_name_and_identity_at_once_and_each_once() -> None:
    kubectl = _ThreeReads()
    cluster = KubeCluster(kubectl=kubectl)
    cluster.read_ahead()
    cluster.read_ahead()  # started already: nothing more
    # Each answer is read ahead's (a serial read of the three would break the barrier).
    assert cluster.namespaced("v1", "ConfigMap") is True
    assert cluster.name == "lab@10.0.0.5:6443"
    assert cluster.context_name == "lab"
    assert cluster.identity() == "uid-1"
    assert cluster.namespaced("v1", "ConfigMap") is True
    assert kubectl.calls == {"discovery": 1, "config view": 1, "get": 1}
    cluster.read_ahead()  # all read: nothing more
    assert kubectl.calls == {"discovery": 1, "config view": 1, "get": 1}


def test_a_read_ahead_that_failed_fails_its_first_asker() -> None:
    kubectl = _ThreeReads(discovery_error="kubectl api-resources failed: refused")
    cluster = KubeCluster(kubectl=kubectl)
    cluster.read_ahead()
    with pytest.raises(ClusterError, match="kubectl api-resources failed: refused"):
        cluster.namespaced("v1", "ConfigMap")
    assert kubectl.calls["discovery"] == 1
    assert cluster.identity() == "uid-1"
