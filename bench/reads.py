"""Hand-written reference reads: what ``list()`` and ``get()`` return, in plain SQL.

They work on a DB-API connection (``sqlite3`` or psycopg 3); ``mark`` is the
placeholder (``?`` or ``%s``). Each returns plain tuples/dicts with JSON decoded, which
is the least any caller of the store needs.
"""

from __future__ import annotations

import json
from typing import Any

LIST_SQL = """
SELECT d.id, d.deployment_id, d.cluster, d.namespace, d.app_dir, d.command, d.dry_run,
       d.status, d.error_message, d.operator, d.host, d.started_at, d.finished_at,
       d.rollback_target_id, a.status, count(a.id)
FROM (SELECT * FROM deployments ORDER BY started_at DESC, id DESC LIMIT {limit}) AS d
LEFT JOIN app_deployments AS a ON a.deployment_pk = d.id
GROUP BY d.id, d.deployment_id, d.cluster, d.namespace, d.app_dir, d.command, d.dry_run,
         d.status, d.error_message, d.operator, d.host, d.started_at, d.finished_at,
         d.rollback_target_id, a.status
ORDER BY d.started_at DESC, d.id DESC
"""


def reference_list(con: Any, limit: int = 50) -> list[tuple[tuple[Any, ...], dict[str, int]]]:
    """One query: the newest ``limit`` deployments with per-status app counts."""
    cur = con.cursor()
    cur.execute(LIST_SQL.format(limit=int(limit)))
    out: list[tuple[tuple[Any, ...], dict[str, int]]] = []
    last = None
    for row in cur.fetchall():
        if row[0] != last:
            out.append((row[:14], {}))
            last = row[0]
        if row[14] is not None:
            out[-1][1][row[14]] = row[15]
    return out


def _json(value: Any) -> Any:
    # sqlite3 returns JSON as text; psycopg already decodes jsonb.
    return json.loads(value) if isinstance(value, str) else value


def reference_get(con: Any, deployment_id: str, mark: str = "?") -> dict[str, Any]:
    """Four queries (deployment, apps, resources, releases), JSON columns decoded."""
    cur = con.cursor()
    cur.execute(f"SELECT * FROM deployments WHERE deployment_id = {mark}", (deployment_id,))
    dep = cur.fetchone()
    cur.execute(
        f"SELECT * FROM app_deployments WHERE deployment_pk = {mark} ORDER BY id", (dep[0],)
    )
    apps = [(*a[:7], _json(a[7]), _json(a[8]), _json(a[9]), *a[10:]) for a in cur.fetchall()]
    pks = [a[0] for a in apps]
    marks = ", ".join([mark] * len(pks))
    resources: list[tuple[Any, ...]] = []
    releases: list[tuple[Any, ...]] = []
    if pks:
        cur.execute(
            f"SELECT * FROM deployed_resources WHERE app_deployment_pk IN ({marks}) ORDER BY id",
            pks,
        )
        resources = [(*r[:7], _json(r[7]), _json(r[8]), *r[9:]) for r in cur.fetchall()]
        cur.execute(
            f"SELECT * FROM helm_releases WHERE app_deployment_pk IN ({marks}) ORDER BY id", pks
        )
        releases = [(*h[:8], _json(h[8]), *h[9:]) for h in cur.fetchall()]
    return {
        "deployment": (
            *dep[:7],
            _json(dep[7]),
            *dep[8:11],
            _json(dep[11]),
            _json(dep[12]),
            *dep[13:],
        ),
        "apps": apps,
        "resources": resources,
        "releases": releases,
    }
