"""App dirs in the original sbkube's two formats (``sbkube.yaml``; ``config.yaml`` +
``sources.yaml``) deploy as they are: the real ``sbkube`` against a served memory cluster,
whose kubeconfig the dir's own settings name, checked with the real helm and kubectl."""

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


def _recorded(sbkube: Any, dep_id: str) -> dict[str, Any]:
    return sbkube.json("state", "show", dep_id)  # type: ignore[no-any-return]


def _live_keys(kube: Kube, namespace: str) -> set[tuple[str, str]]:
    found = set()
    for kind in ("configmap", "deployment", "secret"):
        for item in kube.kubectl("get", kind, "-n", namespace)["items"]:
            if item["metadata"]["name"].startswith("sh.helm.release"):
                continue
            found.add((item["kind"], item["metadata"]["name"]))
    return found


def _recorded_keys(record: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (r["kind"], r["name"])
        for app in record["apps"]
        for r in app["resources"]
        if r["action"] != "delete"
    }


def test_sbkube_yaml_deploys_with_its_settings_and_defaults(sbkube, dirs, kube):
    app_dir = dirs / "single"
    k = kube(app_dir)
    first = _deploy(sbkube, app_dir)
    assert first["status"] == "success"
    # settings.cluster names the target; settings.namespace is the apps' namespace.
    assert first["cluster"] == "orders-test"
    statuses = {a["name"]: (a["type"], a["status"]) for a in first["apps"]}
    assert statuses == {
        "db-ready": ("noop", "success"),
        "store": ("helm", "success"),
        "web": ("yaml", "success"),
    }

    # helm says: the release, with set_values over the values file and the injected labels.
    values = k.helm("get", "values", "orders-store", "-n", "orders")
    assert values["greeting"] == "hi" and values["size"] == 3
    assert values["commonLabels"] == {"team": "orders"}
    assert values["commonAnnotations"] == {"example.com/owner": "orders-team"}
    status = k.helm("status", "orders-store", "-n", "orders")
    assert status["version"] == 1 and status["info"]["status"] == "deployed"
    settings = k.kubectl("get", "configmap", "orders-store-settings", "-n", "orders")
    assert settings["metadata"]["labels"]["team"] == "orders"
    assert settings["data"] == {"greeting": "hi", "size": "3"}
    # kubectl says: the YAML app's objects carry its labels (the object's own win).
    web = k.kubectl("get", "configmap", "web-config", "-n", "orders")
    assert web["metadata"]["labels"]["tier"] == "own"
    assert web["metadata"]["annotations"]["example.com/contact"] == "web-team"

    record = _recorded(sbkube, first["deployment_id"])
    assert _recorded_keys(record) == _live_keys(k, "orders")
    store = next(a for a in record["apps"] if a["name"] == "store")
    (release,) = store["helm_releases"]
    assert release["revision"] == status["version"]
    assert release["values"] == values
    # The record keeps the original file as read, and says which format it was.
    assert record["config_snapshot"]["format"] == "original-sbkube.yaml"
    assert record["config_snapshot"]["original"]["sbkube.yaml"]["apps"]["store"]["notes"] == (
        "the order store"
    )

    # Unchanged: a redeploy changes nothing, in the record and in helm.
    second = _deploy(sbkube, app_dir)
    assert second["status"] == "success"
    store2 = next(a for a in second["apps"] if a["name"] == "store")
    assert store2["release"]["action"] == "unchanged"
    web2 = next(a for a in second["apps"] if a["name"] == "web")
    assert {r["action"] for r in web2["changes"]} == {"unchanged"}
    assert k.helm("status", "orders-store", "-n", "orders")["version"] == 1


def test_config_and_sources_pair_deploys_and_a_profile_picks_its_sources(sbkube, dirs, kube):
    app_dir = dirs / "pair"
    k = kube(app_dir)
    first = _deploy(sbkube, app_dir)
    assert first["status"] == "success" and first["cluster"] == "billing-test"
    values = k.helm("get", "values", "store", "-n", "billing")
    # set_values as a list of key=value is typed as helm --set types it.
    assert values["greeting"] == "hey" and values["size"] == 5
    assert values["commonLabels"] == {"company": "acme"}
    web = k.kubectl("get", "configmap", "web-config", "-n", "billing")
    assert web["metadata"]["labels"]["company"] == "acme"
    record = _recorded(sbkube, first["deployment_id"])
    assert _recorded_keys(record) == _live_keys(k, "billing")
    assert set(record["config_snapshot"]["original"]) == {"config.yaml", "sources.yaml"}
    assert "sources.yaml" in record["sources_snapshot"]

    again = _deploy(sbkube, app_dir)
    assert next(a for a in again["apps"] if a["name"] == "store")["release"]["action"] == (
        "unchanged"
    )
    staged = _deploy(sbkube, app_dir, "--profile", "staging")
    assert staged["cluster"] == "billing-staging"


