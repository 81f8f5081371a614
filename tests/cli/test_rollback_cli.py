"""``sbkube rollback`` through the real console script."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import LiveCluster

from sbkube.cluster.port import strip_volatile

pytestmark = pytest.mark.helm


def live(cluster_file: Path) -> list[dict]:
    return [strip_volatile(o) for o in LiveCluster(cluster_file).objects()]


@pytest.fixture
def two_deploys(sbkube, app_dir, cluster_file):
    """v1, then v2 with changed values, web-config changed and the Service removed."""
    base = ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    v1 = sbkube.json(*base)
    v1_live = live(cluster_file)
    (app_dir / "values" / "cache.yaml").write_text("greeting: bonjour\nsize: 3\npassword: pw2\n")
    web = app_dir / "manifests" / "web.yaml"
    text = web.read_text().replace('mode: "v1"', 'mode: "v2"')
    web.write_text(text.split("---\napiVersion: v1\nkind: Service")[0])
    v2 = sbkube.json(*base)
    assert v1["status"] == v2["status"] == "success"
    assert live(cluster_file) != v1_live
    return v1, v2, v1_live


def test_dry_run_prints_the_plan_and_changes_nothing(
    sbkube, app_dir, cluster_file, two_deploys, store
):
    v1, v2, _ = two_deploys
    before = cluster_file.read_bytes()

    proc = sbkube(
        "rollback", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file), "--dry-run"
    )

    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(
        f"Rollback plan: {v2['deployment_id']} -> {v1['deployment_id']}  target memory/shop"
    )
    assert re.search(r"^cache\s+helm\s+helm-rollback\s+cache\s+2 -> 1 \(new revision\)", out, re.M)
    assert re.search(r"^web\s+yaml\s+reapply\s", out, re.M)
    assert re.search(r"^worker\s+yaml\s+unchanged\s", out, re.M)
    assert re.search(r"^web\s+update\s+ConfigMap\s+shop\s+web-config$", out, re.M)
    assert re.search(r"^web\s+create\s+Service\s+shop\s+web$", out, re.M)
    assert "Dry run: nothing was changed or recorded." in out
    assert cluster_file.read_bytes() == before
    assert store().count() == 2

    data = json.loads(
        sbkube(
            "rollback",
            "--app-dir",
            str(app_dir),
            "--memory-cluster",
            str(cluster_file),
            "--dry-run",
            "-o",
            "json",
        ).stdout
    )
    assert data["dry_run"] is True and data["deployment_id"] is None
    assert data["plan"]["target_id"] == v1["deployment_id"]
    assert [a["action"] for a in data["plan"]["apps"]] == ["helm-rollback", "reapply", "unchanged"]


def test_rollback_restores_and_is_recorded(sbkube, app_dir, cluster_file, two_deploys, store):
    v1, v2, v1_live = two_deploys

    proc = sbkube(
        "rollback",
        "--app-dir",
        str(app_dir),
        "--memory-cluster",
        str(cluster_file),
        "--to",
        v1["deployment_id"],
        "-y",
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Rollback plan: {v2['deployment_id']} -> {v1['deployment_id']}")
    match = re.search(r"^Rollback (dep-\S+): success$", proc.stdout, re.M)
    assert match, proc.stdout
    assert re.search(r"\[[12]/3\] cache helm-rollback ok", proc.stderr), proc.stderr
    assert live(cluster_file) == v1_live
    release = LiveCluster(cluster_file).release("cache", "shop")
    assert release.revision == 3 and release.values["greeting"] == "hello"

    shown = sbkube.json("state", "show", match.group(1))
    assert shown["command"] == "rollback" and shown["status"] == "success"
    assert shown["rollback_target_id"] == v1["deployment_id"]
    assert store().get(v2["deployment_id"]).status == "rolled_back"
    history = store().app_history("cache")
    assert [h.command for h in history] == ["rollback", "deploy", "deploy"]
    assert [h.revision for h in history] == [3, 2, 1]

    # A single app, as JSON.
    one = sbkube(
        "rollback",
        "--memory-cluster",
        str(cluster_file),
        match.group(1),
        "--to",
        v2["deployment_id"],
        "--app",
        "web",
        "-o",
        "json",
    )
    assert one.returncode == 0, one.stderr
    data = json.loads(one.stdout)
    assert data["status"] == "success"
    assert [a["name"] for a in data["plan"]["apps"]] == ["web"]
    assert data["app_status"] == [["web", "success", None]]
    objects = {(o["kind"], o["metadata"]["name"]) for o in live(cluster_file)}
    assert ("Service", "web") not in objects
    assert LiveCluster(cluster_file).release("cache", "shop").revision == 3


def test_refusals_exit_2_with_one_error_line(
    sbkube, app_dir, cluster_file, two_deploys, expect_error, state_db, forget_seals
):
    v1, _v2, _ = two_deploys
    before = cluster_file.read_bytes()
    args = ("rollback", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    deploy = ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))

    typo = v1["deployment_id"][:-2] + "zz"
    unknown = sbkube(*args, "--to", typo)
    assert unknown.returncode == 2
    line = expect_error(unknown.stderr)
    assert typo in line and "did you mean" in line and v1["deployment_id"] in line

    bad_app = sbkube(*args, "--app", "nope")
    assert bad_app.returncode == 2
    assert "nope" in expect_error(bad_app.stderr)

    # An app that TARGET lacks would be removed: refused without --force.
    config = app_dir / "config.yaml"
    config.write_text(
        config.read_text() + "  extra:\n    type: yaml\n    manifests: [manifests/worker.yaml]\n"
        "    namespace: extra\n"
    )
    assert sbkube(*deploy).returncode == 0
    after_extra = cluster_file.read_bytes()
    refused = sbkube(*args, "--to", v1["deployment_id"])
    assert refused.returncode == 2
    line = expect_error(refused.stderr)
    assert "app extra is not in" in line and "--force" in line
    assert cluster_file.read_bytes() == after_extra
    assert before != after_extra

    # A Secret whose data changed since TARGET: only digests recorded (before sealing).
    forget_seals(state_db)
    worker = app_dir / "manifests" / "worker.yaml"
    worker.write_text(worker.read_text().replace("token-v1", "token-v2"))
    assert sbkube(*deploy).returncode == 0
    secret = sbkube(*args, "--to", v1["deployment_id"], "--app", "worker")
    assert secret.returncode == 2
    assert "Secret shop/worker-token" in expect_error(secret.stderr)

    forced = sbkube(*args, "--to", v1["deployment_id"], "--app", "worker", "--force", "-y")
    assert forced.returncode == 0, forced.stderr
    assert "warning: left as they are (only digests recorded): Secret shop/worker-token" in (
        forced.stderr
    )


def _named_deployment(version: str) -> str:
    """A Deployment whose every name field reads like a secret to a key-name detector:
    topologyKey, a secretKeyRef's key, a toleration's key, matchExpressions' key, a
    volume's items' key; each changes between versions."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: names
