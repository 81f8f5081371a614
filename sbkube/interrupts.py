"""SIGTERM and Ctrl-C that never land in the middle of a database call.

A Python signal handler runs between two bytecodes of the main thread, wherever it is. If
it raises while a database driver is half-way through a statement (psycopg waiting for a
reply, SQLite inside a commit), the connection is left mid-protocol; the tracker's next
write on it then fails ("another command is already in progress") and the deployment is
recorded ``failed`` instead of ``interrupted``, or an app stays ``in_progress`` for ever.

So the store's sessions run :func:`shielded`: a signal that arrives inside one is held
and raised when the outermost shielded block ends, i.e. between two database calls. Outside
a shielded block, a signal raises at once, as before (a helm or kubectl run is stopped
right away). :func:`stop_on_signals` installs the handlers: SIGTERM raises
:class:`~sbkube.errors.InterruptedDeployment` (exit 143), SIGINT ``KeyboardInterrupt``
(exit 130). Only the main thread receives signals, so the shield depth is per thread and
only the main thread's counts.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sbkube.errors import InterruptedDeployment

_local = threading.local()
# The signal held while the main thread was inside a shielded block (the first one wins).
_held: list[BaseException] = []


def _depth() -> int:
    return int(getattr(_local, "depth", 0))


@contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGTERM/SIGINT (as installed by :func:`stop_on_signals`) until this block, and
    every shielded block around it, has ended; then raise the held one."""
    depth = _depth()
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth = depth
        if depth == 0 and _held:
            exc = _held.pop(0)
            _held.clear()
            raise exc


def deliver_held() -> None:
    """Raise a signal held by an earlier shielded block, if any (outside such a block)."""
    if _depth() == 0 and _held:
        exc = _held.pop(0)
        _held.clear()
        raise exc


def _exception_for(signum: int) -> BaseException:
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return InterruptedDeployment(f"interrupted by {signal.Signals(signum).name}", exit_code=143)


def _handler(signum: int, _frame: Any) -> None:
    exc = _exception_for(signum)
    if _depth() > 0:
        if not _held:
            _held.append(exc)
        return
    raise exc


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within this block, SIGTERM raises InterruptedDeployment and SIGINT KeyboardInterrupt,
    both held while a database call runs. Only the main thread can install signal
    handlers: elsewhere (a library caller's worker thread) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, _handler) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    # A signal held by the very last database call: the process was still asked to stop.
    deliver_held()
