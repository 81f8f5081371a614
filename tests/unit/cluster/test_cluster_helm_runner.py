"""HelmClient's release operations against a fake helm that replays recorded output.

The fake logs each command line, so these tests check both what sbkube asks helm and
how it reads the answers, without a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.kube import KubeCluster
from sbkube.cluster.kubectl import KubectlClient
from sbkube.cluster.port import ChartRef, TemplateRequest, UpgradeRequest
from sbkube.errors import ClusterError

NOT_FOUND = (1, "", "Error: release: not found\n")


@pytest.fixture
def recorded(helm_output: Callable[[str], str]) -> dict[tuple[str, ...], tuple[int, str, str]]:
    return {
        ("status", "cache"): (0, helm_output("status.json"), ""),
        ("get", "metadata", "cache"): (0, helm_output("metadata.json"), ""),
        ("history", "cache"): (0, helm_output("history.json"), ""),
        ("get", "values", "cache"): (0, helm_output("values.json"), ""),
        ("get", "values", "cache", "--namespace", "data", "--revision", "2"): (
            0,
            '{"replicaCount": 5}',
            "",
        ),
        ("get", "values", "cache", "--namespace", "data", "--revision", "3"): (
            0,
            helm_output("values_null.json"),
            "",
        ),
        ("upgrade", "cache"): (0, helm_output("upgrade.json"), ""),
        ("rollback", "cache"): (0, "Rollback was a success! Happy Helming!\n", ""),
        ("uninstall", "cache"): (0, 'release "cache" uninstalled\n', ""),
        ("status", "ghost"): NOT_FOUND,
        ("history", "ghost"): NOT_FOUND,
        ("upgrade", "locked"): (
            1,
            "",
            "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n",
        ),
    }


@pytest.fixture
def fake_helm(fake_binary: Callable[..., Any], recorded: dict) -> Any:
    return fake_binary("helm", recorded)


@pytest.fixture
def client(fake_helm: Any) -> HelmClient:
    return HelmClient(binary=str(fake_helm.path), kubeconfig="/kube/config", context="k3s")


def test_status_combines_status_and_metadata(client: HelmClient, fake_helm: Any) -> None:
    info = client.status("cache", "data")
    assert info is not None
    assert (info.revision, info.status, info.chart, info.chart_version) == (
        3,
        "deployed",
        "demo-redis",
        "0.1.0",
    )
    assert info.values == {"auth": {"password": "s3cret"}, "replicaCount": 2}
    argvs = fake_helm.argvs()
    assert argvs[0] == [
        "status",
        "cache",
        "--namespace",
        "data",
        "--output",
        "json",
        "--kubeconfig",
        "/kube/config",
        "--kube-context",
        "k3s",
    ]
    assert argvs[1][:3] == ["get", "metadata", "cache"]


def test_status_of_missing_release_is_none(client: HelmClient) -> None:
    assert client.status("ghost", "data") is None


def test_history_fills_values_per_revision(client: HelmClient, fake_helm: Any) -> None:
    revisions = client.history("cache", "data")
    assert [r.revision for r in revisions] == [1, 2, 3]
    assert revisions[0].values == {"auth": {"password": "s3cret"}, "replicaCount": 2}
    assert revisions[1].values == {"replicaCount": 5}
    assert revisions[2].values == {}
    asked = [a for a in fake_helm.argvs() if a[:2] == ["get", "values"]]
    assert [a[a.index("--revision") + 1] for a in asked] == ["1", "2", "3"]


def test_history_of_missing_release_is_empty(client: HelmClient) -> None:
    assert client.history("ghost", "data") == []


def test_upgrade_install_passes_values_in_a_file(client: HelmClient, fake_helm: Any) -> None:
    info = client.upgrade_install(
        UpgradeRequest(
            ChartRef("repo/demo-redis", version="0.1.0"),
            release_name="cache",
            namespace="data",
            values={"auth": {"password": "s3cret"}},
            wait=True,
            timeout="2m",
        )
    )
    assert (info.revision, info.chart, info.app_version) == (1, "demo-redis", "7.2.4")
    argv = fake_helm.argvs()[0]
    assert argv[:5] == ["upgrade", "cache", "repo/demo-redis", "--install", "--namespace"]
    assert {"--wait", "--create-namespace"} <= set(argv)
    assert argv[argv.index("--timeout") + 1] == "2m"
    assert argv[argv.index("--version") + 1] == "0.1.0"
    values_path = Path(argv[argv.index("--values") + 1])
    assert not values_path.exists()  # removed after the call
    assert "s3cret" not in " ".join(argv)  # secrets never on the command line


def test_upgrade_failure_is_one_line_cluster_error(client: HelmClient) -> None:
    with pytest.raises(ClusterError) as err:
        client.upgrade_install(
            UpgradeRequest(ChartRef("./c"), release_name="locked", namespace="n", values={})
        )
    assert str(err.value) == (
        "helm upgrade --install locked failed: UPGRADE FAILED: another operation "
        "(install/upgrade/rollback) is in progress"
    )


def test_get_values_with_revision(client: HelmClient) -> None:
    assert client.get_values("cache", "data", 2) == {"replicaCount": 5}
    assert client.get_values("cache", "data") == {"auth": {"password": "s3cret"}, "replicaCount": 2}


def test_rollback_runs_helm_rollback_alone(client: HelmClient, fake_helm: Any) -> None:
    # What it made is read by the cluster (from Helm's storage, or helm status).
    assert client.rollback("cache", "data", 1) is None
    assert len(fake_helm.argvs()) == 1
    assert fake_helm.argvs()[0][:6] == [
        "rollback",
        "cache",
        "1",
        "--namespace",
        "data",
        "--kubeconfig",
    ]


def test_uninstall_ignores_missing(client: HelmClient, fake_helm: Any) -> None:
    client.uninstall("cache", "data")
    assert "--ignore-not-found" in fake_helm.argvs()[0]


def test_kube_cluster_delegates_to_helm(
    fake_helm: Any, fake_binary: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Helm's releases kept elsewhere than in Secrets: what a rollback made is helm's to say
    # (in Secrets, one LIST of the release's storage: tests of the memory cluster).
    monkeypatch.setenv("HELM_DRIVER", "configmap")
    kubectl = fake_binary("kubectl", {})
    cluster = KubeCluster(
        context="k3s",
        helm=HelmClient(binary=str(fake_helm.path), context="k3s"),
        kubectl=KubectlClient(binary=str(kubectl.path), context="k3s"),
    )
    assert cluster.name == "k3s"
    status = cluster.helm_status("cache", "data")
    assert status is not None and status.chart == "demo-redis"
    assert cluster.helm_status("ghost", "data") is None
    assert [r.revision for r in cluster.helm_history("cache", "data")] == [1, 2, 3]
    assert cluster.helm_get_values("cache", "data", 2) == {"replicaCount": 5}
    rolled = cluster.helm_rollback("cache", "data", 1)
    assert (rolled.revision, rolled.chart) == (3, "demo-redis")
    assert rolled.values == {"auth": {"password": "s3cret"}, "replicaCount": 2}
    cluster.helm_uninstall("cache", "data")
    # The name needs the context's API server: one look at the kubeconfig, nothing else.
    assert kubectl.argvs() == [
        ["config", "view", "--minify", "--output", "json", "--context", "k3s"]
    ]


def test_a_request_reaches_helm_argv_through_the_port(
    fake_helm: Any, fake_binary: Callable[..., Any]
) -> None:
    """Each field of an UpgradeRequest/TemplateRequest given to the port is on helm's
    command line (or, for values, on its stdin): nothing in between drops or renames one."""
    kubectl = fake_binary("kubectl", {})
    cluster = KubeCluster(
        context="k3s",
        helm=HelmClient(binary=str(fake_helm.path), context="k3s"),
        kubectl=KubectlClient(binary=str(kubectl.path), context="k3s"),
    )
    request = UpgradeRequest(
        ChartRef("./c", version="1.2.3"),
        release_name="cache",
        namespace="data",
        values={"replicaCount": 7},
        wait=True,
        timeout="90s",
        create_namespace=False,
        force_conflicts=True,
    )
    cluster.helm_upgrade_install(request)
    cluster.as_dry_run().helm_upgrade_install(request)
    cluster.render_chart(TemplateRequest(request.chart, "cache", "data", {"replicaCount": 8}))
    upgrade, planned, template = fake_helm.calls()
    argv = upgrade["argv"]
    assert argv[:7] == ["upgrade", "cache", "./c", "--install", "--namespace", "data", "--values"]
    assert argv[argv.index("--version") + 1] == "1.2.3"
    assert argv[argv.index("--timeout") + 1] == "90s"
    assert {"--wait", "--force-conflicts"} <= set(argv)
    assert "--create-namespace" not in argv and "--dry-run=server" not in argv
    assert json.loads(upgrade["stdin"]) == {"replicaCount": 7}
    assert planned["argv"] == [*argv[:-4], "--dry-run=server", *argv[-4:]]
    assert template["argv"][:6] == ["template", "cache", "./c", "--namespace", "data", "--values"]
    assert "--kube-context" not in template["argv"]  # template renders offline
    assert json.loads(template["stdin"]) == {"replicaCount": 8}
