"""Statement budgets of the repository, measured on the real backends.

Counts are SQL statements sent to the database cursor (an ``executemany`` counts once;
BEGIN/COMMIT are transaction control, not queries, and are counted separately). Run
with ``-s`` to see the measured numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sbkube.model import AppStatus, DeploymentStatus
from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker, ResourceInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)
APP_STATUSES = (AppStatus.SUCCESS, AppStatus.FAILED, AppStatus.SKIPPED)
DEP_STATUSES = (DeploymentStatus.SUCCESS, DeploymentStatus.FAILED, DeploymentStatus.SUCCESS)


def _seed(repo: DeploymentRepository, start: int, stop: int) -> None:
    """Deployments ``start..stop-1``, a minute apart, each with one or two apps."""
    for i in range(start, stop):
        dep = repo.create_deployment(
            cluster="k3s" if i % 2 else "k3s-prod",
            namespace="apps",
            status=DEP_STATUSES[i % 3],
            started_at=T0 + timedelta(minutes=i),
            deployment_id=f"dep-{i:06d}",
        )
        repo.start_app(dep.deployment_id, name="redis", type="helm", status=APP_STATUSES[i % 3])
        if i % 4 == 0:
            repo.start_app(dep.deployment_id, name="web", type="yaml", status="success")


def _cm(name: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-{i}", "namespace": "apps"},
        "data": {"index": str(i), "payload": "x" * 64},
    }


def _report(label: str, counter: Any, db: DeploymentDatabase) -> None:
    print(f"\n[{db.dialect}] {label}: {counter.report()}")


LIST_CALLS: dict[str, Callable[[DeploymentRepository], list[Any]]] = {
    "list()": lambda r: r.list(),
    "list(limit=None)": lambda r: r.list(limit=None),
    "list(app='web')": lambda r: r.list(app="web"),
    "list(status='success')": lambda r: r.list(status="success"),
    "list(status=[failed, partially_failed])": lambda r: r.list(
        status=["failed", "partially_failed"]
    ),
    "list(cluster, namespace, since)": lambda r: r.list(
        cluster="k3s", namespace="apps", since=T0 + timedelta(minutes=3)
    ),
}


def test_list_statement_count_independent_of_size(
    db: DeploymentDatabase, count_statements: Callable[..., Any]
) -> None:
    repo = DeploymentRepository(db)
    measured: dict[int, dict[str, int]] = {}
    sizes = (10, 2000)
    seeded = 0
    for size in sizes:
        t = time.perf_counter()
        _seed(repo, seeded, size)
        seeded = size
        print(f"\n[{db.dialect}] seeded {size} deployments in {time.perf_counter() - t:.1f}s")
        measured[size] = {}
        for label, call in LIST_CALLS.items():
            with count_statements(db) as c:
                rows = call(repo)
            _report(f"{label} @ {size} deployments -> {len(rows)} rows", c, db)
            assert rows, f"{label} returned nothing: the measurement would prove nothing"
            assert all(r.app_total >= 1 for r in rows), f"{label}: app counts missing"
            measured[size][label] = c.count
            assert c.count <= 2, f"{label} @ {size}: {c.report()}"
        # Results are right, not only cheap.
        assert len(repo.list(limit=None)) == size
        assert len(repo.list()) == min(size, 50)
        newest = repo.list(limit=1)[0]
        assert newest.deployment_id == f"dep-{size - 1:06d}"
        expected = {str(APP_STATUSES[(size - 1) % 3]): 1}
        if (size - 1) % 4 == 0:
            expected["success"] = expected.get("success", 0) + 1
        assert newest.app_counts == expected
    print(f"\n[{db.dialect}] list statement counts by size: {measured}")
    assert measured[10] == measured[2000], (
        f"statement count depends on the number of deployments: {measured}"
    )


def test_get_statement_count(db: DeploymentDatabase, count_statements: Callable[..., Any]) -> None:
    repo = DeploymentRepository(db)
    small = repo.create_deployment(cluster="c", namespace="apps")
    app = repo.start_app(small.deployment_id, name="only", type="yaml")
    repo.add_resources(app.app_id, [ResourceInput.from_manifest(_cm("one", 0), "create")])

    big = repo.create_deployment(cluster="c", namespace="apps")
    for a in range(20):
        app = repo.start_app(big.deployment_id, name=f"app-{a:02d}", type="helm")
        repo.add_resources(
            app.app_id,
            [ResourceInput.from_manifest(_cm(f"app{a}", i), "create") for i in range(50)],
        )
        repo.add_helm_release(
            app.app_id,
            release_name=f"app-{a:02d}",
            namespace="apps",
            chart="repo/chart",
            revision=1,
            status="deployed",
        )
        repo.finish_app(app.app_id, "success")

    with count_statements(db) as c_small:
        rec_small = repo.get(small.deployment_id)
    _report("get() of 1 app x 1 resource", c_small, db)
    with count_statements(db) as c_big:
        rec = repo.get(big.deployment_id)
    _report("get() of 20 apps x 50 resources", c_big, db)

    assert len(rec.apps) == 20
    assert sum(len(a.resources) for a in rec.apps) == 1000
    assert all(len(a.helm_releases) == 1 for a in rec.apps)
    assert len(rec_small.apps[0].resources) == 1
    assert c_big.count <= 5, f"get() of 20x50: {c_big.report()}"
    assert c_big.count == c_small.count, (
        f"get() grows with the deployment: {c_small.count} vs {c_big.count}\n{c_big.report()}"
    )
    assert c_big.begins <= 1


def test_app_history_one_statement(
    db: DeploymentDatabase, count_statements: Callable[..., Any]
) -> None:
    repo = DeploymentRepository(db)
    for rev in range(1, 6):
        dep = repo.create_deployment(
            cluster="c", namespace="apps", started_at=T0 + timedelta(minutes=rev)
        )
        app = repo.start_app(dep.deployment_id, name="redis", type="helm")
        repo.add_resources(
            app.app_id, [ResourceInput.from_manifest(_cm("r", i), "create") for i in range(rev)]
        )
        repo.add_helm_release(
            app.app_id,
            release_name="redis",
            namespace="apps",
            chart="bitnami/redis",
            revision=rev,
            status="deployed",
        )
        repo.finish_app(app.app_id, "success")
        repo.finish_deployment(dep.deployment_id, "success")

    with count_statements(db) as c:
        history = repo.app_history("redis")
    _report("app_history() over 5 deployments", c, db)
    assert [h.revision for h in history] == [5, 4, 3, 2, 1]
    assert [h.resource_count for h in history] == [5, 4, 3, 2, 1]
    assert c.count == 1, c.report()

    with count_statements(db) as c_filtered:
        assert len(repo.app_history("redis", cluster="c", namespace="apps", limit=2)) == 2
    assert c_filtered.count == 1, c_filtered.report()


def test_add_resources_is_one_insert_in_one_transaction(
    db: DeploymentDatabase, count_statements: Callable[..., Any]
) -> None:
    repo = DeploymentRepository(db)
    dep = repo.create_deployment(cluster="c", namespace="apps")
    app = repo.start_app(dep.deployment_id, name="web", type="yaml")
    inputs = [ResourceInput.from_manifest(_cm("web", i), "create") for i in range(50)]

    with count_statements(db) as c:
        recs = repo.add_resources(app.app_id, inputs)
    _report("add_resources() of 50 resources", c, db)
    inserts = c.of_kind("INSERT")
    assert len(recs) == 50
    assert c.count == 1, f"expected one INSERT execution: {c.report()}"
    assert len(inserts) == 1, c.report()
    # Either one executemany with 50 parameter sets, or one multi-row VALUES statement.
    if inserts[0].executemany:
        assert inserts[0].rows == 50, c.report()
    else:
        assert inserts[0].sql.upper().count("VALUES") == 1, c.report()
    assert (c.begins, c.commits, c.rollbacks) == (1, 1, 0), (
        f"expected one committed transaction, got begins={c.begins} commits={c.commits} "
        f"rollbacks={c.rollbacks}"
    )
    assert len(repo.get(dep.deployment_id).apps[0].resources) == 50


@pytest.mark.parametrize("n", [0, 1])
def test_add_resources_small_batches(
    db: DeploymentDatabase, count_statements: Callable[..., Any], n: int
) -> None:
    repo = DeploymentRepository(db)
    dep = repo.create_deployment(cluster="c", namespace="apps")
    app = repo.start_app(dep.deployment_id, name="web", type="yaml")
    with count_statements(db) as c:
        recs = repo.add_resources(
            app.app_id, [ResourceInput.from_manifest(_cm("w", i), "create") for i in range(n)]
        )
    assert len(recs) == n
    assert c.count == n and c.begins == n, c.report()


def test_what_deploy_reads_before_the_lock_takes_one_statement_whatever_the_apps(
    db: DeploymentDatabase, count_statements: Callable[..., Any]
) -> None:
    """The names an app dir's recent deployments recorded (deploy's orphan check) and the
    unsettled recordings of every Helm app (recovery's settle): one statement each, at 3
    apps as at 60, with the same answers an app-by-app read gives."""
    repo = DeploymentRepository(db)
    for apps in (3, 60):
        names = [f"app-{apps}-{i:02d}" for i in range(apps)]
        for n in range(3):
            dep = repo.create_deployment(
                cluster="c",
                namespace="apps",
                app_dir=f"/dir-{apps}",
                started_at=T0 + timedelta(minutes=apps + n),
            )
            for i, name in enumerate(names):
                # Each third app fails (unsettled: no revision recorded); the rest succeed.
                status = AppStatus.FAILED if i % 3 == 0 else AppStatus.SUCCESS
                repo.start_app(dep.deployment_id, name=name, type="helm", status=status)
            repo.finish_deployment(dep.deployment_id, "partially_failed")
        other = repo.create_deployment(cluster="c", namespace="apps", app_dir="/elsewhere")
        repo.start_app(other.deployment_id, name="stranger", type="yaml", status="success")
        with count_statements(db) as c_names:
            recent = repo.recent_app_names(cluster="c", namespace="apps", app_dir=f"/dir-{apps}")
        assert recent == names
        assert c_names.count == 1, c_names.report()
        with count_statements(db) as c_unsettled:
            unsettled = repo.unsettled_apps(cluster="c", namespace="apps", apps=names, limit=2)
        assert c_unsettled.count == 1, c_unsettled.report()
        one_by_one = [
            u
            for name in names
            for u in repo.unsettled_apps(cluster="c", namespace="apps", apps=[name], limit=2)
        ]
        assert sorted(u.app_id for u in unsettled) == sorted(u.app_id for u in one_by_one)
        assert len(unsettled) == 2 * len(range(0, apps, 3))  # the limit is an app's


def test_get_many_reads_any_history_in_four_statements(
    db: DeploymentDatabase, count_statements: Callable[..., Any]
) -> None:
    """``state report`` reads whole deployments; the statements must not grow with them."""
    repo = DeploymentRepository(db)
    counts = {}
    for start, stop in ((0, 3), (3, 60)):
        for i in range(start, stop):
            dep = repo.create_deployment(
                cluster="c", namespace="apps", started_at=T0 + timedelta(minutes=i)
            )
            for name in ("redis", "web"):
                app = repo.start_app(dep.deployment_id, name=name, type="helm")
                repo.add_resources(
                    app.app_id, [ResourceInput.from_manifest(_cm(name, i), "create")]
                )
                repo.add_helm_release(
                    app.app_id,
                    release_name=name,
                    namespace="apps",
                    chart="c",
                    revision=i + 1,
                    status="deployed",
                )
        with count_statements(db) as c:
            records = repo.get_many()
        _report(f"get_many() of {stop} deployments", c, db)
        counts[stop] = c.count
        assert len(records) == stop
        assert records[0].started_at < records[-1].started_at  # oldest first
        assert all(len(a.resources) == 1 and a.helm_releases for r in records for a in r.apps)
    with count_statements(db) as c:
        narrowed = repo.get_many(app="web", since=T0 + timedelta(minutes=50), limit=5)
    assert [r.started_at for r in narrowed] == [T0 + timedelta(minutes=m) for m in range(55, 60)]
    assert counts == {3: 4, 60: 4}, counts
    assert c.count == 4, c.report()


def test_get_many_reads_what_get_reads(db: DeploymentDatabase) -> None:
    """get_many builds records from Core rows, get from ORM rows: the same records, every
    field (apps in order, resources, releases, app metadata and JSON columns), and the
    filters and ``limit`` pick the same deployments."""
    repo = DeploymentRepository(db)
    for i in range(5):
        dep = repo.create_deployment(
            cluster="c",
            namespace="apps" if i % 2 else "other",
            started_at=T0 + timedelta(minutes=i),
            config_snapshot={"apps": {"web": {"set": {"n": i}}}},
            command_args=["--set", f"n={i}"],
        )
        for name in ("web", "redis")[: 1 + i % 2]:
            app = repo.start_app(
                dep.deployment_id, name=name, type="helm", config={"n": i}, metadata={"m": i}
            )
            repo.add_resources(
                app.app_id,
                [
                    ResourceInput.from_manifest(_cm(name, i), "create"),
                    ResourceInput.from_manifest(_cm(f"{name}-b", i), "update"),
                ],
            )
            if name == "redis":
                repo.add_helm_release(
                    app.app_id,
                    release_name=name,
                    namespace="apps",
                    chart="c",
                    revision=i + 1,
                    status="deployed",
                    values={"n": i, "list": [1, {"x": i}]},
                )
            repo.finish_app(
                app.app_id,
                "failed" if i == 3 else "success",
                error_message="boom" if i == 3 else None,
                rollback_info={"to": i} if i == 3 else None,
            )
        repo.finish_deployment(dep.deployment_id, "success")
    everything = repo.get_many()
    assert [r.started_at for r in everything] == [T0 + timedelta(minutes=i) for i in range(5)]
    assert everything == [repo.get(r.deployment_id) for r in everything]
    assert any(
        a.helm_releases and a.metadata and a.error_message for r in everything for a in r.apps
    )
    narrowed = repo.get_many(namespace="apps", app="redis", limit=1)
    assert [r.deployment_id for r in narrowed] == [everything[3].deployment_id]
    assert narrowed == [repo.get(everything[3].deployment_id)]


def _record(tracker: DeploymentTracker, apps: int, n: int) -> str:
    with tracker.track_deployment(cluster="c", namespace="apps", config={"apps": {}}) as dep:
        for a in range(apps):
            with dep.track_app(name=f"app{a}", type="yaml", namespace="apps") as app:
                app.record_resources([_cm(f"app{a}", i) for i in range(n)], action="create")
    return dep.deployment_id


def test_tracker_recording_statements_independent_of_resource_count(
    db: DeploymentDatabase, count_statements: Callable[..., Any]
) -> None:
    """A deploy's recording costs the same statements and transactions whatever the number
    of resources: per app one transaction for its start and one for its resources with its
    outcome (one executemany or one multi-row INSERT)."""
    tracker = DeploymentTracker(db)
    apps = 3
    measured: dict[int, tuple[int, int]] = {}
    for n in (1, 300):
        with count_statements(db) as c:
            dep_id = _record(tracker, apps, n)
        _report(f"tracker: {apps} apps x {n} resources", c, db)
        measured[n] = (c.count, c.begins)
        inserts = [s for s in c.of_kind("INSERT") if "deployed_resources" in s.sql]
        assert len(inserts) == apps, c.report()
        assert all(
            s.rows == n if s.executemany else s.sql.upper().count("VALUES") == 1 for s in inserts
        )
        # The deployment's row and its end (its status, and apps left open), and two
        # transactions per app: its row; its resources, one INSERT, with its outcome.
        assert c.begins == c.commits == 2 + 2 * apps, c.report()
        assert c.count <= 3 + 4 * apps, c.report()
        rec = DeploymentRepository(db).get(dep_id)
        assert [len(a.resources) for a in rec.apps] == [n] * apps
        assert {a.status for a in rec.apps} == {AppStatus.SUCCESS}
    assert measured[1] == measured[300], f"statements grow with the resources: {measured}"
