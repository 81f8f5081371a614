"""plan_prune / apply_prune: keep-last and older-than per (cluster, namespace, app), and
the deployments that are never deleted (latest success, rollback targets, unfinished)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sbkube.errors import UsageError
from sbkube.state import DeploymentDatabase, DeploymentRepository, apply_prune, plan_prune

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


@pytest.fixture
def make(repo: DeploymentRepository) -> Callable[..., str]:
    """Record a finished deployment started ``age`` days before NOW with the given apps."""

    def _make(
        age: float,
        apps: Sequence[str] | dict[str, str] = ("web",),
        *,
        status: str = "success",
        namespace: str = "demo",
        rollback_target_id: str | None = None,
        command: str = "deploy",
    ) -> str:
        started = days_ago(age)
        rec = repo.create_deployment(
            cluster="k3s",
            namespace=namespace,
            started_at=started,
            rollback_target_id=rollback_target_id,
            command=command,
        )
        app_status: dict[str, str] = (
            dict(apps) if isinstance(apps, dict) else dict.fromkeys(apps, "success")
        )
        for name, st in app_status.items():
            app = repo.start_app(rec.deployment_id, name=name, type="yaml")
            repo.finish_app(app.app_id, st)
        if status not in ("pending", "in_progress"):
            repo.finish_deployment(
                rec.deployment_id, status, finished_at=started + timedelta(minutes=1)
            )
        return rec.deployment_id

    return _make


def ids(repo: DeploymentRepository) -> set[str]:
    return {s.deployment_id for s in repo.list(limit=None)}


def test_keep_last_and_older_than(
    db: DeploymentDatabase, repo: DeploymentRepository, make: Callable[..., Any]
) -> None:
    old = [make(100 - i) for i in range(5)]  # 100..96 days ago, oldest first
    recent = [make(5), make(3)]
    plan = plan_prune(db, keep_last=3, older_than_days=30, now=NOW)
    # Newest 3 of web are recent[1], recent[0], old[4]; old[0..3] are old and beyond them.
    assert plan.deployment_ids == tuple(old[:4])
    assert plan.total == 7 and plan.kept == 3
    assert dict(plan.kept_by_reason) == {"latest_success": 1, "keep_last": 2}

    # Younger than --older-than: kept even beyond keep-last.
    plan = plan_prune(db, keep_last=1, older_than_days=98.5, now=NOW)
    assert plan.deployment_ids == tuple(old[:2])

    assert apply_prune(db, plan_prune(db, keep_last=3, older_than_days=30, now=NOW)) == 4
    assert ids(repo) == {old[4], *recent}


def test_every_app_must_agree(db: DeploymentDatabase, make: Callable[..., Any]) -> None:
    shared = make(100, ("web", "db"))  # the only (hence newest) deployment of db
    web_only = [make(90), make(80), make(70)]
    plan = plan_prune(db, keep_last=1, older_than_days=30, now=NOW)
    assert shared not in plan.deployment_ids
    assert plan.deployment_ids == tuple(web_only[:2])


def test_never_deletes_latest_successful_deployment_of_an_app(
    db: DeploymentDatabase, repo: DeploymentRepository, make: Callable[..., Any]
) -> None:
    good = make(200)
    failed = [make(100 - i, {"web": "failed"}, status="failed") for i in range(3)]
    plan = plan_prune(db, keep_last=0, older_than_days=30, now=NOW)
    assert good not in plan.deployment_ids
    assert set(plan.deployment_ids) == set(failed)
    # A successful app inside a partially failed deployment counts as its latest success.
    partial = make(50, {"web": "success", "db": "failed"}, status="partially_failed")
    plan = plan_prune(db, keep_last=0, older_than_days=30, now=NOW)
    assert partial not in plan.deployment_ids
    # good stays too: still the latest deployment of the target that fully succeeded.
    assert good not in plan.deployment_ids
    assert apply_prune(db, plan) == 3
    assert ids(repo) == {good, partial}
    # Once web succeeds again (and the target with it), both older ones may go.
    newest = make(40, ("web", "db"))
    plan = plan_prune(db, keep_last=0, older_than_days=30, now=NOW)
    assert set(plan.deployment_ids) == {good, partial}
    assert newest not in plan.deployment_ids


def test_never_deletes_a_rollback_target(
    db: DeploymentDatabase, repo: DeploymentRepository, make: Callable[..., Any]
) -> None:
    target = make(300)
    middle = make(200)
    rollback = make(100, command="rollback", rollback_target_id=target)
    newest = make(60)
    plan = plan_prune(db, keep_last=1, older_than_days=30, now=NOW)
    assert plan.deployment_ids == (middle, rollback)
    assert plan.kept_by_reason["rollback_target"] == 1
    assert apply_prune(db, plan) == 2
    assert ids(repo) == {target, newest}


def test_apply_rechecks_rollback_targets(
    db: DeploymentDatabase, repo: DeploymentRepository, make: Callable[..., Any]
) -> None:
    old = make(300)
    make(100)
    plan = plan_prune(db, keep_last=1, older_than_days=30, now=NOW)
    assert plan.deployment_ids == (old,)
    make(1, command="rollback", rollback_target_id=old)  # arrives after planning
    assert apply_prune(db, plan) == 0
    assert old in ids(repo)


def test_never_deletes_unfinished(db: DeploymentDatabase, make: Callable[..., Any]) -> None:
    running = make(100, status="in_progress")
    pending = make(90, status="pending")
    make(10)
    plan = plan_prune(db, keep_last=0, older_than_days=30, now=NOW)
    assert running not in plan.deployment_ids and pending not in plan.deployment_ids
    assert plan.kept_by_reason["unfinished"] == 2


def test_zero_app_deployments_follow_the_target(
    db: DeploymentDatabase, make: Callable[..., Any]
) -> None:
    empty_old = make(100, (), status="failed")
    empty_newer = make(90, (), status="failed")
    make(80)
    other_ns = make(100, (), status="failed", namespace="other")
    plan = plan_prune(db, keep_last=2, older_than_days=30, now=NOW)
    # demo's newest two are the web deployment and empty_newer; "other" has just one.
    assert plan.deployment_ids == (empty_old,)
    assert empty_newer not in plan.deployment_ids and other_ns not in plan.deployment_ids


def test_targets_are_independent(db: DeploymentDatabase, make: Callable[..., Any]) -> None:
    a = [make(100 - i, namespace="a") for i in range(3)]
    b = [make(100 - i, namespace="b") for i in range(3)]
    plan = plan_prune(db, keep_last=2, older_than_days=30, now=NOW)
    assert set(plan.deployment_ids) == {a[0], b[0]}


def test_dry_run_plan_deletes_nothing(
    db: DeploymentDatabase, repo: DeploymentRepository, make: Callable[..., Any]
) -> None:
    made = {make(100 - i) for i in range(4)}
    plan = plan_prune(db, keep_last=1, older_than_days=1, now=NOW)
    assert len(plan.delete) == 3
    assert ids(repo) == made


def test_cascade_and_chunks(
    db: DeploymentDatabase,
    repo: DeploymentRepository,
    make: Callable[..., Any],
    count_statements: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sbkube.state.retention as retention

    monkeypatch.setattr(retention, "DELETE_CHUNK", 2)
    made = [make(100 - i, ("web", "db")) for i in range(6)]
    with count_statements(db) as c:
        plan = plan_prune(db, keep_last=1, older_than_days=30, now=NOW)
    assert c.count == 2, c.report()
    with count_statements(db) as c:
        assert apply_prune(db, plan) == 5
    assert len(c.of_kind("DELETE")) == 3, c.report()
    assert ids(repo) == {made[-1]}
    kept = repo.get(made[-1])
    assert [a.name for a in kept.apps] == ["web", "db"]
    assert repo.count() == 1


def test_rejects_negative(db: DeploymentDatabase) -> None:
    with pytest.raises(UsageError):
        plan_prune(db, keep_last=-1, older_than_days=1)
    with pytest.raises(UsageError):
        plan_prune(db, keep_last=1, older_than_days=-1)


def test_empty_store(db: DeploymentDatabase) -> None:
    plan = plan_prune(db, keep_last=1, older_than_days=1)
    assert plan.total == 0 and plan.delete == () and apply_prune(db, plan) == 0
    assert plan.to_dict()["delete"] == []
