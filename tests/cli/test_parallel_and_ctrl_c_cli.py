"""Two targets deploy in parallel; Ctrl-C (SIGINT) marks the deployment interrupted."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any


def _other_namespace(app_dir: Path, namespace: str) -> Path:
    other = Path(shutil.copytree(app_dir, app_dir.parent / f"shop-{namespace}"))
    cfg = other / "config.yaml"
    cfg.write_text(cfg.read_text().replace("namespace: shop", f"namespace: {namespace}", 1))
    return other


def test_different_targets_deploy_in_parallel(sbkube: Any, app_dir: Path, served: Any) -> None:
    other = _other_namespace(app_dir, "shop-two")
    # One served cluster, two processes: the first is held inside `helm install cache`.
    server, kubeconfig = served(env={"SBKUBE_MEMORY_BLOCK_ON": "cache"})
    first = sbkube.spawn("deploy", "--app-dir", str(app_dir), "--kubeconfig", str(kubeconfig))
    server.wait_for("BLOCKED cache")

    # While the first holds memory/shop (blocked inside it), memory/shop-two proceeds.
    second = sbkube("deploy", "--app-dir", str(other), "--kubeconfig", str(kubeconfig))

    assert second.returncode == 0, second.stderr
    assert "/shop-two" in second.stdout and ": success" in second.stdout
    assert first.proc.poll() is None, "the first deploy should still be running"
    first.proc.send_signal(signal.SIGTERM)
    assert first.finish() == 143


def test_ctrl_c_marks_the_deployment_interrupted(
    sbkube: Any, app_dir: Path, cluster_file: Path
) -> None:
    base = ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    # One app at a time: the apps after the one in progress never start.
    running = sbkube.spawn(*base, "--concurrency", "1", env={"SBKUBE_MEMORY_BLOCK_ON": "cache"})
    running.wait_for("BLOCKED cache")
    running.proc.send_signal(signal.SIGINT)

    assert running.finish() == 130
    assert "Traceback" not in running.stderr
    [summary] = sbkube.json("state", "list")
    assert summary["status"] == "interrupted"
    shown = sbkube.json("state", "show", summary["deployment_id"])
    assert [(a["name"], a["status"]) for a in shown["apps"]] == [("cache", "interrupted")]
    # The lock went with the process: the next deploy proceeds at once.
    again = sbkube(*base)
    assert again.returncode == 0, again.stderr
    assert "locked" not in again.stderr
