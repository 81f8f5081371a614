"""Recovery from runs that did not finish: interrupted deployments and pending releases."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from sbkube.cluster.port import UpgradeRequest
from sbkube.engine import deploy, rollback
from sbkube.engine.recovery import recover_orphans, recover_pending_releases
from sbkube.model import AppStatus, DeploymentStatus
from sbkube.state import DeployLocks, DeploymentRepository

pytestmark = pytest.mark.helm


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leave_in_progress(db, dead_pid: int, *, cluster: str = "memory", namespace: str = "shop"):
    """What a deploy killed with SIGKILL leaves: a deployment with one app done, one open."""
    repo = DeploymentRepository(db)
    rec = repo.create_deployment(
        cluster=cluster, namespace=namespace, pid=dead_pid, operator="carol", host="ci-runner"
    )
    done = repo.start_app(rec.deployment_id, name="cache", type="helm", namespace=namespace)
    repo.finish_app(done.app_id, AppStatus.SUCCESS)
    repo.start_app(rec.deployment_id, name="web", type="yaml", namespace=namespace)
    return rec.deployment_id


def test_next_deploy_marks_the_unfinished_deployment_interrupted(db, cluster, shop, dead_pid):
    stale = leave_in_progress(db, dead_pid)
    other_target = leave_in_progress(db, dead_pid, namespace="elsewhere")

    result = deploy(shop.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.SUCCESS
    repo = DeploymentRepository(db)
    rec = repo.get(stale)
    assert rec.status == DeploymentStatus.INTERRUPTED
    assert rec.finished_at is not None
    assert f"pid {dead_pid}" in rec.error_message and "carol@ci-runner" in rec.error_message
    assert "apps completed before: cache" in rec.error_message
    assert rec.app("cache").status == AppStatus.SUCCESS
    assert rec.app("web").status == AppStatus.INTERRUPTED
    assert any(stale in m and "interrupted" in m for m in result.messages)
    # Another target's deployment is not this deploy's business.
    assert repo.get(other_target).status == DeploymentStatus.IN_PROGRESS
    assert repo.unfinished() and [d.deployment_id for d in repo.unfinished()] == [other_target]


def test_rollback_marks_the_unfinished_deployment_interrupted(db, cluster, shop, dead_pid):
    first = deploy(shop.path, cluster=cluster, db=db)
    shop.set_values(greeting="two", size=1, password="p")
    second = deploy(shop.path, cluster=cluster, db=db)
    stale = leave_in_progress(db, dead_pid)

    result = rollback(
        db, cluster, deployment_id=second.deployment_id, to=first.deployment_id, apps=["cache"]
    )

    assert result.ok
    assert DeploymentRepository(db).get(stale).status == DeploymentStatus.INTERRUPTED
    assert any(stale in m for m in result.messages)


def test_recover_orphans_marks_dead_deployments_without_a_live_lock(db, dead_pid):
    stale = leave_in_progress(db, dead_pid)
    repo = DeploymentRepository(db)
    # Our own, live, unfinished deployment on another target must survive.
    mine = repo.create_deployment(cluster="memory", namespace="live-ns").deployment_id
    told: list[str] = []

    marked = recover_orphans(db, notify=told.append)

    assert marked == [stale]
    assert repo.get(stale).status == DeploymentStatus.INTERRUPTED
    assert repo.get(mine).status == DeploymentStatus.IN_PROGRESS
    assert len(told) == 1 and stale in told[0]
    assert recover_orphans(db) == []


def test_recover_orphans_leaves_a_target_whose_lock_is_held(db, dead_pid):
    repo = DeploymentRepository(db)
    # The holder runs on another machine: its deployment's pid means nothing here.
    remote = repo.create_deployment(
        cluster="memory", namespace="shop", pid=dead_pid, host="other-host"
    ).deployment_id
    locks = DeployLocks(db)
    locks.host = "other-host"
    with locks.acquire("memory", "shop"):
        assert recover_orphans(db) == []
        assert repo.get(remote).status == DeploymentStatus.IN_PROGRESS
    assert recover_orphans(db) == [remote]


def test_pending_upgrade_is_rolled_back_before_the_next_deploy(db, cluster, shop, probe):
    deploy(shop.path, cluster=cluster, db=db)
    shop.set_values(greeting="second", size=1, password="p")
    deploy(shop.path, cluster=cluster, db=db)
    # A run killed in the middle of `helm upgrade` (revision 3) leaves it pending.
    shop.set_values(greeting="third", size=1, password="p")
    probe.leave_pending(cluster, _chart(shop), "cache", "shop", {"greeting": "third"})
    history = cluster.helm_history("cache", "shop")
    assert [(r.revision, r.status) for r in history][-1] == (3, "pending-upgrade")

    result = deploy(shop.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.SUCCESS
    assert any(
        "pending-upgrade" in m and "rolled back to revision 2" in m and "shop/cache" in m
        for m in result.messages
    ), result.messages
    statuses = [(r.revision, r.status) for r in cluster.helm_history("cache", "shop")]
    # Helm leaves the interrupted revision as it was; the rollback and the upgrade follow.
    assert statuses == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "pending-upgrade"),
        (4, "superseded"),
        (5, "deployed"),
    ]
    assert cluster.helm_history("cache", "shop")[3].description == "Rollback to 2"
    release = cluster.release("cache", "shop")
    assert (release.revision, release.status) == (5, "deployed")
    assert release.values["greeting"] == "third"
    assert result.app("cache").release.from_revision == 4


def test_pending_install_that_never_deployed_is_uninstalled(db, cluster, shop, probe):
    probe.leave_pending(cluster, _chart(shop), "cache", "shop", {"greeting": "x"})
    assert cluster.helm_history("cache", "shop")[-1].status == "pending-install"

    result = deploy(shop.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.SUCCESS
    assert any("pending-install" in m and "uninstalled" in m for m in result.messages)
    release = cluster.release("cache", "shop")
    assert (release.revision, release.status) == (1, "deployed")
    assert release.values["greeting"] == "hello"
    assert result.app("cache").release.action == "install"


def test_recover_pending_releases_leaves_healthy_releases_alone(cluster, shop):
    cluster.helm_upgrade_install(
        UpgradeRequest(_chart(shop), release_name="cache", namespace="shop", values={})
    )
    assert recover_pending_releases(cluster, [("cache", "shop"), ("absent", "shop")]) == []
    assert cluster.release("cache", "shop").revision == 1


def test_deployment_recorded_by_this_host_is_not_recovered_while_its_pid_lives(db):
    """A read command must not close a deployment whose process is still running."""
    repo = DeploymentRepository(db)
    live = repo.create_deployment(
        cluster="memory", namespace="shop", host=socket.gethostname()
    ).deployment_id  # pid = this (live) process

    assert recover_orphans(db) == []
    assert repo.get(live).status == DeploymentStatus.IN_PROGRESS


def _chart(app_dir):
    from sbkube.cluster.port import ChartRef

    return ChartRef(ref=str(app_dir.path / "charts" / "cache"), version="0.1.0")


def test_an_interrupt_stops_the_deployment_and_releases_the_lock(db, helm, shop):
    """SIGTERM (InterruptedDeployment) mid-app: recorded ``interrupted``, no later app runs."""
    from sbkube.cluster.memory import MemoryCluster
    from sbkube.errors import InterruptedDeployment

    class Interrupted(MemoryCluster):
        def apply_many(self, manifests):
            if any(m["metadata"]["name"] == "web" for m in manifests):
                raise InterruptedDeployment("interrupted by SIGTERM", exit_code=143)
            return super().apply_many(manifests)

    cluster = Interrupted(helm=helm)

    with pytest.raises(InterruptedDeployment):
        deploy(shop.path, cluster=cluster, db=db, concurrency=1)

    repo = DeploymentRepository(db)
    [summary] = repo.list()
    rec = repo.get(summary.deployment_id)
    assert rec.status == DeploymentStatus.INTERRUPTED
    assert [(a.name, a.status) for a in rec.apps] == [
        ("cache", AppStatus.SUCCESS),
        ("web", AppStatus.INTERRUPTED),
    ]
    assert cluster.get(("v1", "ConfigMap", "shop", "worker-config")) is None
    assert DeployLocks(db).holder(cluster.name, "shop") is None


def test_helm_pending_lists_exactly_the_pending_releases(cluster, shop, probe):
    """Recovery asks `helm list --pending` once per namespace instead of every release."""
    chart = _chart(shop)
    cluster.helm_upgrade_install(
        UpgradeRequest(chart, release_name="healthy", namespace="shop", values={})
    )
    probe.leave_pending(cluster, chart, "cache", "shop", {"greeting": "x"})

    assert cluster.helm_pending("shop") == ["cache"]
    assert cluster.helm_pending("elsewhere") == []
