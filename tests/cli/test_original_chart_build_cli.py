"""Helm apps with ``overrides`` and ``removes`` (the original sbkube's chart build): the
chart is built in sbkube's cache with files replaced from ``overrides/<app>/`` and removed,
the record keeps the built chart's digest, and a changed override file upgrades the
release. Checked with the real helm and kubectl against a served memory cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import Kube, nothing_recorded

pytestmark = pytest.mark.kube


def _deploy(sbkube: Any, app_dir: Path, *extra: str) -> dict[str, Any]:
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json", *extra)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _manifest_kinds(k: Kube) -> set[tuple[str, str]]:
    argv = [k.helm_exe, "--kubeconfig", str(k.kubeconfig), "get", "manifest", "store"]
    text = k.run([*argv, "-n", "patched"])
    return {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(text) if d}


def _release(sbkube: Any, dep_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    record = sbkube.json("state", "show", dep_id)
    (app,) = record["apps"]
    (release,) = app["helm_releases"]
    return app, release


def test_overrides_and_removes_build_the_chart_record_its_digest_and_upgrade_on_change(
    sbkube, dirs, kube, tmp_path
):
    app_dir = dirs / "patched"
    k = kube(app_dir)
    first = _deploy(sbkube, app_dir)
    assert first["status"] == "success"
    # helm says: the override's values and added template are in, the removed one is out.
    assert _manifest_kinds(k) == {("ConfigMap", "store-settings"), ("ConfigMap", "store-notes")}
    assert k.kubectl("get", "deployment", "-n", "patched")["items"] == []
    settings = k.kubectl("get", "configmap", "store-settings", "-n", "patched")
    assert settings["data"] == {"greeting": "overridden", "size": "7"}
    # The app dir's chart is untouched; the build is sbkube's, in its cache.
    assert (dirs / "charts" / "store" / "templates" / "deployment.yaml").is_file()
    app, release = _release(sbkube, first["deployment_id"])
    built = Path(app["metadata"]["chart_ref"])
    assert built.is_relative_to(tmp_path / "cache" / "sbkube" / "charts")
    assert not (built / "templates" / "deployment.yaml").exists()
    assert (built / "values.yaml").read_text() == (
        app_dir / "overrides" / "store" / "values.yaml"
    ).read_text()
    first_digest = release["chart_digest"]
    assert first_digest.startswith("hmac-checksum:")
    assert release["revision"] == k.helm("status", "store", "-n", "patched")["version"] == 1
    # A change to an override file is a change of the sources the record keeps.
    record = sbkube.json("state", "show", first["deployment_id"])
    assert "overrides/store/values.yaml" in record["sources_snapshot"]

    # Unchanged: the same build, no new helm revision.
    again = _deploy(sbkube, app_dir)
    assert again["apps"][0]["release"]["action"] == "unchanged"
    assert _release(sbkube, again["deployment_id"])[1]["chart_digest"] == first_digest
    assert len(k.helm("history", "store", "-n", "patched")) == 1

    # A changed override file: another digest, and an upgrade.
    notes = app_dir / "overrides" / "store" / "templates" / "notes.extra.yaml"
    notes.write_text(notes.read_text().replace("added by an override", "changed"))
    changed = _deploy(sbkube, app_dir)
    _app, release2 = _release(sbkube, changed["deployment_id"])
    assert release2["chart_digest"] != first_digest
    assert release2["revision"] == k.helm("status", "store", "-n", "patched")["version"] == 2
    note = k.kubectl("get", "configmap", "store-notes", "-n", "patched")["data"]
    assert note == {"note": "changed"}

    # Rolled back: helm rolls back to revision 1 (its chart build is still in the cache).
    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    note = k.kubectl("get", "configmap", "store-notes", "-n", "patched")["data"]
    assert note == {"note": "added by an override"}
    assert k.helm("status", "store", "-n", "patched")["version"] == 3

    gone = sbkube("uninstall", "--app-dir", str(app_dir), "-y")
    assert gone.returncode == 0, gone.stderr + gone.stdout
    assert {r["status"] for r in k.helm("list", "-n", "patched")} == {"uninstalled"}


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (
            "      - values.yaml\n",
            "      - valuez.yaml\n",
            "apps.store.overrides[0]: override file 'valuez.yaml' not found",
        ),
        (
            "templates/*.extra.yaml",
            "templates/*.none.yaml",
            "apps.store.overrides[1]: 'templates/*.none.yaml' matches no file under "
            "overrides/store/",
        ),
        (
            "      - templates/deployment.yaml\n",
            "      - templates/gone.yaml\n",
            "apps.store.removes[0]: 'templates/gone.yaml' matches nothing in the chart",
        ),
        (
            "      - templates/deployment.yaml\n",
            "      - ../../etc\n",
            "apps.store.removes[0]: '../../etc' must be a relative path inside its directory",
        ),
    ],
)
def test_a_bad_override_or_remove_is_one_line_exit_2_nothing_recorded(
    sbkube, dirs, state_db, tmp_path, old, new, needle
):
    app_dir = dirs / "patched"
    config = app_dir / "sbkube.yaml"
    config.write_text(config.read_text().replace(old, new))
    proc = sbkube("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(tmp_path / "c.json"))
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert needle in line
    assert nothing_recorded(state_db)
