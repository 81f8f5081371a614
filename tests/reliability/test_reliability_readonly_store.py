"""A store this process cannot write still serves reads; a full disk says so in one line.

How "cannot write" is made here (the tests run as root, whom file modes do not stop):

* ``permissions``: the directory is mode 0555 and the files 0444, and the CLI runs under
  ``setpriv --bounding-set -dac_override,-dac_read_search`` (root without the capabilities
  that override file modes, so the modes hold as they would for any user); as a non-root
  user the modes alone do it.
* ``read-only mount``: the CLI runs in a private mount namespace (``unshare -m``) where the
  store's directory is bind-mounted read-only (writes fail with EROFS, for root too).
* A full disk is a small tmpfs mounted in a private mount namespace and filled up.

Each store is seeded with three deployments, then put in one of three on-disk shapes: a
clean file (no WAL), a WAL holding a committed change with its index (``-shm``), and the
same WAL without its index. The WAL's change (an operator renamed) must show, proving that
what the WAL holds is read. The files must not change by a byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from reliability_helpers import (
    BAD_FIXTURES,
    CliResult,
    assert_one_line_error,
    cli_env,
    seed_store,
)

_ENTRY = "import sys; from sbkube.cli import main; sys.argv[0] = 'sbkube'; main()"
WAL_OPERATOR = "from-the-wal"
SHAPES = ("clean", "wal-with-index", "wal-without-index")
# A child that commits one change in WAL mode and dies before any checkpoint, leaving the
# change only in state.db-wal (and the index in -shm), as a killed writer does.
_WAL_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint = 0")
conn.execute("UPDATE deployments SET operator = ? WHERE deployment_id = ?", sys.argv[2:4])
os._exit(0)
"""


def _can_drop_capabilities() -> bool:
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


