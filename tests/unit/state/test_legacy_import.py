"""The original sbkube's later schema (0.10+): ``app_deployments.app_group`` and the
workspace runs with their phase rows, imported into SQLite and PostgreSQL.

The tables are created with the DDL the original's SQLAlchemy models produce (the 0.4.7
shape is covered by a file the original itself wrote: tests/cli/test_state_import_legacy_cli.py).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sbkube.errors import UsageError
from sbkube.model import thaw
from sbkube.state import DeploymentRepository, import_legacy, imported_from

DDL = """
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY, deployment_id VARCHAR(64) NOT NULL UNIQUE,
    timestamp DATETIME NOT NULL, cluster VARCHAR(255) NOT NULL,
    namespace VARCHAR(255) NOT NULL, app_config_dir VARCHAR(1024) NOT NULL,
    config_file_path VARCHAR(1024) NOT NULL, command VARCHAR(50) NOT NULL,
    command_args JSON, dry_run BOOLEAN, status VARCHAR(20), error_message TEXT,
    config_snapshot JSON NOT NULL, sources_snapshot JSON, sbkube_version VARCHAR(20),
    operator VARCHAR(255));
CREATE TABLE app_deployments (
    id INTEGER PRIMARY KEY, deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    app_name VARCHAR(255) NOT NULL, app_type VARCHAR(50) NOT NULL, app_group VARCHAR(255),
    namespace VARCHAR(255), status VARCHAR(20), error_message TEXT, app_config JSON NOT NULL,
    deployment_metadata JSON, rollback_info JSON);
CREATE TABLE deployed_resources (
    id INTEGER PRIMARY KEY, app_deployment_id INTEGER NOT NULL REFERENCES app_deployments (id),
    api_version VARCHAR(100) NOT NULL, kind VARCHAR(100) NOT NULL, name VARCHAR(255) NOT NULL,
    namespace VARCHAR(255), action VARCHAR(20) NOT NULL, previous_state JSON,
    current_state JSON, checksum VARCHAR(64), source_file VARCHAR(1024));
CREATE TABLE helm_releases (
    id INTEGER PRIMARY KEY, app_deployment_id INTEGER NOT NULL REFERENCES app_deployments (id),
    release_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL,
    chart VARCHAR(255) NOT NULL, chart_version VARCHAR(50), app_version VARCHAR(50),
    revision INTEGER NOT NULL, "values" JSON, status VARCHAR(50) NOT NULL,
    UNIQUE (release_name, namespace));
CREATE TABLE workspace_deployments (
    id INTEGER PRIMARY KEY, workspace_deployment_id VARCHAR(64) NOT NULL UNIQUE,
    timestamp DATETIME NOT NULL, completed_at DATETIME, workspace_name VARCHAR(255) NOT NULL,
    workspace_file VARCHAR(1024) NOT NULL, environment VARCHAR(50), dry_run BOOLEAN,
    force BOOLEAN, target_phase VARCHAR(255), status VARCHAR(20), error_message TEXT,
    total_phases INTEGER, completed_phases INTEGER, failed_phases INTEGER,
    skipped_phases INTEGER, workspace_config JSON NOT NULL, sbkube_version VARCHAR(20),
    operator VARCHAR(255));
CREATE TABLE phase_deployments (
    id INTEGER PRIMARY KEY, phase_deployment_id VARCHAR(64) NOT NULL UNIQUE,
    workspace_deployment_id INTEGER NOT NULL REFERENCES workspace_deployments (id),
    phase_name VARCHAR(255) NOT NULL, phase_description TEXT,
    source_path VARCHAR(1024) NOT NULL, execution_order INTEGER NOT NULL, depends_on JSON,
    app_groups JSON NOT NULL, total_app_groups INTEGER, completed_app_groups INTEGER,
    started_at DATETIME, completed_at DATETIME, duration_seconds INTEGER,
    status VARCHAR(20), error_message TEXT, on_failure_action VARCHAR(20));
