"""Live-cluster tests: opt-in, never in CI (there is no cluster there).

Set ``SBKUBE_E2E_KUBECONFIG`` (and optionally ``SBKUBE_E2E_CONTEXT``) to run them. They
deploy ``examples/demo`` into a throwaway namespace with the real helm and kubectl,
redeploy it unchanged, prune a removed manifest, roll back, and delete the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbkube.state import DeploymentDatabase

KUBECONFIG = os.environ.get("SBKUBE_E2E_KUBECONFIG")
CONTEXT = os.environ.get("SBKUBE_E2E_CONTEXT")
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not KUBECONFIG, reason="live-cluster tests need SBKUBE_E2E_KUBECONFIG"),
]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[object, Path, str]]:
    from sbkube.cluster.kube import KubeCluster

    namespace = f"sbkube-e2e-{uuid.uuid4().hex[:6]}"
    app_dir = tmp_path / "demo"
    shutil.copytree(REPO / "examples" / "demo", app_dir)
    cfg = app_dir / "config.yaml"
    cfg.write_text(cfg.read_text().replace("namespace: demo", f"namespace: {namespace}"))
    cluster = KubeCluster(kubeconfig=KUBECONFIG, context=CONTEXT)
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    yield cluster, app_dir, namespace
    kubectl = os.environ.get("SBKUBE_KUBECTL", "kubectl")
    args = [kubectl, "--kubeconfig", str(KUBECONFIG)]
    if CONTEXT:
        args += ["--context", CONTEXT]
    subprocess.run([*args, "delete", "namespace", namespace, "--wait=false"], check=False)


def test_deploy_redeploy_prune_rollback(live: tuple, tmp_path: Path) -> None:
    from sbkube.engine import deploy, rollback

    cluster, app_dir, namespace = live
    db = DeploymentDatabase(tmp_path / "state.db")
    first = deploy(app_dir, cluster=cluster, db=db)
    assert first.status == "success", first
    assert all(c.action == "create" for a in first.apps for c in a.changes)

    second = deploy(app_dir, cluster=cluster, db=db)
    assert second.status == "success"
    assert second.app("redis").release.to_revision == 2
    assert all(c.action == "unchanged" for c in second.app("web").changes)

    cfg = app_dir / "config.yaml"
    cfg.write_text(
        cfg.read_text().replace("manifests/web.yaml, manifests/svc.yaml", "manifests/web.yaml")
    )
    third = deploy(app_dir, cluster=cluster, db=db)
    deleted = [c for c in third.app("web").changes if c.action == "delete"]
    assert [c.kind for c in deleted] == ["Service"]
    assert cluster.get(("v1", "Service", namespace, "web")) is None

    back = rollback(db, cluster, to=first.deployment_id, namespace=namespace)
    assert back.status == "success"
    assert cluster.get(("v1", "Service", namespace, "web")) is not None
