"""The W1 write path, twice: through ``DeploymentTracker`` and as hand-written inserts.

Both write the same rows: one deployment, 20 apps, 20 x 50 resources with the same JSON
text and checksums (``json.dumps`` for the stored document, sha256 over canonical JSON
for the checksum), then mark every app and the deployment successful. The references
do it in one transaction; sbkube does it the way a deploy does (two transactions per app,
its start and its resources with its outcome, so a crash keeps what was recorded so far).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from data import CLUSTER, NAMESPACE, checksum, sa_json, sa_time, w1_app_config

from sbkube import __version__
from sbkube.state import DeploymentTracker

APP_DIR = "/srv/apps/bench"
COMMAND_ARGS = ["--app-dir", APP_DIR]


def sbkube_record(
    tracker: DeploymentTracker, manifests: list[list[dict[str, Any]]], config: dict[str, Any]
) -> str:
    with tracker.track_deployment(
        cluster=CLUSTER,
        namespace=NAMESPACE,
        app_dir=APP_DIR,
        config=config,
        config_file=f"{APP_DIR}/config.yaml",
        command_args=COMMAND_ARGS,
        operator="bench",
    ) as dep:
        for a, app_manifests in enumerate(manifests):
            with dep.track_app(
                name=f"app{a:02d}", type="yaml", namespace=NAMESPACE, config=w1_app_config(a)
            ) as app:
                app.record_resources(app_manifests, action="create")
    return dep.deployment_id


def _new_id(now: datetime) -> str:
    return f"dep-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def resource_rows(app_pk: int, manifests: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    rows = []
    for m in manifests:
        meta = m["metadata"]
        rows.append(
            (
                app_pk,
                m["apiVersion"],
                m["kind"],
                meta["name"],
                meta.get("namespace"),
                "create",
                None,
                sa_json(m),
                checksum(m),
                None,
            )
        )
    return rows


DEPLOYMENT_INSERT = (
    "INSERT INTO deployments (deployment_id, cluster, namespace, app_dir, config_file, command, "
    "command_args, dry_run, status, config_snapshot, sbkube_version, operator, host, pid, "
    "started_at) VALUES ({})"
)
APP_INSERT = (
    'INSERT INTO app_deployments (deployment_pk, name, type, namespace, status, config, "metadata",'
    " started_at) VALUES ({})"
)
RESOURCE_COLUMNS = (
    "app_deployment_pk, api_version, kind, name, namespace, action, previous_state, "
    "current_state, checksum, source_file"
)
RESOURCE_INSERT = f"INSERT INTO deployed_resources ({RESOURCE_COLUMNS}) VALUES ({{}})"


def _deployment_params(now: Any, config: dict[str, Any]) -> tuple[Any, ...]:
    return (
        _new_id(datetime.now(UTC)),
        CLUSTER,
        NAMESPACE,
        APP_DIR,
        f"{APP_DIR}/config.yaml",
        "deploy",
        sa_json(COMMAND_ARGS),
        False,
        "in_progress",
        sa_json(config),
        __version__,
        "bench",
        "bench-host",
        1234,
        now,
    )


def _app_params(dep_pk: int, a: int, now: Any) -> tuple[Any, ...]:
    return (
        dep_pk,
        f"app{a:02d}",
        "yaml",
        NAMESPACE,
        "in_progress",
        sa_json(w1_app_config(a)),
        "{}",
        now,
    )


def sqlite_reference_record(
    con: Any, manifests: list[list[dict[str, Any]]], config: dict[str, Any]
) -> None:
    """Plain ``sqlite3``: the same rows in one ``BEGIN IMMEDIATE`` transaction."""
    now = sa_time(datetime.now(UTC))
    con.execute("BEGIN IMMEDIATE")
    dep_pk = con.execute(
        DEPLOYMENT_INSERT.format(", ".join("?" * 15)), _deployment_params(now, config)
    ).lastrowid
    for a, app_manifests in enumerate(manifests):
        app_pk = con.execute(
            APP_INSERT.format(", ".join("?" * 8)), _app_params(dep_pk, a, now)
        ).lastrowid
        con.executemany(
            RESOURCE_INSERT.format(", ".join("?" * 10)), resource_rows(app_pk, app_manifests)
        )
        con.execute(
            "UPDATE app_deployments SET status = 'success', finished_at = ? WHERE id = ?",
            (now, app_pk),
        )
    con.execute(
        "UPDATE deployments SET status = 'success', finished_at = ? WHERE id = ?", (now, dep_pk)
    )
    con.execute("COMMIT")


def pg_reference_record(
    conn: Any, manifests: list[list[dict[str, Any]]], config: dict[str, Any], *, copy: bool
) -> None:
    """psycopg 3: the same rows in one transaction, resources by ``executemany`` or ``COPY``."""
    now = datetime.now(UTC)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            DEPLOYMENT_INSERT.format(", ".join(["%s"] * 15)) + " RETURNING id",
            _deployment_params(now, config),
        )
        dep_pk = cur.fetchone()[0]
        for a, app_manifests in enumerate(manifests):
            cur.execute(
                APP_INSERT.format(", ".join(["%s"] * 8)) + " RETURNING id",
                _app_params(dep_pk, a, now),
            )
            app_pk = cur.fetchone()[0]
            rows = resource_rows(app_pk, app_manifests)
            if copy:
                with cur.copy(f"COPY deployed_resources ({RESOURCE_COLUMNS}) FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row(row)
            else:
                cur.executemany(RESOURCE_INSERT.format(", ".join(["%s"] * 10)), rows)
            cur.execute(
                "UPDATE app_deployments SET status = 'success', finished_at = %s WHERE id = %s",
                (now, app_pk),
            )
        cur.execute(
            "UPDATE deployments SET status = 'success', finished_at = %s WHERE id = %s",
            (now, dep_pk),
        )
