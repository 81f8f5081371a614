"""The record, status and diff agree with the server (issue 21, item 4), on the local API
server with the real sbkube script, helm and kubectl. Each case uses a chart or app written
here with the shape of the public chart that showed the hole; the cluster is read with helm
and kubectl, never through sbkube's record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_local_apiserver import REPO_ROOT, Tools, app_dir, one_error_line, recorded

pytestmark = pytest.mark.kube


@pytest.fixture
def tools(
    sbkube_exe: str, helm_binary: str, kubectl_binary: str, tmp_path: Path
) -> Iterator[Tools]:
    runner = Tools(sbkube_exe, helm_binary, kubectl_binary, tmp_path)
    yield runner
    runner.close()


def web_app(tmp_path: Path) -> Path:
    return app_dir(
        tmp_path,
        "shop",
        {"namespace": "shop", "apps": {"w": {"type": "helm", "chart": "./charts/web"}}},
        charts=("web",),
    )


def actions(record: dict[str, Any], app: str) -> dict[str, str]:
    """``{Kind/name: action}`` of one recorded app's resources."""
    [found] = [a for a in record["apps"] if a["name"] == app]
    return {f"{r['kind']}/{r['name']}": r["action"] for r in found["resources"]}


def release_action(result: dict[str, Any], app: str) -> str:
    [found] = [a for a in result["apps"] if a["name"] == app]
    return str(found["release"]["action"])


def kubectl_delete(tools: Tools, kubeconfig: Path, *args: str) -> None:
    tools._run([tools.kubectl_exe, "--kubeconfig", str(kubeconfig), "delete", *args], True)


WEB_OBJECTS = ("ConfigMap/w-config", "Deployment/w-web", "Service/w-web")


# ------------------------------------------------ helm actions computed against the cluster


