"""Ownership before prune on the local API server, with the real sbkube script and kubectl:
an existing object that is not an app's own is not taken over without ``adopt``, an
adopted Namespace is never pruned, and two app dirs with an app of the same name in one
namespace never delete each other's objects. The cluster is read with kubectl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_local_apiserver import Tools, app_dir, recorded

pytestmark = pytest.mark.kube


@pytest.fixture
def tools(
    sbkube_exe: str, helm_binary: str, kubectl_binary: str, tmp_path: Path
) -> Iterator[Tools]:
    runner = Tools(sbkube_exe, helm_binary, kubectl_binary, tmp_path)
    yield runner
    runner.close()


def config_map(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"owner": name},
    }


def yaml_app(
    tmp_path: Path, directory: str, namespace: str, docs: list[dict[str, Any]], **extra: Any
) -> Path:
    config = {
        "namespace": namespace,
        "apps": {"web": {"type": "yaml", "manifests": ["app.yaml"], **extra}},
    }
    path = app_dir(tmp_path, directory, config)
    (path / "app.yaml").write_text(yaml.safe_dump_all(docs))
    return path


def rewrite(path: Path, docs: list[dict[str, Any]], **extra: Any) -> None:
    (path / "app.yaml").write_text(yaml.safe_dump_all(docs))
    config = yaml.safe_load((path / "config.yaml").read_text())
    config["apps"]["web"].update(extra)
    (path / "config.yaml").write_text(yaml.safe_dump(config))


def names(tools: Tools, kubeconfig: Path, kind: str, namespace: str | None = None) -> set[str]:
    scope = ["-n", namespace] if namespace else []
    return {o["metadata"]["name"] for o in tools.kubectl(kubeconfig, "get", kind, *scope)["items"]}


def refused(tools: Tools, *args: str) -> str:
    """Deploys, which must fail its one app; the app's error, one line."""
    done = tools.sbkube("deploy", *args, "-o", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    [app] = json.loads(done.stdout)["apps"]
    assert app["status"] == "failed", app
    error = str(app["error"])
    assert "\n" not in error and error.endswith("or pass --adopt, to take it over"), error
    return error


def test_an_existing_namespace_is_adopted_only_when_asked_and_never_pruned(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    tools.kubectl(kubeconfig, "create", "namespace", "team")
    tools.kubectl(kubeconfig, "create", "configmap", "theirs", "-n", "team", "--from-literal=a=b")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    directory = yaml_app(tmp_path, "team", "team", [namespace, config_map("mine", "team")])
    target = ["--app-dir", str(directory), "--kubeconfig", str(kubeconfig)]

    line = refused(tools, *target)
    assert line.startswith("Namespace team exists and is not app web's (written by kubectl-create)")
    # Nothing was applied: the namespace is not labelled, the app's ConfigMap not made.
    labels = tools.kubectl(kubeconfig, "get", "namespace", "team")["metadata"].get("labels", {})
    assert "sbkube.io/app" not in labels
    assert names(tools, kubeconfig, "configmaps", "team") == {"theirs"}

    rewrite(directory, [namespace, config_map("mine", "team")], adopt=True)
    tools.ok("deploy", *target)
    [app] = recorded(tools)["apps"]
    assert {(r["kind"], r["action"]) for r in app["resources"]} == {
        ("Namespace", "update"),
        ("ConfigMap", "create"),
    }
    adopted = tools.kubectl(kubeconfig, "get", "namespace", "team")["metadata"]
    assert adopted["labels"]["sbkube.io/app"] == "web"
    assert adopted["annotations"]["sbkube.io/adopted"] == "true"
    again = tools.json("deploy", *target)
    assert {c["action"] for a in again["apps"] for c in a["changes"]} == {"unchanged"}

    # The app drops the Namespace: it is not pruned, nor is what it holds.
    rewrite(directory, [config_map("mine", "team")])
    diff = tools.sbkube("diff", *target)
    assert "delete Namespace" not in diff.stdout, diff.stdout
    tools.ok("deploy", *target)
    assert "team" in names(tools, kubeconfig, "namespaces")
    assert names(tools, kubeconfig, "configmaps", "team") == {"theirs", "mine"}
    assert server.stop() == 0


def test_two_app_dirs_with_an_app_of_one_name_never_delete_each_others_objects(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    first = yaml_app(
        tmp_path, "first", "shop", [config_map("one", "shop"), config_map("shared", "shop")]
    )
    second = yaml_app(
        tmp_path, "second", "shop", [config_map("two", "shop"), config_map("shared", "shop")]
    )
    at = ["--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", "--app-dir", str(first), *at)

    line = refused(tools, "--app-dir", str(second), *at)
    assert line.startswith(
        f"ConfigMap shop/shared exists and is not app web's (it belongs to app web of app "
        f"dir {first})"
    )
    assert names(tools, kubeconfig, "configmaps", "shop") == {"one", "shared"}

    rewrite(second, [config_map("two", "shop")])
    tools.ok("deploy", "--app-dir", str(second), *at)
    tools.ok("deploy", "--app-dir", str(first), *at)
    tools.ok("deploy", "--app-dir", str(second), *at)
    assert names(tools, kubeconfig, "configmaps", "shop") == {"one", "shared", "two"}

    # Each prunes its own objects only.
    rewrite(first, [config_map("shared", "shop")])
    tools.ok("deploy", "--app-dir", str(first), *at)
    assert names(tools, kubeconfig, "configmaps", "shop") == {"shared", "two"}

    # Adopting takes the object over, by its app dir.
    rewrite(second, [config_map("two", "shop"), config_map("shared", "shop")])
    tools.ok("deploy", "--app-dir", str(second), "--adopt", *at)
    shared = tools.kubectl(kubeconfig, "get", "configmap", "shared", "-n", "shop")
    assert shared["metadata"]["annotations"]["sbkube.io/app-dir"] == str(second)
    assert shared["metadata"]["annotations"]["sbkube.io/adopted"] == "true"
    assert server.stop() == 0
