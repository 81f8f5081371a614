"""``sbkube deploy`` of a chart given a value of the wrong type fails as on k3s: the local
API server refuses the object with the kube-apiserver's validation message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.kube

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_deploy_with_replica_count_two_fails_with_the_servers_message(
    sbkube_exe: str, helm_binary: str, kubectl_binary: str, tmp_path: Path
) -> None:
    demo = Path(shutil.copytree(REPO_ROOT / "examples" / "demo", tmp_path / "demo"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBKUBE_")}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "SBKUBE_STATE_URL": str(tmp_path / "state.db"),
            "SBKUBE_HELM": helm_binary,
            "SBKUBE_KUBECTL": kubectl_binary,
            "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
            "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
            "HELM_DATA_HOME": str(tmp_path / "helm-data"),
        }
    )

    def sbkube(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sbkube_exe, *args], capture_output=True, text=True, env=env, timeout=180, check=False
        )

    cluster = ["--app-dir", str(demo), "--memory-cluster", str(tmp_path / "cluster.json")]
    done = sbkube("deploy", *cluster, "--set", "redis:replicaCount=two")
    assert done.returncode == 1, done.stdout + done.stderr
    message = (
        'Deployment.apps "redis" is invalid: spec.replicas: Invalid value: "string": '
        'spec.replicas in body must be of type integer: "string"'
    )
    assert message in done.stderr + done.stdout
    record = json.loads(sbkube("state", "show", "latest", "-o", "json").stdout)
    redis = next(app for app in record["apps"] if app["name"] == "redis")
    assert redis["status"] == "failed"
    assert message in redis["error_message"]
