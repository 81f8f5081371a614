"""Helpers the CLI test modules import (conftest modules are not importable by name)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The ``run`` fixture (tests/cli/conftest.py): the installed ``sbkube`` on a seeded store.
Run = Callable[..., subprocess.CompletedProcess[str]]


class LiveCluster:
    """Reads the test's memory-cluster file the way a second process would: each read
    opens the file's cluster and closes it again (a file is used by one process at a time),
    asking the server and helm, never a copy of sbkube's record."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self, fn: Any) -> Any:
        from sbkube.cluster.memory import MemoryCluster

        with MemoryCluster(path=self.path) as cluster:
            return fn(cluster)

    def objects(self) -> list[dict[str, Any]]:
        return self._read(lambda c: c.objects())  # type: ignore[no-any-return]

    def release(self, name: str, namespace: str) -> Any:
        return self._read(lambda c: c.release(name, namespace))

    def get(self, key: tuple[str, str, str, str]) -> dict[str, Any] | None:
        return self._read(lambda c: c.get(key))  # type: ignore[no-any-return]


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def deploy_args(app_dir: Path, cluster_file: Path) -> tuple[str, ...]:
    """``sbkube deploy`` of ``app_dir`` on the memory cluster in ``cluster_file``."""
    return ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))


class Kube:
    """helm and kubectl on a served cluster's kubeconfig (the ``kube`` fixture's)."""

    def __init__(self, kubeconfig: Path, helm: str, kubectl: str, env: dict[str, str]) -> None:
        self.kubeconfig = kubeconfig
        self.helm_exe = helm
        self.kubectl_exe = kubectl
        self.env = env

    def run(self, argv: list[str]) -> str:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def _run(self, argv: list[str]) -> Any:
        return json.loads(self.run(argv))

    def helm(self, *args: str) -> Any:
        return self._run([self.helm_exe, "--kubeconfig", str(self.kubeconfig), *args, "-o", "json"])

    def kubectl(self, *args: str) -> Any:
        return self._run(
            [self.kubectl_exe, "--kubeconfig", str(self.kubeconfig), *args, "-o", "json"]
        )

    def kubectl_text(self, *args: str) -> str:
        """kubectl's own output (a command without ``-o json``: create, apply -f)."""
        return self.run([self.kubectl_exe, "--kubeconfig", str(self.kubeconfig), *args])


def nothing_recorded(state_db: Path) -> bool:
    """True when the store at ``state_db`` holds no deployment (a deploy refused as bad
    input may have opened, and so created, the store before it found the problem)."""
    import sqlite3

    if not state_db.exists():
        return True
    with sqlite3.connect(state_db) as conn:
        try:
            (count,) = conn.execute("SELECT count(*) FROM deployments").fetchone()
        except sqlite3.OperationalError:
            return True  # no schema yet
    return bool(count == 0)
