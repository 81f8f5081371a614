"""The original sbkube's hooks run as it documents them, each run a recorded step: the
real ``sbkube`` against a served memory cluster (the dir's settings name its kubeconfig),
checked with the real kubectl and the real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Kube

pytestmark = pytest.mark.kube


def _deploy(sbkube: Any, app_dir: Path, *extra: str) -> dict[str, Any]:
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json", *extra)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _steps(record: dict[str, Any]) -> list[tuple[str, int]]:
    return [(s["phase"], s["exit_code"]) for s in record["steps"]]


def _configmaps(k: Kube, namespace: str) -> set[str]:
    return {i["metadata"]["name"] for i in k.kubectl("get", "configmap", "-n", namespace)["items"]}


def test_command_level_hooks_run_around_all_apps_and_are_recorded(sbkube, dirs, kube):
    app_dir = dirs / "cmdhooks"
    kube(app_dir)
    result = _deploy(sbkube, app_dir)
    assert {a["name"]: a["status"] for a in result["apps"]} == {
        "first": "success",
        "second": "success",
    }
    # pre ran first, with the config's namespace and no app; post's kubectl reached the
    # target cluster (KUBECONFIG) and read what the apps applied.
    assert (app_dir / "order.log").read_text().splitlines() == [
        "deploy.pre:ns=around:app=none",
        "app.pre_deploy:first",
        "deploy.post:v1",
    ]
    record = sbkube.json("state", "show", result["deployment_id"])
    assert _steps(record) == [("hooks.deploy.pre", 0), ("hooks.deploy.post", 0)]
    assert record["steps"][0]["command"].startswith('echo "deploy.pre:')


def test_a_failing_command_level_pre_hook_skips_every_app(sbkube, dirs, kube):
    app_dir = dirs / "cmdhooks"
    k = kube(app_dir)
    config = app_dir / "sbkube.yaml"
    config.write_text(config.read_text().replace("    pre:\n", "    pre:\n      - exit 3\n"))
    proc = sbkube("deploy", "--app-dir", str(app_dir))
    assert proc.returncode == 1
    assert "hooks.deploy.pre hook 1 (exit 3) exited with code 3" in proc.stderr
    # No app ran, on_failure did; nothing was applied.
    assert (app_dir / "order.log").read_text().splitlines() == ["deploy.on_failure"]
    assert "around-cm" not in _configmaps(k, "around")
    record = sbkube.json("state", "show", "latest")
    assert record["status"] == "failed"
    assert {a["name"]: a["status"] for a in record["apps"]} == {
        "first": "skipped",
        "second": "skipped",
    }
    assert _steps(record) == [("hooks.deploy.pre", 3), ("hooks.deploy.on_failure", 0)]


def test_a_failed_app_runs_on_failure_and_a_failing_post_fails_the_deploy(sbkube, dirs, kube):
    app_dir = dirs / "cmdhooks"
    kube(app_dir)
    config = app_dir / "sbkube.yaml"
    original = config.read_text()
    config.write_text(original.replace("pre_deploy: ['echo", "pre_deploy: ['exit 5; echo"))
    failed = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json")
    assert failed.returncode == 1
    assert (app_dir / "order.log").read_text().splitlines()[-1] == "deploy.on_failure"
    record = sbkube.json("state", "show", "latest")
    assert _steps(record) == [("hooks.deploy.pre", 0), ("hooks.deploy.on_failure", 0)]

    config.write_text(original.replace("    post:\n", "    post:\n      - exit 6\n"))
    proc = sbkube("deploy", "--app-dir", str(app_dir))
    assert proc.returncode == 1
    assert "hooks.deploy.post hook 1 (exit 6) exited with code 6" in proc.stderr
    record = sbkube.json("state", "show", "latest")
    assert record["status"] == "failed" and "hooks.deploy.post" in record["error_message"]
    assert {a["status"] for a in record["apps"]} == {"success"}
    assert _steps(record) == [
        ("hooks.deploy.pre", 0),
        ("hooks.deploy.post", 6),
        ("hooks.deploy.on_failure", 0),
    ]


def test_command_level_hooks_of_the_older_config_yaml(sbkube, tmp_path, kube):
    app_dir = tmp_path / "pair"
    app_dir.mkdir()
    (app_dir / "config.yaml").write_text(
        "namespace: older\n"
        "hooks:\n"
        "  deploy:\n"
        "    pre: ['echo \"pre:$SBKUBE_NAMESPACE\" >> order.log']\n"
        "    post: ['echo post >> order.log']\n"
        "apps:\n"
        "  marker: {type: noop}\n"
    )
    (app_dir / "sources.yaml").write_text(
        "kubeconfig: ./cluster.kubeconfig\nkubeconfig_context: memory\n"
    )
    kube(app_dir)
    result = _deploy(sbkube, app_dir)
    assert (app_dir / "order.log").read_text() == "pre:older\npost\n"
    record = sbkube.json("state", "show", result["deployment_id"])
    assert _steps(record) == [("hooks.deploy.pre", 0), ("hooks.deploy.post", 0)]


def test_command_hooks_of_other_commands_are_refused_by_name(sbkube, dirs, state_db, tmp_path):
    app_dir = dirs / "cmdhooks"
    config = app_dir / "sbkube.yaml"
    config.write_text(config.read_text().replace("\nhooks:\n", "\nhooks:\n  prepare: {pre: [x]}\n"))
    proc = sbkube("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(tmp_path / "c"))
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "hooks.prepare: sbkube has no prepare command" in line
    assert not state_db.exists()


@pytest.mark.parametrize("how", ["env", "flag"])
def test_command_level_hooks_refused_without_exec(sbkube, dirs, kube, state_db, how):
    app_dir = dirs / "cmdhooks"
    k = kube(app_dir)
    args = ["deploy", "--app-dir", str(app_dir)]
    if how == "flag":
        proc = sbkube(*args, "--no-exec")
    else:
        proc = sbkube(*args, env={"SBKUBE_ALLOW_EXEC": "false"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert "hooks.deploy: command hooks refused" in lines[0]
    assert "apps.first.hooks: command hooks refused" in lines[1] and len(lines) == 2
    assert not state_db.exists() and not (app_dir / "order.log").exists()
    assert "around-cm" not in _configmaps(k, "around")


def test_dry_run_runs_no_command_level_hook_and_says_what_would(sbkube, dirs, kube, state_db):
    app_dir = dirs / "cmdhooks"
    kube(app_dir)
    proc = sbkube("deploy", "--app-dir", str(app_dir), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr + proc.stdout
    assert 'would run (hooks.deploy.pre hook): echo "deploy.pre:' in said
    assert "would run (hooks.deploy.on_failure hook)" in said
    assert not (app_dir / "order.log").exists()
