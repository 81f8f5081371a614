"""Fixtures for CLI tests: the REAL ``sbkube`` console script in a subprocess.

Each test gets its own SQLite state file (``SBKUBE_STATE_URL``), its own in-memory cluster
file (``--memory-cluster``) and a copy of ``tests/fixtures/engine/shop``; helm is the real
binary (on ``PATH`` and in ``SBKUBE_HELM``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Kube, LiveCluster

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "engine"
ORIGINAL_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "original"

# Only a bound on a hang, never a speed check: on a loaded 2-core CI machine one deploy
# has taken over 60 s.
HANG_TIMEOUT = 300.0


class Spawned:
    """A running ``sbkube`` whose stderr is collected line by line in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.err_lines: list[str] = []
        self.out = ""
        self._new_line = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._new_line:
                self.err_lines.append(line.rstrip("\n"))
                self._new_line.notify_all()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self.out = self.proc.stdout.read()

    def wait_for(self, text: str, timeout: float = HANG_TIMEOUT) -> str:
        """Block until a stderr line contains ``text``; returns that line. The bound only
        catches a hang: it is the event (or the process's end) that is waited on, since a
        loaded CI machine can take far longer than usual to get there."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for line in self.err_lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"{text!r} not on stderr within {timeout}s; stderr so far:\n"
                        + "\n".join(self.err_lines)
                    )
                self._new_line.wait(min(left, 0.1))

    def wait_for_lines(self, count: int, timeout: float = HANG_TIMEOUT) -> None:
        """Block until stderr holds ``count`` lines."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while len(self.err_lines) < count:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"fewer than {count} lines on stderr within {timeout}s:\n"
                        + "\n".join(self.err_lines)
                    )
                self._new_line.wait(min(left, 0.1))

    def finish(self, timeout: float = 30) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        self._out_reader.join(5)
        return rc

    @property
    def stderr(self) -> str:
        return "\n".join(self.err_lines)


class Sbkube:
    """Runs the console script with a per-test environment."""

    def __init__(self, exe: str, env: dict[str, str], cwd: Path) -> None:
        self.exe = exe
        self.env = env
        self.cwd = cwd
        self.spawned: list[Spawned] = []

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**self.env, **(extra or {})}

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = HANG_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.exe, *args],
            capture_output=True,
            text=True,
            env=self._env(env),
            cwd=self.cwd,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        proc = self(*args, "-o", "json", env=env)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> Spawned:
        proc = subprocess.Popen(
            [self.exe, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self._env(env),
            cwd=self.cwd,
        )
        spawned = Spawned(proc)
        self.spawned.append(spawned)
        return spawned


@pytest.fixture
def state_db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def cluster_file(tmp_path: Path) -> Path:
    return tmp_path / "cluster.json"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "shop", tmp_path / "shop"))


@pytest.fixture
def sbkube(
    sbkube_exe: str, helm_binary: str, kubectl_binary: str, state_db: Path, tmp_path: Path
) -> Iterator[Sbkube]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SBKUBE_") and k not in ("KUBECONFIG",)
    }
    env.update(
        {
            "SBKUBE_STATE_URL": str(state_db),
            "SBKUBE_HELM": helm_binary,
            "SBKUBE_KUBECTL": kubectl_binary,
            "PATH": os.pathsep.join([str(Path(helm_binary).parent), env.get("PATH", "")]),
            "SBKUBE_OPERATOR": "cli-tester",
            # The digest key file goes here, not into the home of whoever runs the tests.
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            # sbkube's cache (chart builds, helm repositories, git checkouts): the test's own.
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
            "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
            "HELM_DATA_HOME": str(tmp_path / "helm-data"),
        }
    )
    runner = Sbkube(sbkube_exe, env, tmp_path)
    yield runner
    for spawned in runner.spawned:
        if spawned.proc.poll() is None:
            spawned.proc.kill()
        spawned.proc.wait(10)


def one_error_line(stderr: str) -> str:
    """Assert stderr is exactly one ``error: ...`` line (no traceback); return it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def expect_error():
    return one_error_line


@pytest.fixture
def store(state_db: Path) -> Iterator[Any]:
    """The test's state store, read directly (cheaper than one more subprocess)."""
    from sbkube.state import DeploymentDatabase, DeploymentRepository

    opened: list[Any] = []

    def open_repo() -> DeploymentRepository:
        db = DeploymentDatabase(state_db)
        opened.append(db)
        return DeploymentRepository(db)

    yield open_repo
    for db in opened:
        db.close()