def test_after_a_helm_uninstall_by_hand_the_redeploy_records_install_and_every_object_create(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    target = ["--app-dir", str(web_app(tmp_path)), "--kubeconfig", str(kubeconfig)]
    first = tools.json("deploy", *target)
    assert release_action(first, "w") == "install"
    assert actions(recorded(tools), "w") == dict.fromkeys(WEB_OBJECTS, "create")

    tools.helm(kubeconfig, "uninstall", "w", "-n", "shop")
    assert tools.kubectl(kubeconfig, "get", "deployments", "-n", "shop")["items"] == []

    again = tools.json("deploy", *target)
    assert release_action(again, "w") == "install"
    assert actions(recorded(tools), "w") == dict.fromkeys(WEB_OBJECTS, "create")
    live = tools.kubectl(kubeconfig, "get", "deployments,services,configmaps", "-n", "shop")
    assert {f"{o['kind']}/{o['metadata']['name']}" for o in live["items"]} >= set(WEB_OBJECTS)
    assert server.stop() == 0


def test_a_fresh_cluster_at_the_same_kubeconfig_records_install_and_every_object_create(
    tools: Tools, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    server = tools.serve(tmp_path / "one.json", kubeconfig)
    target = ["--app-dir", str(web_app(tmp_path)), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)
    assert server.stop() == 0

    server = tools.serve(tmp_path / "two.json", kubeconfig)
    fresh = tools.json("deploy", *target)
    assert release_action(fresh, "w") == "install"
    assert actions(recorded(tools), "w") == dict.fromkeys(WEB_OBJECTS, "create")
    history = tools.helm(kubeconfig, "history", "w", "-n", "shop", "-o", "json")
    assert '"revision":1' in history.replace(" ", "")
    assert server.stop() == 0


def test_a_redeploy_that_repairs_drift_records_update_and_create_per_object(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    target = ["--app-dir", str(web_app(tmp_path)), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)
    patch = ["-n", "shop", "--type", "merge", "-p"]
    tools.kubectl(kubeconfig, "patch", "deployment", "w-web", *patch, '{"spec":{"replicas":5}}')
    kubectl_delete(tools, kubeconfig, "configmap", "w-config", "-n", "shop")

    repaired = tools.json("deploy", *target)
    assert release_action(repaired, "w") == "upgrade"
    assert actions(recorded(tools), "w") == {
        "ConfigMap/w-config": "create",
        "Deployment/w-web": "update",
        "Service/w-web": "unchanged",
    }
    deployment = tools.kubectl(kubeconfig, "get", "deployment", "w-web", "-n", "shop")
    assert deployment["spec"]["replicas"] == 2
    assert tools.kubectl(kubeconfig, "get", "configmap", "w-config", "-n", "shop")["data"] == {
        "message": "hello"
    }
    assert server.stop() == 0


# ------------------------------------------------ rollback --app X follows X's own history


def test_rollback_of_one_app_goes_back_to_its_own_last_state_past_deploys_of_another_app(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    config: dict[str, Any] = {
        "namespace": "shop",
        "apps": {
            "w": {"type": "helm", "chart": "./charts/web", "set": {"message": "one"}},
            "cfg": {"type": "yaml", "manifests": ["cfg.yaml"]},
        },
    }
    demo = app_dir(tmp_path, "two-apps", config, charts=("web",))

    def write(message: str, mode: str) -> None:
        config["apps"]["w"]["set"]["message"] = message
        (demo / "config.yaml").write_text(yaml.safe_dump(config))
        (demo / "cfg.yaml").write_text(
            yaml.safe_dump(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}
                | {"data": {"mode": mode}}
            )
        )

    def live(name: str) -> dict[str, str]:
        data: dict[str, str] = tools.kubectl(kubeconfig, "get", "configmap", name, "-n", "shop")[
            "data"
        ]
        return data

    target = ["--app-dir", str(demo), "--kubeconfig", str(kubeconfig)]
    write("one", "a")
    tools.ok("deploy", *target)
    write("two", "a")
    tools.ok("deploy", "--app", "w", *target)
    write("two", "b")
    tools.ok("deploy", "--app", "cfg", *target)
    write("two", "c")
    tools.ok("deploy", "--app", "cfg", *target)
    assert live("w-config") == {"message": "two"}

    plan = tools.json("rollback", "--app", "w", "--dry-run", *target)
    assert [(a["name"], a["action"], a["to_revision"]) for a in plan["plan"]["apps"]] == [
        ("w", "helm-rollback", 1)
    ]
    tools.ok("rollback", "--app", "w", "-y", *target)
    assert live("w-config") == {"message": "one"}
    assert live("cfg") == {"mode": "c"}  # the other app is left as it is
    history = json.loads(tools.helm(kubeconfig, "history", "w", "-n", "shop", "-o", "json"))
    assert [(h["revision"], h["status"]) for h in history][-1] == (3, "deployed")
    assert "Rollback to 1" in history[-1]["description"]
    assert server.stop() == 0


# ------------------------------------------------ a chart that renders null is in sync


def _nulls(value: Any, path: str = "") -> list[str]:
    """The paths of ``value`` that hold null."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nulls(v, f"{path}[{i}]")]
    return [path] if value is None else []


def test_a_chart_that_renders_null_is_in_sync_after_deploy_and_the_server_drops_the_nulls(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    demo = app_dir(
        tmp_path,
        "nulls",
        {
            "namespace": "shop",
            "apps": {
                "n": {"type": "helm", "chart": "./charts/nulls"},
                "y": {"type": "yaml", "manifests": ["cfg.yaml"]},
            },
        },
        charts=("nulls",),
    )
    cfg = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n  annotations: null\n"
    (demo / "cfg.yaml").write_text(cfg.format("cfg") + "data: {a: '1', b: null}\n")
    # A create (POST) drops nulls as an apply does.
    (demo / "other.yaml").write_text(cfg.format("other") + "  labels: null\ndata: {a: '1'}\n")
    rendered = tools.helm(kubeconfig, "template", "n", str(demo / "charts" / "nulls"))
    for field in ("limits: null", "nodePort: null", "annotations: null"):
        assert field in rendered  # the chart does render them
    target = ["--app-dir", str(demo), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)

    tools.kubectl(kubeconfig, "create", "-n", "shop", "-f", str(demo / "other.yaml"))
    live = tools.kubectl(kubeconfig, "get", "deployment,service,configmap", "-n", "shop")["items"]
    assert {o["metadata"]["name"] for o in live} >= {"n-web", "cfg", "other"}
    assert [p for obj in live for p in _nulls(obj)] == []
    [deployment] = [o for o in live if o["kind"] == "Deployment"]
    assert "limits" not in deployment["spec"]["template"]["spec"]["containers"][0]["resources"]

    status = tools.json("status", *target)
    assert sorted((a["name"], a["state"]) for a in status["apps"]) == [
        ("n", "in-sync"),
        ("y", "in-sync"),
    ]
    clean = tools.sbkube("diff", "--exit-code", *target)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    again = tools.json("deploy", *target)
    assert release_action(again, "n") == "unchanged"
    assert actions(recorded(tools), "n") == {
        "Deployment/n-web": "unchanged",
        "Service/n-web": "unchanged",
    }
    assert actions(recorded(tools), "y") == {"ConfigMap/cfg": "unchanged"}
    assert server.stop() == 0


# ------------------------------------------------ hooks and crds/: status and rollback plans


def test_a_hook_helm_deleted_is_not_missing_and_a_rollback_plans_what_it_records(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    config: dict[str, Any] = {
        "namespace": "shop",
        "apps": {"h": {"type": "helm", "chart": "./charts/hooked", "set": {"message": "one"}}},
    }
    demo = app_dir(tmp_path, "hooked", config, charts=("hooked",))
    target = ["--app-dir", str(demo), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)
    first = actions(recorded(tools), "h")
    assert first["Job/h-startupcheck"] == "create"  # it ran
    assert first["CustomResourceDefinition/gadgets.example.com"] == "create"
    # Helm deleted the hook once it succeeded, as its policy asks.
    assert tools.kubectl(kubeconfig, "get", "jobs", "-n", "shop")["items"] == []
    tools.kubectl(kubeconfig, "get", "crd", "gadgets.example.com")

    status = tools.sbkube("status", "--exit-code", "-o", "json", *target)
    assert status.returncode == 0, status.stdout + status.stderr
    [app] = json.loads(status.stdout)["apps"]
    assert app["state"] == "in-sync"
    assert "Job" not in {o["kind"] for o in app["objects"]}

    config["apps"]["h"]["set"]["message"] = "two"
    (demo / "config.yaml").write_text(yaml.safe_dump(config))
    tools.ok("deploy", *target)

    plan = tools.json("rollback", "--dry-run", *target)
    [planned] = plan["plan"]["apps"]
    assert planned["action"] == "helm-rollback"
    planned_changes = {f"{c['kind']}/{c['name']}": c["action"] for c in planned["changes"]}
    assert planned_changes == {"ConfigMap/h-main": "update"}  # no crds/, no install hook
    tools.ok("rollback", "-y", *target)
    assert actions(recorded(tools), "h") == planned_changes
    main = tools.kubectl(kubeconfig, "get", "configmap", "h-main", "-n", "shop")
    assert main["data"] == {"message": "one"}
    assert tools.kubectl(kubeconfig, "get", "jobs", "-n", "shop")["items"] == []
    after = tools.sbkube("status", "--exit-code", *target)
    assert after.returncode == 0, after.stdout + after.stderr
    assert server.stop() == 0


# ------------------------------------------------ status and diff need the cluster


def test_status_and_diff_that_cannot_reach_the_cluster_exit_1_with_one_line(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    demo = app_dir(
        tmp_path,
        "cfg",
        {"namespace": "shop", "apps": {"c": {"type": "yaml", "manifests": ["c.yaml"]}}},
    )
    (demo / "c.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1'}\n"
    )
    home = tmp_path / "home"  # no ~/.kube/config in it
    home.mkdir()
    cases = [
        (["--kubeconfig", str(kubeconfig), "--context", "nope"], {}, 'context "nope"'),
        ([], {"HOME": str(home)}, "unreachable"),
        (["--memory-cluster", str(file)], {}, f"{file} is served by pid {server.proc.pid}"),
    ]
    for args, env, says in cases:
        for command in ("status", "diff"):
            done = tools.sbkube(command, "--app-dir", str(demo), *args, env=env)
            assert done.returncode == 1, (command, args, done.stdout, done.stderr)
            line = one_error_line(done.stderr)
            assert says in line, line
            assert done.stdout == ""
    # The cluster itself is still as it was, and nothing was recorded.
    assert tools.kubectl(kubeconfig, "get", "configmaps", "-n", "shop")["items"] == []
    assert tools.json("state", "list") == []
    assert server.stop() == 0


# ------------------------------------------------ a YAML app that fails part-way


def test_a_yaml_app_that_fails_part_way_records_what_was_applied_and_the_next_deploy_prunes_it(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    config: dict[str, Any] = {
        "namespace": "shop",
        "apps": {"y": {"type": "yaml", "manifests": ["cm.yaml", "web.yaml"]}},
    }
    demo = app_dir(tmp_path, "partial", config)
    (demo / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: early}\ndata: {a: '1'}\n"
    )
    web = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": "two",  # the server refuses it
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    (demo / "web.yaml").write_text(yaml.safe_dump(web))
    target = ["--app-dir", str(demo), "--kubeconfig", str(kubeconfig)]
    failed = tools.sbkube("deploy", *target)
    assert failed.returncode == 1, failed.stdout + failed.stderr

    record = recorded(tools)
    [app] = record["apps"]
    assert app["status"] == "failed"
    # What kubectl applied before the refusal: the namespace sbkube made, the ConfigMap.
    assert actions(record, "y") == {"Namespace/shop": "create", "ConfigMap/early": "create"}
    assert tools.kubectl(kubeconfig, "get", "configmap", "early", "-n", "shop")["data"] == {
        "a": "1"
    }
    assert tools.kubectl(kubeconfig, "get", "deployments", "-n", "shop")["items"] == []

    web["spec"]["replicas"] = 2
    (demo / "web.yaml").write_text(yaml.safe_dump(web))
    config["apps"]["y"]["manifests"] = ["web.yaml"]
    (demo / "config.yaml").write_text(yaml.safe_dump(config))
    tools.ok("deploy", *target)
    assert actions(recorded(tools), "y") == {
        "Deployment/web": "create",
        "ConfigMap/early": "delete",
    }
    names = tools.kubectl(kubeconfig, "get", "configmaps", "-n", "shop")["items"]
    assert "early" not in {o["metadata"]["name"] for o in names}
    assert (
        tools.kubectl(kubeconfig, "get", "deployment", "web", "-n", "shop")["spec"]["replicas"] == 2
    )
    assert server.stop() == 0


# ------------------------------------------------ apps removed from config.yaml


def test_an_app_removed_from_config_is_named_orphaned_and_prune_apps_uninstalls_it(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    config: dict[str, Any] = {
        "namespace": "shop",
        "apps": {
            "keep": {"type": "yaml", "manifests": ["keep.yaml"]},
            "old": {"type": "yaml", "manifests": ["old.yaml"]},
            "w": {"type": "helm", "chart": "./charts/web"},
        },
    }
    demo = app_dir(tmp_path, "orphans", config, charts=("web",))
    for name in ("keep", "old"):
        (demo / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: '1'}}\n"
        )
    target = ["--app-dir", str(demo), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)
    del config["apps"]["old"], config["apps"]["w"]
    (demo / "config.yaml").write_text(yaml.safe_dump(config))

    def configmaps() -> set[str]:
        listed = tools.kubectl(kubeconfig, "get", "configmaps", "-n", "shop")["items"]
        return {o["metadata"]["name"] for o in listed}

    named = tools.json("deploy", *target)
    orphaned = sorted(m.split()[1] for m in named["messages"] if " is orphaned" in m)
    assert orphaned == ["old", "w"], named["messages"]
    assert [a["name"] for a in named["apps"]] == ["keep"]
    assert {"keep", "old", "w-config"} <= configmaps()  # named, left as they are
    assert "w" in tools.helm(kubeconfig, "list", "-n", "shop", "-q").split()

    pruned = tools.json("deploy", "--prune-apps", *target)
    assert pruned["status"] == "success", pruned
    assert "old" not in configmaps() and "w-config" not in configmaps()
    assert "keep" in configmaps()
    # Uninstalled with its history kept, as sbkube uninstall does (rollback can restore it).
    status = json.loads(tools.helm(kubeconfig, "status", "w", "-n", "shop", "-o", "json"))
    assert status["info"]["status"] == "uninstalled"
    record = recorded(tools)
    assert actions(record, "old") == {"ConfigMap/old": "delete"}
    [w] = [a for a in record["apps"] if a["name"] == "w"]
    assert w["helm_releases"][0]["status"] == "uninstalled"

    quiet = tools.json("deploy", *target)
    assert [m for m in quiet["messages"] if "orphaned" in m] == []
    assert server.stop() == 0


# ------------------------------------------------ a repository that gains a newer chart


def test_a_repo_chart_without_version_picks_up_a_newer_chart_on_refresh(
    tools: Tools, tmp_path: Path, helm_binary: str
) -> None:
    import shutil
    import subprocess
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = tmp_path / "repo"
    root.mkdir()
    source = REPO_ROOT / "tests" / "fixtures" / "charts" / "demo-redis"

    def publish(version: str) -> None:
        chart = tmp_path / f"demo-redis-{version}"
        shutil.copytree(source, chart)
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        (chart / "Chart.yaml").write_text(yaml.safe_dump({**meta, "version": version}))
        for argv in (["package", str(chart), "-d", str(root)], ["repo", "index", str(root)]):
            subprocess.run([helm_binary, *argv], check=True, capture_output=True, timeout=300)

    publish("0.1.0")
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
        server = tools.serve(file, kubeconfig)
        config = {
            "namespace": "shop",
            "repos": {"loop": f"http://127.0.0.1:{http.server_address[1]}"},
            "apps": {"r": {"type": "helm", "chart": "loop/demo-redis"}},
        }
        demo = app_dir(tmp_path, "repo-app", config)
        target = ["--app-dir", str(demo), "--kubeconfig", str(kubeconfig)]
        env = {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}

        def chart() -> str:
            listed = json.loads(tools.helm(kubeconfig, "list", "-n", "shop", "-o", "json"))
            return str(listed[0]["chart"])

        tools.ok("deploy", *target, env=env)
        assert chart() == "demo-redis-0.1.0"
        publish("0.2.0")
        tools.ok("deploy", *target, env=env)  # the cached index is minutes old
        assert chart() == "demo-redis-0.1.0"
        tools.ok("deploy", "--refresh", *target, env=env)
        assert chart() == "demo-redis-0.2.0"
        [release] = recorded(tools)["apps"][0]["helm_releases"]
        assert release["chart_version"] == "0.2.0"
        assert server.stop() == 0
    finally:
        http.shutdown()
        http.server_close()
