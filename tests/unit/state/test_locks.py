"""``DeployLocks``: one deploy/rollback per target, across threads, processes and hosts.

Every test runs on SQLite and PostgreSQL (the ``db`` / ``db_url`` fixtures); the
cross-process tests start real ``python`` processes on the same store.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from sbkube.errors import LockError
from sbkube.state import DeployLocks, DeploymentDatabase, describe_holder, pid_alive, stale_reason

HOLDER = textwrap.dedent(
    """
    import os, sys
    from sbkube.state import DeploymentDatabase
    from sbkube.state import DeployLocks

    url, cluster, namespace = sys.argv[1:4]
    locks = DeployLocks(DeploymentDatabase(url), lease_seconds=float(sys.argv[4]))
    try:
        handle = locks.acquire(cluster, namespace, command="deploy", wait=float(sys.argv[5]))
    except Exception as err:
        print("FAILED", err, flush=True)
        sys.exit(3)
    print("HELD", os.getpid(), flush=True)
    sys.stdin.readline()  # hold until told (or killed)
    handle.release()
    print("RELEASED", flush=True)
    """
)


RACER = textwrap.dedent(
    """
    import sys, time
    from sbkube.state import DeploymentDatabase
    from sbkube.state import DeployLocks

    url, log = sys.argv[1:3]
    locks = DeployLocks(DeploymentDatabase(url))
    with locks.acquire("c1", "ns", wait=60, poll=0.02):
        start = time.time()
        time.sleep(0.1)
        end = time.time()
    with open(log, "a") as fh:
        fh.write(f"{start} {end}\\n")
    """
)


class Holder:
    """A separate python process holding (or trying to take) a lock."""

    def __init__(
        self, url: str, cluster: str = "c1", namespace: str = "ns", *, lease=60.0, wait=0.0
    ):
        env = {**os.environ, "SBKUBE_OPERATOR": "other-operator"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, cluster, namespace, str(lease), str(wait)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def line(self, timeout: float = 30) -> str:
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))
        reader.start()
        reader.join(timeout)
        assert result, f"no output from the lock holder within {timeout}s"
        return result[0].strip()

    def wait_held(self) -> None:
        line = self.line()
        assert line == f"HELD {self.proc.pid}", (line, self.proc.stderr.read())

    def release(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


@pytest.fixture
def holders(db_url: str) -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.finish()


def test_second_acquire_names_the_holder(db, monkeypatch):
    monkeypatch.setenv("SBKUBE_OPERATOR", "alice")
    locks = DeployLocks(db)
    with locks.acquire("prod", "shop", command="rollback") as handle:
        handle.set_deployment("dep-20260101-000000-abcdef")
        monkeypatch.setenv("SBKUBE_OPERATOR", "bob")
        with pytest.raises(LockError) as err:
            DeployLocks(db).acquire("prod", "shop")
        message = err.value.message
        assert "prod/shop" in message
        assert f"alice@{socket.gethostname()}" in message
        assert f"pid {os.getpid()}" in message
        assert "rollback" in message and "dep-20260101-000000-abcdef" in message
        assert "--wait-lock" in message
        assert err.value.exit_code == 1
        holder = locks.holder("prod", "shop")
        assert holder is not None and holder.operator == "alice"
        assert holder.deployment_id == "dep-20260101-000000-abcdef"
        assert locks.is_live("prod", "shop")
    assert locks.holder("prod", "shop") is None
    assert not locks.is_live("prod", "shop")
    # Released: the next one gets it at once.
    DeployLocks(db).acquire("prod", "shop").release()


def test_wait_succeeds_when_the_holder_releases(db):
    locks = DeployLocks(db)
    first = locks.acquire("c1", "ns")
    waited: list[str] = []
    timer = threading.Timer(0.4, first.release)
    timer.start()
    try:
        started = time.monotonic()
        second = DeployLocks(db).acquire(
            "c1", "ns", wait=10, poll=0.05, on_wait=lambda h: waited.append(describe_holder(h))
        )
        elapsed = time.monotonic() - started
    finally:
        timer.join()
    try:
        assert 0.3 <= elapsed < 5
        assert len(waited) == 1 and f"pid {os.getpid()}" in waited[0]
        assert second.taken_over is None
        assert locks.holder("c1", "ns").holder_id == second.holder_id
    finally:
        second.release()


def test_wait_gives_up_after_the_timeout(db):
    with DeployLocks(db).acquire("c1", "ns"):
        started = time.monotonic()
        with pytest.raises(LockError, match=r"after waiting 0\.3s"):
            DeployLocks(db).acquire("c1", "ns", wait=0.3, poll=0.05)
        assert 0.25 <= time.monotonic() - started < 3


def test_different_targets_do_not_block_each_other(db):
    locks = DeployLocks(db)
    with (
        locks.acquire("c1", "ns-a") as a,
        locks.acquire("c1", "ns-b") as b,
        locks.acquire("c2", "ns-a") as c,
    ):
        assert len({a.holder_id, b.holder_id, c.holder_id}) == 3
        with pytest.raises(LockError):
            locks.acquire("c1", "ns-a")


def test_takeover_when_the_holder_process_was_killed(db, db_url, holders):
    holder = Holder(db_url)
    holders.append(holder)
    holder.wait_held()
    with pytest.raises(LockError, match=f"pid {holder.proc.pid}"):
        DeployLocks(db).acquire("c1", "ns")

    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait(10)
    assert not pid_alive(holder.proc.pid)
    taken: list[tuple[object, str]] = []

    handle = DeployLocks(db).acquire("c1", "ns", on_takeover=lambda h, why: taken.append((h, why)))

    try:
        assert len(taken) == 1
        rec, why = taken[0]
        assert rec.pid == holder.proc.pid and rec.operator == "other-operator"
        assert f"process {holder.proc.pid}" in why and "gone" in why
        assert handle.taken_over is not None and handle.taken_over.pid == holder.proc.pid
        assert DeployLocks(db).holder("c1", "ns").pid == os.getpid()
    finally:
        handle.release()


def test_takeover_after_the_lease_of_a_foreign_host_expired(db):
    foreign = DeployLocks(db, lease_seconds=0.5)
    foreign.host = "build-agent-7"  # another machine: its pid cannot be checked from here
    stuck = foreign.acquire("c1", "ns")
    # The holder freezes: its heartbeat stops renewing the lease.
    stuck._stop.set()
    stuck._thread.join(5)

    mine = DeployLocks(db, lease_seconds=0.5)
    with pytest.raises(LockError, match="build-agent-7"):
        mine.acquire("c1", "ns")  # our own pid is alive and the lease is still valid

    time.sleep(0.6)
    taken: list[tuple[object, str]] = []
    handle = mine.acquire("c1", "ns", on_takeover=lambda h, why: taken.append((h, why)))
    try:
        assert len(taken) == 1
        assert taken[0][0].host == "build-agent-7"
        assert "lease expired" in taken[0][1]
        now = mine.holder("c1", "ns")
        assert now.host == socket.gethostname() and now.holder_id == handle.holder_id
        # The old holder's release must not free the lock it lost.
        stuck.release()
        assert mine.holder("c1", "ns").holder_id == handle.holder_id
    finally:
        handle.release()


def test_heartbeat_keeps_a_live_lease(db):
    locks = DeployLocks(db, lease_seconds=0.3)
    locks.host = "far-away"  # no pid check: only the lease protects this lock
    with locks.acquire("c1", "ns"):
        first = locks.holder("c1", "ns").expires_at
        time.sleep(0.6)  # twice the lease: without renewals it would be stale
        rec = locks.holder("c1", "ns")
        assert rec.expires_at > first
        assert stale_reason(rec, datetime.now(UTC), "here") is None
        with pytest.raises(LockError):
            DeployLocks(db, lease_seconds=0.3).acquire("c1", "ns")


def test_a_stuck_holder_stops_renewing_and_its_lock_is_taken_over(db):
    """A run that says it is stuck (a call to the cluster outlived its deadline) no longer
    keeps its lock alive: its lease runs out and the next command takes the lock over."""
    stuck = threading.Event()
    asked: list[bool] = []

    def alive() -> bool:
        asked.append(True)
        return not stuck.is_set()

    locks = DeployLocks(db, lease_seconds=0.3)
    locks.host = "far-away"  # no pid check: only the lease protects this lock
    held = locks.acquire("c1", "ns", alive=alive)
    try:
        stuck.set()
        taken: list[str] = []
        # Waits for the lease to run out; a heartbeat that kept renewing would make this
        # wait its whole 300 s and fail.
        mine = DeployLocks(db, lease_seconds=0.3).acquire(
            "c1", "ns", wait=300, poll=0.05, on_takeover=lambda _h, why: taken.append(why)
        )
        try:
            assert asked, "the heartbeat never asked whether its run is alive"
            assert len(taken) == 1 and "lease expired" in taken[0]
        finally:
            mine.release()
    finally:
        held.release()


def test_locks_across_processes(db, db_url, holders):
    holder = Holder(db_url)
    holders.append(holder)
    holder.wait_held()

    # Another process is refused while the first holds it ...
    refused = Holder(db_url)
    holders.append(refused)
    line = refused.line()
    assert line.startswith("FAILED") and f"pid {holder.proc.pid}" in line
    assert "other-operator@" in line
    assert refused.proc.wait(10) == 3

    # ... and so is this one, for that target only.
    with pytest.raises(LockError):
        DeployLocks(db).acquire("c1", "ns")
    DeployLocks(db).acquire("c1", "other-ns").release()

    # A process that waits gets it once the first releases.
    waiter = Holder(db_url, wait=30)
    holders.append(waiter)
    time.sleep(0.3)
    assert waiter.proc.poll() is None
    holder.release()
    assert holder.line() == "RELEASED"
    waiter.wait_held()
    rec = DeployLocks(db).holder("c1", "ns")
    assert rec is not None and rec.pid == waiter.proc.pid
    waiter.release()
    assert waiter.line() == "RELEASED"
    assert DeployLocks(db).holder("c1", "ns") is None


def test_racing_processes_hold_the_lock_one_at_a_time(db_url, tmp_path):
    """Processes started together all get the lock in turn, never two at once."""
    DeploymentDatabase(db_url).close()  # migrated before the race
    log = tmp_path / "intervals.log"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, db_url, str(log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in racers:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    intervals = sorted(
        tuple(float(x) for x in line.split()) for line in log.read_text().splitlines()
    )
    assert len(intervals) == 3
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert end <= start, intervals
