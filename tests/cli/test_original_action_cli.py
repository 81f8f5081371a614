"""The original sbkube's ``action`` apps: ordered apply and delete steps over files, each
step recorded; their objects go down the YAML path (ownership labels, one server-side
apply, prune, record), so rollback and uninstall work from the record. Checked with the
real kubectl against a served memory cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Kube, nothing_recorded

pytestmark = pytest.mark.kube


def _deploy(sbkube: Any, app_dir: Path, *extra: str) -> dict[str, Any]:
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json", *extra)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _configmaps(k: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    items = k.kubectl("get", "configmap", "-n", namespace)["items"]
    return {i["metadata"]["name"]: i for i in items if i["metadata"]["name"] != "kube-root-ca.crt"}


def _steps(record: dict[str, Any]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    (app,) = record["apps"]
    return [
        (s["action"], s["path"], [(o["name"], o["result"]) for o in s["objects"]])
        for s in app["metadata"]["steps"]
    ]


def test_action_steps_apply_delete_record_rollback_and_uninstall(sbkube, dirs, kube):
    app_dir = dirs / "action"
    k = kube(app_dir)
    legacy = app_dir / "manifests" / "legacy.yaml"
    k.kubectl_text("create", "namespace", "tasks")
    k.kubectl_text("apply", "-n", "tasks", "-f", str(legacy))
    assert "legacy" in _configmaps(k, "tasks")

    first = _deploy(sbkube, app_dir)
    assert [(a["name"], a["type"], a["status"]) for a in first["apps"]] == [
        ("setup", "action", "success")
    ]
    # kubectl says: the apply steps' objects are the app's, with its labels and annotations,
    # in the step's namespace; the delete step's object (made by hand) is gone.
    tasks = _configmaps(k, "tasks")
    assert set(tasks) == {"settings"}
    settings = tasks["settings"]
    assert settings["data"] == {"mode": "first"}
    assert settings["metadata"]["labels"]["team"] == "ops"
    assert settings["metadata"]["labels"]["sbkube.io/app"] == "setup"
    assert settings["metadata"]["annotations"]["example.com/runbook"] == "setup"
    extra = _configmaps(k, "side")["extra"]
    assert extra["metadata"]["labels"]["sbkube.io/app"] == "setup"

    record = sbkube.json("state", "show", first["deployment_id"])
    assert _steps(record) == [
        ("apply", "manifests/settings.yaml", [("settings", "create")]),
        ("apply", "manifests/extra.yaml", [("extra", "create")]),
        ("delete", "manifests/legacy.yaml", [("legacy", "delete")]),
    ]
    (app,) = record["apps"]
    resources = {(r["kind"], r["namespace"], r["name"]): r["action"] for r in app["resources"]}
    assert resources == {
        ("Namespace", None, "side"): "create",
        ("ConfigMap", "tasks", "settings"): "create",
        ("ConfigMap", "side", "extra"): "create",
        ("ConfigMap", "tasks", "legacy"): "delete",
    }

    # Unchanged: nothing applied, the deleted object stays absent.
    again = _deploy(sbkube, app_dir)
    assert {c["action"] for c in again["apps"][0]["changes"]} == {"unchanged"}
    assert _steps(sbkube.json("state", "show", again["deployment_id"]))[2] == (
        "delete",
        "manifests/legacy.yaml",
        [("legacy", "absent")],
    )
    version = _configmaps(k, "tasks")["settings"]["metadata"]["resourceVersion"]
    assert version == settings["metadata"]["resourceVersion"]

    # Changed: the first step's file changes, the second step goes (its object is pruned).
    config = app_dir / "sbkube.yaml"
    config.write_text(
        config.read_text().replace(
            "      - path: manifests/extra.yaml\n        namespace: side\n", ""
        )
    )
    (app_dir / "manifests" / "settings.yaml").write_text(
        (app_dir / "manifests" / "settings.yaml").read_text().replace("first", "second")
    )
    changed = _deploy(sbkube, app_dir)
    actions = {(c["name"], c["action"]) for c in changed["apps"][0]["changes"]}
    assert ("settings", "update") in actions and ("extra", "delete") in actions
    assert _configmaps(k, "tasks")["settings"]["data"] == {"mode": "second"}
    assert "extra" not in _configmaps(k, "side")

    # Rolled back to the first: its objects re-applied from the record.
    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    assert _configmaps(k, "tasks")["settings"]["data"] == {"mode": "first"}
    assert _configmaps(k, "side")["extra"]["data"] == {"where": "side"}
    # (The object a delete step removed was never sbkube's: a rollback does not make it.)
    assert "legacy" not in _configmaps(k, "tasks")

    gone = sbkube("uninstall", "--app-dir", str(app_dir), "-y")
    assert gone.returncode == 0, gone.stderr + gone.stdout
    assert _configmaps(k, "tasks") == {} and "extra" not in _configmaps(k, "side")


def test_an_object_both_applied_and_deleted_is_bad_input(sbkube, dirs, state_db, tmp_path):
    app_dir = dirs / "action"
    (app_dir / "manifests" / "legacy.yaml").write_text(
        (app_dir / "manifests" / "settings.yaml").read_text()
    )
    proc = sbkube("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(tmp_path / "c.json"))
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "apps.setup.actions[2]: ConfigMap tasks/settings is also in actions[0]" in line
    assert nothing_recorded(state_db)


def test_an_unknown_step_field_and_a_missing_file_are_named(sbkube, dirs, state_db, tmp_path):
    app_dir = dirs / "action"
    config = app_dir / "sbkube.yaml"
    text = config.read_text()
    config.write_text(text.replace("path: manifests/extra.yaml", "pth: manifests/extra.yaml"))
    args = ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(tmp_path / "c.json"))
    proc = sbkube(*args)
    assert proc.returncode == 2
    assert "apps.setup.actions[1].pth: unknown field (did you mean 'path'?)" in proc.stderr
    config.write_text(text.replace("manifests/extra.yaml", "manifests/nope.yaml"))
    proc = sbkube(*args)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "apps.setup.actions[1].path: manifest file 'manifests/nope.yaml' not found" in line
    assert nothing_recorded(state_db)
