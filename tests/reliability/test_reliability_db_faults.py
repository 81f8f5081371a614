"""Database faults: each is one clear ``error: …`` line, a non-zero exit, and no damage.

Through the real CLI (``sbkube state list`` and ``sbkube deploy`` as subprocesses):
a state directory that cannot be created, a file that is not a database, a store locked
by another process for longer than the busy timeout, a PostgreSQL server that is not
there or refuses the role or database. In-process: the disk filling up in the middle of a
deployment. After every fault the deployments committed before are still readable and
equal to what they were, and SQLite's ``PRAGMA integrity_check`` says ``ok``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from reliability_helpers import (
    YAML_ONLY_APP,
    CliResult,
    assert_one_line_error,
    integrity_check,
    manifest,
    read_records,
    seed_store,
    sqlite_count,
)

Sbkube = Callable[..., CliResult]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    target = tmp_path / "app"
    shutil.copytree(YAML_ONLY_APP, target)
    return target


def deploy_args(app_dir: Path, tmp_path: Path) -> tuple[str, ...]:
    return ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(tmp_path / "c.json"))


# -- SQLite ----------------------------------------------------------------------------------


def test_state_directory_not_creatable(sbkube: Sbkube, tmp_path: Path, app_dir: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the state directory should go\n")
    state = blocker / "sbkube" / "state.db"
    for args in (("state", "list"), deploy_args(app_dir, tmp_path)):
        result = sbkube(*args, state=str(state))
        assert_one_line_error(
            result, "cannot create state database", str(state), "Not a directory", exit_code=1
        )
    assert blocker.read_text() == "a regular file where the state directory should go\n"
    assert not (tmp_path / "c.json").exists(), "deploy touched the cluster without a store"


def test_state_path_is_a_directory(sbkube: Sbkube, tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()
    result = sbkube("state", "list", state=str(tmp_path / "state.db"))
    assert_one_line_error(result, "is a directory", exit_code=1)


def test_file_that_is_not_a_database(sbkube: Sbkube, tmp_path: Path, app_dir: Path) -> None:
    junk = tmp_path / "state.db"
    payload = os.urandom(64 * 1024)
    junk.write_bytes(payload)
    for args in (("state", "list"), ("state", "show", "latest"), deploy_args(app_dir, tmp_path)):
        result = sbkube(*args, state=str(junk))
        assert_one_line_error(result, str(junk), "not an SQLite database", exit_code=1)
    assert junk.read_bytes() == payload, "sbkube modified a file that is not its database"
    assert not Path(f"{junk}-wal").exists()


def test_store_written_by_a_newer_sbkube(sbkube: Sbkube, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    seeded = seed_store(str(path), 1)
    conn = sqlite3.connect(path)
    with conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    result = sbkube("state", "list", state=str(path))
    assert_one_line_error(result, "schema revision 9999", "upgrade sbkube", exit_code=1)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    conn.close()
    assert read_records(str(path), [r.deployment_id for r in seeded]) == seeded


@pytest.fixture
def exclusive_lock() -> Iterator[Callable[[Path], sqlite3.Connection]]:
    held: list[sqlite3.Connection] = []

    def hold(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5)
        conn.execute("BEGIN EXCLUSIVE")
        held.append(conn)
        return conn

    yield hold
    for conn in held:
        conn.close()


@pytest.mark.slow
def test_store_locked_longer_than_busy_timeout(
    sbkube: Sbkube,
    tmp_path: Path,
    app_dir: Path,
    exclusive_lock: Callable[[Path], sqlite3.Connection],
) -> None:
    path = tmp_path / "state.db"
    seeded = seed_store(str(path), 3)
    env = {"SBKUBE_BUSY_TIMEOUT": "1"}
    holder = exclusive_lock(path)

    # A writer gives up after the busy timeout with one line naming the lock.
    result = sbkube(*deploy_args(app_dir, tmp_path), state=str(path), env=env)
    assert_one_line_error(result, str(path), "locked by another process", "waited 1s", exit_code=1)
    # Readers are not blocked by a writer under WAL: history stays readable.
    listed = sbkube("state", "list", "-o", "json", state=str(path), env=env)
    assert listed.returncode == 0, str(listed)
    for rec in seeded:
        assert rec.deployment_id in listed.stdout

    holder.execute("ROLLBACK")
    holder.close()
    assert integrity_check(path) == "ok"
    assert sqlite_count(path) == 3, "the failed deploy left a deployment row"
    assert read_records(str(path), [r.deployment_id for r in seeded]) == seeded
    # Once the lock is gone the same deploy goes through (no stale lock left behind).
    again = sbkube(*deploy_args(app_dir, tmp_path), state=str(path), env=env)
    assert again.returncode == 0, str(again)
    assert sqlite_count(path) == 4


def test_invalid_busy_timeout_is_a_usage_error(sbkube: Sbkube, tmp_path: Path) -> None:
    result = sbkube(
        "state", "list", state=str(tmp_path / "s.db"), env={"SBKUBE_BUSY_TIMEOUT": "soon"}
    )
    assert_one_line_error(result, "SBKUBE_BUSY_TIMEOUT", "'soon'", exit_code=2)


def test_disk_full_during_a_deployment(tmp_path: Path) -> None:
    """``PRAGMA max_page_count`` just above the current size: a large deployment cannot fit."""
    from sqlalchemy import event

    from sbkube.errors import StateError
    from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker

    path = tmp_path / "state.db"
    seeded = seed_store(str(path), 3)
    db = DeploymentDatabase(str(path))
    try:
        with db.engine.connect() as conn:
            pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())

        @event.listens_for(db.engine, "connect")
        def _cap(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 8}")

        db.engine.dispose()  # new connections get the cap
        tracker = DeploymentTracker(db)
        big = "x" * 4000
        with pytest.raises(StateError) as caught:
            with tracker.track_deployment(cluster="seed", namespace="demo") as dep:
                with dep.track_app(name="huge", type="yaml", namespace="demo") as app:
                    app.record_resources(
                        [
                            manifest("ConfigMap", f"big-{i}", "demo", data={"blob": big})
                            for i in range(500)
                        ],
                        action="create",
                    )
        message = str(caught.value)
        assert "no space left on device for state database" in message, message
        assert "\n" not in message
        assert caught.value.exit_code == 1

        # Earlier deployments are untouched and still readable through the same store.
        repo = DeploymentRepository(db)
        assert [repo.get(r.deployment_id) for r in seeded] == seeded
    finally:
        db.close()
    assert integrity_check(path) == "ok"
    assert read_records(str(path), [r.deployment_id for r in seeded]) == seeded
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM deployed_resources").fetchone()[0] == 3 * 5
    finally:
        conn.close()


# -- PostgreSQL ------------------------------------------------------------------------------


PG_FAULTS = [
    pytest.param(
        "postgresql+psycopg://postgres:hunter2pw@127.0.0.1:1/test",
        ("connection failed", "port 1", "Connection refused"),
        id="unreachable",
    ),
    pytest.param(
        "postgresql+psycopg://nosuchuser@127.0.0.1:5432/test",
        ("connection failed", 'role "nosuchuser" does not exist'),
        id="unknown-role",
    ),
    pytest.param(
        "postgresql+psycopg://postgres@127.0.0.1:5432/sbkube_no_such_db",
        ("connection failed", 'database "sbkube_no_such_db" does not exist'),
        id="unknown-database",
    ),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("url", "fragments"), PG_FAULTS)
def test_postgres_unavailable(
    sbkube: Sbkube,
    tmp_path: Path,
    app_dir: Path,
    pg_schema_url: str,
    url: str,
    fragments: tuple[str, ...],
) -> None:
    # A real store with history next to the broken one: it must be untouched by the fault.
    seeded = seed_store(pg_schema_url, 2)
    for args in (("state", "list"), deploy_args(app_dir, tmp_path)):
        result = sbkube(*args, state=url, env={"SBKUBE_BUSY_TIMEOUT": "3"})
        line = assert_one_line_error(result, "state database", *fragments, exit_code=1)
        assert "hunter2pw" not in result.stderr + result.stdout, "password shown"
        if "hunter2pw" in url:
            assert "postgres:***@" in line
    assert not (tmp_path / "c.json").exists(), "deploy touched the cluster without a store"
    assert read_records(pg_schema_url, [r.deployment_id for r in seeded]) == seeded
