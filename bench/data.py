"""Benchmark data: the W1 deployment's manifests and bulk-generated history stores.

Stores are created by ``DeploymentDatabase`` (so the schema and indexes are exactly the
migrated ones) and then filled with bulk inserts, which is ~100x faster than recording
each deployment through the tracker. SQLite stores are cached under ``bench/.cache/``,
keyed by size, generator version and schema revision.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sbkube import __version__
from sbkube.state import DeploymentDatabase
from sbkube.state.database import HEAD_REVISION

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
GENERATOR_VERSION = 1

W1_APPS = 20
W1_RESOURCES = 50
NAMESPACE = "bench"
CLUSTER = "bench-cluster"
#: History stores: every deployment has 3 of these 6 apps, so one app is in half of them.
APP_NAMES = ("redis", "postgres", "web", "api", "worker", "nginx")
HELM_APPS = frozenset({"redis", "postgres", "nginx"})
HISTORY_APP = "redis"

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)

# -- what SQLAlchemy writes, reproduced -------------------------------------------------------


def sa_json(value: Any) -> str:
    """The JSON text SQLAlchemy's JSON type stores (plain ``json.dumps``)."""
    return json.dumps(value)


def checksum(manifest: Any) -> str:
    """sbkube's manifest checksum: sha256 over canonical JSON (see ``sbkube/redaction.py``)."""
    canonical = json.dumps(
        manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def sa_time(at: datetime) -> str:
    """The text SQLAlchemy's DateTime stores on SQLite (naive UTC, microseconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# -- the W1 deployment ---------------------------------------------------------------------


def configmap(app: int, index: int) -> dict[str, Any]:
    """A ConfigMap with ~1.5 KB of data (30 keys x 45 characters)."""
    data = {f"key{k:02d}": f"{'value-' * 6}{app:02d}-{index:03d}-{k:02d}"[:45] for k in range(30)}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"app{app:02d}-config-{index:03d}",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": f"app{app:02d}", "sbkube.io/app": f"app{app:02d}"},
        },
        "data": data,
    }


def w1_manifests(apps: int = W1_APPS, resources: int = W1_RESOURCES) -> list[list[dict[str, Any]]]:
    return [[configmap(a, r) for r in range(resources)] for a in range(apps)]


def w1_config(apps: int = W1_APPS) -> dict[str, Any]:
    return {
        "namespace": NAMESPACE,
        "apps": {
            f"app{a:02d}": {"type": "yaml", "manifests": [f"app{a:02d}.yaml"]} for a in range(apps)
        },
    }


def w1_app_config(app: int) -> dict[str, Any]:
    return {"type": "yaml", "manifests": [f"app{app:02d}.yaml"]}


# -- empty, migrated template stores ---------------------------------------------------------


def migrated_sqlite(path: Path) -> Path:
    """A fresh, migrated, checkpointed SQLite store at ``path``."""
    db = DeploymentDatabase(str(path))
    db.close()  # the last connection checkpoints the WAL into the main file
    return path


def copy_store(template: Path, dest: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    shutil.copyfile(template, dest)
    return dest


# -- history stores ---------------------------------------------------------------------------


def _small_manifest(app: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{app}-config", "namespace": f"ns-{i % 5}", "labels": {"app": app}},
        "data": {"revision": str(i), "mode": "production"},
    }


def history_rows(size: int) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(table, row) for ``size`` deployments of 3 apps (1 resource each, helm apps a release).

    Row ids are assigned here so the rows can be bulk-inserted without lookups. The
    W1-shaped deployment (20 apps x 50 ConfigMaps) sits in the middle of the history.
    """
    big_at = size // 2
    app_pk = res_pk = helm_pk = 0
    for i in range(size):
        pk = i + 1
        started = BASE_TIME + timedelta(minutes=10 * i, seconds=i % 7)
        finished = started + timedelta(seconds=30 + i % 90)
        dep_id = f"dep-{started:%Y%m%d-%H%M%S}-{i:06x}"
        status = "failed" if i % 37 == 0 else "partially_failed" if i % 53 == 0 else "success"
        command = "rollback" if i % 41 == 0 else "deploy"
        ns = NAMESPACE if i == big_at else f"ns-{i % 5}"
        config = {"namespace": ns, "apps": {n: {"type": "helm"} for n in APP_NAMES[:3]}}
        yield (
            "deployments",
            (
                pk,
                dep_id,
                CLUSTER if i % 2 == 0 else "prod-cluster",
                ns,
                f"/srv/apps/{ns}",
                f"/srv/apps/{ns}/config.yaml",
                command,
                sa_json(["--app-dir", f"/srv/apps/{ns}"]),
                0,
                status,
                "web: timed out" if status != "success" else None,
                sa_json(config),
                None,
                __version__,
                f"user{i % 4}",
                "ci-runner",
                1000 + i % 30000,
                sa_time(started),
                sa_time(finished),
                None,
            ),
        )
        if i == big_at:
            for a, manifests in enumerate(w1_manifests()):
                app_pk += 1
                yield (
                    "app_deployments",
                    (
                        app_pk,
                        pk,
                        f"app{a:02d}",
                        "yaml",
                        NAMESPACE,
                        "success",
                        None,
                        sa_json(w1_app_config(a)),
                        "{}",
                        None,
                        sa_time(started),
                        sa_time(finished),
                    ),
                )
                for m in manifests:
                    res_pk += 1
                    yield "deployed_resources", _resource_row(res_pk, app_pk, m)
            continue
        for j in range(3):
            name = APP_NAMES[(i + j) % len(APP_NAMES)]
            app_pk += 1
            helm = name in HELM_APPS
            app_status = "failed" if status != "success" and j == 2 else "success"
            yield (
                "app_deployments",
                (
                    app_pk,
                    pk,
                    name,
                    "helm" if helm else "yaml",
                    ns,
                    app_status,
                    "timed out" if app_status == "failed" else None,
                    sa_json({"type": "helm" if helm else "yaml", "values": {"replicas": 2}}),
                    "{}",
                    None,
                    sa_time(started),
                    sa_time(finished),
                ),
            )
            res_pk += 1
            yield "deployed_resources", _resource_row(res_pk, app_pk, _small_manifest(name, i))
            if helm:
                helm_pk += 1
                yield (
                    "helm_releases",
                    (
                        helm_pk,
                        app_pk,
                        name,
                        ns,
                        f"bitnami/{name}",
                        "18.1.0",
                        "7.2.4",
                        1 + i // 6,
                        sa_json({"replicas": 2, "auth": {"password": "sha256:" + "0" * 64}}),
                        "deployed",
                    ),
                )


def _resource_row(pk: int, app_pk: int, manifest: dict[str, Any]) -> tuple[Any, ...]:
    meta = manifest["metadata"]
    return (
        pk,
        app_pk,
        manifest["apiVersion"],
        manifest["kind"],
        meta["name"],
        meta.get("namespace"),
        "create",
        None,
        sa_json(manifest),
        checksum(manifest),
        None,
    )


COLUMNS = {
    "deployments": (
        "id, deployment_id, cluster, namespace, app_dir, config_file, command, command_args, "
        "dry_run, status, error_message, config_snapshot, sources_snapshot, sbkube_version, "
        "operator, host, pid, started_at, finished_at, rollback_target_id"
    ),
    "app_deployments": (
        "id, deployment_pk, name, type, namespace, status, error_message, config, metadata, "
        "rollback_info, started_at, finished_at"
    ),
    "deployed_resources": (
        "id, app_deployment_pk, api_version, kind, name, namespace, action, previous_state, "
        "current_state, checksum, source_file"
    ),
    "helm_releases": (
        "id, app_deployment_pk, release_name, namespace, chart, chart_version, app_version, "
        "revision, values, status"
    ),
}
TABLE_ORDER = ("deployments", "app_deployments", "deployed_resources", "helm_releases")


def insert_sql(table: str, style: str = "qmark") -> str:
    cols = COLUMNS[table]
    n = cols.count(",") + 1
    marks = ", ".join(["?"] * n if style == "qmark" else ["%s"] * n)
    quoted = cols.replace("values", '"values"').replace("metadata", '"metadata"')
    return f"INSERT INTO {table} ({quoted}) VALUES ({marks})"


def big_deployment_id(size: int) -> str:
    i = size // 2
    started = BASE_TIME + timedelta(minutes=10 * i, seconds=i % 7)
    return f"dep-{started:%Y%m%d-%H%M%S}-{i:06x}"


def batched_rows(size: int, batch: int = 50_000) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    buf: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLE_ORDER}
    n = 0
    for table, row in history_rows(size):
        buf[table].append(row)
        n += 1
        if n >= batch:
            yield buf
            buf = {t: [] for t in TABLE_ORDER}
            n = 0
    if n:
        yield buf


def history_store(size: int, log: Any = print) -> Path:
    """A cached SQLite store of ``size`` deployments (generated on first use)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"history-{size}-g{GENERATOR_VERSION}-r{HEAD_REVISION}.db"
    if path.exists():
        return path
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    log(f"  generating a store of {size:,} deployments in {path.name} (cached afterwards) ...")
    migrated_sqlite(tmp)
    con = sqlite3.connect(tmp, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = OFF")
        con.execute("BEGIN IMMEDIATE")
        for batch in batched_rows(size):
            for table in TABLE_ORDER:
                if batch[table]:
                    con.executemany(insert_sql(table), batch[table])
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    os.replace(tmp, path)
    return path
