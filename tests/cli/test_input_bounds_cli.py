"""Bounds on input the store or the cluster cannot take (issue 22, item 7), end to end.

* A ``--state`` or ``--memory-cluster`` path naming a character device, a FIFO or a socket
  is refused (exit 2, one line) and left exactly as it was: never opened for writing,
  never replaced by a regular file, no lock or journal beside it.
* Values that JSON or PostgreSQL cannot hold (NaN, infinity, U+0000), in a values file, in
  ``config.yaml``'s ``set:`` or in a ``-f`` file, are refused before anything reaches the
  cluster: exit 2 naming the file and the key path, nothing recorded, the cluster file
  unchanged, on SQLite and on PostgreSQL.

The rest of the bounds (timeouts, concurrency, --set of an unknown app, nesting) are cases
of the bad-input corpus (tests/fixtures/bad/cases.yaml).
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHART_YAML = "apiVersion: v2\nname: conf\nversion: 1.0.0\n"
TEMPLATE = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-conf\n"
    "data:\n  values: {{ toJson .Values | quote }}\n"
)


def _device(path: Path) -> None:
    # The same device numbers as /dev/null, made in the test's own directory: the real
    # /dev/null is never used.
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))


def _fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    opened: list[socket.socket] = []

    def make(path: Path) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        opened.append(sock)

    yield make
    for sock in opened:
        sock.close()


def _snapshot(path: Path) -> tuple[int, int, int]:
    st = os.lstat(path)
    return stat.S_IFMT(st.st_mode), st.st_rdev, st.st_ino


@pytest.mark.parametrize("kind", ["character device", "FIFO", "socket"])
def test_a_special_file_as_store_or_cluster_is_refused_and_left_alone(
    sbkube: Any,
    tmp_path: Path,
    app_dir: Path,
    state_db: Path,
    expect_error: Callable[[str], str],
    unix_socket: Callable[[Path], None],
    kind: str,
) -> None:
    special = tmp_path / "special"
    {"character device": _device, "FIFO": _fifo, "socket": unix_socket}[kind](special)
    before = _snapshot(special)

    def beside() -> list[str]:
        """What sits beside the special file under its name (a lock, a journal, a WAL),
        and what a refused command would have written."""
        names = ("special", "kc", "cluster.json", "state.db")
        return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(names))

    shown = {"character device": "a character device", "FIFO": "a FIFO", "socket": "a socket"}
    cluster = ["--memory-cluster", str(tmp_path / "cluster.json")]
    runs = [
        ("--state", str(special), "state", "list"),
        ("--state", f"sqlite:///{special}", "state", "list"),
        ("--state", str(special), "deploy", "--app-dir", str(app_dir), *cluster),
        ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(special)),
        ("status", "--app-dir", str(app_dir), "--memory-cluster", str(special)),
        ("memory-cluster", "serve", str(special), "--kubeconfig", str(tmp_path / "kc")),
    ]
    for args in runs:
        proc = sbkube(*args, timeout=300)
        assert proc.returncode == 2, (args, proc.stderr)
        line = expect_error(proc.stderr)
        assert str(special) in line and f"is {shown[kind]}" in line and "refused" in line, line
        assert _snapshot(special) == before, args
        assert beside() == ["special"], args
    # The one sbkube opened a store for: nothing was recorded in it.
    assert not state_db.exists()
    # With the environment variable instead of the option: the same.
    proc = sbkube("state", "list", env={"SBKUBE_STATE_URL": str(special)})
    assert proc.returncode == 2 and str(special) in expect_error(proc.stderr)
    proc = sbkube("deploy", "--app-dir", str(app_dir), env={"SBKUBE_MEMORY_CLUSTER": str(special)})
    assert proc.returncode == 2 and str(special) in expect_error(proc.stderr)
    assert _snapshot(special) == before


def _write_app(root: Path, values: str, *, config_set: str = "") -> Path:
    chart = root / "charts" / "conf"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(CHART_YAML)
    (chart / "templates" / "cm.yaml").write_text(TEMPLATE)
    (root / "values.yaml").write_text(values)
    web = "type: helm, chart: ./charts/conf, values: [values.yaml]"
    (root / "config.yaml").write_text(
        f"namespace: bounds\napps:\n  web: {{{web}{config_set}}}\n"
        "  plain: {type: yaml, manifests: [m.yaml]}\n"
    )
    (root / "m.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n")
    return root


@pytest.fixture(params=["sqlite", "postgres"])
def state_arg(request: pytest.FixtureRequest, state_db: Path) -> str:
    if request.param == "sqlite":
        return str(state_db)
    return str(request.getfixturevalue("pg_schema_url"))


def _cluster_files(tmp_path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in tmp_path.glob("cluster.json*") if p.is_file()}


def test_values_json_or_postgresql_cannot_hold_are_refused_before_the_cluster(
    sbkube: Any, tmp_path: Path, state_arg: str, expect_error: Callable[[str], str]
) -> None:
    app = _write_app(tmp_path / "app", "ratio: 0.5\nsep: ','\n")
    cluster = ["--memory-cluster", str(tmp_path / "cluster.json")]
    first = sbkube("--state", state_arg, "deploy", "--app-dir", str(app), *cluster, timeout=180)
    assert first.returncode == 0, first.stderr
    listed = json.loads(sbkube("--state", state_arg, "state", "list", "-o", "json").stdout)
    assert len(listed) == 1
    cluster_before = _cluster_files(tmp_path)
    assert cluster_before

    (tmp_path / "extra.yaml").write_text("limits: {cpu: .inf}\n")
    cases: list[tuple[str, str, list[str], list[str]]] = [
        ("ratio: .nan\nsep: ','\n", "", [], ["app/values.yaml", "ratio", "NaN"]),
        ('ratio: 0.5\nsep: "a\\0b"\n', "", [], ["app/values.yaml", "sep", "NUL character"]),
        ("ratio: -.inf\n", "", [], ["app/values.yaml", "ratio", "infinity"]),
        ("ratio: 0.5\n", ", set: {x.y: .NaN}", [], ["config.yaml", "apps.web.set.x.y", "NaN"]),
        ("ratio: 0.5\n", "", ["-f", "extra.yaml"], ["extra.yaml", "limits.cpu", "infinity"]),
    ]
    for values, config_set, extra, fragments in cases:
        _write_app(app, values, config_set=config_set)
        proc = sbkube(
            "--state", state_arg, "deploy", "--app-dir", str(app), *cluster, *extra, timeout=180
        )
        assert proc.returncode == 2, proc.stderr
        line = expect_error(proc.stderr)
        assert all(f in line for f in fragments) and "cannot be recorded" in line, line
        assert proc.stdout == ""
        assert _cluster_files(tmp_path) == cluster_before, values
    listed = json.loads(sbkube("--state", state_arg, "state", "list", "-o", "json").stdout)
    assert len(listed) == 1, "a refused deploy was recorded"
    assert listed[0]["status"] == "success"
