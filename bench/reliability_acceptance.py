"""Issue 13's acceptance runs at full size, through the real CLI on PostgreSQL (opt-in).

::

    python bench/reliability_acceptance.py                 # 10 terminated deploys, 50 SIGTERMs
    python bench/reliability_acceptance.py --deploys 20 --sigterms 100

Needs helm (``SBKUBE_HELM`` or PATH) and a PostgreSQL server (``SBKUBE_BENCH_PG_URL``,
default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``); each run gets a fresh
schema, dropped afterwards. The scenarios live in ``tests/reliability/acceptance.py``
(the ``slow`` tests run them smaller). Exit 1 when a run breaks its promise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "reliability")]

from acceptance import sigterms, terminated_deploys  # noqa: E402

PG_URL = os.environ.get("SBKUBE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_schema() -> Iterator[str]:
    schema = f"bench_rel_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=10)
    parser.add_argument("--sigterms", type=int, default=50)
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp, fresh_schema() as url:
        run = terminated_deploys(args.deploys, Path(tmp), url)
        recorded = [rev for rev, _ in run.recorded]
        expected = {"deployed": "success", "superseded": "success", "failed": "failed"}
        match = recorded == [rev for rev, _ in run.history] and [s for _, s in run.recorded] == [
            expected.get(s, s) for _, s in run.history
        ]
        print(
            f"terminated deploys: {args.deploys} deploys with pg_terminate_backend every 0.1 s "
            f"and a 1.8 MB values file, {run.seconds:.0f}s; {run.killed} connections cut; "
            f"exits {dict(Counter(run.exits))}; helm made {len(run.history)} revisions, "
            f"{len(recorded)} recorded ({len(set(recorded))} distinct); statuses match helm: "
            f"{match}; apps left open: {run.open_apps}"
        )
        ok &= match and run.open_apps == 0
    with tempfile.TemporaryDirectory() as tmp, fresh_schema() as url:
        started = time.monotonic()
        sig = sigterms(args.sigterms, Path(tmp), url)
        print(
            f"SIGTERM: {args.sigterms} deploys in {time.monotonic() - started:.0f}s; "
            f"(exit, deployment status): {dict(Counter(sig.pairs))}; finished before the "
            f"signal: {sig.finished_first}; broken: {len(sig.broken())}; "
            f"apps left open: {sig.open_apps}"
        )
        ok &= not sig.broken() and sig.open_apps == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