def test_change_rollback_and_uninstall_of_an_sbkube_yaml_dir(sbkube, dirs, kube):
    app_dir = dirs / "single"
    k = kube(app_dir)
    first = _deploy(sbkube, app_dir)
    config = app_dir / "sbkube.yaml"
    config.write_text(config.read_text().replace("greeting: hi", "greeting: changed"))
    changed = _deploy(sbkube, app_dir)
    assert k.helm("get", "values", "orders-store", "-n", "orders")["greeting"] == "changed"
    assert k.helm("status", "orders-store", "-n", "orders")["version"] == 2
    assert changed["status"] == "success"

    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    assert k.helm("get", "values", "orders-store", "-n", "orders")["greeting"] == "hi"

    gone = sbkube("uninstall", "--app-dir", str(app_dir), "-y")
    assert gone.returncode == 0, gone.stderr + gone.stdout
    # sbkube uninstalls keeping helm's history (as its record keeps it).
    assert {r["status"] for r in k.helm("list", "-n", "orders")} == {"uninstalled"}
    assert _live_keys(k, "orders") == set()


def test_unsupported_fields_exit_2_one_line_each_and_record_nothing(sbkube, dirs, state_db):
    app_dir = dirs / "single"
    config = app_dir / "sbkube.yaml"
    config.write_text(
        config.read_text()
        .replace("    atomic: false\n", "    atomic: true\n")
        .replace("  on_failure: stop\n", "  on_failure: explode\n")
    )
    proc = sbkube("deploy", "--app-dir", str(app_dir))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in proc.stderr
    assert "settings.on_failure: 'explode' is not supported" in lines[0]
    assert "apps.store.atomic: atomic: true is not supported" in lines[1]
    assert nothing_recorded(state_db)


def test_kustomize_switching_overlays_prunes_what_the_first_had(sbkube, dirs, kube):
    app_dir = dirs / "kustomize"
    k = kube(app_dir)
    first = _deploy(sbkube, app_dir)
    assert [(a["name"], a["type"], a["status"]) for a in first["apps"]] == [
        ("site", "kustomize", "success")
    ]
    names = {i["metadata"]["name"] for i in k.kubectl("get", "configmap", "-n", "site")["items"]}
    assert {"site-base", "only-a"} <= names and "only-b" not in names
    live = k.kubectl("get", "configmap", "only-a", "-n", "site")
    assert live["metadata"]["labels"]["team"] == "web"
    assert live["metadata"]["labels"]["sbkube.io/app"] == "site"

    config = app_dir / "sbkube.yaml"
    config.write_text(config.read_text().replace("overlays/a", "overlays/b"))
    second = _deploy(sbkube, app_dir)
    actions = {(c["name"], c["action"]) for c in second["apps"][0]["changes"]}
    # (site: the namespace the app created and recorded on its first deploy.)
    assert actions == {
        ("site", "unchanged"),
        ("site-base", "unchanged"),
        ("only-b", "create"),
        ("only-a", "delete"),
    }
    names = {i["metadata"]["name"] for i in k.kubectl("get", "configmap", "-n", "site")["items"]}
    assert "only-a" not in names and {"site-base", "only-b"} <= names
    record = _recorded(sbkube, second["deployment_id"])
    assert _recorded_keys(record) == {
        ("Namespace", "site"),
        ("ConfigMap", "site-base"),
        ("ConfigMap", "only-b"),
    }
    assert "overlays/b/" in record["sources_snapshot"]

    # Rolled back to the first: overlay a's objects again, b's pruned.
    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    names = {i["metadata"]["name"] for i in k.kubectl("get", "configmap", "-n", "site")["items"]}
    assert "only-b" not in names and {"site-base", "only-a"} <= names


