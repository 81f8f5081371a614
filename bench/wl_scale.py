"""W11: the W7 apps at scale, 50 and 200 apps, ``--concurrency 8``, 10 ms per request.

Per size (half Helm apps of the W7 chart, ``wait: true``; half YAML apps of 20 ConfigMaps),
on one fresh local API server and migrated SQLite store, one after another:

1. **first deploy** (peak memory sampled: sbkube's own ``VmHWM``, and the largest sum of
   the resident sizes of sbkube and its helm/kubectl children seen at one time);
2. **unchanged redeploy** (new Helm revisions counted with ``helm list``: there must be
   none);
3. **one app changed**: one YAML app's ConfigMap edited in the app dir, deployed;
4. **rollback of everything**: ``sbkube rollback --to <first deploy>`` of every app.

Rows: W11 is the 200-app first deploy per app against the 50-app one per app (time at most
linear: <= 1.2x); W11b the 200-app unchanged redeploy against its first deploy (<= 0.2x);
W11m sbkube's peak RSS at 200 apps (<= 250 MiB). The other figures, and how each grows
from 50 to 200 apps, are report rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from harness import Result
from wl_cli import _sbkube_argv
from wl_deploy import (
    LATENCY_MS,
    YAML_OBJECTS,
    Target,
    change_one,
    compiled_sbkube,
    helm_revisions,
    make_app_dir,
    run_sbkube,
)

CONCURRENCY = 8
SIZES = (50, 200)


def _first_deployment(target: Target) -> str:
    """The id of the store's oldest deployment (``state list -o json``)."""
    out = subprocess.run(
        [*_sbkube_argv(), "state", "list", "-o", "json"],
        env=target.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ids = sorted(row["deployment_id"] for row in json.loads(out))
    if not ids:
        raise RuntimeError("W11: no deployment recorded")
    return ids[0]


def _one_size(ctx: Any, apps: int, rnd: int) -> dict[str, Any]:
    helm_apps = yaml_apps = apps // 2
    app_dir = make_app_dir(ctx.tmp, helm_apps, yaml_apps, name=f"w11-apps-{apps}")
    target = Target(ctx.tmp, f"w11-target-{apps}-r{rnd}")
    concurrency = ("--concurrency", str(CONCURRENCY))
    deploy = ["deploy", "--app-dir", str(app_dir), *concurrency]
    try:
        first, memory = run_sbkube(target, deploy, sample=True, interval=0.1)
        before = helm_revisions(target, helm_apps)
        again, _ = run_sbkube(target, deploy)
        new_revisions = helm_revisions(target, helm_apps) - before
        first_id = _first_deployment(target)
        change_one(app_dir)
        changed, _ = run_sbkube(target, deploy)
        rollback, _ = run_sbkube(
            target,
            [*("rollback", "--to", first_id, "--app-dir", str(app_dir), "-y"), *concurrency],
        )
    finally:
        target.close()
    return {
        "apps": apps,
        "first": first,
        "again": again,
        "changed": changed,
        "rollback": rollback,
        "new_revisions": new_revisions,
        **memory,
    }


def w11_scale(ctx: Any) -> list[Result]:
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in SIZES}
    compiled_sbkube()
    rounds = 1 if ctx.quick else max(1, ctx.rounds - 2)
    for rnd in range(rounds):
        for apps in SIZES if rnd % 2 == 0 else SIZES[::-1]:
            ctx.log(f"  W11 round {rnd + 1}/{rounds}: {apps} apps")
            runs[apps].append(_one_size(ctx, apps, rnd))
            # The next round's app dir starts from the unchanged files.
            make_app_dir(ctx.tmp, apps // 2, apps // 2, name=f"w11-apps-{apps}")
    small, big = SIZES

    def per_app(apps: int, key: str) -> list[float]:
        return [r[key] / apps for r in runs[apps]]

    def values(apps: int, key: str) -> list[float]:
        return [r[key] for r in runs[apps]]

    revisions = sum(r["new_revisions"] for rs in runs.values() for r in rs)
    shape = (
        f"{YAML_OBJECTS}-object YAML apps, {LATENCY_MS:g} ms/request, --concurrency {CONCURRENCY}"
    )
    ctx.notes.append(
        f"W11: half Helm apps (W7 chart, wait), half {shape}; {rounds} round(s). New Helm "
        f"revisions made by the unchanged redeploys: {revisions}. Growth {small} -> {big} "
        "apps (4x the apps): "
        + ", ".join(
            f"{key} {_growth(values(small, key), values(big, key))}"
            for key in ("first", "again", "changed", "rollback", "sbkube_hwm_mb", "tree_peak_mb")
        )
    )
    unchanged = Result(
        f"W11b {big} apps: unchanged redeploy vs first deploy (0 new revisions)",
        "ms",
        values(big, "again"),
        values(big, "first"),
        target="ratio <= 0.2, 0 revisions",
        check="ratio",
        limit=0.2,
    )
    if revisions:
        unchanged.limit = -1.0
        unchanged.notes.append(f"{revisions} new revisions")
    rows = [
        Result(
            f"W11 first deploy per app, {big} apps vs {small} ({shape})",
            "ms",
            per_app(big, "first"),
            per_app(small, "first"),
            target="ratio <= 1.2",
            check="ratio",
            limit=1.2,
        ),
        unchanged,
        Result(
            f"W11m peak RSS of sbkube at {big} apps (its own VmHWM)",
            "MB",
            values(big, "sbkube_hwm_mb"),
            target="<= 250 MiB",
            check="max",
            limit=250.0,  # VmHWM KiB / 1024: the table's "MB" are MiB
        ),
    ]
    for apps in SIZES:
        rows += [
            Result(f"W11 {apps} apps: first deploy", "ms", values(apps, "first")),
            Result(
                f"W11 {apps} apps: unchanged redeploy vs first",
                "ms",
                values(apps, "again"),
                values(apps, "first"),
            ),
            Result(
                f"W11 {apps} apps: one app changed vs first",
                "ms",
                values(apps, "changed"),
                values(apps, "first"),
            ),
            Result(
                f"W11 {apps} apps: rollback of everything vs first",
                "ms",
                values(apps, "rollback"),
                values(apps, "first"),
            ),
            Result(
                f"W11 {apps} apps: peak RSS, sbkube + helm/kubectl children",
                "MB",
                values(apps, "tree_peak_mb"),
            ),
        ]
    rows.insert(
        3,
        Result(f"W11m peak RSS of sbkube at {small} apps", "MB", values(small, "sbkube_hwm_mb")),
    )
    return rows


def _growth(small: list[float], big: list[float]) -> str:
    a, b = sorted(small)[len(small) // 2], sorted(big)[len(big) // 2]
    return f"{a:.0f} -> {b:.0f} ({b / a:.2f}x)" if a else "-"


if __name__ == "__main__":  # pragma: no cover - run through bench/run.py
    sys.exit("run: python bench/run.py --only W11")
