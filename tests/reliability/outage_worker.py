"""The store outage of ``test_reliability_store_outage.py``, and a deploy that meets it in a
process of its own (run as a script, not collected).

``python outage_worker.py APP_DIR STATE_URL CLUSTER_FILE HELM`` deploys APP_DIR to the memory
cluster kept in CLUSTER_FILE; once helm made the first revision, the store refuses writes
(:class:`Outage`) until the process ends. It prints the deploy's error line (or ``ok``)
and exits, so the deployment it leaves belongs to a process that is gone.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from sbkube.cluster.memory import MemoryCluster
from sbkube.cluster.port import ReleaseInfo

TABLES = "deployments, app_deployments, deployed_resources, helm_releases"


class Outage:
    """Makes the store refuse writes (``start``) until ``end``; see the module docstring."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._end: Callable[[], None] | None = None

    def start(self) -> None:
        if self._end is not None:
            return
        if self.url.startswith("postgresql"):
            engine = sa.create_engine(self.url)
            conn = engine.connect()
            tx = conn.begin()
            conn.execute(sa.text(f"LOCK TABLE {TABLES} IN EXCLUSIVE MODE"))

            def end_pg() -> None:
                tx.rollback()
                conn.close()
                engine.dispose()

            self._end = end_pg
        else:
            # Started in the app's worker thread, ended from the main one.
            raw = sqlite3.connect(
                sa.engine.make_url(self.url).database or "",
                isolation_level=None,
                check_same_thread=False,
            )
            raw.execute("BEGIN IMMEDIATE")

            def end_sqlite() -> None:
                raw.execute("ROLLBACK")
                raw.close()

            self._end = end_sqlite

    def end(self) -> None:
        if self._end is not None:
            self._end()
            self._end = None


class OutageAfterUpgrade(MemoryCluster):
    """A memory cluster whose Helm upgrades start the outage once helm is done."""

    outage: Outage

    def helm_upgrade_install(self, *args: Any, **kwargs: Any) -> ReleaseInfo:
        info = super().helm_upgrade_install(*args, **kwargs)
        self.outage.start()
        return info


def impatient(url: str) -> str:
    """The store URL with short waits for locks: the outage fails writes quickly."""
    if url.startswith("postgresql"):
        options = sa.engine.make_url(url).query.get("options", "")
        base, _, query = url.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if p)
        params["options"] = quote(f"{options} -clock_timeout=300".strip())
        return f"{base}?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def main() -> None:
    from sbkube.cluster.helm import HelmClient
    from sbkube.engine.deployer import deploy
    from sbkube.errors import SbkubeError
    from sbkube.state import DeploymentDatabase

    app_dir, url, cluster_file, helm = sys.argv[1:5]
    cluster = OutageAfterUpgrade(cluster_file, helm=HelmClient(helm))
    cluster.outage = Outage(url)
    db = DeploymentDatabase(impatient(url), busy_timeout=0.3)
    try:
        # One app at a time: the outage starts after cache, before any other app.
        deploy(app_dir, cluster=cluster, db=db, concurrency=1)
        print("ok")
    except SbkubeError as err:
        print(err.message)
    finally:
        cluster.outage.end()
        with contextlib.suppress(Exception):
            db.close()
        close = getattr(cluster, "close", None)
        if close is not None:
            close()


if __name__ == "__main__":
    main()