spec:
  selector:
    matchLabels: {{app: names}}
  template:
    metadata:
      labels: {{app: names}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            - topologyKey: topology.kubernetes.io/{version}-zone
              labelSelector:
                matchExpressions:
                  - {{key: {version}-api-key, operator: Exists}}
      tolerations:
        - {{key: example.com/{version}-token, operator: Equal, value: "{version}"}}
      securityContext:
        sysctls: [{{name: kernel.keys.maxkeys, value: "{version}"}}]
      containers:
        - name: app
          image: nginx:1.27
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {{name: db, key: {version}-password}}
      volumes:
        - name: tls
          secret:
            secretName: tls-{version}
            items: [{{key: {version}.tls.key, path: tls.key}}]
"""


def test_a_rollback_restores_every_name_a_key_detector_would_have_hidden(
    sbkube, tmp_path, cluster_file
):
    """Issue 22: `topologyKey: kubernetes.io/hostname` was recorded as a digest, and a
    YAML app's rollback re-applied the digest to the live Deployment."""
    app = tmp_path / "names"
    app.mkdir()
    (app / "config.yaml").write_text(
        "namespace: names\napps:\n  names: {type: yaml, manifests: [d.yaml]}\n"
    )
    base = ("deploy", "--app-dir", str(app), "--memory-cluster", str(cluster_file))
    (app / "d.yaml").write_text(_named_deployment("v1"))
    v1 = sbkube.json(*base)
    key = ("apps", "Deployment", "names", "names")
    v1_spec = LiveCluster(cluster_file).get(key)["spec"]["template"]["spec"]
    (app / "d.yaml").write_text(_named_deployment("v2"))
    sbkube.json(*base)
    assert LiveCluster(cluster_file).get(key)["spec"]["template"]["spec"] != v1_spec

    proc = sbkube(
        "rollback", "--app-dir", str(app), "--memory-cluster", str(cluster_file),
        "--to", v1["deployment_id"], "-y",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    restored = LiveCluster(cluster_file).get(key)["spec"]["template"]["spec"]
    assert restored == v1_spec
    assert "hmac-sha256:" not in json.dumps(restored)
    assert (
        restored["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            0
        ]["topologyKey"]
        == "topology.kubernetes.io/v1-zone"
    )
