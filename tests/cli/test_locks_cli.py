"""`sbkube state locks` and `sbkube state unlock --force`, through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from sbkube.state import DeployLocks, DeploymentDatabase


def test_list_and_force_unlock_a_live_holder(sbkube_exe: str, tmp_path: Path) -> None:
    store = tmp_path / "state.db"
    env = {**os.environ, "SBKUBE_STATE_URL": str(store)}

    def run(_store: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sbkube_exe, *args], capture_output=True, text=True, env=env, check=False
        )

    db = DeploymentDatabase(store)
    handle = DeployLocks(db).acquire("k3s", "demo", command="deploy")  # held by this (live) pid
    try:
        table = run(store, "state", "locks")
        assert table.returncode == 0, table.stderr
        assert "k3s/demo" in table.stdout and f"pid {os.getpid()}" in table.stdout
        assert "live" in table.stdout
        [row] = json.loads(run(store, "state", "locks", "-o", "json").stdout)
        assert row["target"] == "k3s/demo" and row["stale"] is None

        refused = run(store, "state", "unlock", "--cluster", "k3s", "-n", "demo")
        assert refused.returncode == 2 and refused.stderr.startswith("error: ")
        assert DeployLocks(db).holder("k3s", "demo") is not None

        done = run(store, "state", "unlock", "--cluster", "k3s", "-n", "demo", "--force")
        assert done.returncode == 0, done.stderr
        assert "removed the lock of k3s/demo" in done.stdout
        assert DeployLocks(db).holder("k3s", "demo") is None
        assert "No deploy locks" in run(store, "state", "locks").stdout

        again = run(store, "state", "unlock", "--cluster", "k3s", "-n", "demo", "--force")
        assert again.returncode == 2 and "is not locked" in again.stderr
    finally:
        handle.release()
        db.close()


def test_locks_name_the_cluster_an_identity_was_recorded_under(
    sbkube_exe: str, tmp_path: Path
) -> None:
    """A lock is keyed by the cluster's identity (its kube-system UID); the table shows the
    name that identity was last recorded under, and the JSON keeps both."""
    from sbkube.state import DeploymentRepository

    store = tmp_path / "state.db"
    env = {**os.environ, "SBKUBE_STATE_URL": str(store)}
    db = DeploymentDatabase(store)
    repo = DeploymentRepository(db)
    repo.create_deployment(cluster="old-name", cluster_id="uid-1234", namespace="shop")
    repo.create_deployment(cluster="dev", cluster_id="uid-1234", namespace="shop")
    handle = DeployLocks(db).acquire("uid-1234", "shop", command="deploy")
    unknown = DeployLocks(db).acquire("uid-9999", "shop", command="deploy")
    try:
        table = subprocess.run(
            [sbkube_exe, "state", "locks"], capture_output=True, text=True, env=env, check=False
        )
        assert table.returncode == 0, table.stderr
        assert "dev/shop" in table.stdout and "uid-1234" not in table.stdout
        assert "uid-9999/shop" in table.stdout  # never recorded: the key is all there is
        rows = json.loads(
            subprocess.run(
                [sbkube_exe, "state", "locks", "-o", "json"],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
        )
        assert {(r["target"], r["shown"]) for r in rows} == {
            ("uid-1234/shop", "dev/shop"),
            ("uid-9999/shop", "uid-9999/shop"),
        }
    finally:
        handle.release()
        unknown.release()
        db.close()
