"""Issue 13's acceptance runs, through the real CLI on PostgreSQL (a module, not a test file).

``terminated_deploys(n)``: ``pg_terminate_backend`` on every connection of the runs every
0.1 s while ``n`` deploys of an app dir with a 1.8 MB values file run one after the
other on a memory cluster, then one ``deploy --dry-run`` with the store reachable; it
returns what the record and ``helm history`` say. ``sigterms(n)``: ``n`` deploys each sent
SIGTERM once their first app is under way. Both are used by the ``slow`` tests of
``test_reliability_store_outage.py`` and by ``bench/reliability_acceptance.py``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[2]
SHOP = REPO_ROOT / "tests" / "fixtures" / "engine" / "shop"
_ENTRY = "import sys; from sbkube.cli import main; sys.argv[0] = 'sbkube'; main()"


@dataclass
class TerminatedRun:
    """What ``terminated_deploys`` saw."""

    exits: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """The last stderr line of each deploy that failed ("" for the others)."""
    stderr: list[str] = field(default_factory=list)
    killed: int = 0
    history: list[tuple[int, str]] = field(default_factory=list)
    """``helm history`` of the release: (revision, status)."""
    recorded: list[tuple[int, str]] = field(default_factory=list)
    """Every recorded revision of the release (dry runs apart): (revision, app status)."""
    open_apps: int = 0
    """Apps still ``in_progress``/``pending`` in the store after the dry run."""
    seconds: float = 0.0


def write_big_values(path: Path, megabytes: float = 1.8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = "v" * 1000
    with path.open("w") as out:
        out.write("big:\n")
        written, i = 0, 0
        while written < megabytes * 1024 * 1024:
            text = f"  key{i}: {line}\n"
            out.write(text)
            written += len(text)
            i += 1


def shop_with_big_values(root: Path) -> Path:
    """The shop app dir with a 1.8 MB values file added to its Helm app."""
    app = root / "shop"
    shutil.copytree(SHOP, app)
    write_big_values(app / "values" / "big.yaml")
    config = (app / "config.yaml").read_text()
    (app / "config.yaml").write_text(
        config.replace(
            "values: [values/cache.yaml]", "values: [values/cache.yaml, values/big.yaml]"
        )
    )
    return app


def tagged_url(url: str, tag: str) -> str:
    """``url`` whose connections carry ``tag`` as their application_name."""
    return f"{url}{'&' if '?' in url else '?'}application_name={tag}"


def env_for(home: Path, state_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBKUBE_")}
    for key in ("SBKUBE_HELM", "SBKUBE_KUBECTL"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.pop("KUBECONFIG", None)
    env["HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    env["SBKUBE_STATE_URL"] = state_url
    return env


def open_apps(conn: sa.Connection) -> int:
    """Apps still ``in_progress``/``pending`` in the store."""
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM app_deployments WHERE status IN ('in_progress', 'pending')"
            )
        ).scalar_one()
    )


def _terminator(admin_url: str, tag: str, stop: threading.Event, out: list[int]) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            while not stop.wait(0.1):
                out.append(
                    len(
                        conn.execute(
                            sa.text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = :tag"
                            ),
                            {"tag": tag},
                        ).all()
                    )
                )
    finally:
        admin.dispose()


def terminated_deploys(n: int, root: Path, store_url: str) -> TerminatedRun:
    """See the module docstring. ``store_url``: an empty PostgreSQL store (e.g. a fresh
    schema through ``?options=-csearch_path%3D...``)."""
    app = shop_with_big_values(root)
    home = root / "home"
    home.mkdir()
    cluster_file = root / "cluster.json"
    tag = f"sbkube-acc-{uuid.uuid4().hex[:8]}"
    url = tagged_url(store_url, tag)
    env = env_for(home, url)
    # --force-upgrade: every deploy makes a revision (an unchanged release is skipped).
    deploy = [sys.executable, "-c", _ENTRY, "deploy", "--app-dir", str(app), "--force-upgrade"]
    deploy += ["--memory-cluster", str(cluster_file)]
    from sbkube.state import DeploymentDatabase

    # The store exists before the outage (a migration takes longer than 0.1 s: a store
    # created under this fire never gets its schema).
    DeploymentDatabase(url).close()
    run = TerminatedRun()
    started = time.monotonic()
    stop = threading.Event()
    killed: list[int] = []
    killer = threading.Thread(
        target=_terminator, args=(store_url.split("?")[0], tag, stop, killed), daemon=True
    )
    killer.start()
    try:
        for _ in range(n):
            proc = subprocess.run(deploy, env=env, capture_output=True, text=True, timeout=600)
            run.exits.append(proc.returncode)
            run.errors.append(proc.stderr.strip().splitlines()[-1] if proc.returncode else "")
            run.stderr.append(proc.stderr)
    finally:
        stop.set()
        killer.join()
    run.killed = sum(killed)
    dry = subprocess.run([*deploy, "--dry-run"], env=env, capture_output=True, text=True)
    if dry.returncode != 0:
        raise AssertionError(f"the dry run failed: {dry.stderr}")
    run.seconds = time.monotonic() - started

    from sbkube.cluster.helm import HelmClient
    from sbkube.cluster.memory import MemoryCluster

    cluster = MemoryCluster(cluster_file, helm=HelmClient(os.environ.get("SBKUBE_HELM")))
    try:
        run.history = [(r.revision, r.status) for r in cluster.helm_history("cache", "shop")]
    finally:
        close = getattr(cluster, "close", None)
        if close is not None:
            close()
    db = DeploymentDatabase(store_url)
    try:
        with db.engine.connect() as conn:
            run.recorded = [
                (int(rev), str(status))
                for rev, status in conn.execute(
                    sa.text(
                        "SELECT h.revision, a.status FROM helm_releases h "
                        "JOIN app_deployments a ON a.id = h.app_deployment_pk "
                        "JOIN deployments d ON d.id = a.deployment_pk "
                        "WHERE NOT d.dry_run AND h.release_name = 'cache' ORDER BY h.revision"
                    )
                ).all()
            ]
            run.open_apps = open_apps(conn)
    finally:
        db.close()
    return run


@dataclass
class SigtermRun:
    exits: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    open_apps: int = 0
    finished_first: int = 0
    """Runs that ended before the signal could be sent (not counted as signalled)."""

    @property
    def pairs(self) -> list[tuple[int, str]]:
        """(exit code, deployment status) of each run."""
        return list(zip(self.exits, self.statuses, strict=True))

    def broken(self) -> list[tuple[int, str]]:
        """Runs that break the promise: a deployment the signal reached mid-way must be
        ``interrupted`` with exit 143; one it reached after the deployment was recorded
        stays ``success`` (exit 143, or -15 once the handlers were gone)."""
        fine = {(143, "interrupted"), (143, "success"), (-15, "success"), (0, "success")}
        return [p for p in self.pairs if p not in fine]


def sigterms(n: int, root: Path, url: str, *, seed: int = 13) -> SigtermRun:
    """``n`` deploys of the shop app dir, each sent SIGTERM at a random moment (0-50 ms)
    after its first progress line (its first app is done, two are to come); the store
    at ``url`` must be empty to start with. ``exits`` and ``statuses`` pair up by run."""
    rng = random.Random(seed)
    app = root / "shop"
    shutil.copytree(SHOP, app)
    home = root / "home"
    home.mkdir()
    env = env_for(home, url)
    out = SigtermRun()
    for i in range(n):
        cmd = [sys.executable, "-c", _ENTRY, "deploy", "--app-dir", str(app)]
        cmd += ["--memory-cluster", str(root / f"cluster-{i}.json")]
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert proc.stderr is not None
        proc.stderr.readline()  # the first progress line: the deployment is under way
        time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        else:
            out.finished_first += 1
        proc.stderr.read()
        out.exits.append(proc.wait(timeout=300))
    from sbkube.state import DeploymentDatabase

    db = DeploymentDatabase(url)
    try:
        with db.engine.connect() as conn:
            out.statuses = [
                str(s)
                for s in conn.execute(
                    sa.text("SELECT status FROM deployments ORDER BY started_at")
                ).scalars()
            ]
            out.open_apps = open_apps(conn)
    finally:
        db.close()
    return out
