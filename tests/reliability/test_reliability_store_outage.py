"""A store that cannot be written for a while during a deploy must not make the record lie.

The outage is real, on both backends: on SQLite another connection holds the write lock
(``BEGIN IMMEDIATE``) and our busy timeout is short; on PostgreSQL another session holds
``EXCLUSIVE`` locks on the store's tables (reads pass, writes wait) and our sessions run
with a short ``lock_timeout``. It starts right after helm made its revision (a
``MemoryCluster`` whose ``helm_upgrade_install`` starts it once the real upgrade is done),
when the app's records are still to be written.

* The outage ends before the deployment does: the writes kept by the tracker land, once;
  the app and its dependents succeed as they did on the cluster.
* The outage lasts past the deployment's end: the deploy fails with one ``StateError``
  naming the deployment, which stays unfinished; the next ``deploy --dry-run`` settles
  it: the app is recorded ``success`` at the revision ``helm status`` reports.

The acceptance run of issue 13 (``pg_terminate_backend`` every 0.1 s during 10 deploys of a
1.8 MB values file through the CLI) is ``test_terminated_connections_during_deploys``,
marked ``slow``; ``bench/reliability_acceptance.py`` runs it at any size.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from acceptance import sigterms, terminated_deploys
from outage_worker import Outage, OutageAfterUpgrade, impatient

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.memory import MemoryCluster
from sbkube.engine.deployer import deploy
from sbkube.model import AppStatus, DeploymentStatus
from sbkube.state import DeploymentDatabase, DeploymentRepository

SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "engine" / "shop"
HERE = Path(__file__).resolve().parent


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    target = tmp_path / "shop"
    shutil.copytree(SHOP, target)
    return target


@pytest.fixture
def outage_cluster(helm_binary: str) -> Iterator[OutageAfterUpgrade]:
    cluster = OutageAfterUpgrade(helm=HelmClient(helm_binary))
    yield cluster
    with contextlib.suppress(Exception):
        cluster.outage.end()


def _db(url: str) -> DeploymentDatabase:
    return DeploymentDatabase(impatient(url), busy_timeout=0.3)


def test_writes_kept_during_an_outage_land_once_it_ends(
    db_url: str, app_dir: Path, outage_cluster: OutageAfterUpgrade
) -> None:
    outage = outage_cluster.outage = Outage(db_url)
    # The outage ends when the next app (web) starts: its row is written, after the
    # writes kept for cache, which must then land exactly once.
    notes: list[str] = []

    def progress(line: str) -> None:
        notes.append(line)
        if line.startswith("[1/3] cache"):
            outage.end()

    db = _db(db_url)
    try:
        # One app at a time: the outage (a connection of this thread) spans cache alone.
        result = deploy(app_dir, cluster=outage_cluster, db=db, progress=progress, concurrency=1)
        rec = DeploymentRepository(db).get(result.deployment_id or "")
    finally:
        db.close()
    assert result.status == DeploymentStatus.SUCCESS, notes
    assert rec.status == DeploymentStatus.SUCCESS, rec.error_message
    apps = {a.name: a for a in rec.apps}
    assert {n: a.status for n, a in apps.items()} == dict.fromkeys(
        ("cache", "web", "worker"), AppStatus.SUCCESS
    )
    live = outage_cluster.helm_status("cache", "shop")
    assert live is not None
    assert [r.revision for r in apps["cache"].helm_releases] == [live.revision]
    names = [r.name for r in apps["cache"].resources]
    assert len(names) == len(set(names)) and names, names


def test_an_outage_past_the_end_is_settled_by_the_next_dry_run(
    db_url: str, app_dir: Path, tmp_path: Path, helm_binary: str
) -> None:
    cluster_file = tmp_path / "cluster.json"
    child = subprocess.run(
        [
            sys.executable,
            str(HERE / "outage_worker.py"),
            str(app_dir),
            db_url,
            str(cluster_file),
            helm_binary,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])},
    )
    assert child.returncode == 0, child.stderr
    message = child.stdout.strip()
    assert "stays unfinished in the store" in message and "\n" not in message, message

    db = DeploymentDatabase(db_url)
    cluster = MemoryCluster(cluster_file, helm=HelmClient(helm_binary))
    try:
        repo = DeploymentRepository(db)
        (summary,) = repo.list()
        assert summary.status == DeploymentStatus.IN_PROGRESS
        before = repo.get(summary.deployment_id)
        # The cluster has the revision; the store has no word of it yet.
        assert {a.name: a.status for a in before.apps} == {"cache": AppStatus.IN_PROGRESS}
        assert before.apps[0].helm_releases == ()

        said: list[str] = []
        deploy(app_dir, cluster=cluster, db=db, dry_run=True, progress=said.append)
        after = repo.get(summary.deployment_id)
        # A second settle (the next deploy) changes nothing: recorded once.
        deploy(app_dir, cluster=cluster, db=db, dry_run=True)
        again = repo.get(summary.deployment_id)
        live = cluster.helm_status("cache", "shop")
        worker = cluster.get(("v1", "ConfigMap", "shop", "worker-config"))
    finally:
        db.close()
        close = getattr(cluster, "close", None)
        if close is not None:
            close()
    assert live is not None and live.status == "deployed"
    (cache,) = after.apps
    assert cache.status == AppStatus.SUCCESS, cache.error_message
    assert [r.revision for r in cache.helm_releases] == [live.revision]
    assert "settled from the cluster" in (cache.error_message or "")
    assert after.status == DeploymentStatus.INTERRUPTED  # its process is gone
    assert again == after
    assert any("app cache settled from the cluster as success" in s for s in said), said
    # web and worker never started: the cluster has none of their objects.
    assert worker is None


@pytest.mark.slow
@pytest.mark.postgres
def test_terminated_connections_during_deploys(
    pg_schema_url: str, tmp_path: Path, helm_binary: str
) -> None:
    """Issue 13's acceptance: every revision helm made is recorded exactly once, with the
    outcome helm reports, after the next ``deploy --dry-run``; no app is left open."""
    run = terminated_deploys(10, tmp_path, pg_schema_url)
    assert run.killed > 0, "no connection was cut"
    assert run.open_apps == 0
    revisions = [rev for rev, _ in run.recorded]
    assert len(revisions) == len(set(revisions)), run.recorded
    assert revisions == [rev for rev, _ in run.history], (run.recorded, run.history, run.errors)
    expected = {"deployed": "success", "superseded": "success", "failed": "failed"}
    assert [s for _, s in run.recorded] == [expected[s] for _, s in run.history]


@pytest.mark.slow
@pytest.mark.postgres
def test_sigterm_during_deploys(pg_schema_url: str, tmp_path: Path, helm_binary: str) -> None:
    """SIGTERM mid-deploy, 10 times (the bench script runs 50): every deployment that the
    signal reached is ``interrupted`` with exit 143, and no app is left open."""
    run = sigterms(10, tmp_path, pg_schema_url)
    assert run.broken() == [], run.pairs
    assert run.open_apps == 0
    assert run.statuses.count("interrupted") > 0, "no signal landed mid-deployment"
