"""W5: W1 (record) and W2 (list) against PostgreSQL, each run in fresh schemas.

Every schema is migrated by ``DeploymentDatabase`` (through ``?options=-csearch_path``),
and all of them are dropped when the workload ends, even on error.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from data import COLUMNS, TABLE_ORDER, batched_rows, w1_config, w1_manifests
from harness import Result, time_call
from reads import reference_list
from recording import pg_reference_record, sbkube_record

from sbkube.state import DeploymentDatabase, DeploymentTracker

PG_URL = os.environ.get("SBKUBE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = "deployed_resources, helm_releases, app_deployments, deployments"


def _dsn() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


def server_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(_dsn(), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except Exception:
        return None


def schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def schemas(*names: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """Fresh schemas ``sbkube_bench_<random>_<name>``; yields (admin connection, {name: schema})."""
    import psycopg

    base = f"sbkube_bench_{secrets.token_hex(4)}"
    made = {n: f"{base}_{n}" for n in names}
    admin = psycopg.connect(_dsn(), autocommit=True)
    try:
        for schema in made.values():
            admin.execute(f"CREATE SCHEMA {schema}")
        yield admin, made
    finally:
        for schema in made.values():
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


def _connect(schema: str) -> Any:
    import psycopg

    conn = psycopg.connect(_dsn(), options=f"-csearch_path={schema}", autocommit=True)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


def _fill(schema: str, size: int) -> None:
    """Bulk-load a history of ``size`` deployments with COPY (ids assigned by the generator)."""
    conn = _connect(schema)
    try:
        with conn.transaction(), conn.cursor() as cur:
            for batch in batched_rows(size):
                for table in TABLE_ORDER:
                    if not batch[table]:
                        continue
                    cols = COLUMNS[table].replace("values", '"values"')
                    cols = cols.replace("metadata", '"metadata"')
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                        for row in batch[table]:
                            cp.write_row(row)
            cur.execute("ANALYZE")
    finally:
        conn.close()


def _w1(ctx: Any, admin: Any, names: dict[str, str]) -> list[Result]:
    manifests = w1_manifests()
    config = w1_config()
    db = DeploymentDatabase(schema_url(names["w1sb"]))
    for key in ("w1em", "w1cp"):
        DeploymentDatabase(schema_url(names[key])).close()  # migrate the reference schemas
    tracker = DeploymentTracker(db)
    em = _connect(names["w1em"])
    cp = _connect(names["w1cp"])
    times: dict[str, list[float]] = {"sb": [], "em": [], "cp": []}
    calls = {
        "sb": lambda: sbkube_record(tracker, manifests, config),
        "em": lambda: pg_reference_record(em, manifests, config, copy=False),
        "cp": lambda: pg_reference_record(cp, manifests, config, copy=True),
    }
    try:
        for rnd in range(ctx.rounds + 1):  # round 0 warms up
            for key in ("w1sb", "w1em", "w1cp"):
                admin.execute(f"TRUNCATE {names[key]}.deployments CASCADE")
            order = list(calls) if rnd % 2 == 0 else list(calls)[::-1]
            for who in order:
                t = time_call(calls[who])
                if rnd:
                    times[who].append(t)
        same = [
            admin.execute(
                f"SELECT md5(string_agg(current_state::text || checksum, ',' ORDER BY id)) "
                f"FROM {names[key]}.deployed_resources"
            ).fetchone()
            for key in ("w1sb", "w1em", "w1cp")
        ]
        ctx.notes.append(
            "W5: PostgreSQL sbkube/executemany/COPY stored identical resource rows: "
            + ("yes" if same[0] == same[1] == same[2] else f"NO {same}")
        )
    finally:
        db.close()
        em.close()
        cp.close()
    label = f"W5 PG record {len(manifests)}x{len(manifests[0])}"
    return [
        Result(
            f"{label} vs executemany",
            "ms",
            times["sb"],
            times["em"],
            "ratio <= 2.5",
            "ratio",
            2.5,
        ),
        Result(f"{label} vs COPY", "ms", times["sb"], times["cp"], "report"),
    ]


def _w2(ctx: Any, names: dict[str, str]) -> list[Result]:
    from wl_sqlite import measure_list

    results: list[Result] = []
    inner = 10 if ctx.quick else 30
    for size in (1_000, 10_000):
        schema = names[f"h{size}"]
        db = DeploymentDatabase(schema_url(schema))
        _fill(schema, size)
        con = _connect(schema)
        try:
            rows = measure_list(ctx, f"W5 PG list @{size // 1000}k", db, con, inner, 3.0)
        finally:
            db.close()
            con.close()
        rows[0].check, rows[0].target = None, "report"
        results += rows
    return results


def w5_postgres(ctx: Any) -> list[Result]:
    if server_version() is None:
        raise RuntimeError(f"PostgreSQL not reachable at {_dsn()}")
    with schemas("w1sb", "w1em", "w1cp", "h1000", "h10000") as (admin, names):
        return _w1(ctx, admin, names) + _w2(ctx, names)


__all__ = ["reference_list", "server_version", "w5_postgres"]
