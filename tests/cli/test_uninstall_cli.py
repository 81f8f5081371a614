"""``sbkube uninstall``: plan, confirmation, lock, record, and rollback bringing apps back."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest

from sbkube.cluster.memory import MemoryCluster
from sbkube.state import DeployLocks, DeploymentDatabase, DeploymentRepository

pytestmark = pytest.mark.helm


def live(cluster_file) -> set[tuple[str, str]]:
    keys = [
        ("v1", "Secret", "shop", "cache-auth"),
        ("v1", "ConfigMap", "shop", "cache-settings"),
        ("v1", "ConfigMap", "shop", "web-config"),
        ("apps/v1", "Deployment", "shop", "web"),
        ("v1", "Service", "shop", "web"),
        ("v1", "ConfigMap", "shop", "worker-config"),
        ("v1", "Secret", "shop", "worker-token"),
    ]
    with MemoryCluster(cluster_file) as cluster:
        return {(k[1], k[3]) for k in keys if cluster.get(k) is not None}


def test_uninstall_records_and_rollback_brings_the_apps_back(sbkube, app_dir, cluster_file, store):
    base = ("--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    assert sbkube("deploy", *base).returncode == 0
    assert len(live(cluster_file)) == 7

    plan = sbkube("uninstall", *base, "--app", "cache", "--app", "web", "--dry-run")

    assert plan.returncode == 0, plan.stderr
    assert "Uninstall plan: target memory/shop" in plan.stdout
    # Dependents go first: web depends on cache.
    rows = [line.split()[:4] for line in plan.stdout.splitlines()[2:4]]
    assert rows == [["web", "yaml", "shop", "delete"], ["cache", "helm", "shop", "helm-uninstall"]]
    assert "Dry run: nothing was changed or recorded." in plan.stdout
    assert len(live(cluster_file)) == 7 and store().count() == 1

    done = sbkube("uninstall", *base, "--app", "cache", "--app", "web", "-o", "json")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "success"
    assert [(a["name"], a["status"]) for a in result["apps"]] == [
        ("web", "success"),
        ("cache", "success"),
    ]
    assert live(cluster_file) == {("ConfigMap", "worker-config"), ("Secret", "worker-token")}
    shown = sbkube.json("state", "show", result["deployment_id"])
    assert shown["command"] == "uninstall" and shown["status"] == "success"
    apps = {a["name"]: a for a in shown["apps"]}
    assert {r["action"] for a in apps.values() for r in a["resources"]} == {"delete"}
    assert apps["cache"]["helm_releases"][0]["status"] == "uninstalled"
    assert "uninstall" in sbkube("state", "list").stdout
    # The release keeps its history (helm uninstall --keep-history).
    with MemoryCluster(cluster_file) as cluster:
        assert cluster.helm_status("cache", "shop").status == "uninstalled"
    status = sbkube.json("status", *base)
    assert {a["name"]: a["state"] for a in status["apps"]}["web"] == "not-deployed"

    back = sbkube("rollback", *base[:2], "--memory-cluster", str(cluster_file), "-y")

    assert back.returncode == 0, back.stderr
    assert len(live(cluster_file)) == 7
    with MemoryCluster(cluster_file) as cluster:
        assert cluster.helm_status("cache", "shop").status == "deployed"
    after = sbkube.json("status", *base)
    assert {a["state"] for a in after["apps"]} == {"in-sync"}


def test_nothing_to_uninstall_records_nothing(sbkube, app_dir, cluster_file, store):
    proc = sbkube("uninstall", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))

    assert proc.returncode == 0, proc.stderr
    assert "nothing to uninstall" in proc.stdout
    assert store().count() == 0


def test_uninstall_takes_the_lock(sbkube, app_dir, cluster_file, state_db, expect_error):
    base = ("--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    # cache's helm creates the namespace (worker waits for it: deployer.namespace_turns),
    # so uninstall has no namespace of worker's to warn about.
    assert sbkube("deploy", *base).returncode == 0
    with DeploymentDatabase(state_db) as db:
        # The lock is on the cluster's identity (what the deployment is keyed by).
        [identity] = {d.cluster_id for d in DeploymentRepository(db).list()}
        handle = DeployLocks(db).acquire(identity, "shop", command="deploy")
        try:
            proc = sbkube("uninstall", *base, "-y")
        finally:
            handle.release()

    assert proc.returncode == 1
    assert "target memory/shop is locked" in expect_error(proc.stderr)
    assert len(live(cluster_file)) == 7


def test_on_a_terminal_it_asks_and_no_keeps_everything(sbkube, app_dir, cluster_file, store):
    base = ("--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    assert sbkube("deploy", *base).returncode == 0
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sbkube.exe, "uninstall", *base],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=sbkube.env,
        cwd=sbkube.cwd,
        text=True,
    )
    os.close(secondary)
    os.write(primary, b"n\n")
    out, err = proc.communicate(timeout=300)
    os.close(primary)

    assert proc.returncode == 2, err
    assert "Proceed with this uninstall?" in err
    assert "uninstall cancelled" in err
    assert "Uninstall plan" in out
    assert len(live(cluster_file)) == 7 and store().count() == 1


def test_a_namespace_made_for_the_apps_objects_is_left_and_said_so(sbkube, tmp_path, store):
    app = tmp_path / "fresh"
    app.mkdir()
    (app / "config.yaml").write_text(
        "namespace: fresh\napps:\n  base: {type: yaml, manifests: [cm.yaml]}\n"
    )
    (app / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n")
    cluster_file = tmp_path / "cluster.json"
    base = ("--app-dir", str(app), "--memory-cluster", str(cluster_file))
    assert sbkube("deploy", *base).returncode == 0
    proc = sbkube("uninstall", *base, "-y")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: app base: Namespace fresh was created for its objects, not from its "
        "manifests; left in place (deleting it deletes everything in it)"
    ]
    with MemoryCluster(cluster_file) as cluster:
        assert cluster.get(("v1", "Namespace", "", "fresh")) is not None
        assert cluster.get(("v1", "ConfigMap", "fresh", "cm")) is None
