"""``sbkube status``: drift between the record and the live cluster, through the real script.

The cluster is changed behind sbkube's back through the Cluster port of the same
``--memory-cluster`` file, as ``kubectl edit``/``kubectl delete``/``helm rollback`` would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sbkube.cluster.memory import MemoryCluster

pytestmark = pytest.mark.helm


@contextmanager
def cluster_of(cluster_file) -> Iterator[MemoryCluster]:
    """The test's cluster file, opened in this process and closed again (one user at a time)."""
    with MemoryCluster(cluster_file) as cluster:
        yield cluster


def deploy(sbkube, app_dir, cluster_file, *extra: str) -> None:
    proc = sbkube(
        "deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file), *extra
    )
    assert proc.returncode == 0, proc.stderr


def status(sbkube, app_dir, cluster_file, *extra: str):
    return sbkube(
        "status", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file), *extra
    )


def test_in_sync_after_deploy_and_not_deployed_before(sbkube, app_dir, cluster_file):
    before = status(sbkube, app_dir, cluster_file, "-o", "json", "--exit-code")
    assert before.returncode == 0, before.stderr
    assert {a["name"]: a["state"] for a in json.loads(before.stdout)["apps"]} == {
        "cache": "not-deployed",
        "web": "not-deployed",
        "worker": "not-deployed",
    }

    deploy(sbkube, app_dir, cluster_file)
    proc = status(sbkube, app_dir, cluster_file, "--exit-code")

    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[2:5]}
    assert rows["cache"][:3] == ["cache", "helm", "in-sync"]
    assert rows["web"][:3] == ["web", "yaml", "in-sync"]
    assert rows["worker"][:3] == ["worker", "yaml", "in-sync"]
    assert "cache rev 1 (recorded 1)" in proc.stdout


def test_changed_field_and_deleted_object_are_drift_until_redeployed(sbkube, app_dir, cluster_file):
    deploy(sbkube, app_dir, cluster_file)
    with cluster_of(cluster_file) as cluster:
        # Changed by hand (another field manager than sbkube's).
        kubectl = cluster.kubectl
        patch = ["patch", "deployment", "web", "-n", "shop", "-p", '{"spec":{"replicas":7}}']
        kubectl.run([kubectl.binary, *patch, *kubectl.flags], what="kubectl patch")
        assert cluster.delete(("v1", "ConfigMap", "shop", "worker-config"))

    proc = status(sbkube, app_dir, cluster_file, "--exit-code")

    assert proc.returncode == 1, proc.stderr
    assert "web: Deployment/shop/web: spec.replicas" in proc.stdout
    assert "worker: ConfigMap/shop/worker-config missing" in proc.stdout
    data = json.loads(status(sbkube, app_dir, cluster_file, "-o", "json").stdout)
    apps = {a["name"]: a for a in data["apps"]}
    assert apps["web"]["state"] == "drifted" and apps["worker"]["state"] == "drifted"
    assert apps["cache"]["state"] == "in-sync"
    [changed] = [o for o in apps["web"]["objects"] if o["state"] == "drifted"]
    assert (changed["kind"], changed["name"], changed["fields"]) == (
        "Deployment",
        "web",
        ["spec.replicas"],
    )
    assert [o["name"] for o in apps["worker"]["objects"] if o["state"] == "missing"] == [
        "worker-config"
    ]
    # Without --exit-code drift is reported, not an error.
    assert status(sbkube, app_dir, cluster_file).returncode == 0

    deploy(sbkube, app_dir, cluster_file)
    assert status(sbkube, app_dir, cluster_file, "--exit-code").returncode == 0


def test_helm_release_at_another_revision_is_drift(sbkube, app_dir, cluster_file):
    deploy(sbkube, app_dir, cluster_file)
    deploy(sbkube, app_dir, cluster_file, "--force-upgrade")  # revision 2
    with cluster_of(cluster_file) as cluster:
        cluster.helm_rollback("cache", "shop", 1)  # revision 3, behind our back

    proc = status(sbkube, app_dir, cluster_file, "--app", "cache", "-o", "json", "--exit-code")

    assert proc.returncode == 1, proc.stderr
    [cache] = json.loads(proc.stdout)["apps"]
    assert cache["state"] == "drifted"
    assert cache["release"]["recorded_revision"] == 2
    assert cache["release"]["live_revision"] == 3
    table = status(sbkube, app_dir, cluster_file, "--app", "cache").stdout
    assert "release cache at revision 3 (deployed), recorded 2" in table


def test_everything_gone_is_missing(sbkube, app_dir, cluster_file):
    deploy(sbkube, app_dir, cluster_file)
    with cluster_of(cluster_file) as cluster:
        cluster.helm_uninstall("cache", "shop")

    proc = status(sbkube, app_dir, cluster_file, "--app", "cache", "-o", "yaml", "--exit-code")

    assert proc.returncode == 1, proc.stderr
    assert "state: missing" in proc.stdout


def test_namespace_option_selects_the_target(sbkube, app_dir, cluster_file):
    deploy(sbkube, app_dir, cluster_file, "-n", "other")

    here = json.loads(status(sbkube, app_dir, cluster_file, "-n", "other", "-o", "json").stdout)
    default = json.loads(status(sbkube, app_dir, cluster_file, "-o", "json").stdout)

    assert here["namespace"] == "other"
    assert {a["state"] for a in here["apps"]} == {"in-sync"}
    assert {a["state"] for a in default["apps"]} == {"not-deployed"}


def test_unreachable_cluster_is_one_error_line(sbkube, app_dir, tmp_path, state_db, expect_error):
    from sbkube.state import DeploymentDatabase, DeploymentTracker

    # A recording for context "gone", so that status has an object to read there.
    with DeploymentDatabase(state_db) as db:
        tracker = DeploymentTracker(db)
        # Recorded under the identity sbkube gives that kubeconfig: context@server.
        with tracker.track_deployment(cluster="gone@127.0.0.1:1", namespace="shop") as dep:
            with dep.track_app(name="web", type="yaml", namespace="shop") as app:
                app.record_resources(
                    [
                        {
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "metadata": {"name": "web-config", "namespace": "shop"},
                        }
                    ],
                    "create",
                )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\n"
        "users: [{name: u, user: {}}]\n"
    )

    proc = sbkube(
        "status", "--app-dir", str(app_dir), "--app", "web", "--kubeconfig", str(kubeconfig)
    )

    assert proc.returncode == 1, proc.stdout
    # Asked before any object is read, as diff and a plan ask it.
    assert expect_error(proc.stderr).startswith(
        "error: cluster gone (https://127.0.0.1:1) is unreachable: "
    )
