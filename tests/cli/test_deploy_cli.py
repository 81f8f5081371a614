"""``sbkube deploy`` and ``sbkube template`` through the real console script."""

from __future__ import annotations

import json
import re
import signal
import socket
from pathlib import Path

import pytest
import yaml
from cli_helpers import LiveCluster

pytestmark = pytest.mark.helm

DEP_ID = re.compile(r"dep-\d{8}-\d{6}-[0-9a-f]{6}")


def live_names(cluster_file) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in LiveCluster(cluster_file).objects()}


def test_deploy_table_then_json(sbkube, app_dir, cluster_file, store):
    proc = sbkube("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))

    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.splitlines()[0]
    assert re.match(rf"Deployment {DEP_ID.pattern}: success  target memory/shop$", head), head
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:5]}
    assert rows["APP"][:4] == ["APP", "TYPE", "NAMESPACE", "STATUS"]
    assert rows["cache"][:4] == ["cache", "helm", "shop", "success"]
    assert "install rev 1" in " ".join(rows["cache"])
    assert rows["web"][:4] == ["web", "yaml", "shop", "success"]
    assert "3 create" in " ".join(rows["web"])
    assert rows["worker"][:4] == ["worker", "yaml", "shop", "success"]
    assert re.search(r"^web\s+create\s+Service\s+shop\s+web$", proc.stdout, re.M)
    # Progress, with timing, goes to stderr.
    # One line per app as it ends: [k/3] counts the apps ended. cache comes first (web needs
    # it; worker waits for it, the first app to need the missing namespace shop).
    assert re.search(r"\[1/3\] cache \(helm\) ok in \d+\.\ds", proc.stderr)
    assert re.search(r"\[[23]/3\] worker \(yaml\) ok", proc.stderr)
    assert re.search(r"\[[23]/3\] web \(yaml\) ok", proc.stderr)
    assert ("Deployment", "web") in live_names(cluster_file)
    assert LiveCluster(cluster_file).release("cache", "shop").revision == 1

    again = sbkube(
        "deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file), "-o", "json"
    )

    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert DEP_ID.fullmatch(data["deployment_id"])
    assert data["deployment_id"] != DEP_ID.search(head).group(0)
    assert data["status"] == "success" and data["dry_run"] is False
    assert (data["cluster"], data["namespace"]) == ("memory", "shop")
    assert [(a["name"], a["type"], a["status"]) for a in data["apps"]] == [
        ("cache", "helm", "success"),
        ("web", "yaml", "success"),
        ("worker", "yaml", "success"),
    ]
    assert {c["action"] for a in data["apps"] for c in a["changes"]} == {"unchanged"}
    cache = data["apps"][0]
    # Nothing changed: helm made no revision, the release is recorded where it was.
    assert cache["release"]["action"] == "unchanged"
    assert cache["release"]["from_revision"] == 1 and cache["release"]["to_revision"] == 1
    assert cache["release"]["chart_version"] == "0.1.0"

    shown = sbkube.json("state", "show", data["deployment_id"])
    assert shown["status"] == "success" and shown["command"] == "deploy"
    # The record lists apps as they started: web after cache, which it needs; worker needs
    # nothing once the namespace exists, so it may start before, with or after cache.
    started = [a["name"] for a in shown["apps"]]
    assert started.index("cache") < started.index("web")
    assert sorted(a["name"] for a in shown["apps"]) == ["cache", "web", "worker"]
    assert shown["operator"] == "cli-tester"
    assert store().count() == 2


def test_dry_run_changes_nothing(sbkube, app_dir, cluster_file, store):
    base = ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    assert sbkube(*base).returncode == 0
    web = app_dir / "manifests" / "web.yaml"
    web.write_text(web.read_text().replace('mode: "v1"', 'mode: "v2"'))
    before = cluster_file.read_bytes()

    proc = sbkube(*base, "--dry-run")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Plan (dry run, nothing applied or recorded): success")
    assert re.search(r"^web\s+update\s+ConfigMap\s+shop\s+web-config$", proc.stdout, re.M)
    # Only a YAML file changed: the Helm release is planned unchanged, as the run will be.
    assert re.search(r"^cache\s+helm\s+shop\s+success\s+unchanged rev 1\s", proc.stdout, re.M)
    assert cluster_file.read_bytes() == before
    assert store().count() == 1

    data = json.loads(sbkube(*base, "--dry-run", "-o", "json").stdout)
    assert data["deployment_id"] is None and data["dry_run"] is True
    web_changes = {(c["action"], c["name"]) for c in data["apps"][1]["changes"]}
    assert ("update", "web-config") in web_changes
    assert cluster_file.read_bytes() == before

    real = json.loads(sbkube(*base, "-o", "json").stdout)
    assert {(c["action"], c["name"]) for c in real["apps"][1]["changes"]} == web_changes


