"""DeploymentTracker: what the deploy engine records, and that every record it (or the
repository) hands out stays usable after every session has closed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sbkube.model import DeploymentStatus
from sbkube.state import DeploymentDatabase, DeploymentRecord, DeploymentTracker, ResourceInput

CLUSTER, NAMESPACE = "k3s-dev", "apps"


def _configmap(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "data": dict(data),
    }


def _deploy_two_apps(tracker: DeploymentTracker) -> tuple[Any, list[Any], list[Any]]:
    """A realistic deployment: one Helm app and one YAML app. Returns the handles and
    every value the tracker calls returned."""
    returned: list[Any] = []
    with tracker.track_deployment(
        cluster=CLUSTER,
        namespace=NAMESPACE,
        app_dir="/srv/config",
        config_file="/srv/config/config.yaml",
        config={"apps": {"redis": {"type": "helm", "chart": "bitnami/redis"}}},
        command_args=["deploy", "--app-dir", "/srv/config"],
        sources={"bitnami": "https://charts.bitnami.com/bitnami"},
    ) as dep:
        with dep.track_app(
            name="redis",
            type="helm",
            namespace=NAMESPACE,
            config={"chart": "bitnami/redis", "values": ["redis.yaml"]},
            metadata={"chart_path": "charts/redis"},
        ) as app:
            returned.append(
                app.record_helm_release(
                    release_name="redis",
                    namespace=NAMESPACE,
                    chart="bitnami/redis",
                    chart_version="18.1.0",
                    app_version="7.2.1",
                    revision=1,
                    status="deployed",
                    values={"replicaCount": 2, "auth": {"enabled": True}},
                )
            )
            returned.append(
                app.record_resources(
                    [_configmap("redis-conf", maxmemory="64mb"), _configmap("redis-scripts")],
                    action="create",
                    source_file="rendered.yaml",
                )
            )
            app.set_metadata(rendered_objects=2)
        with dep.track_app(name="web", type="yaml", namespace=NAMESPACE) as web:
            returned.append(
                web.record_resources(
                    [
                        ResourceInput.from_manifest(_configmap("web", a="2"), "update"),
                        ResourceInput.from_manifest(
                            _configmap("old"), "delete", previous=_configmap("old", x="1")
                        ),
                    ]
                )
            )
    return dep, [app, web], returned


# -- the DetachedInstanceError scenario -------------------------------------------------


def test_records_usable_after_every_block_closed(
    db: DeploymentDatabase,
    tracker: DeploymentTracker,
    walk_record: Callable[..., int],
    check_utc: Callable[..., None],
) -> None:
    """The old failure: using what the tracker recorded once the `with` blocks closed."""
    dep, apps, returned = _deploy_two_apps(tracker)
    db.engine.dispose()  # no connection (and so no session) could still be serving them

    dep_id = dep.deployment_id
    assert isinstance(dep_id, str) and dep_id.startswith("dep-")
    repo = tracker.repository

    def visit(value: Any) -> None:
        if isinstance(value, datetime):
            check_utc(value)

    got = repo.get(dep_id)
    sources: dict[str, Any] = {
        "handle": dep,
        "handle.record": dep.record,
        "app handles": apps,
        "tracker returns": returned,
        "get": got,
        "list": repo.list(),
        "list(app=)": repo.list(app="redis"),
        "app_history": repo.app_history("redis"),
        "app_history(web)": repo.app_history("web"),
        "last_successful_app": repo.last_successful_app(
            cluster=CLUSTER, namespace=NAMESPACE, app="redis"
        ),
        "unfinished": repo.unfinished(),
        "resolve": repo.resolve("latest"),
    }
    db.engine.dispose()
    total = 0
    for name, value in sources.items():
        total += walk_record(value, visit, name)
    assert total > 150, f"walked only {total} values: the records are emptier than expected"

    # And the values are the right ones, not merely readable.
    assert dep.record == got
    assert got.deployment_id == dep_id == repo.resolve("latest")
    assert [a.name for a in got.apps] == ["redis", "web"]
    redis = got.app("redis")
    assert redis is not None and redis.helm_release is not None
    assert redis.helm_release.chart_version == "18.1.0"
    assert redis.helm_release.values["replicaCount"] == 2
    assert redis.metadata["rendered_objects"] == 2
    assert redis.metadata["chart_path"] == "charts/redis"
    assert [r.name for r in redis.resources] == ["redis-conf", "redis-scripts"]
    assert redis.resources[0].current_state["data"]["maxmemory"] == "64mb"
    assert redis.resources[0].source_file == "rendered.yaml"
    web = got.app("web")
    assert web is not None
    assert [(r.name, r.action) for r in web.resources] == [("web", "update"), ("old", "delete")]
    assert web.resources[1].current_state is None
    assert web.resources[1].previous_state["data"] == {"x": "1"}
    assert returned[1] == redis.resources and returned[0] == redis.helm_release
    assert returned[2] == web.resources
    assert got.config_file == "/srv/config/config.yaml"
    assert got.command_args == ("deploy", "--app-dir", "/srv/config")
    assert got.sources_snapshot == {"bitnami": "https://charts.bitnami.com/bitnami"}
    [summary] = sources["list"]
    assert summary.app_counts == {"success": 2} and summary.app_total == 2


# -- statuses ----------------------------------------------------------------------------


def test_success(tracker: DeploymentTracker) -> None:
    dep, _, _ = _deploy_two_apps(tracker)
    assert dep.status == "success"
    rec = tracker.repository.get(dep.deployment_id)
    assert rec.status == "success" and rec.status == DeploymentStatus.SUCCESS
    assert rec.error_message is None
    assert rec.finished_at is not None and rec.finished_at >= rec.started_at
    assert [a.status for a in rec.apps] == ["success", "success"]
    assert all(a.error_message is None and a.finished_at is not None for a in rec.apps)


def test_failure_inside_app(tracker: DeploymentTracker) -> None:
    with pytest.raises(RuntimeError, match="helm upgrade failed") as info:
        with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
            with dep.track_app(name="redis", type="helm"):
                raise RuntimeError("helm upgrade failed: timed out\nsecond line of output")
    assert isinstance(info.value, RuntimeError)
    rec = tracker.repository.get(dep.deployment_id)
    assert rec.status == "failed"
    [app] = rec.apps
    assert app.status == "failed"
    assert app.error_message == "helm upgrade failed: timed out"
    assert app.finished_at is not None
    assert rec.error_message is not None and "helm upgrade failed" in rec.error_message
    assert rec.finished_at is not None


def test_failure_in_deployment_block_before_any_app(tracker: DeploymentTracker) -> None:
    with pytest.raises(ValueError, match="bad config"):
        with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
            raise ValueError("bad config")
    rec = tracker.repository.get(dep.deployment_id)
    assert rec.status == "failed" and rec.error_message == "bad config" and rec.apps == ()


def test_partial_failure(tracker: DeploymentTracker) -> None:
    with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
        with dep.track_app(name="ok", type="yaml") as ok:
            ok.record_resources([_configmap("ok")], action="create")
        try:
            with dep.track_app(name="broken", type="helm"):
                raise RuntimeError("chart not found")
        except RuntimeError:
            pass  # the engine notes the failure and goes on with the next app
        dep.skip_app(name="after", type="yaml", namespace=None, reason="depends on broken")
    rec = tracker.repository.get(dep.deployment_id)
    assert rec.status == "partially_failed" == dep.status
    statuses = {a.name: (a.status, a.error_message) for a in rec.apps}
    assert statuses == {
        "ok": ("success", None),
        "broken": ("failed", "chart not found"),
        "after": ("skipped", "depends on broken"),
    }
    assert rec.error_message is not None and "broken: chart not found" in rec.error_message
    [summary] = tracker.repository.list()
    assert summary.app_counts == {"failed": 1, "skipped": 1, "success": 1}


def test_keyboard_interrupt(tracker: DeploymentTracker) -> None:
    with pytest.raises(KeyboardInterrupt):
        with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
            with dep.track_app(name="first", type="yaml"):
                pass
            with dep.track_app(name="second", type="helm"):
                raise KeyboardInterrupt
    rec = tracker.repository.get(dep.deployment_id)
    assert rec.status == "interrupted"
    assert [(a.name, a.status) for a in rec.apps] == [
        ("first", "success"),
        ("second", "interrupted"),
    ]
    assert rec.finished_at is not None
    assert tracker.repository.unfinished() == []


def test_keyboard_interrupt_between_apps(tracker: DeploymentTracker) -> None:
    with pytest.raises(KeyboardInterrupt):
        with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
            with dep.track_app(name="first", type="yaml"):
                pass
            raise KeyboardInterrupt  # Ctrl-C while the engine is between two apps
    rec = tracker.repository.get(dep.deployment_id)
    assert rec.status == "interrupted" == dep.status
    assert [(a.name, a.status) for a in rec.apps] == [("first", "success")]
    assert rec.error_message == "interrupted (Ctrl-C)"


def test_same_release_in_three_deployments(tracker: DeploymentTracker) -> None:
    ids = []
    for revision in (1, 2, 3):
        with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
            with dep.track_app(name="redis", type="helm", namespace=NAMESPACE) as app:
                app.record_helm_release(
                    release_name="redis",
                    namespace=NAMESPACE,
                    chart="bitnami/redis",
                    chart_version=f"18.{revision}.0",
                    revision=revision,
                    status="deployed",
                    values={"replicaCount": revision},
                )
                app.record_resources([_configmap("redis-conf", rev=str(revision))], "update")
        ids.append(dep.deployment_id)
    repo = tracker.repository
    assert len(set(ids)) == 3
    for revision, dep_id in zip((1, 2, 3), ids, strict=True):
        rel = repo.get(dep_id).apps[0].helm_release
        assert rel is not None
        assert (rel.release_name, rel.revision, rel.chart_version) == (
            "redis",
            revision,
            f"18.{revision}.0",
        )
        assert rel.values == {"replicaCount": revision}
    history = repo.app_history("redis")
    assert [h.revision for h in history] == [3, 2, 1]
    assert [h.deployment_id for h in history] == ids[::-1]
    assert all(h.resource_count == 1 and h.app_status == "success" for h in history)
    assert [s.deployment_id for s in repo.list()] == ids[::-1]
    last = repo.last_successful_app(cluster=CLUSTER, namespace=NAMESPACE, app="redis")
    assert last is not None and last.helm_release is not None
    assert last.helm_release.revision == 3


# -- dry runs ----------------------------------------------------------------------------


def test_dry_run_not_recorded_by_default(tracker: DeploymentTracker) -> None:
    with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE, dry_run=True) as dep:
        with dep.track_app(name="redis", type="helm") as app:
            rel = app.record_helm_release(
                release_name="redis",
                namespace=NAMESPACE,
                chart="c",
                revision=1,
                status="pending",
                values={"password": "dry-run-secret"},
            )
            res = app.record_resources([_configmap("cm")], "create")
    assert dep.recorded is False and dep.record is None
    assert dep.status == "success" and dep.deployment_id.startswith("dep-")
    assert "dry-run-secret" not in json.dumps(rel.to_dict())
    assert res[0].name == "cm"
    repo = tracker.repository
    assert repo.list() == [] and repo.count() == 0
    assert not repo.exists(dep.deployment_id)
    assert repo.app_history("redis", include_dry_run=True) == []


def test_dry_run_recorded_when_asked(db: DeploymentDatabase) -> None:
    tracker = DeploymentTracker(db, record_dry_run=True)
    with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE, dry_run=True) as dep:
        with dep.track_app(name="redis", type="helm"):
            pass
    assert dep.recorded is True
    repo = tracker.repository
    rec = repo.get(dep.deployment_id)
    assert rec.dry_run is True and rec.status == "success"
    assert [s.deployment_id for s in repo.list()] == [dep.deployment_id]
    assert repo.list(include_dry_run=False) == []
    assert repo.app_history("redis") == []
    assert len(repo.app_history("redis", include_dry_run=True)) == 1


# -- secrets -----------------------------------------------------------------------------

SECRET_PLAIN = "Hunter2-Zq81-never-store-me"
SECRET_B64 = base64.b64encode(SECRET_PLAIN.encode()).decode()
PASSWORD_VALUE = "Pa55-Vx93-values-password"
CONFIG_PASSWORD = "Cfg-Kw27-config-password"
FORBIDDEN = (SECRET_PLAIN, SECRET_B64, PASSWORD_VALUE, CONFIG_PASSWORD)


def _secret_manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "db-credentials", "namespace": NAMESPACE},
        "data": {"password": SECRET_B64},
        "stringData": {"plain": SECRET_PLAIN},
    }
    # kubectl repeats the whole object, secrets included, in this annotation.
    manifest["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(manifest),
        "team": "data",
    }
    return manifest


def _record_secrets(tracker: DeploymentTracker) -> str:
    with tracker.track_deployment(
        cluster=CLUSTER,
        namespace=NAMESPACE,
        config={"apps": {"db": {"values": {"password": CONFIG_PASSWORD}}}},
    ) as dep:
        with dep.track_app(
            name="db", type="helm", config={"set": {"auth.password": CONFIG_PASSWORD}}
        ) as app:
            app.record_helm_release(
                release_name="db",
                namespace=NAMESPACE,
                chart="bitnami/postgresql",
                revision=1,
                status="deployed",
                values={"auth": {"password": PASSWORD_VALUE, "username": "app"}},
            )
            app.record_resources([_secret_manifest()], "create")
            app.record_resources(
                [
                    ResourceInput.from_manifest(
                        _secret_manifest(), "update", previous=_secret_manifest()
                    )
                ]
            )
    return dep.deployment_id


def _assert_no_plain_secret(blob: bytes | str, where: str) -> None:
    data = blob.encode() if isinstance(blob, str) else blob
    for secret in FORBIDDEN:
        assert secret.encode() not in data, f"{secret!r} found in plain text in {where}"


def _sqlite_files(db: DeploymentDatabase) -> Iterator[Path]:
    assert db.path is not None
    for suffix in ("", "-wal"):
        p = db.path.with_name(db.path.name + suffix)
        if p.exists():
            yield p


def test_secrets_never_stored_in_plain_text(
    db: DeploymentDatabase, tracker: DeploymentTracker
) -> None:
    dep_id = _record_secrets(tracker)
    rec = tracker.repository.get(dep_id)
    _assert_no_plain_secret(json.dumps(rec.to_dict()), "get()")
    secret_res = rec.apps[0].resources[0]
    assert set(secret_res.current_state["data"]) == {"password"}  # keys stay visible
    assert secret_res.current_state["data"]["password"].startswith("hmac-sha256:")
    annotations = secret_res.current_state["metadata"]["annotations"]
    assert annotations == {"team": "data"}
    assert rec.apps[0].helm_release is not None
    assert rec.apps[0].helm_release.values["auth"]["username"] == "app"
    assert rec.apps[0].helm_release.values["auth"]["password"].startswith("hmac-sha256:")

    if db.dialect == "sqlite":
        files = list(_sqlite_files(db))
        assert files, "no database file to inspect"
        for p in files:
            _assert_no_plain_secret(p.read_bytes(), p.name)
        # The sentinel must be findable at all, or the check above proves nothing.
        assert b"db-credentials" in b"".join(p.read_bytes() for p in files)
        db.close()  # checkpoint the WAL into the main file, then look again
        for p in _sqlite_files(db):
            _assert_no_plain_secret(p.read_bytes(), f"{p.name} after checkpoint")
    else:
        with db.engine.connect() as conn:
            dump = ""
            for table in ("deployments", "app_deployments", "deployed_resources", "helm_releases"):
                rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
                dump += "\n".join(repr(tuple(r)) for r in rows)
        assert "db-credentials" in dump
        _assert_no_plain_secret(dump, "PostgreSQL rows")


# -- plain values ------------------------------------------------------------------------


def test_statuses_are_lowercase_strings(tracker: DeploymentTracker) -> None:
    dep, _, _ = _deploy_two_apps(tracker)
    repo = tracker.repository
    rec = repo.get(dep.deployment_id)
    assert rec.status == "success" and str(rec.status) == "success"
    assert rec.command == "deploy" and f"{rec.command}" == "deploy"
    assert json.loads(json.dumps(rec.to_dict()))["status"] == "success"
    for app in rec.apps:
        assert app.status == "success" and app.type in ("helm", "yaml")
        for res in app.resources:
            assert res.action in ("create", "update", "delete", "unchanged")
            assert res.action == str(res.action).lower()
    [summary] = repo.list(status="success")
    assert summary.status == "success"
    [entry] = repo.app_history("redis")
    assert entry.app_status == "success" and entry.deployment_status == "success"
    assert entry.app_type == "helm"
    assert repo.list(status="failed") == []


def test_times_are_utc_aware(
    db: DeploymentDatabase,
    tracker: DeploymentTracker,
    walk_record: Callable[..., int],
    check_utc: Callable[..., None],
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    dep, _, _ = _deploy_two_apps(tracker)
    after = datetime.now(UTC) + timedelta(seconds=1)
    repo = tracker.repository
    times: list[datetime] = []

    def visit(value: Any) -> None:
        if isinstance(value, datetime):
            check_utc(value)
            times.append(value)

    rec: DeploymentRecord = repo.get(dep.deployment_id)
    for value in (rec, repo.list(), repo.app_history("redis"), dep):
        walk_record(value, visit)
    # deployment started/finished, 2 apps started/finished, summary x2, history, handle
    assert len(times) >= 10
    assert all(before <= t <= after for t in times), times
    # An explicit non-UTC start time is stored as the same instant, returned in UTC.
    cet = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    made = repo.create_deployment(cluster="c", namespace="n", started_at=cet)
    back = repo.get(made.deployment_id).started_at
    check_utc(back)
    assert back == cet and back.hour == 1
    with pytest.raises(Exception, match="naive"):
        repo.create_deployment(cluster="c", namespace="n", started_at=datetime(2026, 1, 1))
    assert db.engine.pool.checkedout() == 0


def test_resources_are_written_with_the_apps_outcome(
    db: DeploymentDatabase, count_statements: Callable[..., Any]
) -> None:
    """record_resources (an app's last step) is written in the transaction of the app's
    end; a later write of the app writes them first, and so does one after the end."""
    tracker = DeploymentTracker(db)
    repo = tracker.repository
    with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
        with dep.track_app(name="web", type="yaml", namespace=NAMESPACE) as app:
            with count_statements(db) as c:
                app.record_resources([_configmap("web-a")], action="create")
            assert c.count == 0 and app.unsaved
            assert repo.get(dep.deployment_id).apps[0].resources == ()
        assert not app.unsaved
        assert [r.name for r in repo.get(dep.deployment_id).apps[0].resources] == ["web-a"]

        with dep.track_app(name="redis", type="helm", namespace=NAMESPACE) as helm:
            helm.record_resources([_configmap("redis-pre")], action="create")
            with count_statements(db) as c:
                helm.record_helm_release(
                    release_name="redis",
                    namespace=NAMESPACE,
                    chart="bitnami/redis",
                    revision=1,
                    status="deployed",
                )
            tables = [s.sql.split()[2] for s in c.of_kind("INSERT")]
            assert tables == ["deployed_resources", "helm_releases"], c.report()
            helm.record_resources([_configmap("redis-post")], action="create")
        helm.record_resources([_configmap("redis-late")], action="create")
        assert not helm.unsaved
    apps = {a.name: a for a in repo.get(dep.deployment_id).apps}
    assert [r.name for r in apps["redis"].resources] == ["redis-pre", "redis-post", "redis-late"]
    assert [h.revision for h in apps["redis"].helm_releases] == [1]
    assert apps["redis"].status.value == "success"


def test_failed_app_keeps_its_resources(tracker: DeploymentTracker) -> None:
    with pytest.raises(RuntimeError):
        with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
            with dep.track_app(name="web", type="yaml", namespace=NAMESPACE) as app:
                app.record_resources([_configmap("web-a"), _configmap("web-b")], action="create")
                raise RuntimeError("wait timed out")
    (app_rec,) = tracker.repository.get(dep.deployment_id).apps
    assert app_rec.status.value == "failed" and app_rec.error_message == "wait timed out"
    assert [r.name for r in app_rec.resources] == ["web-a", "web-b"]


def test_last_successful_apps_reads_each_apps_newest_recording_at_once(
    tracker: DeploymentTracker, count_statements: Any
) -> None:
    """What a deploy reads before its apps run (issue 25): each app's newest successful (or
    failed) recording, in a fixed number of statements whatever the number of apps; the
    same records as one read per app."""
    names = [f"app-{i}" for i in range(6)]
    for round_ in range(3):
        with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
            for i, name in enumerate(names):
                if round_ == 2 and i % 2:
                    continue  # the odd apps' newest recordings are round 1's
                with dep.track_app(name=name, type="yaml", namespace=NAMESPACE) as app:
                    app.record_resources([_configmap(name, rev=str(round_))], "update")
    with tracker.track_deployment(cluster=CLUSTER, namespace=NAMESPACE) as dep:
        dep.skip_app(name="app-0", type="yaml", namespace=NAMESPACE, reason="skipped")
    with tracker.track_deployment(cluster="elsewhere", namespace=NAMESPACE) as dep:
        with dep.track_app(name="app-1", type="yaml", namespace=NAMESPACE) as app:
            app.record_resources([_configmap("app-1", rev="other")], "update")
    repo = tracker.repository
    asked = [*names, "never-deployed"]

    with count_statements(repo.db) as counted:
        at_once = repo.last_successful_apps(cluster=CLUSTER, namespace=NAMESPACE, apps=asked)
    one_by_one = {
        n: repo.last_successful_app(cluster=CLUSTER, namespace=NAMESPACE, app=n) for n in asked
    }

    assert at_once == one_by_one
    assert at_once["never-deployed"] is None
    revs = {n: rec.resources[0].current_state["data"]["rev"] for n, rec in at_once.items() if rec}
    assert revs == {n: "1" if i % 2 else "2" for i, n in enumerate(names)}
    selects = [s for s in counted.statements if s.sql.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3  # the apps, their resources, their releases
    anywhere = repo.last_successful_apps(cluster=None, namespace=NAMESPACE, apps=["app-1"])
    assert anywhere["app-1"] is not None
    assert anywhere["app-1"].resources[0].current_state["data"]["rev"] == "other"
    assert repo.last_successful_apps(
        cluster=CLUSTER, namespace=NAMESPACE, apps=names, failed=True
    ) == dict.fromkeys(names)
