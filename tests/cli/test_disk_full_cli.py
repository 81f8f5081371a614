"""A full disk while recording one app fails that app's record with one line: the apps
beside it go on and are recorded, the deployment ends ``partially_failed`` with messages
that are true, and the record made before stays intact.

The disk is real: the SQLite store lives on a 2 MiB tmpfs mounted for the test (root
only). An app of 2.4 MB of ConfigMaps cannot be recorded there; the shop's apps can.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import LiveCluster, deploy_args

pytestmark = pytest.mark.helm

DISK = "2m"
BULK = 6  # ConfigMaps of 400 kB each


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, mounted for the test and unmounted after it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8): cannot make a full disk here")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()}): no full disk to test")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def add_apps(app_dir: Path) -> None:
    """``bulk``: 2.4 MB of ConfigMaps (more than the disk holds); ``reader``: needs bulk."""
    blob = "x" * 400_000
    docs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"bulk-{i}"},
            "data": {"b": blob},
        }
        for i in range(BULK)
    ]
    (app_dir / "manifests" / "bulk.yaml").write_text(yaml.safe_dump_all(docs))
    reader = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "reader"}}
    (app_dir / "manifests" / "reader.yaml").write_text(yaml.safe_dump(reader))
    config = yaml.safe_load((app_dir / "config.yaml").read_text())
    config["apps"]["bulk"] = {"type": "yaml", "manifests": ["manifests/bulk.yaml"]}
    config["apps"]["reader"] = {
        "type": "yaml",
        "manifests": ["manifests/reader.yaml"],
        "depends_on": ["bulk"],
    }
    (app_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def exported(sbkube: Any, env: dict[str, str]) -> list[str]:
    proc = sbkube("state", "export", env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_an_app_whose_record_does_not_fit_fails_alone_with_one_line(
    sbkube: Any, app_dir: Path, cluster_file: Path, small_disk: Path
) -> None:
    env = {"SBKUBE_STATE_URL": str(small_disk / "state.db")}
    # A first deployment fits: it must come out of the second one intact.
    first = sbkube(*deploy_args(app_dir, cluster_file), env=env)
    assert first.returncode == 0, first.stderr
    before = exported(sbkube, env)
    add_apps(app_dir)

    proc = sbkube(*deploy_args(app_dir, cluster_file), env=env)

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    failed = [line for line in proc.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1, proc.stderr
    assert "bulk (yaml) FAILED" in failed[0]
    assert "applied, but its record does not fit in the store: no space left on device" in failed[0]
    assert str(small_disk / "state.db") in failed[0]
    # The other apps end as they did, and nothing claims what did not happen.
    assert "error:" not in proc.stderr, proc.stderr
    assert "interrupted" not in proc.stderr and "unfinished" not in proc.stderr
    assert "partially_failed" in proc.stdout

    listed = sbkube("state", "list", "-o", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "note:" not in listed.stderr  # no recovery needed: the record was closed
    shown = sbkube.json("state", "show", "latest", env=env)
    assert shown["status"] == "partially_failed"
    apps = {a["name"]: a for a in shown["apps"]}
    assert {n: a["status"] for n, a in apps.items()} == {
        "cache": "success",
        "web": "success",
        "worker": "success",
        "bulk": "failed",
        "reader": "skipped",
    }
    assert apps["bulk"]["error_message"].startswith("applied, but its record does not fit")
    assert "\n" not in apps["bulk"]["error_message"]
    assert apps["bulk"]["resources"] == []
    assert "dependency bulk failed" in apps["reader"]["error_message"]
    assert {r["name"] for r in apps["worker"]["resources"]} == {"worker-config", "worker-token"}
    # The earlier deployment, byte for byte.
    assert exported(sbkube, env)[: len(before)] == before

    # What the messages say is what the cluster holds: bulk was applied, reader was not.
    live = {(o["kind"], o["metadata"]["name"]) for o in LiveCluster(cluster_file).objects()}
    assert {("ConfigMap", f"bulk-{i}") for i in range(BULK)} <= live
    assert ("ConfigMap", "reader") not in live
    assert {("ConfigMap", "worker-config"), ("Secret", "worker-token")} <= live
    assert LiveCluster(cluster_file).release("cache", "shop").status == "deployed"
    assert json.loads(listed.stdout)[0]["status"] == "partially_failed"
