"""Field ownership on the local API server, with the real sbkube script, kubectl and helm:
a field removed from a manifest is removed from the cluster, what other field managers
own is left alone, and drift says so. The cluster is read with kubectl, never through
sbkube's record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "cfg"},
    "data": {"mode": "fast", "debug": "1"},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"team": "blue"},
    },
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}, {"containerPort": 443}],
                        "env": [
                            {"name": "MODE", "value": "fast"},
                            {"name": "DEBUG", "value": "1"},
                        ],
                    }
                ]
            },
        },
    },
}


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return container


# (what is removed, the object, how to drop it from the manifest, is it still live?,
#  the line diff shows)
CASES: list[
    tuple[str, str, Callable[[dict[str, Any]], None], Callable[[dict[str, Any]], bool], str]
]
CASES = [
    (
        "a ConfigMap data key",
        "ConfigMap/cfg",
        lambda m: m["data"].pop("debug"),
        lambda o: "debug" in o.get("data", {}),
        "-  debug: '1'",
    ),
    (
        "a Deployment label",
        "Deployment/web",
        lambda m: m["metadata"]["labels"].pop("tier"),
        lambda o: "tier" in o["metadata"].get("labels", {}),
        "-    tier: front",
    ),
    (
        "an env var",
        "Deployment/web",
        lambda m: _container(m)["env"].pop(),
        lambda o: "DEBUG" in [e["name"] for e in _container(o).get("env", [])],
        "-        - name: DEBUG",
    ),
    (
        "a container port",
        "Deployment/web",
        lambda m: _container(m)["ports"].pop(),
        lambda o: 443 in [p["containerPort"] for p in _container(o).get("ports", [])],
        "-        - containerPort: 443",
    ),
    (
        "an annotation",
        "Deployment/web",
        lambda m: m["metadata"].pop("annotations"),
        lambda o: "team" in (o["metadata"].get("annotations") or {}),
        "-    team: blue",
    ),
]


def write_manifests(
    directory: Path, config_map: dict[str, Any], deployment: dict[str, Any]
) -> None:
    (directory / "app.yaml").write_text(yaml.safe_dump_all([config_map, deployment]))


def live(tools: Tools, kubeconfig: Path, ref: str) -> dict[str, Any]:
    kind, name = ref.split("/")
    return dict(tools.kubectl(kubeconfig, "get", kind.lower(), name, "-n", "shop"))


def actions(tools: Tools) -> dict[str, str]:
    [app] = recorded(tools)["apps"]
    return {f"{r['kind']}/{r['name']}": r["action"] for r in app["resources"]}


def test_each_field_removed_from_a_manifest_is_removed_live_and_other_managers_fields_stay(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    config = {"namespace": "shop", "apps": {"web": {"type": "yaml", "manifests": ["app.yaml"]}}}
    directory = app_dir(tmp_path, "fields", config)
    config_map, deployment = yaml.safe_load(yaml.safe_dump([CONFIG_MAP, DEPLOYMENT]))
    write_manifests(directory, config_map, deployment)
    target = ["--app-dir", str(directory), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)
    # Fields of other managers: an Update and an Apply, and replicas by the scale
    # subresource (as an HPA sets them; the manifest leaves replicas alone).
    tools.kubectl(kubeconfig, "label", "deployment", "web", "-n", "shop", "owner=ops",
                  "--field-manager=other")  # fmt: skip
    other = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "shop", "annotations": {"note": "kept"}},
        "data": {"extra": "kept"},
    }
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    tools.kubectl(kubeconfig, "apply", "--server-side", "--field-manager=other",
                  "-f", str(tmp_path / "other.yaml"))  # fmt: skip
    tools.kubectl(kubeconfig, "scale", "deployment", "web", "-n", "shop", "--replicas=3")
    injected = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "INJECTED", "value": "yes"}]}
        ]}}},
    }  # fmt: skip
    (tmp_path / "injected.yaml").write_text(yaml.safe_dump(injected))
    tools.kubectl(kubeconfig, "apply", "--server-side", "--field-manager=injector",
                  "-f", str(tmp_path / "injected.yaml"))  # fmt: skip
    # Other managers' fields are not drift, and not a reason to apply.
    status = tools.json("status", *target)
    assert status["apps"][0]["state"] == "in-sync", status
    tools.ok("deploy", *target)
    assert set(actions(tools).values()) == {"unchanged"}

    for what, ref, drop, held, line in CASES:
        manifest = config_map if ref.startswith("ConfigMap") else deployment
        assert held(live(tools, kubeconfig, ref)), what
        drop(manifest)
        write_manifests(directory, config_map, deployment)

        diff = tools.sbkube("diff", "--exit-code", *target)
        assert diff.returncode == 1, f"{what}: {diff.stdout}{diff.stderr}"
        assert f"~ update {ref.split('/')[0]}/shop/{ref.split('/')[1]}" in diff.stdout, what
        assert line in diff.stdout.splitlines(), f"{what}: {diff.stdout}"
        tools.ok("deploy", *target)

        assert not held(live(tools, kubeconfig, ref)), what
        assert actions(tools)[ref] == "update", what
        again = tools.sbkube("diff", "--exit-code", *target)
        assert again.returncode == 0, f"{what}: {again.stdout}"
        # The list's change is named by the removed item alone.
        assert "containers[0]" not in diff.stdout, diff.stdout

    cm, web = live(tools, kubeconfig, "ConfigMap/cfg"), live(tools, kubeconfig, "Deployment/web")
    assert cm["data"] == {"mode": "fast", "extra": "kept"}
    assert cm["metadata"]["annotations"]["note"] == "kept"
    assert web["metadata"]["labels"]["owner"] == "ops"
    assert web["spec"]["replicas"] == 3
    assert _container(web)["env"] == [
        {"name": "MODE", "value": "fast"},
        {"name": "INJECTED", "value": "yes"},
    ]
    assert tools.json("status", *target)["apps"][0]["state"] == "in-sync"
    tools.ok("deploy", *target)
    assert set(actions(tools).values()) == {"unchanged"}
    assert server.stop() == 0


def test_status_is_drift_while_a_field_sbkube_applied_and_no_longer_records_is_live(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    config = {"namespace": "shop", "apps": {"web": {"type": "yaml", "manifests": ["app.yaml"]}}}
    directory = app_dir(tmp_path, "fields", config)
    write_manifests(directory, CONFIG_MAP, DEPLOYMENT)
    target = ["--app-dir", str(directory), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)
    # A key sbkube's field manager applied that the record does not hold (an apply the
    # record missed, as earlier versions left removed fields behind).
    stray = live(tools, kubeconfig, "ConfigMap/cfg")
    for field in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        stray["metadata"].pop(field, None)
    stray["data"]["stale"] = "yes"
    (tmp_path / "stray.yaml").write_text(yaml.safe_dump(stray))
    tools.kubectl(kubeconfig, "apply", "--server-side", "--field-manager=sbkube",
                  "-f", str(tmp_path / "stray.yaml"))  # fmt: skip

    drift = tools.sbkube("status", "--exit-code", *target)
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "ConfigMap/shop/cfg: data.stale" in drift.stdout
    tools.ok("deploy", *target)
    assert actions(tools)["ConfigMap/cfg"] == "update"
    assert "stale" not in live(tools, kubeconfig, "ConfigMap/cfg")["data"]
    assert tools.sbkube("status", "--exit-code", *target).returncode == 0
    assert server.stop() == 0
