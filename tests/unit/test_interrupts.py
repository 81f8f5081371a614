"""SIGTERM never cuts code of the database layer nor a finalizer (``sbkube.interrupts``):
outside a shielded block too, the signal is held there and raised a moment later, once the
main thread runs code of its own. Real signals, sent to this process's main thread."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sbkube.errors import InterruptedDeployment
from sbkube.interrupts import stop_on_signals


def wait_for_the_signal() -> None:
    """Spin in code of our own until the held signal is raised here (a bound on a hang)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.01)
    pytest.fail("the held SIGTERM was never raised")


def test_a_signal_inside_a_finalizer_is_raised_after_it_not_lost(monkeypatch: Any) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    finished: list[bool] = []

    class Finalized:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGTERM)
            total = 0
            for i in range(10_000):  # the handler runs here, inside __del__
                total += i
            finished.append(total > 0)

    with pytest.raises(InterruptedDeployment, match="interrupted by SIGTERM"), stop_on_signals():
        obj = Finalized()
        del obj
        wait_for_the_signal()
    # Without the hold, the exception cut __del__ and Python printed it as "Exception
    # ignored" (with a traceback) and dropped it: the signal was lost.
    assert unraisable == []
    assert finished == [True]


def test_a_signal_inside_a_sqlalchemy_call_never_cuts_it(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SIGTERM while SQLAlchemy opens a connection (outside any shielded block).
        signal.raise_signal(signal.SIGTERM)
        dbapi_connection.execute("PRAGMA journal_mode").fetchall()

    answers: list[int] = []
    try:
        with (
            pytest.raises(InterruptedDeployment, match="interrupted by SIGTERM"),
            stop_on_signals(),
            engine.connect() as conn,
        ):
            answers.append(conn.execute(sa.text("SELECT 1")).scalar_one())
            wait_for_the_signal()
        # The connection was made and used, then given back to the pool whole.
        assert answers == [1]
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 2")).scalar_one() == 2
    finally:
        engine.dispose()


def test_a_signal_in_code_of_our_own_raises_at_once() -> None:
    with pytest.raises(InterruptedDeployment), stop_on_signals():
        signal.raise_signal(signal.SIGTERM)
        wait_for_the_signal()


def test_reads_at_once_start_no_command_after_a_signal(tmp_path: Path) -> None:
    """``at_once`` (deploy's read-ahead and snapshot): after a SIGTERM, a read that had
    not started its helm/kubectl command yet never starts it; the reads' answers and
    errors are their futures'."""
    import threading

    from sbkube.cluster.process import BinaryClient
    from sbkube.interrupts import at_once

    class Shell(BinaryClient):
        NAME = "sh"

    marker = tmp_path / "ran"
    gate = threading.Event()

    def answers() -> str:
        return "answer"

    def late_command() -> str:
        assert gate.wait(300)
        return Shell("/bin/sh").run(["/bin/sh", "-c", f"touch {marker}"], what="touch")

    def fails() -> None:
        raise ValueError("read failed")

    with stop_on_signals():
        reads = at_once(
            {"answers": answers, "late": late_command, "fails": fails}, name="test-at-once"
        )
        assert reads["answers"].result(timeout=300) == "answer"
        with pytest.raises(ValueError, match="read failed"):
            reads["fails"].result(timeout=300)
        with pytest.raises(InterruptedDeployment):
            signal.raise_signal(signal.SIGTERM)
            wait_for_the_signal()
        gate.set()
        with pytest.raises(InterruptedDeployment):
            reads["late"].result(timeout=300)
    assert not marker.exists()
    assert at_once({}, name="none") == {}