def test_a_kustomization_that_fails_to_render_is_bad_input(sbkube, dirs, state_db, tmp_path):
    app_dir = dirs / "kustomize"
    (app_dir / "overlays" / "a" / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    proc = sbkube("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(tmp_path / "c.json"))
    assert proc.returncode == 2, proc.stderr
    assert "apps.site.path: kustomization 'overlays/a' failed to render" in proc.stderr
    assert nothing_recorded(state_db)


SECRET = "sup3rs3cretvalue"


def test_exec_app_runs_its_commands_against_the_target_and_records_each_step(
    sbkube, dirs, kube, state_db, tmp_path
):
    app_dir = dirs / "exec"
    kube(app_dir)
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [(a["name"], a["type"], a["status"]) for a in result["apps"]] == [
        ("config", "yaml", "success"),
        ("check", "exec", "success"),
        ("after", "noop", "success"),
    ]
    # The commands ran in the app dir, with the app's name and namespace, and their
    # kubectl reached the target cluster (the served memory cluster) through KUBECONFIG.
    assert (app_dir / "trace.log").read_text() == "app=check ns=jobs\nfast"

    record = sbkube.json("state", "show", result["deployment_id"])
    check = next(a for a in record["apps"] if a["name"] == "check")
    steps = check["metadata"]["steps"]
    assert [s["exit_code"] for s in steps] == [0, 0, 0]
    assert steps[0]["command"] == 'echo "app=$SBKUBE_APP_NAME ns=$SBKUBE_NAMESPACE" >> trace.log'
    # Masked before it is stored (the store keeps a keyed digest in its place).
    assert steps[2]["output_tail"].startswith("token=") and SECRET not in steps[2]["output_tail"]
    assert all(isinstance(s["seconds"], float) for s in steps)

    # The secret the command printed is nowhere: output, store, report.
    report = tmp_path / "report.html"
    made = sbkube("state", "report", "--html", str(report))
    assert made.returncode == 0, made.stderr
    for text in (proc.stdout, proc.stderr, json.dumps(record), report.read_text()):
        assert SECRET not in text
    assert SECRET.encode() not in state_db.read_bytes()


def test_a_failing_command_fails_its_app_and_skips_its_dependents(sbkube, dirs, kube):
    app_dir = dirs / "exec"
    kube(app_dir)
    config = app_dir / "sbkube.yaml"
    config.write_text(config.read_text().replace('echo "token=', 'echo "no $SECRET"; exit 3 # '))
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json")
    assert proc.returncode == 1
    apps = {a["name"]: a for a in json.loads(proc.stdout)["apps"]}
    assert apps["check"]["status"] == "failed"
    assert "command 3" in apps["check"]["error"] and "exited with code 3" in apps["check"]["error"]
    assert apps["after"]["status"] == "skipped" and apps["config"]["status"] == "success"
    record = sbkube.json("state", "show", "latest")
    steps = next(a for a in record["apps"] if a["name"] == "check")["metadata"]["steps"]
    assert [s["exit_code"] for s in steps] == [0, 0, 3]


@pytest.mark.parametrize("how", ["env", "flag"])
def test_exec_refused_before_anything_is_applied(sbkube, dirs, kube, state_db, how):
    app_dir = dirs / "exec"
    k = kube(app_dir)
    args = ["deploy", "--app-dir", str(app_dir)]
    if how == "flag":
        proc = sbkube(*args, "--no-exec")
    else:
        proc = sbkube(*args, env={"SBKUBE_ALLOW_EXEC": "false"})
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "apps.check: exec app refused" in line
    assert nothing_recorded(state_db)
    assert k.kubectl("get", "configmap", "-n", "jobs")["items"] == []
    assert not (app_dir / "trace.log").exists()


def test_dry_run_runs_no_command_and_says_what_would_run(sbkube, dirs, kube, state_db):
    app_dir = dirs / "exec"
    kube(app_dir)
    proc = sbkube("deploy", "--app-dir", str(app_dir), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert 'app check would run: echo "app=$SBKUBE_APP_NAME' in proc.stderr + proc.stdout
    assert SECRET not in proc.stderr + proc.stdout
    assert not (app_dir / "trace.log").exists()


def _objects(k: Kube, namespace: str) -> dict[tuple[str, str], Any]:
    """What a reader of the cluster sees of each object: labels, annotations, content."""
    seen = {}
    for kind in ("configmap", "deployment"):
        for item in k.kubectl("get", kind, "-n", namespace)["items"]:
            meta = item["metadata"]
            annotations = {
                key: value
                for key, value in (meta.get("annotations") or {}).items()
                if not key.startswith(("meta.helm.sh/", "deployment.kubernetes.io/"))
            }
            content = item.get("data") or (item.get("spec") or {}).get("replicas")
            seen[(item["kind"], meta["name"])] = (meta.get("labels"), annotations, content)
    return seen


def test_config_convert_output_deploys_the_same_objects(sbkube, dirs, kube):
    app_dir = dirs / "single"
    k = kube(app_dir)
    converted = sbkube("config", "convert", str(app_dir))
    assert converted.returncode == 0, converted.stderr
    # Every field said differently is listed, with what became of it.
    for line in (
        "#   apps.store.set_values: set",
        "#   apps.web.files: manifests",
        "#   apps.store.wait: the original's default, written out: wait: true",
        "#   settings.on_failure: read, no effect",
        "#   settings.kubeconfig: not in config.yaml",
    ):
        assert line in converted.stdout

    _deploy(sbkube, app_dir)
    original = _objects(k, "orders")
    values = k.helm("get", "values", "orders-store", "-n", "orders")
    gone = sbkube("uninstall", "--app-dir", str(app_dir), "-y")
    assert gone.returncode == 0, gone.stderr
    assert _objects(k, "orders") == {}

    (app_dir / "sbkube.yaml").rename(app_dir / "sbkube.yaml.orig")
    (app_dir / "config.yaml").write_text(converted.stdout)
    cluster = ("--kubeconfig", str(k.kubeconfig), "--context", "memory")
    again = _deploy(sbkube, app_dir, *cluster)
    assert again["cluster"] == "orders-test"
    assert _objects(k, "orders") == original
    assert k.helm("get", "values", "orders-store", "-n", "orders") == values


def test_app_hooks_run_in_order_against_the_target_and_are_recorded(sbkube, dirs, kube):
    app_dir = dirs / "hooks"
    kube(app_dir)
    result = _deploy(sbkube, app_dir)
    assert {a["name"]: a["status"] for a in result["apps"]} == {
        "base": "success",
        "job": "success",
        "free": "success",
    }
    # post_deploy ran after the apply: its kubectl read the applied object.
    assert (app_dir / "order.log").read_text().splitlines() == [
        "pre:base",
        "post:base:v1",
        "pre:job",
        "exec:job",
        "post:job",
    ]
    record = sbkube.json("state", "show", result["deployment_id"])
    steps = {a["name"]: a["metadata"].get("steps") for a in record["apps"]}
    assert [(s["phase"], s["exit_code"]) for s in steps["job"]] == [
        ("pre_deploy", 0),
        ("exec", 0),
        ("post_deploy", 0),
    ]
    assert [s["phase"] for s in steps["base"]] == ["pre_deploy", "post_deploy"]


def test_a_failing_pre_deploy_fails_its_app_skips_exactly_its_dependents(sbkube, dirs, kube):
    app_dir = dirs / "hooks"
    k = kube(app_dir)
    config = app_dir / "sbkube.yaml"
    config.write_text(
        config.read_text().replace('- echo "pre:$SBKUBE_APP_NAME" >> order.log', "- exit 4")
    )
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert {a["name"]: a["status"] for a in result["apps"]} == {
        "base": "failed",
        "job": "skipped",
        "free": "success",
    }
    # The failure hook ran (and is recorded); nothing of base was applied.
    assert (app_dir / "order.log").read_text() == "failed:base\n"
    assert k.kubectl("get", "configmap", "-n", "hooked")["items"] == [] or all(
        i["metadata"]["name"] != "hooked-cm"
        for i in k.kubectl("get", "configmap", "-n", "hooked")["items"]
    )
    record = sbkube.json("state", "show", result["deployment_id"])
    base = next(a for a in record["apps"] if a["name"] == "base")
    assert [(s["phase"], s["exit_code"]) for s in base["metadata"]["steps"]] == [
        ("pre_deploy", 4),
        ("on_deploy_failure", 0),
    ]


def test_command_hooks_are_refused_without_exec(sbkube, dirs, state_db, tmp_path):
    app_dir = dirs / "hooks"
    proc = sbkube(
        "deploy",
        "--app-dir",
        str(app_dir),
        "--memory-cluster",
        str(tmp_path / "c.json"),
        "--no-exec",
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3
    assert "apps.base.hooks: command hooks refused" in lines[0]
    assert "apps.job: exec app refused" in lines[1]
    assert "apps.job.hooks: command hooks refused" in lines[2]  # its own hooks, named too
    assert nothing_recorded(state_db)
