"""The whole life of the older fixtures of the original's formats that other tests only
deploy part-way (``pair``: config.yaml + sources.yaml; ``kustomize``): deploy, redeploy
unchanged (no new Helm revision, nothing applied), change, roll back, uninstall, checked
with helm and kubectl after each step."""

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
    result = json.loads(proc.stdout)
    assert {a["status"] for a in result["apps"]} == {"success"}, result
    return result  # type: ignore[no-any-return]


def _unchanged(result: dict[str, Any]) -> None:
    for app in result["apps"]:
        assert {c["action"] for c in app["changes"]} <= {"unchanged"}, app
        assert (app.get("release") or {}).get("action", "unchanged") == "unchanged", app


def _names(k: Kube, namespace: str) -> dict[str, dict[str, str]]:
    items = k.kubectl("get", "configmap", "-n", namespace)["items"]
    return {i["metadata"]["name"]: i.get("data") or {} for i in items}


def test_pair_lives_a_whole_life(sbkube, dirs, kube):
    app_dir = dirs / "pair"
    k = kube(app_dir)
    first = _deploy(sbkube, app_dir)
    assert k.helm("get", "values", "store", "-n", "billing")["greeting"] == "hey"
    _unchanged(_deploy(sbkube, app_dir))
    assert len(k.helm("history", "store", "-n", "billing")) == 1

    config = app_dir / "config.yaml"
    config.write_text(config.read_text().replace("greeting=hey", "greeting=changed"))
    web = app_dir / "manifests" / "web.yaml"
    before = _names(k, "billing")["web-config"]
    web.write_text(web.read_text().replace('mode: "v1"', 'mode: "v2"'))
    _deploy(sbkube, app_dir)
    assert k.helm("get", "values", "store", "-n", "billing")["greeting"] == "changed"
    assert _names(k, "billing")["web-config"]["mode"] == "v2"
    assert len(k.helm("history", "store", "-n", "billing")) == 2

    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    assert k.helm("get", "values", "store", "-n", "billing")["greeting"] == "hey"
    assert _names(k, "billing")["web-config"] == before

    gone = sbkube("uninstall", "--app-dir", str(app_dir), "-y")
    assert gone.returncode == 0, gone.stderr + gone.stdout
    assert {r["status"] for r in k.helm("list", "-n", "billing")} == {"uninstalled"}
    assert not {"web-config", "store-settings"} & set(_names(k, "billing"))


def test_kustomize_lives_a_whole_life(sbkube, dirs, kube):
    app_dir = dirs / "kustomize"
    k = kube(app_dir)
    first = _deploy(sbkube, app_dir)
    _unchanged(_deploy(sbkube, app_dir))
    base = app_dir / "base" / "configmap.yaml"
    base.write_text(base.read_text().replace("colour: blue", "colour: green"))
    _deploy(sbkube, app_dir)
    assert _names(k, "site")["site-base"] == {"colour": "green"}
    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    assert _names(k, "site")["site-base"] == {"colour": "blue"}
    gone = sbkube("uninstall", "--app-dir", str(app_dir), "-y")
    assert gone.returncode == 0, gone.stderr + gone.stdout
    assert not {"site-base", "only-a"} & set(_names(k, "site"))
