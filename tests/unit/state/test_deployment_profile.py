"""The profile a deployment was made with (``--profile ENV``, migration 0010): recorded,
read back, filtered on in SQL (``state list --profile``) on SQLite and PostgreSQL, carried
by export/import, and NULL for every row recorded before the column existed."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

import sbkube.state.database as database_module
from sbkube.state import (
    DeploymentDatabase,
    DeploymentRepository,
    DeploymentTracker,
    export_deployments,
    import_deployments,
    list_deployments,
)


def _deploy(db: DeploymentDatabase, profile: str | None, namespace: str = "shop") -> str:
    with DeploymentTracker(db).track_deployment(
        cluster="k3s", namespace=namespace, profile=profile
    ) as dep:
        with dep.track_app(name="web", type="yaml", namespace=namespace):
            pass
    return dep.deployment_id


def test_the_profile_is_recorded_and_filtered_on(db: DeploymentDatabase) -> None:
    prod = _deploy(db, "prod")
    plain = _deploy(db, None)
    prod_ops = _deploy(db, "prod", namespace="ops")
    dev = _deploy(db, "dev")
    repo = DeploymentRepository(db)

    assert repo.get(prod).profile == "prod" and repo.get(plain).profile is None
    assert [s.deployment_id for s in list_deployments(db, profile="prod")] == [prod_ops, prod]
    assert [s.profile for s in list_deployments(db)] == ["dev", "prod", None, "prod"]
    assert [s.deployment_id for s in list_deployments(db, profile="prod", namespace="ops")] == [
        prod_ops
    ]
    assert list_deployments(db, profile="staging") == []
    assert repo.count(profile="dev") == 1
    del dev


def test_export_and_import_keep_the_profile(db: DeploymentDatabase, tmp_path: Path) -> None:
    prod = _deploy(db, "prod")
    plain = _deploy(db, None)
    lines = list(export_deployments(db))
    assert [line.get("profile") for line in lines] == ["prod", None]
    other = DeploymentDatabase(tmp_path / "other.db")
    try:
        assert import_deployments(other, lines).imported == 2
        repo = DeploymentRepository(other)
        assert (repo.get(prod).profile, repo.get(plain).profile) == ("prod", None)
    finally:
        other.close()


def test_rows_recorded_before_0010_have_no_profile(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(db_url)
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(Path(database_module.__file__).parent / "migrations")
    )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
        conn.execute(
            sa.text(
                "INSERT INTO deployments (deployment_id, cluster, cluster_id, namespace, "
                "command, command_args, dry_run, status, sbkube_version, started_at) VALUES "
                "('dep-20261201-000000-aaaaaa', 'k3s', 'k3s', 'shop', 'deploy', '[]', false, "
                "'success', '0.1', '2026-12-01 00:00:00')"
            )
        )
    old = DeploymentDatabase(db_url)  # migrates to head on open (0010 adds the column)
    try:
        (row,) = list_deployments(old)
        assert (row.deployment_id, row.profile) == ("dep-20261201-000000-aaaaaa", None)
        assert list_deployments(old, profile="prod") == []
    finally:
        old.close()
        engine.dispose()
