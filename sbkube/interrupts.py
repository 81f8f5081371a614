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

Concurrent work (the runner's worker threads, see :mod:`sbkube.engine.runner`) is stopped
through a :class:`Stop`: the main thread, which alone receives the signal, asks it to stop
(:meth:`Stop.request`); each worker runs under it (:func:`working_under`), so the helm and
kubectl processes the worker starts are registered with it and terminated by the request
(``sbkube.cluster.process``), and no new one starts: the worker's command raises
:class:`~sbkube.errors.InterruptedDeployment` instead. The signal handler marks every
active Stop at once (a plain assignment, no lock), so a worker whose helm died of the same
Ctrl-C (the terminal sends it to the whole process group) sees the request already made.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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


def interruption(reason: BaseException) -> InterruptedDeployment:
    """The error a worker raises when its run was asked to stop for ``reason``."""
    if isinstance(reason, InterruptedDeployment):
        return InterruptedDeployment(reason.message, exit_code=reason.exit_code)
    if isinstance(reason, KeyboardInterrupt):
        return InterruptedDeployment("interrupted (Ctrl-C)", exit_code=130)
    return InterruptedDeployment(f"interrupted: {reason}", exit_code=130)


class Stop:
    """A request to stop the concurrent work of one run, and the processes it started.

    ``reason`` is the exception that asked (Ctrl-C's ``KeyboardInterrupt``, SIGTERM's
    ``InterruptedDeployment``), None while nobody asked.
    """

    def __init__(self) -> None:
        self.reason: BaseException | None = None
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen[str]] = set()

    def request(self, reason: BaseException) -> None:
        """Ask every worker to stop: running children are terminated (SIGTERM)."""
        if self.reason is None:
            self.reason = reason
        with self._lock:
            children = list(self._children)
        for proc in children:
            _signal_child(proc, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the children still running (they ignored the request)."""
        with self._lock:
            children = list(self._children)
        for proc in children:
            _signal_child(proc, signal.SIGKILL)

    def check(self) -> None:
        """Raise the worker's InterruptedDeployment when a stop was requested."""
        if self.reason is not None:
            raise interruption(self.reason)

    def adopt(self, proc: subprocess.Popen[str]) -> None:
        """Track a child process started by a worker (terminated now if already asked)."""
        with self._lock:
            self._children.add(proc)
        if self.reason is not None:
            _signal_child(proc, signal.SIGTERM)

    def release(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._children.discard(proc)


def _signal_child(proc: subprocess.Popen[str], signum: int) -> None:
    # send_signal does nothing once the child was reaped (no stray signal to a reused pid).
    with suppress(ProcessLookupError):
        proc.send_signal(signum)


# The Stops of runs in progress in this process: the signal handler marks them.
_active: list[Stop] = []


@contextmanager
def active(stop: Stop) -> Iterator[Stop]:
    """Let a SIGTERM/SIGINT (through :func:`stop_on_signals`) mark ``stop`` at once."""
    _active.append(stop)
    try:
        yield stop
    finally:
        _active.remove(stop)


def current_stop() -> Stop | None:
    """The Stop the calling (worker) thread runs under, if any."""
    stop: Stop | None = getattr(_local, "stop", None)
    return stop


@contextmanager
def working_under(stop: Stop) -> Iterator[None]:
    """Run the calling thread's commands under ``stop`` (see the module docstring)."""
    previous = current_stop()
    _local.stop = stop
    try:
        yield
    finally:
        _local.stop = previous


def _handler(signum: int, _frame: Any) -> None:
    exc = _exception_for(signum)
    for stop in _active:
        if stop.reason is None:
            stop.reason = exc
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
