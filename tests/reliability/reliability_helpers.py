"""Shared helpers of the reliability tests (imported by them and by this dir's conftest).

The real CLI as a subprocess, raw store inspection with the stdlib ``sqlite3`` driver
(not through sbkube), and small seeded stores whose records can be compared before and
after a fault.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BAD_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "bad"
YAML_ONLY_APP = REPO_ROOT / "tests" / "fixtures" / "apps" / "yaml-only"

# The console script ``sbkube`` is ``sbkube.cli:main``; calling it through the running
# interpreter keeps the test independent of which ``sbkube`` is first on PATH.
_ENTRY = "import sys; from sbkube.cli import main; sys.argv[0] = 'sbkube'; main()"


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def __str__(self) -> str:
        return (
            f"sbkube {' '.join(self.args)} -> exit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def cli_env(
    home: Path, state_url: str | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A clean environment: no inherited store, debug flag or kubeconfig; HOME in tmp."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SBKUBE_")
        or k in ("SBKUBE_HELM", "SBKUBE_KUBECTL", "SBKUBE_TEST_POSTGRES_URL")
    }
    env.pop("KUBECONFIG", None)
    env["HOME"] = str(home)
    env["XDG_STATE_HOME"] = str(home / ".state")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    env["SBKUBE_OPERATOR"] = "reliability"
    if state_url is not None:
        env["SBKUBE_STATE_URL"] = state_url
    env.update(extra or {})
    return env


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 120,
) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-c", _ENTRY, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(tuple(args), proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class CliJob:
    id: str
    args: Sequence[str]
    env: Mapping[str, str]
    cwd: Path


def run_cli_many(
    jobs: Sequence[CliJob], *, parallel: int = 4, timeout: float = 300
) -> dict[str, CliResult]:
    """Run many command lines through ``cli_forkserver.py`` (a warm, forking interpreter).

    Each job's stdout and stderr land in files next to its ``cwd`` (``<cwd>.stdout``).
    """
    lines = []
    for job in jobs:
        lines.append(
            json.dumps(
                {
                    "id": job.id,
                    "args": list(job.args),
                    "env": dict(job.env),
                    "cwd": str(job.cwd),
                    "stdout": f"{job.cwd}.stdout",
                    "stderr": f"{job.cwd}.stderr",
                }
            )
        )
    server_env = dict(jobs[0].env) if jobs else dict(os.environ)
    proc = subprocess.run(
        [sys.executable, str(HERE / "cli_forkserver.py"), str(parallel)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=server_env,
        cwd=REPO_ROOT,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cli_forkserver failed ({proc.returncode}):\n{proc.stderr}")
    codes = {d["id"]: d["returncode"] for d in map(json.loads, proc.stdout.splitlines())}
    results = {}
    for job in jobs:
        results[job.id] = CliResult(
            tuple(job.args),
            codes[job.id],
            Path(f"{job.cwd}.stdout").read_text(),
            Path(f"{job.cwd}.stderr").read_text(),
        )
    return results


def assert_one_line_error(result: CliResult, *fragments: str, exit_code: int) -> str:
    """Exit ``exit_code``, stderr exactly one ``error: …`` line holding every fragment."""
    assert result.returncode == exit_code, str(result)
    assert "Traceback" not in result.stderr, str(result)
    lines = result.stderr_lines
    assert len(lines) == 1, str(result)
    line = lines[0]
    assert line.startswith("error: "), str(result)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


# -- raw store inspection (sqlite3, not sbkube) ---------------------------------------------


def sqlite_count(path: Path, table: str = "deployments") -> int:
    """Rows in ``table`` of the SQLite file, read with the stdlib driver (0 if no table)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
        ).fetchone()
        if not exists:
            return 0
        return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    finally:
        conn.close()


def integrity_check(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def store_bytes(path: Path) -> bytes:
    """The SQLite database file and its WAL (where fresh writes live until a checkpoint)."""
    out = b""
    for candidate in (path, Path(f"{path}-wal")):
        if candidate.exists():
            out += candidate.read_bytes()
    return out


# -- seeding ---------------------------------------------------------------------------------


def manifest(kind: str, name: str, namespace: str, **extra: Any) -> dict[str, Any]:
    api = "apps/v1" if kind == "Deployment" else "v1"
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        **extra,
    }


def seed_store(url: str, count: int = 3, *, resources: int = 5, cluster: str = "seed") -> list[Any]:
    """Record ``count`` small deployments (2 apps each) in-process; returns their records."""
    from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker

    db = DeploymentDatabase(url)
    try:
        tracker = DeploymentTracker(db)
        ids = []
        for i in range(count):
            with tracker.track_deployment(
                cluster=cluster,
                namespace="demo",
                app_dir="/srv/apps/demo",
                config={"namespace": "demo", "apps": {"web": {"type": "yaml"}}, "n": i},
            ) as dep:
                with dep.track_app(name="web", type="yaml", namespace="demo") as app:
                    app.record_resources(
                        [
                            manifest("ConfigMap", f"web-{i}-{r}", "demo", data={"r": str(r)})
                            for r in range(resources)
                        ],
                        action="create",
                    )
                with dep.track_app(name="cache", type="helm", namespace="demo") as app:
                    app.record_helm_release(
                        release_name="cache",
                        namespace="demo",
                        chart="cache",
                        chart_version="1.0.0",
                        revision=i + 1,
                        status="deployed",
                        values={"replicas": i, "image": {"tag": f"v{i}"}},
                    )
            ids.append(dep.deployment_id)
        repo = DeploymentRepository(db)
        return [repo.get(i) for i in ids]
    finally:
        db.close()


def read_records(url: str, ids: Sequence[str]) -> list[Any]:
    from sbkube.state import DeploymentDatabase, DeploymentRepository

    db = DeploymentDatabase(url)
    try:
        repo = DeploymentRepository(db)
        return [repo.get(i) for i in ids]
    finally:
        db.close()