def test_failing_app_exits_1(sbkube, app_dir, cluster_file, store):
    proc = sbkube(
        "deploy",
        "--app-dir",
        str(app_dir),
        "--memory-cluster",
        str(cluster_file),
        "-o",
        "json",
        env={"SBKUBE_MEMORY_FAIL_ON": "web-config"},
    )

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "partially_failed"
    status = {a["name"]: a["status"] for a in data["apps"]}
    assert status == {"cache": "success", "web": "failed", "worker": "success"}
    assert "web-config" in data["apps"][1]["error"]
    assert store().get(data["deployment_id"]).status == "partially_failed"

    # A changed value, so that Helm has objects of the release to write (and fail).
    values = app_dir / "values" / "cache.yaml"
    values.write_text(values.read_text().replace("greeting: hello", "greeting: again"))
    table = sbkube(
        "deploy",
        "--app-dir",
        str(app_dir),
        "--memory-cluster",
        str(cluster_file),
        env={"SBKUBE_MEMORY_FAIL_ON": "cache"},
    )
    assert table.returncode == 1
    assert re.search(r"^web\s+yaml\s+shop\s+skipped", table.stdout, re.M)
    assert "partially_failed" in table.stdout.splitlines()[0]


def test_bad_input_exits_2_with_one_error_line(sbkube, app_dir, cluster_file, expect_error, store):
    proc = sbkube(
        "deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file), "--app", "wbe"
    )
    assert proc.returncode == 2
    assert "wbe" in expect_error(proc.stderr)

    missing = sbkube("deploy", "--app-dir", str(app_dir / "nope"), "--memory-cluster", "x.json")
    assert missing.returncode == 2
    expect_error(missing.stderr)
    assert store().count() == 0


def test_template_prints_and_writes_manifests(sbkube, app_dir, tmp_path, state_db, cluster_file):
    proc = sbkube("template", "--app-dir", str(app_dir))

    assert proc.returncode == 0, proc.stderr
    assert "# sbkube app: cache (helm, namespace shop)" in proc.stdout
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert kinds == {
        ("ConfigMap", "cache-settings"),
        ("Secret", "cache-auth"),
        ("ConfigMap", "web-config"),
        ("Deployment", "web"),
        ("Service", "web"),
        ("ConfigMap", "worker-config"),
        ("Secret", "worker-token"),
    }
    settings = next(d for d in docs if d["metadata"]["name"] == "cache-settings")
    assert settings["data"] == {"greeting": "hello", "size": "2"}
    web = next(d for d in docs if d["kind"] == "Deployment")
    assert web["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sbkube"
    assert web["metadata"]["namespace"] == "shop"

    out = tmp_path / "rendered"
    written = sbkube("template", "--app-dir", str(app_dir), "--output-dir", str(out))

    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cache.yaml", "web.yaml", "worker.yaml"]
    assert f"wrote {out / 'web.yaml'} (3 objects)" in written.stderr
    web_docs = [d for d in yaml.safe_load_all((out / "web.yaml").read_text()) if d]
    assert [d["metadata"]["name"] for d in web_docs] == ["web-config", "web", "web"]
    # Nothing is recorded and no cluster is touched.
    assert not state_db.exists() and not cluster_file.exists()

    # Charts render concurrently; the stream is the same, in the apps' order, at any N.
    one = sbkube("template", "--app-dir", str(app_dir), "--concurrency", "1")
    many = sbkube("template", "--app-dir", str(app_dir), "--concurrency", "8")
    assert one.returncode == many.returncode == 0, one.stderr + many.stderr
    assert one.stdout == many.stdout == proc.stdout


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("deploy", ["--app-dir", "--dry-run", "--wait-lock", "--memory-cluster", "--app", "-o"]),
        ("template", ["--app-dir", "--output-dir", "--app", "--concurrency"]),
        ("rollback", ["--to", "--app", "--dry-run", "--force", "--app-dir", "--wait-lock"]),
    ],
)
def test_help_mentions_the_options(sbkube, command, options):
    proc = sbkube(command, "--help")
    assert proc.returncode == 0, proc.stderr
    for option in options:
        assert option in proc.stdout, option


