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


def test_every_hook_kind_runs_in_the_documented_order_and_is_recorded(sbkube, dirs, kube):
    app_dir = dirs / "allhooks"
    k = kube(app_dir)
    result = _deploy(sbkube, app_dir)
    assert {a["name"]: a["status"] for a in result["apps"]} == {
        "web": "success",
        "setup": "success",
        "free": "success",
    }
    assert (app_dir / "order.log").read_text().splitlines() == [
        "hooks.deploy.pre",
        "pre_deploy_tasks:web:ordered",
        "pre_deploy_tasks:inline",  # the inline task's object was live for the next task
        "pre_deploy:no-pre-cm-yet",  # before pre_deploy_manifests
        "post_deploy:v1",  # after post_deploy_manifests
        "post_deploy_tasks",
        "hook.tasks:setup",
        "hooks.deploy.post",
    ]
    # The objects went to the cluster in the same order: the API server numbers writes.
    version = {
        name: int(
            k.kubectl("get", "configmap", name, "-n", "ordered")["metadata"]["resourceVersion"]
        )
        for name in ("pre-inline", "pre-cm", "web-cm", "post-cm", "post-task", "hook-cm")
    }
    assert sorted(version, key=version.__getitem__) == [
        "pre-inline",
        "pre-cm",
        "web-cm",
        "post-cm",
        "post-task",
        "hook-cm",
    ]
    record = sbkube.json("state", "show", result["deployment_id"])
    assert _steps(record) == [("hooks.deploy.pre", 0), ("hooks.deploy.post", 0)]
    apps = {a["name"]: a for a in record["apps"]}
    web = [
        (s["phase"], s.get("task"), s.get("type"), s["exit_code"])
        for s in apps["web"]["metadata"]["steps"]
    ]
    assert web == [
        ("pre_deploy_tasks", "pre-command", "command", 0),
        ("pre_deploy_tasks", "pre-inline", "inline", 0),
        ("pre_deploy_tasks", "pre-inline", "validation", 0),
        ("pre_deploy_tasks", "read-inline", "command", 0),
        ("pre_deploy", None, None, 0),
        ("pre_deploy_manifests", None, None, 0),
        ("post_deploy_manifests", None, None, 0),
        ("post_deploy", None, None, 0),
        ("post_deploy_tasks", "post-files", "manifests", 0),
        ("post_deploy_tasks", "post-files", "validation", 0),
        ("post_deploy_tasks", "post-command", "command", 0),
    ]
    setup = [(s["phase"], s.get("task"), s.get("type")) for s in apps["setup"]["metadata"]["steps"]]
    assert setup == [
        ("tasks", "hook-command", "command"),
        ("tasks", "hook-files", "manifests"),
        ("validation", None, "validation"),
    ]
    # Every object a hook applied is its app's, recorded as the cluster holds it.
    recorded = {
        a["name"]: {r["name"] for r in a["resources"] if r["kind"] == "ConfigMap"}
        for a in record["apps"]
        if a["resources"]
    }
    assert recorded == {
        "web": {"pre-inline", "pre-cm", "web-cm", "post-cm", "post-task"},
        "setup": {"hook-cm"},
    }
    live = k.kubectl("get", "configmap", "-n", "ordered")["items"]
    owners = {
        i["metadata"]["name"]: i["metadata"]["labels"].get("sbkube.io/app")
        for i in live
        if i["metadata"]["name"] in version
    }
    assert owners == {name: app for app, names in recorded.items() for name in names}


