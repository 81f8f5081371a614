"""The real helm v4 against the local API server: a release's whole life, --wait, hooks, CRDs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbkube.apiserver import ApiServer

pytestmark = pytest.mark.kube


def revisions(kube, release: str, namespace: str = "default") -> list[tuple[int, str]]:
    history = json.loads(kube.helm("history", release, "-n", namespace, "-o", "json").stdout)
    return [(entry["revision"], entry["status"]) for entry in history]


def test_install_upgrade_rollback_history_manifest_uninstall(kube, charts: Path) -> None:
    web = str(charts / "web")
    kube.helm(
        "install", "shop", web, "-n", "shop", "--create-namespace", "--wait", "--timeout", "30s"
    )
    assert kube.get("namespace", "shop")["metadata"]["name"] == "shop"
    assert kube.get("configmap", "shop-config", "-n", "shop")["data"] == {"message": "hello"}
    deployment = kube.get("deployment", "shop-web", "-n", "shop")
    assert deployment["status"]["readyReplicas"] == 2

    kube.helm("upgrade", "shop", web, "-n", "shop", "--set", "message=bye", "--wait")
    assert kube.get("configmap", "shop-config", "-n", "shop")["data"] == {"message": "bye"}
    assert revisions(kube, "shop", "shop") == [(1, "superseded"), (2, "deployed")]

    kube.helm("rollback", "shop", "1", "-n", "shop", "--wait")
    assert kube.get("configmap", "shop-config", "-n", "shop")["data"] == {"message": "hello"}
    assert revisions(kube, "shop", "shop") == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]

    manifest = kube.helm("get", "manifest", "shop", "-n", "shop").stdout
    assert "name: shop-web" in manifest
    # Helm keeps its releases in the cluster, as Secrets.
    releases = kube.get("secrets", "-n", "shop", "-l", "owner=helm")["items"]
    assert len(releases) == 3

    kube.helm("uninstall", "shop", "-n", "shop", "--wait")
    assert kube.get("all", "-n", "shop")["items"] == []
    assert kube.get("secrets", "-n", "shop", "-l", "owner=helm")["items"] == []


def test_wait_times_out_on_an_object_held_unready(kube, charts: Path) -> None:
    kube.server.controller.unready.add("slow-web")
    failed = kube.helm(
        "install", "slow", str(charts / "web"), "--wait", "--timeout", "2s", check=False
    )
    assert failed.returncode == 1
    assert "slow-web not ready" in failed.stderr
    assert "context deadline exceeded" in failed.stderr
    assert revisions(kube, "slow") == [(1, "failed")]

    kube.server.controller.unready.clear()
    kube.helm("upgrade", "slow", str(charts / "web"), "--wait", "--timeout", "10s")
    assert revisions(kube, "slow") == [(1, "superseded"), (2, "deployed")]


def test_hooks_run_as_jobs_and_test_pods_are_not_installed(kube, charts: Path) -> None:
    hooks = str(charts / "hooks")
    kube.helm("install", "h", hooks, "--wait")
    job = kube.get("job", "h-pre-install")
    assert job["status"]["succeeded"] == 1
    assert kube.kubectl("get", "pod", "h-test", check=False).returncode == 1
    assert kube.kubectl("get", "job", "h-post-upgrade", check=False).returncode == 1

    kube.helm("upgrade", "h", hooks, "--wait")
    assert kube.get("job", "h-post-upgrade")["status"]["succeeded"] == 1
    assert kube.get("configmap", "h-main")["data"] == {"revision": "2"}
    assert kube.kubectl("get", "pod", "h-test", check=False).returncode == 1


def test_a_chart_with_crds_and_a_custom_resource(kube, charts: Path) -> None:
    kube.helm("install", "gadgets", str(charts / "crd"), "--wait")
    crd = kube.get("crd", "widgets.example.com")
    assert {c["type"] for c in crd["status"]["conditions"]} >= {"Established"}
    widget = kube.get("widgets", "gadgets-widget")
    assert widget["spec"] == {"size": 3}
    assert kube.get("wd")["items"][0]["metadata"]["name"] == "gadgets-widget"

    kube.helm("upgrade", "gadgets", str(charts / "crd"), "--set", "size=5", "--wait")
    assert kube.get("widget", "gadgets-widget")["spec"] == {"size": 5}

    kube.helm("uninstall", "gadgets", "--wait")
    assert kube.get("widgets")["items"] == []
    # Helm never deletes CRDs; deleting one deletes its objects and its kind.
    kube.kubectl("apply", "-f", "-", stdin=CUSTOM_RESOURCE)
    kube.kubectl("delete", "crd", "widgets.example.com")
    gone = kube.kubectl("get", "widgets", check=False)
    assert gone.returncode == 1


CUSTOM_RESOURCE = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n"


def test_helm_fails_a_release_whose_objects_fail_and_records_it(kube, charts: Path) -> None:
    web = str(charts / "web")
    kube.helm("install", "flaky", web, "--wait")
    kube.server.faults.fail_on.add("flaky")
    failed = kube.helm("upgrade", "flaky", web, "--set", "message=x", check=False)
    assert failed.returncode == 1
    assert "sbkube memory cluster: injected failure for flaky" in failed.stderr
    assert revisions(kube, "flaky") == [(1, "deployed"), (2, "failed")]
    assert kube.get("configmap", "flaky-config")["data"] == {"message": "hello"}


def test_a_release_survives_a_restart_from_the_file(kube, charts: Path, tmp_path: Path) -> None:
    kube.helm("install", "keep", str(charts / "web"), "--wait")
    kube.server.stop()
    with ApiServer(kube.server.path) as again:
        again.write_kubeconfig(kube.kubeconfig)
        kube.server = again
        assert revisions(kube, "keep") == [(1, "deployed")]
        kube.helm("upgrade", "keep", str(charts / "web"), "--set", "message=later", "--wait")
        assert kube.get("configmap", "keep-config")["data"] == {"message": "later"}