def test_concurrent_deploy_is_refused_then_waits_for_sigterm(sbkube, app_dir, served, cluster_file):
    # One served cluster shared by three processes; the first is held inside `helm install`.
    server, kubeconfig = served(env={"SBKUBE_MEMORY_BLOCK_ON": "cache"})
    base = ("deploy", "--app-dir", str(app_dir), "--kubeconfig", str(kubeconfig))
    first = sbkube.spawn(*base, "--concurrency", "1")
    server.wait_for("BLOCKED cache")

    second = sbkube(*base)

    assert second.returncode == 1
    error = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in second.stderr
    # A served cluster is known by its context and address, as any cluster reached by
    # kubeconfig is.
    assert re.search(r"target memory@127\.0\.0\.1:\d+/shop is locked", error[0]), error[0]
    assert f"cli-tester@{socket.gethostname()} pid {first.proc.pid}" in error[0]
    first_id = DEP_ID.search(error[0]).group(0)

    waiter = sbkube.spawn(*base, "--wait-lock", "30")
    waiter.wait_for("waiting up to 30s for the lock")
    assert waiter.proc.poll() is None
    first.proc.send_signal(signal.SIGTERM)

    assert first.finish() == 143
    assert "interrupted by SIGTERM" in first.stderr
    assert "Traceback" not in first.stderr
    assert waiter.finish() == 0, waiter.stderr
    # The stopped `helm install` got SIGTERM and marked its revision failed itself, leaving
    # nothing pending to recover: the waiter upgrades the release.
    assert "pending-install" not in waiter.stderr
    assert "upgrade cache to revision 2" in waiter.stderr
    assert "Deployment dep-" in waiter.out and ": success" in waiter.out

    shown = sbkube.json("state", "show", first_id)
    assert shown["status"] == "interrupted"
    assert shown["apps"][0]["name"] == "cache"
    assert shown["apps"][0]["status"] == "interrupted"
    # Interrupted means stopped: the apps after the one in progress never ran.
    assert [a["name"] for a in shown["apps"]] == ["cache"]
    server.proc.send_signal(signal.SIGTERM)
    assert server.finish() == 0
    release = LiveCluster(cluster_file).release("cache", "shop")
    assert (release.revision, release.status) == (2, "deployed")


def test_sigkill_leaves_a_deployment_the_next_deploy_recovers(sbkube, app_dir, cluster_file, store):
    base = ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    assert sbkube(*base).returncode == 0
    # Block on an object the deploy applies (it changed), after cache succeeded.
    web = app_dir / "manifests" / "web.yaml"
    web.write_text(web.read_text().replace('mode: "v1"', 'mode: "v2"'))
    # One app at a time: worker, independent, would otherwise run (and end) meanwhile.
    killed = sbkube.spawn(*base, "--concurrency", "1", env={"SBKUBE_MEMORY_BLOCK_ON": "web-config"})
    killed.wait_for("BLOCKED web-config")
    [running] = store().unfinished()
    killed_id = running.deployment_id
    killed.proc.send_signal(signal.SIGKILL)
    assert killed.finish() == -signal.SIGKILL

    proc = sbkube(*base)

    assert proc.returncode == 0, proc.stderr
    assert f"pid {killed.proc.pid}" in proc.stderr and "took over the lock" in proc.stderr
    assert f"marked deployment {killed_id} as interrupted" in proc.stderr
    shown = sbkube.json("state", "show", killed_id)
    assert shown["status"] == "interrupted"
    apps = {a["name"]: a["status"] for a in shown["apps"]}
    assert apps == {"cache": "success", "web": "interrupted"}
    assert "apps completed before: cache" in shown["error_message"]
    assert store().list(limit=1)[0].status == "success"
    web_cm = LiveCluster(cluster_file).get(("v1", "ConfigMap", "shop", "web-config"))
    assert web_cm["data"] == {"mode": "v2"}


def test_helms_whole_error_is_printed_with_its_details_indented(sbkube, tmp_path):
    chart = Path(__file__).resolve().parents[1] / "fixtures" / "charts" / "strict"
    app = tmp_path / "strict-app"
    app.mkdir()
    (app / "values.yaml").write_text("logs: true\n")
    (app / "config.yaml").write_text(
        f"namespace: demo\napps:\n  web:\n    type: helm\n    chart: {chart}\n"
        "    values: [values.yaml]\n"
    )

    proc = sbkube("template", "--app-dir", str(app))

    assert proc.returncode == 2
    first, *details = proc.stderr.rstrip("\n").split("\n")
    assert first.startswith("error: ") and "failed to render: " in first
    assert first.endswith(
        "failed: values don't meet the specifications of the schema(s) in the following chart(s):"
    )
    # The reason is on helm's later lines: kept, indented under the error, no traceback.
    assert "  - at '': additional properties 'logs' not allowed" in details
    assert all(line.startswith("  ") for line in details)
    assert "Traceback" not in proc.stderr
