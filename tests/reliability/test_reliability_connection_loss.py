"""A store connection that drops, or a signal that lands mid-statement, must not make the
record lie.

On real PostgreSQL: the server ends the tracker's connections between two writes (as
``pg_terminate_backend`` or ``idle_session_timeout`` or a proxy's idle timeout do during
a long ``helm --wait``); every write after that lands exactly once on a fresh connection.
SIGTERM that arrives while a statement waits for the server is held until the statement
is done, and the deployment is recorded ``interrupted`` with no app left ``in_progress``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from reliability_helpers import manifest

from sbkube.errors import InterruptedDeployment
from sbkube.interrupts import stop_on_signals
from sbkube.model import AppStatus, DeploymentStatus
from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker

pytestmark = pytest.mark.postgres


def _with_options(url: str, **params: str) -> str:
    """``url`` (from the pg_schema_url fixture, which sets search_path through ``options``)
    with more libpq parameters."""
    extra = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    return f"{url}&{extra}"


@pytest.fixture
def tagged(pg_schema_url: str) -> Iterator[tuple[str, str]]:
    """(url, application_name): the name tells this test's connections from any other's."""
    tag = f"sbkube-rel-{uuid.uuid4().hex[:10]}"
    yield _with_options(pg_schema_url, application_name=tag), tag


def _terminate(url: str, tag: str) -> int:
    """End every server connection named ``tag`` (what an admin or a proxy would do)."""
    admin = sa.create_engine(url.split("?")[0], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :tag AND pid <> pg_backend_pid()"
                    ),
                    {"tag": tag},
                ).all()
            )
    finally:
        admin.dispose()


def _record_one_app(db: DeploymentDatabase, between: object) -> str:
    """A deployment of one helm app, calling ``between()`` before each store write."""
    tracker = DeploymentTracker(db)
    step = between if callable(between) else (lambda: None)
    with tracker.track_deployment(cluster="c", namespace="demo", app_dir="/srv/demo") as dep:
        step()
        with dep.track_app(name="redis", type="helm", namespace="demo") as app:
            step()  # here helm would run `upgrade --wait` for minutes
            app.record_helm_release(
                release_name="redis",
                namespace="demo",
                chart="redis",
                revision=20,
                status="deployed",
                values={"big": "x" * 100_000},
            )
            step()
            app.record_resources(
                [manifest("ConfigMap", f"redis-{i}", "demo") for i in range(3)], action="update"
            )
            step()
        step()
    return dep.deployment_id


def _assert_recorded_once(url: str, deployment_id: str) -> None:
    db = DeploymentDatabase(url)
    try:
        rec = DeploymentRepository(db).get(deployment_id)
    finally:
        db.close()
    assert rec.status == DeploymentStatus.SUCCESS, rec.error_message
    (app,) = rec.apps
    assert app.status == AppStatus.SUCCESS, app.error_message
    assert [r.revision for r in app.helm_releases] == [20]
    assert sorted(r.name for r in app.resources) == ["redis-0", "redis-1", "redis-2"]


def test_connections_terminated_between_writes(tagged: tuple[str, str]) -> None:
    url, tag = tagged
    db = DeploymentDatabase(url)
    killed: list[int] = []
    try:
        dep_id = _record_one_app(db, lambda: killed.append(_terminate(url, tag)))
    finally:
        db.close()
    assert sum(killed) >= 4, "the test did not cut any connection"
    _assert_recorded_once(url, dep_id)


def test_idle_session_timeout_during_a_long_step(pg_schema_url: str) -> None:
    # The server ends a session idle for 250 ms, as in the report; each step idles longer.
    options = "-cidle_session_timeout=250"
    base, _, query = pg_schema_url.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    params["options"] = quote(f"{sa.engine.make_url(pg_schema_url).query['options']} {options}")
    url = f"{base}?" + "&".join(f"{k}={v}" for k, v in params.items())
    db = DeploymentDatabase(url)
    try:
        dep_id = _record_one_app(db, lambda: time.sleep(0.6))
    finally:
        db.close()
    _assert_recorded_once(pg_schema_url, dep_id)


def test_sigterm_while_a_statement_waits_for_the_server(tagged: tuple[str, str]) -> None:
    """SIGTERM lands while the tracker's INSERT of an app waits for a row lock held by
    another session; the app row is still written, then the deployment ends interrupted."""
    url, _tag = tagged
    db = DeploymentDatabase(url)
    tracker = DeploymentTracker(db)
    blocker = sa.create_engine(url)
    dep_id = ""
    try:
        with pytest.raises(InterruptedDeployment) as caught, stop_on_signals():
            with tracker.track_deployment(cluster="c", namespace="demo") as dep:
                dep_id = dep.deployment_id
                with dep.track_app(name="web", type="yaml", namespace="demo"):
                    pass
                conn = blocker.connect()
                tx = conn.begin()
                # The app INSERT's foreign-key check waits for this row lock.
                conn.execute(
                    sa.text("SELECT 1 FROM deployments WHERE deployment_id = :d FOR UPDATE"),
                    {"d": dep_id},
                )

                def signal_then_release() -> None:
                    time.sleep(0.5)
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.5)
                    tx.commit()
                    conn.close()

                helper = threading.Thread(target=signal_then_release)
                helper.start()
                try:
                    with dep.track_app(name="redis", type="helm", namespace="demo"):
                        pytest.fail("the app ran although SIGTERM had arrived")
                finally:
                    helper.join()
        assert caught.value.exit_code == 143
        rec = DeploymentRepository(db).get(dep_id)
    finally:
        blocker.dispose()
        db.close()
    assert rec.status == DeploymentStatus.INTERRUPTED, rec.error_message
    assert {a.name: a.status for a in rec.apps} == {
        "web": AppStatus.SUCCESS,
        "redis": AppStatus.INTERRUPTED,
    }
