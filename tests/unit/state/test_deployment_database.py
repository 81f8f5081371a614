"""DeploymentDatabase: where the store lives, how it is opened, migrated and refused.

Real SQLite files under ``tmp_path`` and a real PostgreSQL schema per test (``db_url``).
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

import sbkube.state.database as database_module
from sbkube.errors import StateError
from sbkube.state import DeploymentDatabase, DeploymentRepository
from sbkube.state.database import HEAD_REVISION, KNOWN_REVISIONS

MIGRATIONS_DIR = Path(database_module.__file__).parent / "migrations"
SBKUBE_TABLES = {
    "deployments",
    "app_deployments",
    "deployed_resources",
    "helm_releases",
    "deploy_locks",
    "alembic_version",
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def no_state_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SBKUBE_STATE_URL", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0, so modes 0600/0700 can only come from sbkube itself, not from the umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _revision(db: DeploymentDatabase) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def _tables(db: DeploymentDatabase) -> set[str]:
    with db.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


# -- path vs URL -----------------------------------------------------------------------


@pytest.mark.parametrize("as_pathlike", [False, True])
def test_plain_path_opens_sqlite_file(
    tmp_path: Path, no_state_env: None, as_pathlike: bool
) -> None:
    target = tmp_path / "sub" / "dir" / "store.db"
    db = DeploymentDatabase(target if as_pathlike else str(target))
    try:
        assert db.dialect == "sqlite"
        assert db.path == target
        assert db.engine.url.database == str(target)
        assert target.is_file()
        assert SBKUBE_TABLES <= _tables(db)
        assert db.display == str(target)
    finally:
        db.close()


def test_relative_and_home_paths_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_state_env: None
) -> None:
    monkeypatch.chdir(tmp_path)
    rel = DeploymentDatabase("rel/state.db")
    try:
        assert rel.path == tmp_path / "rel" / "state.db"
        assert rel.path.is_absolute() and rel.path.is_file()
    finally:
        rel.close()

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = DeploymentDatabase("~/states/x.db")
    try:
        assert home.path == tmp_path / "home" / "states" / "x.db"
        assert home.path.is_file()
    finally:
        home.close()


def test_sqlite_url(tmp_path: Path, no_state_env: None) -> None:
    target = tmp_path / "nested" / "url.db"
    db = DeploymentDatabase(f"sqlite:///{target}")
    try:
        assert db.dialect == "sqlite"
        assert db.path == target
        assert target.is_file()
        assert db.engine.url.database == str(target)
        assert _revision(db) == [HEAD_REVISION]
    finally:
        db.close()


def test_sqlite_memory_url_is_migrated(no_state_env: None) -> None:
    db = DeploymentDatabase("sqlite://")
    try:
        assert db.path is None
        assert SBKUBE_TABLES <= _tables(db)
        repo = DeploymentRepository(db)
        dep = repo.create_deployment(cluster="c", namespace="n")
        # One in-memory database for the whole engine, not one per connection.
        assert repo.get(dep.deployment_id).deployment_id == dep.deployment_id
    finally:
        db.close()


@pytest.mark.postgres
def test_postgresql_url_is_rewritten_to_psycopg(pg_schema_url: str) -> None:
    url = sa.engine.make_url(pg_schema_url)
    assert url.get_backend_name() == "postgresql"
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    assert plain.startswith("postgresql://")
    db = DeploymentDatabase(plain)
    try:
        assert db.dialect == "postgresql"
        assert db.engine.url.drivername == "postgresql+psycopg"
        assert db.path is None
        assert _revision(db) == [HEAD_REVISION]
        repo = DeploymentRepository(db)
        dep = repo.create_deployment(cluster="c", namespace="n")
        assert repo.get(dep.deployment_id).cluster == "c"
    finally:
        db.close()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user@localhost/sbkube",
        "mysql+pymysql://user:pw@localhost/sbkube",
        "oracle://scott@host/db",
        "mongodb://localhost/sbkube",
    ],
)
def test_unsupported_scheme_is_refused(url: str, tmp_path: Path, no_state_env: None) -> None:
    with pytest.raises(StateError, match="unsupported database") as info:
        DeploymentDatabase(url)
    assert "sqlite or postgresql" in str(info.value)
    assert ":pw@" not in str(info.value)  # passwords never reach an error message


def test_directory_is_refused(tmp_path: Path, no_state_env: None) -> None:
    with pytest.raises(StateError, match="is a directory"):
        DeploymentDatabase(tmp_path)


# -- defaults ----------------------------------------------------------------------------


def test_default_is_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_state_env: None, open_umask: None
) -> None:
    xdg = tmp_path / "xdg" / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(xdg))
    assert not xdg.exists()
    db = DeploymentDatabase()
    try:
        expected = xdg / "sbkube" / "state.db"
        assert db.path == expected
        assert expected.is_file()
        assert _mode(expected.parent) == 0o700
        assert _mode(expected) == 0o600
        assert SBKUBE_TABLES <= _tables(db)
    finally:
        db.close()


def test_default_without_xdg_is_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_state_env: None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    db = DeploymentDatabase()
    try:
        assert db.path == tmp_path / "home" / ".local" / "state" / "sbkube" / "state.db"
        assert db.path.is_file()
    finally:
        db.close()


def test_default_from_sbkube_state_url(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_state_env: None
) -> None:
    xdg = tmp_path / "xdg-unused"
    monkeypatch.setenv("XDG_STATE_HOME", str(xdg))
    monkeypatch.setenv("SBKUBE_STATE_URL", db_url)
    db = DeploymentDatabase()
    try:
        assert db.dialect == sa.engine.make_url(db_url).get_backend_name()
        assert _revision(db) == [HEAD_REVISION]
        dep = DeploymentRepository(db).create_deployment(cluster="env", namespace="n")
    finally:
        db.close()
    assert not xdg.exists(), "SBKUBE_STATE_URL must win over XDG_STATE_HOME"
    # The same store is found again through the variable.
    again = DeploymentDatabase()
    try:
        assert DeploymentRepository(again).get(dep.deployment_id).cluster == "env"
    finally:
        again.close()


def test_explicit_argument_wins_over_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_state_env: None
) -> None:
    monkeypatch.setenv("SBKUBE_STATE_URL", f"sqlite:///{tmp_path / 'from-env.db'}")
    db = DeploymentDatabase(tmp_path / "explicit.db")
    try:
        assert db.path == tmp_path / "explicit.db"
        assert not (tmp_path / "from-env.db").exists()
    finally:
        db.close()


# -- SQLite specifics --------------------------------------------------------------------


def test_new_file_is_private(tmp_path: Path, no_state_env: None, open_umask: None) -> None:
    target = tmp_path / "private" / "state.db"
    db = DeploymentDatabase(target)
    try:
        assert _mode(target) == 0o600, oct(_mode(target))
        assert _mode(target.parent) == 0o700, oct(_mode(target.parent))
        DeploymentRepository(db).create_deployment(cluster="c", namespace="n")
        # SQLite gives the -wal/-shm files the database file's mode.
        for suffix in ("-wal", "-shm"):
            side = target.with_name(target.name + suffix)
            if side.exists():
                assert _mode(side) == 0o600, f"{side.name}: {oct(_mode(side))}"
    finally:
        db.close()


def test_wal_journal_mode(tmp_path: Path, no_state_env: None) -> None:
    target = tmp_path / "wal.db"
    db = DeploymentDatabase(target)
    try:
        raw = sqlite3.connect(target)
        try:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            raw.close()
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == int(
                db.busy_timeout * 1000
            )
    finally:
        db.close()


def test_sqlite_foreign_keys_pragma_on(tmp_path: Path, no_state_env: None) -> None:
    db = DeploymentDatabase(tmp_path / "fk.db")
    try:
        # Every pooled connection, not only the first one.
        with db.engine.connect() as a, db.engine.connect() as b:
            assert a.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert b.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.close()


def test_foreign_keys_enforced(db: DeploymentDatabase) -> None:
    repo = DeploymentRepository(db)
    with pytest.raises(StateError):
        repo.add_helm_release(
            987654, release_name="r", namespace="n", chart="c", revision=1, status="deployed"
        )
    dep = repo.create_deployment(cluster="c", namespace="n")
    app = repo.start_app(dep.deployment_id, name="a", type="helm")
    repo.add_helm_release(
        app.app_id, release_name="r", namespace="n", chart="c", revision=1, status="deployed"
    )
    assert repo.delete_deployments([dep.deployment_id]) == 1
    with db.engine.connect() as conn:
        for table in ("app_deployments", "helm_releases", "deployed_resources"):
            n = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
            assert n == 0, f"{table} kept {n} orphan row(s)"


def test_file_that_is_not_a_database(tmp_path: Path, no_state_env: None) -> None:
    target = tmp_path / "config.yaml"
    target.write_text("apps:\n  redis:\n    type: helm\n" * 20)
    with pytest.raises(StateError, match="not an SQLite database") as info:
        DeploymentDatabase(target)
    assert str(target) in str(info.value)
    assert target.read_text().startswith("apps:"), "the file must be left untouched"


# -- migrations --------------------------------------------------------------------------


def test_new_database_is_migrated(db: DeploymentDatabase) -> None:
    assert SBKUBE_TABLES <= _tables(db)
    assert _revision(db) == [HEAD_REVISION]


def test_migrated_schema_matches_models(db: DeploymentDatabase) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from sbkube.state.schema import Base

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"schema.py and the migrations disagree: {diff}"


def test_reopen_keeps_rows(db_url: str) -> None:
    first = DeploymentDatabase(db_url)
    try:
        repo = DeploymentRepository(first)
        dep = repo.create_deployment(cluster="c", namespace="n", config_snapshot={"a": 1})
        app = repo.start_app(dep.deployment_id, name="app", type="yaml")
        repo.finish_app(app.app_id, "success")
        before = repo.finish_deployment(dep.deployment_id, "success")
    finally:
        first.close()
    second = DeploymentDatabase(db_url)
    try:
        assert _revision(second) == [HEAD_REVISION]
        after = DeploymentRepository(second).get(dep.deployment_id)
        assert after == before
        assert [s.deployment_id for s in DeploymentRepository(second).list()] == [dep.deployment_id]
    finally:
        second.close()


def test_newer_schema_is_refused(db_url: str) -> None:
    first = DeploymentDatabase(db_url)
    try:
        with first.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        first.close()
    with pytest.raises(StateError, match="newer") as info:
        DeploymentDatabase(db_url)
    assert "9999" in str(info.value)
    # Refusing must not have touched it.
    check = sa.create_engine(sa.engine.make_url(db_url).set(drivername=_driver(db_url)))
    try:
        with check.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
                "9999"
            )
    finally:
        check.dispose()


def _driver(db_url: str) -> str:
    url = sa.engine.make_url(db_url)
    return "postgresql+psycopg" if url.get_backend_name() == "postgresql" else url.drivername


def test_known_revisions_match_alembic_scripts() -> None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert script.get_heads() == [HEAD_REVISION]
    revisions = {rev.revision for rev in script.walk_revisions()}
    assert revisions == set(KNOWN_REVISIONS)
    assert HEAD_REVISION in KNOWN_REVISIONS
    assert len(KNOWN_REVISIONS) == len(set(KNOWN_REVISIONS))


# -- concurrent first open ---------------------------------------------------------------

_WORKERS = 4


def _count_create_tables(counter: list[str]) -> tuple[object, str, object]:
    def on_execute(_c, _cur, statement, _p, _ctx, _many):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("CREATE TABLE"):
            counter.append(statement.split("(")[0].strip())

    event_args = (sa.engine.Engine, "before_cursor_execute", on_execute)
    sa.event.listen(*event_args)
    return event_args


def test_concurrent_first_open_threads_migrates_once(db_url: str) -> None:
    created: list[str] = []
    barrier = threading.Barrier(_WORKERS)
    errors: list[BaseException] = []
    dbs: list[DeploymentDatabase] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            opened = DeploymentDatabase(db_url)
            with lock:
                dbs.append(opened)
        except BaseException as err:
            errors.append(err)

    hook = _count_create_tables(created)
    try:
        threads = [threading.Thread(target=worker) for _ in range(_WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sa.event.remove(*hook)
    try:
        assert errors == []
        assert len(dbs) == _WORKERS
        assert sum(c.split()[-1] == "deployments" for c in created) == 1, created
        assert _revision(dbs[0]) == [HEAD_REVISION]
        # Every handle works, and they all see the same store.
        ids = [
            DeploymentRepository(d).create_deployment(cluster="c", namespace=f"n{i}").deployment_id
            for i, d in enumerate(dbs)
        ]
        assert {s.deployment_id for s in DeploymentRepository(dbs[0]).list()} == set(ids)
    finally:
        for d in dbs:
            d.close()


def _process_worker(db_url: str, barrier: object, results: object) -> None:
    created: list[str] = []
    _count_create_tables(created)
    try:
        barrier.wait(timeout=30)  # type: ignore[attr-defined]
        db = DeploymentDatabase(db_url)
        db.close()
        results.put(("ok", len(created)))  # type: ignore[attr-defined]
    except BaseException as err:
        results.put(("error", repr(err)))  # type: ignore[attr-defined]


def test_concurrent_first_open_processes_migrates_once(db_url: str) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(_WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(db_url, barrier, results))
        for _ in range(_WORKERS)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    creators = [n for _, n in outcomes if n]
    assert len(creators) == 1, f"tables created by {len(creators)} processes: {outcomes}"
    assert creators[0] >= len(SBKUBE_TABLES) - 1
    db = DeploymentDatabase(db_url)
    try:
        assert _revision(db) == [HEAD_REVISION]
    finally:
        db.close()


def test_a_store_at_0004_keeps_its_releases_with_no_chart_digest(db_url: str) -> None:
    """Migration 0005 adds helm_releases.chart_digest; a release recorded before it reads
    back with None (its chart never counts as unchanged) and new ones store a digest."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(db_url)
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(Path(database_module.__file__).parent / "migrations")
    )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
    old = DeploymentDatabase(db_url)  # migrates to head on open
    try:
        repo = DeploymentRepository(old)
        assert _revision(old) == [HEAD_REVISION]
        dep = repo.create_deployment(cluster="k3s", namespace="demo")
        app = repo.start_app(dep.deployment_id, name="web", type="helm")
        with old.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO helm_releases (app_deployment_pk, release_name, namespace, "
                    "chart, revision, status) VALUES (:pk, 'web', 'demo', 'web', 1, 'deployed')"
                ),
                {"pk": app.app_id},
            )
        repo.add_helm_release(
            app.app_id,
            release_name="web2",
            namespace="demo",
            chart="web",
            revision=1,
            status="deployed",
            chart_digest="sha256:" + "a" * 64,
        )
        releases = repo.get(dep.deployment_id).apps[0].helm_releases
        assert [(r.release_name, r.chart_digest) for r in releases] == [
            ("web", None),
            ("web2", "sha256:" + "a" * 64),
        ]
    finally:
        old.close()
        engine.dispose()
