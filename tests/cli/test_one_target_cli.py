"""One target for every command: with ``cluster: prod`` in config.yaml, ``deploy``,
``status``, ``diff``, ``uninstall`` and ``rollback`` record, find and lock the deployment
under ``prod`` (not under the cluster's own identity, ``memory`` here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbkube.state import DeployLocks, DeploymentDatabase, DeploymentRepository, describe_holder

pytestmark = pytest.mark.helm


@pytest.fixture
def prod_dir(app_dir: Path) -> Path:
    config = app_dir / "config.yaml"
    config.write_text(
        config.read_text().replace("namespace: shop\n", "namespace: shop\ncluster: prod\n")
    )
    return app_dir


def drop_web_service(app_dir: Path) -> None:
    """web v2: web-config changed, the Service gone (a deploy would prune it)."""
    web = app_dir / "manifests" / "web.yaml"
    text = web.read_text().replace('mode: "v1"', 'mode: "v2"')
    web.write_text(text.split("---\napiVersion: v1\nkind: Service")[0])


def test_every_command_finds_the_deployment_under_the_configured_name(
    sbkube, prod_dir, cluster_file, store
):
    base = ("--app-dir", str(prod_dir), "--memory-cluster", str(cluster_file))
    v1 = sbkube.json("deploy", *base)
    assert (v1["status"], v1["cluster"], v1["namespace"]) == ("success", "prod", "shop")
    assert [d.cluster for d in store().list()] == ["prod"]

    status = sbkube("status", *base, "-o", "json", "--exit-code")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["cluster"] == "prod"
    assert {a["name"]: (a["state"], a["deployment_id"]) for a in report["apps"]} == {
        name: ("in-sync", v1["deployment_id"]) for name in ("cache", "web", "worker")
    }

    # diff reads web's last recording under prod: the Service it left is what v2 prunes.
    drop_web_service(prod_dir)
    diff = sbkube("diff", *base, "--app", "web", "-o", "json")
    assert diff.returncode in (0, 1), diff.stderr
    shown = json.loads(diff.stdout)
    assert shown["cluster"] == "prod"
    [web] = shown["apps"]
    assert {(o["action"], o["kind"], o["name"]) for o in web["objects"]} == {
        ("update", "ConfigMap", "web-config"),
        ("delete", "Service", "web"),
    }

    v2 = sbkube.json("deploy", *base)
    assert v2["cluster"] == "prod" and v2["status"] == "success"

    # rollback given the app dir: latest under prod, back to v1.
    back = sbkube("rollback", *base, "-y", "-o", "json")
    assert back.returncode == 0, back.stderr
    rolled = json.loads(back.stdout)
    assert rolled["cluster"] == "prod" and rolled["status"] == "success"
    assert rolled["plan"]["source_id"] == v2["deployment_id"]
    assert rolled["plan"]["target_id"] == v1["deployment_id"]
    assert [a["name"] for a in rolled["apps"]] == [n for n, _s, _e in rolled["app_status"]]

    # uninstall finds what the rollback recorded under prod, and removes all of it.
    gone = sbkube("uninstall", *base, "-y", "-o", "json")
    assert gone.returncode == 0, gone.stderr
    removed = json.loads(gone.stdout)
    assert removed["cluster"] == "prod" and removed["status"] == "success"
    web_plan = next(a for a in removed["plan"]["apps"] if a["name"] == "web")
    assert {(c["kind"], c["name"]) for c in web_plan["changes"]} == {
        ("ConfigMap", "web-config"),
        ("Deployment", "web"),
        ("Service", "web"),
    }
    after = sbkube.json("status", *base)
    assert {a["state"] for a in after["apps"]} == {"not-deployed"}
    assert {d.cluster for d in store().list()} == {"prod"}
    assert [d.command for d in store().list()] == ["uninstall", "rollback", "deploy", "deploy"]


@pytest.mark.parametrize("command", ["deploy", "uninstall", "rollback"])
def test_every_writing_command_takes_the_lock_deploy_takes(
    sbkube, prod_dir, cluster_file, state_db, expect_error, command
):
    base = ("--app-dir", str(prod_dir), "--memory-cluster", str(cluster_file))
    assert sbkube("deploy", *base).returncode == 0
    drop_web_service(prod_dir)
    assert sbkube("deploy", *base).returncode == 0
    before = cluster_file.read_bytes()
    with DeploymentDatabase(state_db) as db:
        # The lock is on the cluster's identity (its kube-system UID), shown as prod/shop;
        # a lock on a name (the display one, or the context's) holds nothing back.
        [identity] = {d.cluster_id for d in DeploymentRepository(db).list()}
        locks = DeployLocks(db)
        other = [locks.acquire(name, "shop", command="deploy") for name in ("memory", "prod")]
        handle = locks.acquire(identity, "shop", command="deploy")
        try:
            holder = locks.holder(identity, "shop")
            assert holder is not None
            proc = sbkube(command, *base, "-y") if command != "deploy" else sbkube(command, *base)
        finally:
            handle.release()
            for lock in other:
                lock.release()

    assert proc.returncode == 1, proc.stderr
    assert expect_error(proc.stderr) == (
        f"error: target prod/shop is locked: {describe_holder(holder)} "
        "(use --wait-lock SECONDS to wait for it)"
    )
    assert cluster_file.read_bytes() == before
