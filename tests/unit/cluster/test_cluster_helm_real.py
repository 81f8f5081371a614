"""HelmClient against the real helm binary: rendering local charts and helm's errors.

No cluster is needed: ``helm template`` and ``helm show chart`` run offline, and the
release commands are pointed at a kubeconfig whose server refuses connections.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.port import ChartRef, TemplateRequest
from sbkube.errors import ClusterError
from sbkube.manifests import object_key

pytestmark = pytest.mark.helm


def _by_kind(manifests: list[dict]) -> dict[str, dict]:
    return {m["kind"]: m for m in manifests}


def test_template_renders_demo_chart_with_values(helm: HelmClient, demo_chart: ChartRef) -> None:
    manifests = helm.template(
        TemplateRequest(
            demo_chart,
            release_name="cache",
            namespace="data",
            values={"replicaCount": 3, "auth": {"password": "s3cret"}, "maxmemory": "128mb"},
        )
    )
    kinds = _by_kind(manifests)
    assert set(kinds) == {"ConfigMap", "Deployment", "Service", "Secret"}
    assert kinds["Deployment"]["spec"]["replicas"] == 3
    assert kinds["Secret"]["stringData"]["password"] == "s3cret"
    assert "maxmemory 128mb" in kinds["ConfigMap"]["data"]["redis.conf"]
    assert kinds["Service"]["metadata"]["name"] == "cache-redis"
    # Every namespaced object ends up in the release namespace, whether the template set it
    # (ConfigMap) or not (the others).
    assert {object_key(m)[2] for m in manifests} == {"data"}


def test_template_values_switch_objects_and_cluster_scoped_keep_no_namespace(
    helm: HelmClient, demo_chart: ChartRef
) -> None:
    manifests = helm.template(
        TemplateRequest(
            demo_chart,
            release_name="cache",
            namespace="data",
            values={"auth": {"enabled": False}, "rbac": {"create": True}},
        )
    )
    kinds = _by_kind(manifests)
    assert "Secret" not in kinds  # the disabled template renders an empty document
    assert "env" not in kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    role = kinds["ClusterRole"]
    assert "namespace" not in role["metadata"]
    assert object_key(role) == (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "",
        "cache-redis-reader",
    )


def test_template_uses_chart_defaults_without_values(
    helm: HelmClient, demo_chart: ChartRef
) -> None:
    kinds = _by_kind(
        helm.template(TemplateRequest(demo_chart, release_name="r", namespace="n", values={}))
    )
    assert kinds["Secret"]["stringData"]["password"] == "changeme"
    assert kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "redis:7.2.4"
    )


def test_template_keeps_string_values_strings(helm: HelmClient, demo_chart: ChartRef) -> None:
    # "on" and "1.10" must reach helm as strings (values go through a JSON file).
    kinds = _by_kind(
        helm.template(
            TemplateRequest(
                demo_chart,
                release_name="r",
                namespace="n",
                values={"auth": {"password": "on"}, "image": {"tag": "1.10"}},
            )
        )
    )
    assert kinds["Secret"]["stringData"]["password"] == "on"
    assert kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "redis:1.10"
    )


def test_schema_failure_keeps_helms_whole_error(helm: HelmClient, charts: Path) -> None:
    chart = ChartRef(str(charts / "strict"))
    with pytest.raises(ClusterError) as err:
        helm.template(
            TemplateRequest(chart, release_name="r", namespace="n", values={"logs": True})
        )
    first, *details = str(err.value).split("\n")
    assert first.startswith(f"helm template {chart.ref} failed: values don't meet")
    assert any("additional properties 'logs' not allowed" in line for line in details)
    assert not any("--debug" in line for line in details)


def test_broken_chart_raises_with_helms_message(helm: HelmClient, broken_chart: ChartRef) -> None:
    with pytest.raises(ClusterError) as err:
        helm.template(TemplateRequest(broken_chart, release_name="r", namespace="n", values={}))
    message = str(err.value)
    assert message.startswith(f"helm template {broken_chart.ref} failed: ")
    assert "parse error" in message
    assert "configmap.yaml" in message
    assert "\n" not in message
    assert err.value.exit_code == 1


def test_missing_chart_directory(helm: HelmClient, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-chart"
    with pytest.raises(ClusterError, match="not found") as err:
        helm.template(
            TemplateRequest(ChartRef(str(missing)), release_name="r", namespace="n", values={})
        )
    assert str(missing) in str(err.value)


def test_unknown_repository(helm: HelmClient, tmp_path: Path) -> None:
    isolated = HelmClient(
        binary=helm.binary,
        env={"HELM_REPOSITORY_CONFIG": str(tmp_path / "repositories.yaml")},
    )
    with pytest.raises(ClusterError, match="nosuchrepo"):
        isolated.template(
            TemplateRequest(
                ChartRef("nosuchrepo/chart"), release_name="r", namespace="n", values={}
            )
        )


def test_show_chart(helm: HelmClient, demo_chart: ChartRef) -> None:
    meta = helm.show_chart(demo_chart)
    assert (meta["name"], meta["version"], str(meta["appVersion"])) == (
        "demo-redis",
        "0.1.0",
        "7.2.4",
    )


def test_packaged_chart_renders(helm: HelmClient, demo_chart: ChartRef, tmp_path: Path) -> None:
    helm.run([helm.binary, "package", demo_chart.ref, "--destination", str(tmp_path)], what="pkg")
    tgz = tmp_path / "demo-redis-0.1.0.tgz"
    assert tgz.is_file()
    manifests = helm.template(
        TemplateRequest(ChartRef(str(tgz)), release_name="r", namespace="n", values={})
    )
    assert {m["kind"] for m in manifests} >= {"Deployment", "Service"}


def test_release_commands_report_unreachable_cluster(helm_binary: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        """apiVersion: v1
kind: Config
clusters:
  - name: dead
    cluster: {server: "https://127.0.0.1:1"}
contexts:
  - name: dead
    context: {cluster: dead, user: u}
users:
  - name: u
    user: {token: t}
current-context: dead
"""
    )
    client = HelmClient(binary=helm_binary, kubeconfig=str(kubeconfig), context="dead")
    with pytest.raises(ClusterError) as err:
        client.status("cache", "data")  # not "release not found": the cluster is down
    assert str(err.value).startswith("helm status cache failed: ")
    assert "127.0.0.1:1" in str(err.value) or "unreachable" in str(err.value)
    with pytest.raises(ClusterError, match="helm history cache failed"):
        client.history("cache", "data")
