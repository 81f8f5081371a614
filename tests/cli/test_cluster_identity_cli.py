"""One identity per cluster: the UID of its ``kube-system`` namespace.

A served memory cluster keeps that UID in its file, as a k3s cluster keeps it in its
datastore: restarted on another port and under another context name, it is the same
cluster, and its history follows it; a fresh file served at the old address is another
cluster, even under the old name. The lock goes by the identity too, so two app dirs that
name one cluster differently never deploy into one namespace at once.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sbkube.state import DeployLocks, DeploymentDatabase, DeploymentRepository, describe_holder

pytestmark = pytest.mark.helm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """``sbkube memory-cluster serve FILE --port PORT``, its context renamed to ``context``."""

    def __init__(
        self, sbkube: Any, kubectl: str, file: Path, port: int, context: str, kubeconfig: Path
    ) -> None:
        self.server = sbkube.spawn(
            "memory-cluster", "serve", str(file), "--kubeconfig", str(kubeconfig),
            "--port", str(port),
        )  # fmt: skip
        self.server.wait_for("serving")
        self.kubeconfig = kubeconfig
        if context != "memory":
            subprocess.run(
                [kubectl, "config", "rename-context", "memory", context,
                 "--kubeconfig", str(kubeconfig)],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip

    def stop(self) -> None:
        self.server.proc.send_signal(signal.SIGTERM)
        assert self.server.finish(timeout=300) == 0, self.server.stderr


def test_history_follows_the_cluster_and_a_rebuilt_one_is_new(
    sbkube: Any, kubectl_binary: str, app_dir: Path, tmp_path: Path, state_db: Path
) -> None:
    first_port = free_port()
    file = tmp_path / "cluster.json"
    seen: list[dict[str, Any]] = []
    for n, (port, context) in enumerate(
        [(first_port, "memory"), (free_port(), "renamed-1"), (free_port(), "renamed-2")]
    ):
        served = Served(sbkube, kubectl_binary, file, port, context, tmp_path / f"kc{n}")
        base = ("--app-dir", str(app_dir), "--kubeconfig", str(served.kubeconfig))
        try:
            if n:
                # Before this deploy, the record is found at the new address already.
                status = sbkube.json("status", *base)
                assert {a["state"] for a in status["apps"]} == {"in-sync"}, status
                assert not any("another cluster" in m for m in status["messages"])
            seen.append(sbkube.json("deploy", *base))
            if n == 2:
                plan = sbkube.json("rollback", *base, "--to", seen[0]["deployment_id"], "--dry-run")
                assert plan["plan"]["target_id"] == seen[0]["deployment_id"]
        finally:
            served.stop()

    listed = sbkube.json("state", "list")
    assert [d["deployment_id"] for d in listed] == [d["deployment_id"] for d in seen[::-1]]
    names = [d["cluster"] for d in listed[::-1]]
    assert names[0].startswith("memory@127.0.0.1:") and names[1].startswith("renamed-1@")
    assert names[2].startswith("renamed-2@")
    identities = {d["cluster_id"] for d in listed}
    assert len(identities) == 1
    [identity] = identities
    live_uid = json.loads(file.read_text())  # the file holds kube-system's UID
    assert identity in json.dumps(live_uid)

    # A fresh cluster file served at the first address, under the first context name.
    rebuilt = Served(
        sbkube, kubectl_binary, tmp_path / "rebuilt.json", first_port, "memory", tmp_path / "kc3"
    )
    base = ("--app-dir", str(app_dir), "--kubeconfig", str(rebuilt.kubeconfig))
    try:
        status = sbkube.json("status", *base)
        assert {a["state"] for a in status["apps"]} == {"not-deployed"}
        assert status["cluster"] == names[0]
        [note] = [m for m in status["messages"] if "another cluster" in m]
        assert identity in note
        fresh = sbkube.json("deploy", *base)
    finally:
        rebuilt.stop()
    after = sbkube.json("state", "list")
    new = next(d for d in after if d["deployment_id"] == fresh["deployment_id"])
    assert new["cluster"] == names[0] and new["cluster_id"] != identity
    assert [d for d in after if d["cluster_id"] == identity] == listed


def test_the_lock_is_on_the_identity_not_the_name(
    sbkube: Any, app_dir: Path, tmp_path: Path, cluster_file: Path, state_db: Path, expect_error
) -> None:
    other_dir = Path(str(app_dir) + "-b")
    other_dir.mkdir()
    subprocess.run(["cp", "-a", f"{app_dir}/.", str(other_dir)], check=True)
    for directory, name in ((app_dir, "a"), (other_dir, "b")):
        config = directory / "config.yaml"
        config.write_text(
            config.read_text().replace("namespace: shop\n", f"namespace: shop\ncluster: {name}\n")
        )
    first = sbkube("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    assert first.returncode == 0, first.stderr
    with DeploymentDatabase(state_db) as db:
        [identity] = {d.cluster_id for d in DeploymentRepository(db).list()}
        locks = DeployLocks(db)
        handle = locks.acquire(identity, "shop", command="deploy", label="a/shop")
        try:
            holder = locks.holder(identity, "shop")
            assert holder is not None
            proc = sbkube(
                "deploy", "--app-dir", str(other_dir), "--memory-cluster", str(cluster_file)
            )
        finally:
            handle.release()
    assert proc.returncode == 1, proc.stderr
    assert expect_error(proc.stderr) == (
        f"error: target b/shop is locked: {describe_holder(holder)} "
        "(use --wait-lock SECONDS to wait for it)"
    )
    # Once free, b's deploy (taking over a's same-named objects) records under its own
    # name, on the same identity.
    done = sbkube.json(
        "deploy", "--app-dir", str(other_dir), "--memory-cluster", str(cluster_file), "--adopt"
    )
    assert done["cluster"] == "b"
    with DeploymentDatabase(state_db) as db:
        rows = DeploymentRepository(db).list()
    assert {(d.cluster, d.cluster_id) for d in rows} == {("a", identity), ("b", identity)}


def test_a_deploy_that_writes_nothing_keeps_the_new_clusters_identity(
    sbkube: Any, tmp_path: Path, cluster_file: Path
) -> None:
    """Noop apps write nothing to the cluster, yet the deployment is recorded under the
    cluster's identity: the new memory-cluster file keeps it, so the next deploy is on the
    same target (its history, its lock)."""
    app = tmp_path / "quiet"
    app.mkdir()
    (app / "config.yaml").write_text(
        "namespace: quiet\napps:\n  marker:\n    type: noop\n", encoding="utf-8"
    )
    base = ("deploy", "--app-dir", str(app), "--memory-cluster", str(cluster_file))
    first = sbkube.json(*base)
    assert cluster_file.exists()
    second = sbkube.json(*base)
    listed = {d["deployment_id"]: d["cluster_id"] for d in sbkube.json("state", "list")}
    assert listed[first["deployment_id"]] == listed[second["deployment_id"]]
    # Recorded, and nothing of it lives in the cluster to drift: in sync, not "not-deployed".
    status = sbkube.json("status", "--app-dir", str(app), "--memory-cluster", str(cluster_file))
    assert [(a["name"], a["state"]) for a in status["apps"]] == [("marker", "in-sync")]
