"""Odd files that used to end in a traceback: each is now one ``error:`` line.

A symbolic link loop named in ``manifests:``, a memory-cluster file of the wrong shape and
an ``alembic_version`` table with two rows, through the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from reliability_helpers import (
    YAML_ONLY_APP,
    CliResult,
    assert_one_line_error,
    seed_store,
    sqlite_count,
)

from sbkube.state.database import HEAD_REVISION

Sbkube = Callable[..., CliResult]


def test_symlink_loop_in_manifests(sbkube: Sbkube, tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "manifests").mkdir(parents=True)
    (app / "config.yaml").write_text(
        "namespace: demo\napps:\n  web:\n    type: yaml\n    manifests: [manifests/loop.yaml]\n"
    )
    (app / "manifests" / "loop.yaml").symlink_to("loop.yaml")
    state = tmp_path / "state.db"
    result = sbkube("deploy", "--app-dir", "app", "--memory-cluster", "c.json", state=str(state))
    assert_one_line_error(result, "manifests/loop.yaml", "symbolic link loop", exit_code=2)
    assert not state.exists() or sqlite_count(state) == 0, "bad input was recorded"


def test_memory_cluster_file_of_the_wrong_shape(sbkube: Sbkube, tmp_path: Path) -> None:
    shutil.copytree(YAML_ONLY_APP, tmp_path / "app")
    (tmp_path / "c.json").write_text(json.dumps([1, 2, 3]))
    state = tmp_path / "state.db"
    result = sbkube("deploy", "--app-dir", "app", "--memory-cluster", "c.json", state=str(state))
    assert_one_line_error(result, "c.json", exit_code=2)
    assert not state.exists() or sqlite_count(state) == 0, "bad input was recorded"


def test_alembic_version_with_two_rows(sbkube: Sbkube, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    seed_store(str(state), 1)
    conn = sqlite3.connect(state)
    with conn:
        conn.execute("INSERT INTO alembic_version VALUES ('0001')")
    conn.close()
    result = sbkube("state", "list", state=str(state))
    assert_one_line_error(
        result, f"alembic_version holds 2 schema revisions (0001, {HEAD_REVISION})", exit_code=1
    )
    assert sqlite_count(state) == 1
