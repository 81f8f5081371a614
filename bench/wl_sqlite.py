"""W1 (record), W2 (list), W3 (show) and W6 (scale) on SQLite."""

from __future__ import annotations

import functools
import sqlite3
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data import (
    HISTORY_APP,
    big_deployment_id,
    copy_store,
    history_store,
    migrated_sqlite,
    w1_config,
    w1_manifests,
)
from harness import Result, count_statements, time_call
from reads import reference_get, reference_list
from recording import sbkube_record, sqlite_reference_record

from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker


@dataclass
class Context:
    rounds: int
    quick: bool
    tmp: Path
    log: Any = print
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def sqlite_connect(path: Path) -> sqlite3.Connection:
    """A plain connection configured like sbkube's (WAL, synchronous=NORMAL, FKs on)."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    return con


def _stored_rows(path: Path) -> list[Any]:
    con = sqlite3.connect(path)
    try:
        apps = con.execute(
            "SELECT name, type, namespace, status, config FROM app_deployments ORDER BY id"
        ).fetchall()
        res = con.execute(
            "SELECT api_version, kind, name, namespace, action, current_state, checksum "
            "FROM deployed_resources ORDER BY id"
        ).fetchall()
        dep = con.execute(
            "SELECT cluster, namespace, status, config_snapshot, command_args FROM deployments"
        ).fetchall()
        return [dep, apps, res]
    finally:
        con.close()


# -- W1 --------------------------------------------------------------------------------------


def w1_record(ctx: Context) -> list[Result]:
    manifests = w1_manifests()
    config = w1_config()
    template = migrated_sqlite(ctx.tmp / "w1-template.db")
    sb_times: list[float] = []
    ref_times: list[float] = []
    # Round 0 is a warm-up (imports, mapper configuration); it is checked, not counted.
    for rnd in range(ctx.rounds + 1):
        sb_path = copy_store(template, ctx.tmp / "w1-sbkube.db")
        ref_path = copy_store(template, ctx.tmp / "w1-reference.db")
        db = DeploymentDatabase(str(sb_path))
        tracker = DeploymentTracker(db)
        con = sqlite_connect(ref_path)
        # Alternate who goes first so drift on a shared machine hits both sides alike.
        order = ("sb", "ref") if rnd % 2 == 0 else ("ref", "sb")
        for who in order:
            if who == "sb":
                t = time_call(functools.partial(sbkube_record, tracker, manifests, config))
                if rnd:
                    sb_times.append(t)
            else:
                t = time_call(functools.partial(sqlite_reference_record, con, manifests, config))
                if rnd:
                    ref_times.append(t)
        db.close()
        con.close()
        if rnd == 0:
            same = _stored_rows(sb_path) == _stored_rows(ref_path)
            ctx.notes.append(
                "W1: sbkube and reference stored identical deployment/app/resource rows "
                f"(JSON text and checksums): {'yes' if same else 'NO'}"
            )
    ctx.extra["w1_store"] = str(sb_path)
    n_res = sum(len(m) for m in manifests)
    return [
        Result(
            f"W1 record {len(manifests)}x{len(manifests[0])} (SQLite)",
            "ms",
            sb_times,
            ref_times,
            target="ratio <= 3",
            check="ratio",
            limit=3.0,
            notes=[f"{n_res} resources, reference = sqlite3 executemany in 1 transaction"],
        )
    ]


# -- W2 --------------------------------------------------------------------------------------


def _same_list(rows: list[Any], ref: list[Any]) -> bool:
    got = [(r.deployment_id, dict(r.app_counts)) for r in rows]
    want = [(row[1], counts) for row, counts in ref]
    return got == want


def measure_list(
    ctx: Context, label: str, db: DeploymentDatabase, ref_con: Any, inner: int, target: float
) -> list[Result]:
    repo = DeploymentRepository(db)
    with count_statements(db) as log:
        rows = repo.list(limit=50)
    reference_list(ref_con)  # warm-up
    if not _same_list(rows, reference_list(ref_con)):
        ctx.notes.append(f"{label}: reference rows DIFFER from list()")
    sb: list[float] = []
    ref: list[float] = []
    for rnd in range(ctx.rounds):
        calls = [
            (sb, lambda: repo.list(limit=50)),
            (ref, lambda: reference_list(ref_con)),
        ]
        for out, fn in calls if rnd % 2 == 0 else calls[::-1]:
            out.append(time_call(fn, inner))
    return [
        Result(
            f"{label} statements",
            "stmts",
            [float(log.count)],
            target="<= 2",
            check="max",
            limit=2,
        ),
        Result(
            f"{label} time",
            "ms",
            sb,
            ref,
            target=f"ratio <= {target:g}",
            check="ratio",
            limit=target,
        ),
    ]


def w2_list(ctx: Context) -> list[Result]:
    results: list[Result] = []
    counts: dict[int, float] = {}
    inner = 10 if ctx.quick else 30
    for size in (1_000, 10_000):
        path = history_store(size, ctx.log)
        db = DeploymentDatabase(str(path))
        con = sqlite_connect(path)
        try:
            rows = measure_list(ctx, f"W2 list @{size // 1000}k", db, con, inner, 2.0)
        finally:
            db.close()
            con.close()
        counts[size] = rows[0].sbkube[0]
        results += rows
    results.append(
        Result(
            "W2 list statements @10k vs @1k",
            "stmts",
            [counts[10_000]],
            [counts[1_000]],
            target="equal",
            check="equal",
        )
    )
    return results


# -- W3 --------------------------------------------------------------------------------------


def measure_get(
    db: DeploymentDatabase, con: Any, dep_id: str, rounds: int, inner: int, mark: str = "?"
) -> tuple[int, list[float], list[float]]:
    repo = DeploymentRepository(db)
    with count_statements(db) as log:
        rec = repo.get(dep_id)
    got = reference_get(con, dep_id, mark)
    assert len(got["resources"]) == sum(len(a.resources) for a in rec.apps)
    sb: list[float] = []
    ref: list[float] = []
    for rnd in range(rounds):
        calls = [(sb, lambda: repo.get(dep_id)), (ref, lambda: reference_get(con, dep_id, mark))]
        for out, fn in calls if rnd % 2 == 0 else calls[::-1]:
            out.append(time_call(fn, inner))
    return log.count, sb, ref


def w3_show(ctx: Context) -> list[Result]:
    path = ctx.extra.get("w1_store")
    if path is None:  # W3 run alone: record the W1 deployment once, untimed
        path = str(copy_store(migrated_sqlite(ctx.tmp / "w3-template.db"), ctx.tmp / "w3.db"))
        with DeploymentDatabase(path) as db:
            sbkube_record(DeploymentTracker(db), w1_manifests(), w1_config())
    db = DeploymentDatabase(path)
    con = sqlite_connect(Path(path))
    try:
        dep_id = DeploymentRepository(db).list(limit=1)[0].deployment_id
        n, sb, ref = measure_get(db, con, dep_id, ctx.rounds, 1 if ctx.quick else 2)
    finally:
        db.close()
        con.close()
    return [
        Result(
            "W3 show (get 20x50) statements",
            "stmts",
            [float(n)],
            target="<= 5",
            check="max",
            limit=5,
        ),
        Result(
            "W3 show (get 20x50) time",
            "ms",
            sb,
            ref,
            target="report",
            notes=["reference = 4 sqlite3 queries, JSON columns decoded"],
        ),
    ]


# -- W6 --------------------------------------------------------------------------------------


def _explain(path: Path, statements: list[tuple[str, Any]]) -> list[str]:
    con = sqlite3.connect(path)
    lines: list[str] = []
    try:
        for sql, params in statements:
            first = " ".join(sql.split())[:70]
            lines.append(f"    {first} ...")
            for row in con.execute("EXPLAIN QUERY PLAN " + sql, params or ()):
                lines.append(f"      {row[3]}")
    finally:
        con.close()
    return lines


def _reads(size: int, ctx: Context, inner: int) -> dict[str, tuple[list[float], int, list[str]]]:
    path = history_store(size, ctx.log)
    dep_id = big_deployment_id(size)
    out: dict[str, tuple[list[float], int, list[str]]] = {}
    with DeploymentDatabase(str(path)) as db:
        repo = DeploymentRepository(db)
        reads = {
            "list": (lambda: repo.list(limit=50), inner),
            "history": (lambda: repo.app_history(HISTORY_APP, limit=50), inner),
            "show": (lambda: repo.get(dep_id), 1),
        }
        for name, (fn, n) in reads.items():
            with count_statements(db) as log:
                fn()
            times = [time_call(fn, n) for _ in range(ctx.rounds)]
            out[name] = (times, log.count, _explain(path, log.queries))
    return out


def w6_scale(ctx: Context) -> list[Result]:
    big = 20_000 if ctx.quick else 100_000
    inner = 5 if ctx.quick else 15
    small = _reads(1_000, ctx, inner)
    large = _reads(big, ctx, inner)
    labels = {
        "list": "list(limit=50)",
        "history": f"app_history({HISTORY_APP!r})",
        "show": "get(20x50 deployment)",
    }
    results = []
    for name, label in labels.items():
        times, n, plan = large[name]
        res = Result(
            f"W6 {label} @{big // 1000}k vs @1k",
            "ms",
            times,
            small[name][0],
            target="ratio <= 10",
            check="ratio",
            limit=10.0,
            notes=[f"{n} statement(s) at {big:,}; query plan at {big:,}:", *plan],
        )
        results.append(res)
        ctx.extra.setdefault("w6_plans", {})[name] = plan
        ratio = statistics.median(times) / statistics.median(small[name][0])
        if ratio > 3:
            ctx.notes.append(
                f"W6 {label}: {ratio:.1f}x slower at {big:,}; plan:\n" + "\n".join(plan)
            )
    return results