def test_a_failing_task_runs_its_rollback_and_the_failure_hooks_and_skips_dependents(
    sbkube, dirs, kube
):
    app_dir = dirs / "allhooks"
    k = kube(app_dir)
    config = app_dir / "sbkube.yaml"
    config.write_text(
        config.read_text().replace(
            'command: echo "post_deploy_tasks" >> order.log',
            "command: exit 7\n"
            "          rollback:\n"
            "            enabled: true\n"
            "            manifests: [manifests/rollback.yaml]\n"
            "            commands: ['echo rollback:post-command >> order.log']",
        )
    )
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json")
    assert proc.returncode == 1, proc.stderr
    apps = {a["name"]: a for a in json.loads(proc.stdout)["apps"]}
    assert {n: a["status"] for n, a in apps.items()} == {
        "web": "failed",
        "setup": "skipped",  # depends on web
        "free": "success",  # does not
    }
    assert "post_deploy_tasks task 'post-command' failed" in apps["web"]["error"]
    assert (app_dir / "order.log").read_text().splitlines()[-4:] == [
        "post_deploy:v1",
        "rollback:post-command",
        "on_deploy_failure:web",
        "hooks.deploy.on_failure",
    ]
    assert k.kubectl("get", "configmap", "rollback-cm", "-n", "ordered")["data"] == {"k": "undone"}
    record = sbkube.json("state", "show", "latest")
    web = next(a for a in record["apps"] if a["name"] == "web")
    tail = [(s["phase"], s.get("type"), s["exit_code"]) for s in web["metadata"]["steps"]][-4:]
    assert tail == [
        ("post_deploy_tasks", "command", 7),
        ("post_deploy_tasks.rollback", "rollback", 0),
        ("post_deploy_tasks.rollback", "rollback", 0),
        ("on_deploy_failure", None, 0),
    ]
    assert _steps(record) == [("hooks.deploy.pre", 0), ("hooks.deploy.on_failure", 0)]
    # What the failed app did apply is recorded with it, the rollback's object too.
    names = {r["name"] for r in web["resources"]}
    assert {"pre-cm", "web-cm", "post-cm", "rollback-cm"} <= names


def test_a_command_task_retries_and_on_failure_warn_goes_on(sbkube, dirs, kube):
    app_dir = dirs / "allhooks"
    kube(app_dir)
    config = app_dir / "sbkube.yaml"
    config.write_text(
        config.read_text().replace(
            'command: echo "hook.tasks:$SBKUBE_APP_NAME" >> order.log',
            'command: echo "try" >> tries.log; exit 9\n        on_failure: warn',
        )
    )
    result = _deploy(sbkube, app_dir)
    assert {a["status"] for a in result["apps"]} == {"success"}
    assert (app_dir / "tries.log").read_text() == "try\ntry\n"
    record = sbkube.json("state", "show", result["deployment_id"])
    setup = next(a for a in record["apps"] if a["name"] == "setup")
    tries = [(s.get("attempt"), s["exit_code"]) for s in setup["metadata"]["steps"][:2]]
    assert tries == [(1, 9), (2, 9)]