"""


def make_db(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    conn.executescript(DDL)
    facts = {
        "dep": "dep-20251103091500-0a1b2c3d",
        "ws": "ws-20251103-0930-ffee",
        "password": "p10-legacy-password-31",
    }
    conn.execute(
        "INSERT INTO deployments VALUES (1, ?, '2025-11-03 09:15:00.250000', 'prod', 'apps',"
        " '/srv/p', '/srv/p/sbkube.yaml', 'deploy', ?, 0, 'in_progress', NULL, ?, NULL,"
        " '0.10.2', 'ops')",
        (facts["dep"], json.dumps({"password": facts["password"], "profile": "blue"}),
         json.dumps({"apps": {"api": {"type": "helm"}}})),
    )  # fmt: skip
    conn.execute(
        "INSERT INTO app_deployments VALUES (7, 1, 'api', 'helm', 'backend', 'apps',"
        " 'in_progress', NULL, '{}', NULL, NULL)"
    )
    conn.execute(
        "INSERT INTO helm_releases VALUES (1, 7, 'api', 'apps', 'oci://reg/charts/api',"
        " '2.1.0', NULL, 4, ?, 'deployed')",
        (json.dumps({"db": {"password": facts["password"]}}),),
    )
    conn.execute(
        "INSERT INTO workspace_deployments VALUES (1, ?, '2025-11-03 09:30:00', "
        "'2025-11-03 09:41:10', 'platform', '/srv/workspace.yaml', 'staging', 0, 0, NULL,"
        " 'partially_failed', 'phase data failed', 2, 1, 1, 0, ?, '0.11.0', 'ops')",
        (facts["ws"], json.dumps({"phases": {"infra": {}, "data": {}}})),
    )
    for order, (name, status) in enumerate([("infra", "success"), ("data", "failed")]):
        conn.execute(
            "INSERT INTO phase_deployments VALUES (?, ?, 1, ?, NULL, ?, ?, ?, ?, 1, 0,"
            " '2025-11-03 09:30:01', NULL, NULL, ?, NULL, 'stop')",
            (order + 1, f"ph-{name}", name, f"{name}/sbkube.yaml", order,
             json.dumps(["infra"] if order else []), json.dumps([f"{name}-group"]), status),
        )  # fmt: skip
    conn.commit()
    conn.close()
    return facts


def test_later_schema_with_app_groups_and_phases(db: Any, tmp_path: Path) -> None:
    path = tmp_path / "deployments.db"
    facts = make_db(path)
    before = path.read_bytes()

    result = import_legacy(db, str(path))

    assert result.imported == 2
    repo = DeploymentRepository(db)
    dep = repo.get("dep-20251103-091500-0a1b2c3d")
    assert imported_from(dep.command_args) == facts["dep"]
    assert dep.status == "interrupted"  # the original never finished it
    assert dep.started_at == datetime(2025, 11, 3, 9, 15, 0, 250000, tzinfo=UTC)
    assert dep.sbkube_version == "0.10.2"
    assert dep.profile == "blue"  # its --profile, from the original's command_args
    app = dep.apps[0]
    assert app.status == "interrupted"
    assert app.metadata["imported"]["app_group"] == "backend"
    assert app.metadata["chart_ref"] == "oci://reg/charts/api"
    rel = app.helm_release
    assert rel is not None
    assert (rel.chart, rel.chart_version, rel.revision) == ("api", "2.1.0", 4)
    assert facts["password"] not in json.dumps(thaw(rel.values))
    assert rel.sealed is not None
    assert facts["password"] not in json.dumps(list(thaw(dep.command_args)))

    (ws_summary,) = repo.list(cluster="workspace")
    ws = repo.get(ws_summary.deployment_id)
    assert imported_from(ws.command_args) == facts["ws"]
    assert (ws.namespace, ws.status) == ("staging", "partially_failed")
    assert ws.finished_at == datetime(2025, 11, 3, 9, 41, 10, tzinfo=UTC)
    phases = thaw(ws.config_snapshot)["phases"]
    assert [(p["phase_name"], p["status"], p["depends_on"], p["app_groups"]) for p in phases] == [
        ("infra", "success", [], ["infra-group"]),
        ("data", "failed", ["infra"], ["data-group"]),
    ]
    assert ws.apps == ()
    # A workspace run's environment is its profile.
    assert ws.profile == "staging"
    assert [s.deployment_id for s in repo.list(profile="staging")] == [ws.deployment_id]

    again = import_legacy(db, str(path))
    assert (again.imported, again.skipped) == (0, 2)
    assert path.read_bytes() == before


def test_a_status_the_original_never_wrote_imports_nothing(db: Any, tmp_path: Path) -> None:
    path = tmp_path / "deployments.db"
    make_db(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE workspace_deployments SET status = 'exploded'")
    conn.commit()
    conn.close()

    with pytest.raises(UsageError, match=r"deployments\.db: workspace deployment .*'exploded'"):
        import_legacy(db, str(path))

    assert DeploymentRepository(db).count() == 0