def _files(store: Path) -> dict[str, str]:
    """Every file next to the store, with a digest of its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.parent.iterdir())
        if p.is_file()
    }


def _prepare(root: Path, shape: str) -> tuple[Path, list[str]]:
    """A seeded store in ``root/store/state.db`` in the given shape; its deployment ids."""
    store = root / "store" / "state.db"
    ids = [r.deployment_id for r in seed_store(str(store), 3, resources=2, cluster="memory")]
    if shape != "clean":
        subprocess.run(
            [sys.executable, "-c", _WAL_WRITER, str(store), WAL_OPERATOR, ids[0]], check=True
        )
        assert Path(f"{store}-wal").stat().st_size > 0
        if shape == "wal-without-index":
            Path(f"{store}-shm").unlink()
    return store, ids


def _run(
    prefix: list[str], args: list[str], store: Path, home: Path, cwd: Path, shell_setup: str = ""
) -> CliResult:
    env = cli_env(home, str(store))
    argv = [sys.executable, "-c", _ENTRY, *args]
    if shell_setup:
        argv = ["sh", "-ec", f"{shell_setup}\nexec {shlex.join(argv)}"]
    proc = subprocess.run(
        [*prefix, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return CliResult(tuple(args), proc.returncode, proc.stdout, proc.stderr)


Runner = Callable[[list[str]], CliResult]


def _read_only_runner(mode: str, store: Path, home: Path, cwd: Path) -> Runner:
    directory = store.parent
    if mode == "permissions":
        if not _can_drop_capabilities():
            pytest.skip("needs setpriv to run root without CAP_DAC_OVERRIDE")
        for path in directory.iterdir():
            path.chmod(0o444)
        directory.chmod(0o555)
        prefix = (
            ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
            if os.geteuid() == 0
            else []
        )
        return lambda args: _run(prefix, args, store, home, cwd)
    if not _can_unshare():
        pytest.skip("a read-only bind mount needs root and unshare -m")
    d = shlex.quote(str(directory))
    setup = f"mount --bind {d} {d}\nmount -o remount,ro,bind {d} {d}"
    return lambda args: _run(["unshare", "-m"], args, store, home, cwd, setup)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _writable_again(tmp_path: Path) -> object:
    """Give the directory its write bit back, so pytest can clean it up."""
    yield
    store_dir = tmp_path / "store"
    if store_dir.exists():
        store_dir.chmod(0o700)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["permissions", "read-only mount"])
def test_reads_work_on_a_store_that_cannot_be_written(
    mode: str, shape: str, tmp_path: Path, home: Path
) -> None:
    store, ids = _prepare(tmp_path, shape)
    before = _files(store)
    run = _read_only_runner(mode, store, home, tmp_path)

    listed = run(["state", "list", "-o", "json"])
    assert listed.returncode == 0, str(listed)
    assert sorted(row["deployment_id"] for row in json.loads(listed.stdout)) == sorted(ids)

    shown = run(["state", "show", ids[0], "-o", "json"])
    assert shown.returncode == 0, str(shown)
    record = json.loads(shown.stdout)
    assert record["deployment_id"] == ids[0]
    assert {a["name"] for a in record["apps"]} == {"web", "cache"}
    # The change that only the WAL holds is seen (and is absent from a clean store).
    assert (record["operator"] == WAL_OPERATOR) == (shape != "clean"), record["operator"]

    history = run(["state", "history", "web", "-o", "json"])
    assert history.returncode == 0, str(history)
    assert len(json.loads(history.stdout)) == 3

    for result in (listed, shown, history):
        if shape == "wal-without-index":
            # The one case that reads a private copy says so, once per command.
            assert result.stderr_lines == [
                f"note: state database {store} is read-only "
                f"({_reason(mode, store)}) and its write-ahead log has no index; "
                "reading a private copy"
            ], str(result)
        else:
            assert result.stderr == "", str(result)
    store.parent.chmod(0o700)
    assert _files(store) == before, "a read changed the store's files"


def _reason(mode: str, store: Path) -> str:
    if mode == "read-only mount":
        return "read-only file system"
    return f"no write permission on file {store}"


@pytest.mark.parametrize("mode", ["permissions", "read-only mount"])
def test_a_write_to_a_read_only_store_is_one_line(mode: str, tmp_path: Path, home: Path) -> None:
    store, _ids = _prepare(tmp_path, "wal-with-index")
    shutil.copytree(BAD_FIXTURES / "valid-app", tmp_path / "app")
    before = _files(store)
    run = _read_only_runner(mode, store, home, tmp_path)

    pruned = run(["state", "prune", "--keep-last", "1", "--older-than", "0"])
    assert_one_line_error(
        pruned, f"state database {store} is read-only", "needs to write", exit_code=1
    )
    deployed = run(["deploy", "--app-dir", "app", "--memory-cluster", "cluster.json"])
    assert_one_line_error(
        deployed, f"state database {store} is read-only", "needs to write", exit_code=1
    )
    store.parent.chmod(0o700)
    assert _files(store) == before


def test_unfinished_deployment_on_a_read_only_store_is_shown_and_said_once(
    tmp_path: Path, home: Path
) -> None:
    store, ids = _prepare(tmp_path, "clean")
    conn = sqlite3.connect(store)
    with conn:
        conn.execute(
            "UPDATE deployments SET status = 'in_progress', pid = 999999999 "
            "WHERE deployment_id = ?",
            (ids[-1],),
        )
    conn.close()
    run = _read_only_runner("permissions", store, home, tmp_path)
    listed = run(["state", "list", "-o", "json"])
    assert listed.returncode == 0, str(listed)
    statuses = {row["deployment_id"]: row["status"] for row in json.loads(listed.stdout)}
    assert statuses[ids[-1]] == "in_progress"
    assert listed.stderr_lines == [
        f"note: state database {store} is read-only (no write permission on file {store}): "
        "1 unfinished deployment(s) shown as left, not recovered"
    ], str(listed)


def test_a_read_only_store_that_needs_a_migration_is_refused(tmp_path: Path, home: Path) -> None:
    store, _ids = _prepare(tmp_path, "clean")
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    conn.close()
    run = _read_only_runner("permissions", store, home, tmp_path)
    result = run(["state", "list"])
    assert_one_line_error(
        result,
        f"state database {store} is read-only",
        "needs a schema upgrade (0001 -> ",
        "open it once with write access",
        exit_code=1,
    )


def test_full_disk_is_one_line_naming_the_store(tmp_path: Path, home: Path) -> None:
    """A 2 MB tmpfs holding the store, filled up: a deploy (a write) and a read; then the
    filler goes and the store on the tmpfs is checked whole, with nothing recorded."""
    if not _can_unshare():
        pytest.skip("a tmpfs mount needs root and unshare -m")
    seed = tmp_path / "seed" / "state.db"
    seed_store(str(seed), 3, resources=2, cluster="memory")
    shutil.copytree(BAD_FIXTURES / "valid-app", tmp_path / "app")
    mnt = tmp_path / "full"
    mnt.mkdir()
    store = mnt / "state.db"
    out = tmp_path / "out"
    out.mkdir()
    q = shlex.quote
    cli = [sys.executable, "-c", _ENTRY]
    deploy = [*cli, "deploy", "--app-dir", "app", "--memory-cluster", "cluster.json"]
    check = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print(c.execute('PRAGMA integrity_check').fetchone()[0], "
        "c.execute('SELECT count(*) FROM deployments').fetchone()[0])"
    )
    script = f"""
mount -t tmpfs -o size=2m tmpfs {q(str(mnt))}
cp {q(str(seed))} {q(str(store))}
dd if=/dev/zero of={q(str(mnt / "filler"))} bs=4k 2>/dev/null || true
set +e
{shlex.join(deploy)} >{out}/deploy.out 2>{out}/deploy.err; echo $? >{out}/deploy.rc
{shlex.join([*cli, "state", "list", "-o", "json"])} >{out}/list.out 2>{out}/list.err
echo $? >{out}/list.rc
rm {q(str(mnt / "filler"))}
{shlex.join([sys.executable, "-c", check, str(store)])} >{out}/check.out
"""
    env = cli_env(home, str(store))
    subprocess.run(
        ["unshare", "-m", "sh", "-ec", script], env=env, cwd=tmp_path, check=True, timeout=300
    )

    def result(name: str, args: tuple[str, ...]) -> CliResult:
        rc = int((out / f"{name}.rc").read_text())
        return CliResult(
            args, rc, (out / f"{name}.out").read_text(), (out / f"{name}.err").read_text()
        )

    deployed = result("deploy", ("deploy",))
    assert_one_line_error(
        deployed, f"no space left on device for state database {store}", exit_code=1
    )
    # A reader must create the WAL index (-shm), which the full file system refuses.
    listed = result("list", ("state", "list"))
    assert_one_line_error(
        listed, f"no space left on device for state database {store}", "free some", exit_code=1
    )
    assert (out / "check.out").read_text().split() == ["ok", "3"]