@pytest.mark.parametrize("how", ["env", "flag"])
def test_every_command_is_refused_without_exec_and_nothing_is_applied(
    sbkube, dirs, kube, state_db, how
):
    app_dir = dirs / "allhooks"
    k = kube(app_dir)
    args = ["deploy", "--app-dir", str(app_dir)]
    if how == "flag":
        proc = sbkube(*args, "--no-exec")
    else:
        proc = sbkube(*args, env={"SBKUBE_ALLOW_EXEC": "false"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3
    assert "hooks.deploy: command hooks refused" in lines[0]
    assert "apps.web.hooks: command hooks refused" in lines[1]
    assert "apps.setup.tasks: command tasks refused" in lines[2]
    assert not state_db.exists() and not (app_dir / "order.log").exists()
    assert k.kubectl("get", "configmap", "-n", "ordered")["items"] == []


def test_dry_run_runs_no_hook_and_says_what_would(sbkube, dirs, kube, state_db):
    app_dir = dirs / "allhooks"
    k = kube(app_dir)
    proc = sbkube("deploy", "--app-dir", str(app_dir), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr + proc.stdout
    for line in (
        "would run (hooks.deploy.pre hook)",
        "app web would run (pre_deploy_tasks.pre-command)",
        "app web would apply (pre_deploy_manifests): manifests/pre.yaml",
        "app setup would run (tasks.hook-command)",
    ):
        assert line in said
    assert not (app_dir / "order.log").exists()
    assert k.kubectl("get", "configmap", "-n", "ordered")["items"] == []


SECRET = "Hk7vQ2pLx9sWm4Rt"


def test_a_secret_a_hook_prints_is_nowhere(sbkube, dirs, kube, state_db, tmp_path):
    app_dir = dirs / "allhooks"
    kube(app_dir)
    config = app_dir / "sbkube.yaml"
    text = config.read_text()
    text = text.replace(
        "pre_deploy_manifests: [manifests/pre.yaml]",
        "pre_deploy_manifests: [manifests/pre.yaml, manifests/secret.yaml]",
    )
    # The hooks print the Secret's value as it is (no "password:" to give it away).
    text = text.replace(
        'command: echo "post_deploy_tasks" >> order.log',
        "command: kubectl get secret db -n ordered -o jsonpath='{.data.password}' | base64 -d",
    )
    text = text.replace(
        "post: ['echo \"hooks.deploy.post\" >> order.log']",
        "post: ['echo db password is " + SECRET + "']",
    )
    config.write_text(text)
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json")
    assert proc.returncode == 0, proc.stderr
    dep = json.loads(proc.stdout)["deployment_id"]
    record = sbkube.json("state", "show", dep)
    web = next(a for a in record["apps"] if a["name"] == "web")
    printed = next(s for s in web["metadata"]["steps"] if s.get("task") == "post-command")
    assert printed["exit_code"] == 0 and printed["output_tail"] == "***"
    assert record["steps"][-1]["output_tail"] == "db password is ***"
    shown = sbkube("state", "show", dep)
    report = tmp_path / "report.html"
    made = sbkube("state", "report", "--html", str(report))
    assert made.returncode == 0, made.stderr
    for out in (proc.stdout, proc.stderr, shown.stdout, json.dumps(record), report.read_text()):
        assert SECRET not in out
    assert SECRET.encode() not in state_db.read_bytes()


def test_rollback_reruns_no_command_restores_hook_objects_and_uninstall_deletes_them(
    sbkube, dirs, kube
):
    app_dir = dirs / "allhooks"
    k = kube(app_dir)
    first = _deploy(sbkube, app_dir)
    (app_dir / "manifests" / "post.yaml").write_text(
        (app_dir / "manifests" / "post.yaml").read_text().replace("k: v1", "k: v2")
    )
    (app_dir / "manifests" / "hook.yaml").write_text(
        (app_dir / "manifests" / "hook.yaml").read_text().replace("k: v1", "k: v2")
    )
    _deploy(sbkube, app_dir)
    assert k.kubectl("get", "configmap", "post-cm", "-n", "ordered")["data"] == {"k": "v2"}
    ran = (app_dir / "order.log").read_text()

    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    # The plan says what is not re-run, and nothing ran.
    assert "app web: its 5 recorded command run(s) (exec, hooks, tasks) are not re-run" in (
        back.stderr
    )
    assert "app setup: its 1 recorded command run(s)" in back.stderr
    assert "command-level hooks" in back.stderr and "are not re-run" in back.stderr
    assert (app_dir / "order.log").read_text() == ran
    # The hook objects are restored from the record: the post hook's and the hook app's.
    for name in ("post-cm", "hook-cm"):
        assert k.kubectl("get", "configmap", name, "-n", "ordered")["data"] == {"k": "v1"}

    gone = sbkube("uninstall", "--app-dir", str(app_dir), "-y")
    assert gone.returncode == 0, gone.stderr + gone.stdout
    assert (app_dir / "order.log").read_text() == ran
    left = {i["metadata"]["name"] for i in k.kubectl("get", "configmap", "-n", "ordered")["items"]}
    assert not left & {"pre-inline", "pre-cm", "web-cm", "post-cm", "post-task", "hook-cm"}


def test_a_hook_object_no_longer_configured_is_pruned(sbkube, dirs, kube):
    app_dir = dirs / "allhooks"
    k = kube(app_dir)
    _deploy(sbkube, app_dir)
    config = app_dir / "sbkube.yaml"
    text = config.read_text().replace(
        "      post_deploy_manifests:\n        - path: manifests/post.yaml\n", ""
    )
    (app_dir / "manifests" / "other.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other-cm}\ndata: {k: v1}\n"
    )
    config.write_text(text.replace("files: [manifests/hook.yaml]", "files: [manifests/other.yaml]"))
    result = _deploy(sbkube, app_dir)
    assert {a["status"] for a in result["apps"]} == {"success"}
    live = {i["metadata"]["name"] for i in k.kubectl("get", "configmap", "-n", "ordered")["items"]}
    assert "post-cm" not in live and "hook-cm" not in live and "other-cm" in live
    record = sbkube.json("state", "show", result["deployment_id"])
    deleted = {
        (a["name"], r["name"])
        for a in record["apps"]
        for r in a["resources"]
        if r["action"] == "delete"
    }
    assert {("web", "post-cm"), ("setup", "hook-cm")} <= deleted
