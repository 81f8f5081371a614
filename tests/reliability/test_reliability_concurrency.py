"""Concurrent writers: 8 processes record 25 deployments each into one store at once.

Every worker opens the store at the same moment (so the first open and its migration are
raced too), then all of them write together. Afterwards the store must hold exactly
what was written: 200 ``success`` deployments, 600 apps, 12,000 resources, unique ids, no
error in any worker. SQLite queues writers on its busy timeout (``BEGIN IMMEDIATE``);
PostgreSQL takes them concurrently.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import HERE, REPO_ROOT, cli_env, integrity_check, sqlite_count

from sbkube.state import DeploymentDatabase, DeploymentRepository

WORKERS = 8
DEPLOYMENTS = 25
APPS = 3
RESOURCES = 20


def _run_writers(url: str, tmp_path: Path) -> tuple[list[dict[str, object]], float]:
    go_file = tmp_path / "go"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = cli_env(home)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "writer_worker.py"),
                url,
                str(worker),
                str(DEPLOYMENTS),
                str(APPS),
                str(RESOURCES),
                str(go_file),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        for worker in range(WORKERS)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                proc.wait(30)
                assert proc.stderr is not None
                pytest.fail(f"worker failed to open the store: {line}{proc.stderr.read()}")
        started = time.monotonic()
        go_file.touch()
        outputs = [proc.communicate(timeout=240) for proc in procs]
        wall = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    reports: list[dict[str, object]] = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, f"worker exited {proc.returncode}:\n{err}"
        assert "Traceback" not in err, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports, wall


def _check_store(url: str, reports: list[dict[str, object]]) -> None:
    ids = [i for r in reports for i in r["ids"]]  # type: ignore[attr-defined]
    total = WORKERS * DEPLOYMENTS
    assert len(ids) == total
    assert len(set(ids)) == total, "deployment ids are not unique"

    from sqlalchemy import text

    db = DeploymentDatabase(url)
    try:
        with db.engine.connect() as conn:
            counts = {
                table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("deployments", "app_deployments", "deployed_resources")
            }
            statuses = dict(
                conn.execute(text("SELECT status, count(*) FROM deployments GROUP BY status")).all()
            )
            app_statuses = dict(
                conn.execute(
                    text("SELECT status, count(*) FROM app_deployments GROUP BY status")
                ).all()
            )
            distinct = conn.execute(
                text("SELECT count(DISTINCT deployment_id) FROM deployments")
            ).scalar_one()
        assert counts == {
            "deployments": total,
            "app_deployments": total * APPS,
            "deployed_resources": total * APPS * RESOURCES,
        }
        assert statuses == {"success": total}
        assert app_statuses == {"success": total * APPS}
        assert distinct == total

        repo = DeploymentRepository(db)
        listed = repo.list(cluster="concurrency", limit=None)
        assert sorted(s.deployment_id for s in listed) == sorted(ids)
        # Each worker's deployments are whole: every app holds exactly its own resources.
        for report in reports[:2]:
            worker = report["worker"]
            for dep_id in report["ids"][:3]:  # type: ignore[index]
                rec = repo.get(dep_id)
                assert rec.namespace == f"ns-{worker}"
                assert [a.name for a in rec.apps] == [f"app-{a}" for a in range(APPS)]
                for app in rec.apps:
                    assert len(app.resources) == RESOURCES
                    assert all(r.namespace == f"ns-{worker}" for r in app.resources)
    finally:
        db.close()


@pytest.mark.slow
def test_concurrent_writers_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "state.db"
    url = f"sqlite:///{path}"
    reports, wall = _run_writers(url, tmp_path)
    _check_store(url, reports)
    assert sqlite_count(path) == WORKERS * DEPLOYMENTS
    assert integrity_check(path) == "ok"
    slowest = max(float(r["seconds"]) for r in reports)  # type: ignore[arg-type]
    print(f"\nsqlite: {WORKERS}x{DEPLOYMENTS} deployments in {wall:.1f}s (slowest {slowest:.1f}s)")


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_writers_postgres(pg_schema_url: str, tmp_path: Path) -> None:
    reports, wall = _run_writers(pg_schema_url, tmp_path)
    _check_store(pg_schema_url, reports)
    slowest = max(float(r["seconds"]) for r in reports)  # type: ignore[arg-type]
    print(
        f"\npostgres: {WORKERS}x{DEPLOYMENTS} deployments in {wall:.1f}s (slowest {slowest:.1f}s)"
    )