@pytest.fixture
def live(cluster_file: Path) -> LiveCluster:
    return LiveCluster(cluster_file)


@pytest.fixture
def served(sbkube: Any, cluster_file: Path, tmp_path: Path) -> Any:
    """Starts ``sbkube memory-cluster serve`` on the test's cluster file (``env`` reaches the
    server: its fault hooks) and returns (server, kubeconfig); the fixture stops it."""

    def serve(env: dict[str, str] | None = None) -> tuple[Spawned, Path]:
        kubeconfig = tmp_path / "served.kubeconfig"
        server = sbkube.spawn(
            "memory-cluster", "serve", str(cluster_file), "--kubeconfig", str(kubeconfig), env=env
        )
        server.wait_for("serving")
        return server, kubeconfig

    return serve


@pytest.fixture
def dirs(tmp_path: Path) -> Path:
    """A copy of ``tests/fixtures/original``: app dirs in the original sbkube's formats."""
    return Path(shutil.copytree(ORIGINAL_FIXTURES, tmp_path / "original"))


@pytest.fixture
def kube(served: Any, dirs: Path, sbkube: Any, helm_binary: str, kubectl_binary: str) -> Any:
    """``kube(app_dir)``: serve a memory cluster whose kubeconfig the dir's settings name
    (``./cluster.kubeconfig``); helm and kubectl on it (:class:`cli_helpers.Kube`)."""

    def start(app_dir: Path) -> Kube:
        _server, kubeconfig = served()
        shutil.copy(kubeconfig, app_dir / "cluster.kubeconfig")
        return Kube(app_dir / "cluster.kubeconfig", helm_binary, kubectl_binary, sbkube.env)

    return start


# -- a seeded store for the `state` commands (diff, prune, export, import) -----------------


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def run(
    sbkube_exe: str, state_path: Path, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run(*args, state=None, input=None)``: the installed ``sbkube`` on the seeded store
    (or ``state``), with no other SBKUBE_ variable of this process."""

    def _run(*args: str, state: str | None = None, input: str | None = None) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBKUBE_")}
        env["SBKUBE_STATE_URL"] = state or str(state_path)
        env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
        return subprocess.run(
            [sbkube_exe, *args],
            capture_output=True,
            text=True,
            env=env,
            input=input,
            timeout=120,
            check=False,
        )

    return _run


def cm(name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "demo"},
        "data": {"value": value},
    }


@pytest.fixture
def seeded(state_path: Path) -> list[str]:
    """The store of ``run``: three deployments of web (helm) + api (yaml), 100 days old,
    99 days old and new.

    The repository is used directly (rather than the tracker) for ``started_at=``: prune
    judges deployments by their start time.
    """
    from sbkube.state import DeploymentDatabase, DeploymentRepository, ResourceInput

    db = DeploymentDatabase(state_path)
    repo = DeploymentRepository(db)
    now = datetime.now(UTC)
    ids: list[str] = []
    try:
        for i, (age, tag, token, cm_value) in enumerate(
            [(100, "1.0", "t1", "a"), (99, "1.1", "t2", "b"), (0, "1.1", "t2", "b")]
        ):
            started = now - timedelta(days=age, seconds=10)
            dep = repo.create_deployment(
                cluster="k3s",
                namespace="demo",
                config_snapshot={"namespace": "demo", "apps": {"web": {"version": tag}}},
                started_at=started,
            )
            web = repo.start_app(dep.deployment_id, name="web", type="helm", namespace="demo")
            repo.add_helm_release(
                web.app_id,
                release_name="web",
                namespace="demo",
                chart="bitnami/nginx",
                chart_version=f"15.{i}.0",
                revision=i + 1,
                status="deployed",
                values={"image": {"tag": tag}, "auth": {"token": token}},
            )
            repo.finish_app(web.app_id, "success")
            api = repo.start_app(dep.deployment_id, name="api", type="yaml", namespace="demo")
            manifests = [cm("settings", cm_value)] + ([cm("extra", "x")] if i else [])
            repo.add_resources(
                api.app_id, [ResourceInput.from_manifest(m, "create") for m in manifests]
            )
            repo.finish_app(api.app_id, "success")
            repo.finish_deployment(
                dep.deployment_id, "success", finished_at=started + timedelta(seconds=5)
            )
            ids.append(dep.deployment_id)
    finally:
        db.close()
    return ids
