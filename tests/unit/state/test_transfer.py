"""export_deployments / import_deployments: a lossless, idempotent round trip between
SQLite and PostgreSQL, streaming in bounded batches, refusing bad lines by number."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import sbkube.state.transfer as transfer
from sbkube.errors import UsageError
from sbkube.redaction import is_digest
from sbkube.state import (
    DeploymentDatabase,
    DeploymentRepository,
    DeploymentTracker,
    check_lines,
    dump_line,
    export_deployments,
    import_deployments,
)

BASE = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


CHART_DIGEST = "sha256:" + "c" * 64


def seed(db: DeploymentDatabase) -> list[str]:
    """A varied history: helm and yaml apps, a failure, a rollback, odd JSON values."""
    repo = DeploymentRepository(db)
    tracker = DeploymentTracker(repo)
    made: list[str] = []
    with tracker.track_deployment(
        cluster="k3s",
        namespace="demo",
        app_dir="/apps/démo",
        config={"namespace": "demo", "apps": {"web": {"set": {"password": "hunter2"}}}},
        command_args=["--app", "web"],
        sources={"config.yaml": "sha1:abc"},
    ) as dep:
        with dep.track_app(name="web", type="helm", namespace="demo", config={"x": 1.5}) as app:
            app.record_helm_release(
                release_name="web",
                namespace="demo",
                chart="bitnami/nginx",
                chart_version="15.0.0",
                app_version="1.25",
                revision=1,
                status="deployed",
                values={"replicas": 2, "auth": {"token": "t0k"}, "ratio": 0.1, "big": 10**15},
                chart_digest=CHART_DIGEST,
            )
            app.record_resources(
                [
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "s", "namespace": "demo"},
                        "data": {"k": "djE="},
                    },
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "c", "namespace": "demo"},
                        "data": {"unicode": "ünï ✓", "empty": ""},
                    },
                ],
                action="create",
                source_file="templates/x.yaml",
            )
        with dep.track_app(name="static", type="yaml", namespace=None):
            pass
    made.append(dep.deployment_id)
    with (
        pytest.raises(RuntimeError),
        tracker.track_deployment(cluster="k3s", namespace="demo") as d2,
    ):
        with d2.track_app(name="web", type="helm"):
            raise RuntimeError("boom\nsecond line")
    made.append(d2.deployment_id)
    # Whole-second start time: must still export with microseconds, and sort stably.
    rec = repo.create_deployment(
        cluster="k3s",
        namespace="demo",
        command="rollback",
        rollback_target_id=made[0],
        started_at=BASE,
        operator="alice",
    )
    app = repo.start_app(rec.deployment_id, name="web", type="helm", rollback_info={"to": 1})
    repo.add_resources(app.app_id, [])
    repo.finish_app(app.app_id, "success")
    repo.finish_deployment(rec.deployment_id, "success", finished_at=BASE + timedelta(seconds=3))
    made.append(rec.deployment_id)
    # Same start time as the rollback: order must fall back to insertion order.
    tie = repo.create_deployment(
        cluster="other", namespace="x", started_at=BASE, status="pending", dry_run=True
    )
    made.append(tie.deployment_id)
    return made


def lines(db: DeploymentDatabase, **kw: Any) -> list[str]:
    return [dump_line(d) for d in export_deployments(db, **kw)]


def test_export_shape(db: DeploymentDatabase) -> None:
    made = seed(db)
    out = list(export_deployments(db))
    assert [d["deployment_id"] for d in out] == [made[2], made[3], made[0], made[1]]
    first = out[2]
    assert set(first) == set(DeploymentRepository(db).get(made[0]).to_dict())
    web = first["apps"][0]
    assert "app_id" not in web and web["name"] == "web"
    assert web["helm_releases"][0]["chart_version"] == "15.0.0"
    assert web["helm_releases"][0]["chart_digest"] == CHART_DIGEST
    assert is_digest(web["helm_releases"][0]["values"]["auth"]["token"])
    assert [r["kind"] for r in web["resources"]] == ["Secret", "ConfigMap"]
    assert is_digest(web["resources"][0]["current_state"]["data"]["k"])
    assert out[0]["started_at"] == "2026-11-01T08:00:00.000000+00:00"
    for d in out:
        for key in ("started_at", "finished_at"):
            if d[key] is not None:
                assert d[key].endswith("+00:00") and "." in d[key]
    for line in lines(db):
        assert "\n" not in line
        assert json.loads(line)


def test_round_trip_sqlite_postgres_sqlite(tmp_path: Path, pg_schema_url: str) -> None:
    src = DeploymentDatabase(tmp_path / "src.db")
    pg = DeploymentDatabase(pg_schema_url)
    back = DeploymentDatabase(tmp_path / "back.db")
    try:
        seed(src)
        exported = lines(src)
        assert len(exported) == 4

        result = import_deployments(pg, exported, source="history.jsonl")
        assert (result.imported, result.skipped) == (4, 0)
        assert lines(pg) == exported

        assert import_deployments(back, (json.loads(x) for x in lines(pg))).imported == 4
        assert lines(back) == exported
        # Records read back through the repository are equal too (app ids aside).
        a = DeploymentRepository(src).get(json.loads(exported[2])["deployment_id"])
        b = DeploymentRepository(back).get(a.deployment_id)
        assert a.started_at == b.started_at and a.finished_at == b.finished_at
        assert a.apps[0].helm_releases == b.apps[0].helm_releases
        assert b.apps[0].helm_releases[0].chart_digest == CHART_DIGEST
        assert a.apps[0].resources == b.apps[0].resources
    finally:
        for d in (src, pg, back):
            d.close()


def test_reimport_is_idempotent(db: DeploymentDatabase, tmp_path: Path) -> None:
    made = seed(db)
    exported = lines(db)
    other = DeploymentDatabase(tmp_path / "other.db")
    try:
        # The two newest: neither points at another deployment (a rollback's target must
        # come along or be in the store already).
        newest = exported[-2:]
        assert all('"rollback_target_id":null' in line for line in newest)
        assert import_deployments(other, newest).imported == 2
        again = import_deployments(other, exported)
        assert (again.imported, again.skipped) == (2, 2)
        assert import_deployments(other, exported).skipped == 4
        assert lines(other) == exported
    finally:
        other.close()
    same = import_deployments(db, exported)
    assert (same.imported, same.skipped) == (0, 4)
    assert sorted(same.skipped_ids) == sorted(made)


def test_since(db: DeploymentDatabase) -> None:
    made = seed(db)
    recent = [d["deployment_id"] for d in export_deployments(db, since=BASE + timedelta(days=1))]
    assert recent == [made[0], made[1]]


def test_streams_in_bounded_batches(
    db: DeploymentDatabase,
    count_statements: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transfer, "EXPORT_BATCH", 3)
    repo = DeploymentRepository(db)
    for i in range(7):
        rec = repo.create_deployment(cluster="k", namespace="n", started_at=BASE + timedelta(i))
        repo.start_app(rec.deployment_id, name="a", type="yaml")
    with count_statements(db) as c:
        it = export_deployments(db)
        first = next(it)
        assert c.count == 4, c.report()  # one batch: deployments, apps, resources, releases
        rest = list(it)
    assert len(rest) == 6 and first["apps"][0]["name"] == "a"
    assert c.count <= 3 * 4, c.report()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"cluster": "k"}', "deployment_id: missing"),
    ],
)
def test_bad_line(db: DeploymentDatabase, line: str, message: str) -> None:
    good = lines_of_one(db)
    with pytest.raises(UsageError, match=rf"^h\.jsonl:3: .*{message}"):
        check_lines([good, "\n", line], source="h.jsonl")
    with pytest.raises(UsageError, match=rf"^h\.jsonl:3: .*{message}"):
        import_deployments(db, [good, "", line], source="h.jsonl")


def test_bad_field_values(db: DeploymentDatabase) -> None:
    item = json.loads(lines_of_one(db))
    for path, value, message in [
        (("status",), "weird", "status: 'weird' is not one of"),
        (("started_at",), "yesterday", "started_at: 'yesterday' is not an ISO 8601 time"),
        (("started_at",), "2026-11-01T08:00:00", "started_at: .* has no time zone"),
        (("apps", 0, "resources", 0, "action"), "zap", r"apps\[0\]\.resources\[0\]\.action"),
        (
            ("apps", 0, "helm_releases", 0, "revision"),
            "2",
            r"apps\[0\]\.helm_releases\[0\]\.revision: expected int",
        ),
    ]:
        bad = json.loads(json.dumps(item))
        target = bad
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(UsageError, match=f"f:1: {message}"):
            check_lines([json.dumps(bad)], source="f")


def lines_of_one(db: DeploymentDatabase) -> str:
    seed(db)
    return next(
        dump_line(d) for d in export_deployments(db) if d["apps"] and d["apps"][0]["resources"]
    )


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("apps", 9), "copy", r"apps\[2\]\.name: app 'web' appears twice"),
        (("apps", 0), [1], r"apps\[0\]: expected a JSON object, got a list"),
        (("cluster",), None, "cluster: expected str, got null"),
        (("pid",), True, "pid: expected int, got boolean true"),
        (("dry_run",), "yes", "dry_run: expected bool, got str 'yes'"),
        (("command",), "zap", "command: 'zap' is not one of 'deploy', "),
        (("deployment_id",), "x" * 5000, r"deployment_id: 'xxx.*\.\.\. is not a deployment id"),
        (("apps", 0, "started_at"), 5, r"apps\[0\]\.started_at: expected str, got int 5"),
        (
            ("apps", 0, "resources", 0, "current_state"),
            [1],
            r"apps\[0\]\.resources\[0\]\.current_state: expected dict, got a list",
        ),
    ],
)
def test_a_bad_field_is_one_line_naming_the_file_line_and_field(
    db: DeploymentDatabase, path: tuple[str | int, ...], value: Any, message: str
) -> None:
    item = json.loads(lines_of_one(db))
    target = item
    for key in path[:-1]:
        target = target[key]
    if value == "copy":
        target.append(json.loads(json.dumps(target[0])))
    else:
        target[path[-1]] = value
    with pytest.raises(UsageError, match=rf"^h\.jsonl:1: {message}") as err:
        check_lines([json.dumps(item)], source="h.jsonl")
    assert "\n" not in str(err.value) and len(str(err.value)) < 200
    assert err.value.exit_code == 2


def test_unknown_keys_are_ignored(db: DeploymentDatabase, tmp_path: Path) -> None:
    # An export from a newer sbkube may carry fields this one does not know.
    item = json.loads(lines_of_one(db))
    item["from_the_future"] = {"x": 1}
    item["apps"][0]["resources"][0]["also_new"] = 1
    other = DeploymentDatabase(tmp_path / "other.db")
    try:
        assert import_deployments(other, [json.dumps(item)]).imported == 1
        (back,) = export_deployments(other)
        assert "from_the_future" not in back
        resource = back["apps"][0]["resources"][0]
        assert resource == {
            k: v for k, v in item["apps"][0]["resources"][0].items() if k != "also_new"
        }
    finally:
        other.close()
