"""Install and message fixes of issue 15, through the real script: the psycopg hint,
postgres:// URLs, foreign Alembic databases, the --wait-lock message, the walkthrough
stopping at its first failure and the demo's comment."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from sbkube.state import DeployLocks, DeploymentDatabase, DeploymentRepository

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_missing_psycopg_says_how_to_install_it(sbkube, tmp_path, expect_error):
    # A psycopg that cannot be imported, first on the path: what a machine without the
    # postgres extra sees.
    shadow = tmp_path / "shadow" / "psycopg"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    path = os.pathsep.join([str(shadow.parent), sbkube.env.get("PYTHONPATH", "")])

    proc = sbkube(
        "state",
        "list",
        "--state",
        "postgresql://nobody@127.0.0.1:1/none",
        env={"PYTHONPATH": path},
    )

    assert proc.returncode == 1
    line = expect_error(proc.stderr)
    assert "No module named 'psycopg'" in line
    assert "pip install 'sbkube[postgres]'" in line and "'.[postgres]'" in line


@pytest.mark.postgres
def test_postgres_url_scheme_is_taken_as_psycopg(sbkube, pg_schema_url):
    url = re.sub(r"^postgresql\+psycopg://", "postgres://", pg_schema_url)
    assert url.startswith("postgres://")

    proc = sbkube("state", "list", "--state", url, "-o", "json")
    plain = sbkube(
        "state", "list", "--state", url.replace("postgres://", "postgresql://", 1), "-o", "json"
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert plain.returncode == 0, plain.stderr


def test_a_foreign_alembic_database_is_called_foreign(sbkube, tmp_path, expect_error):
    foreign = tmp_path / "other-app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")

    proc = sbkube("state", "list", "--state", str(foreign))

    assert proc.returncode == 1
    line = expect_error(proc.stderr)
    assert "belongs to another application" in line and "ae1027a6acf" in line
    assert "newer than this sbkube" not in line


def test_a_newer_sbkube_database_is_still_called_newer(sbkube, tmp_path, expect_error):
    store = tmp_path / "state.db"
    DeploymentDatabase(store).close()
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")

    proc = sbkube("state", "list", "--state", str(store))

    assert proc.returncode == 1
    assert "newer than this sbkube understands" in expect_error(proc.stderr)


@pytest.mark.helm
def test_wait_lock_message_after_waiting(sbkube, app_dir, cluster_file, state_db, expect_error):
    base = ("--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    assert sbkube("deploy", *base).returncode == 0
    with DeploymentDatabase(state_db) as db:
        # The lock is on the cluster's identity (its kube-system UID), as recorded.
        [identity] = {d.cluster_id for d in DeploymentRepository(db).list()}
        handle = DeployLocks(db).acquire(identity, "shop", command="deploy")
        try:
            waited = sbkube(
                "deploy",
                "--app-dir",
                str(app_dir),
                "--memory-cluster",
                str(cluster_file),
                "--wait-lock",
                "0.5",
            )
            at_once = sbkube(
                "deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file)
            )
        finally:
            handle.release()

    assert waited.returncode == 1
    line = next(x for x in waited.stderr.splitlines() if x.startswith("error: "))
    assert "still locked after waiting 0.5s" in line
    assert "use --wait-lock SECONDS" not in line
    assert at_once.returncode == 1
    assert "use --wait-lock SECONDS to wait for it" in expect_error(at_once.stderr)


def test_walkthrough_stops_at_the_first_failure(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    failing = bin_dir / "sbkube"
    failing.write_text('#!/bin/sh\necho "error: helm binary not found" >&2\nexit 1\n')
    failing.chmod(0o755)
    env = {**os.environ, "PATH": os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])}

    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "examples" / "walkthrough.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )

    assert proc.returncode == 1
    assert proc.stdout.count("$ sbkube") == 1  # nothing after the first failing step
    assert "walkthrough: failed with exit code 1: sbkube deploy --app-dir demo" in proc.stderr


@pytest.mark.helm
def test_the_demo_comment_is_a_command_that_works(sbkube, tmp_path):
    config = (REPO_ROOT / "examples" / "demo" / "config.yaml").read_text()
    [command] = [
        line.lstrip("# ").strip() for line in config.splitlines() if "sbkube deploy" in line
    ]
    args = command.split()[1:]
    assert args[:3] == ["deploy", "--app-dir", "examples/demo"]
    args = [str(tmp_path / "c.json") if a.startswith("/tmp/") else a for a in args]

    proc = subprocess.run(
        [sbkube.exe, *args],
        capture_output=True,
        text=True,
        env=sbkube.env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
