"""SIGTERM and Ctrl-C that never land in the middle of a database call.

A Python signal handler runs between two bytecodes of the main thread, wherever it is. If
it raises while a database driver is half-way through a statement (psycopg waiting for a
reply, SQLite inside a commit), the connection is left mid-protocol; the tracker's next
write on it then fails ("another command is already in progress") and the deployment is
recorded ``failed`` instead of ``interrupted``, or an app stays ``in_progress`` for ever.

So the store's sessions run :func:`shielded`: a signal that arrives inside one is held
and raised when the outermost shielded block ends, i.e. between two database calls. Outside
a shielded block, a signal raises at once (a helm or kubectl run is stopped right away),
unless the main thread is running code that an exception must not cut even there: code of
the database layer (SQLAlchemy, psycopg, sqlite3, alembic: a pooled connection finalized
by the garbage collector, an engine disposed), a finalizer (``__del__``, where Python
prints the exception with a traceback as "Exception ignored" and drops it, so the signal
was lost too) or ``logging`` (which does the same with "--- Logging error ---"). Then the
signal is held and sent again to the main thread a moment later (:data:`REDELIVER_AFTER`),
until it lands where it may raise.

:func:`stop_on_signals` installs the handlers: SIGTERM raises
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from types import FrameType

from sbkube.errors import InterruptedDeployment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import Future
    from typing import Any

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
    watch(stop)
    try:
        yield stop
    finally:
        unwatch(stop)


def watch(stop: Stop) -> None:
    """:func:`active` for work that outlives a block (reads started ahead in threads of
    their own): a signal marks ``stop`` until :func:`unwatch`."""
    _active.append(stop)


def unwatch(stop: Stop) -> None:
    with suppress(ValueError):
        _active.remove(stop)


def at_once(reads: Mapping[str, Callable[[], Any]], *, name: str) -> dict[str, Future[Any]]:
    """Start ``reads`` at once, each in a thread of its own (named ``name``), and return
    their futures; the threads end on their own.

    They run under one Stop that a SIGTERM or Ctrl-C marks while any of them runs: a
    helm or kubectl process not started yet is then never started (nor logged as
    started), so nothing begins after the command said it was interrupted. A read's
    error is its future's, raised to whoever asks for the result."""
    if not reads:
        return {}
    from concurrent.futures import ThreadPoolExecutor

    stop = Stop()
    watch(stop)
    left = [len(reads)]
    left_lock = threading.Lock()

    def under_stop(read: Callable[[], Any]) -> Any:
        try:
            with working_under(stop):
                return read()
        finally:
            with left_lock:
                left[0] -= 1
                if not left[0]:
                    unwatch(stop)

    pool = ThreadPoolExecutor(len(reads), thread_name_prefix=name)
    try:
        return {what: pool.submit(under_stop, read) for what, read in reads.items()}
    finally:
        pool.shutdown(wait=False)


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


# Code on the main thread's stack that a signal must not cut (see the module docstring).
# logging: a handler that fails prints "--- Logging error ---" with a traceback and drops
# the exception (a SIGTERM while `sbkube -v` writes a line).
_UNCUT = (
    "/sqlalchemy/",
    "/psycopg/",
    "/psycopg_pool/",
    "/psycopg2/",
    "/sqlite3/",
    "/alembic/",
    "/logging/",
)
#: How long after a signal was held outside a shielded block it is sent again, in seconds.
REDELIVER_AFTER = 0.05
# Held while a redelivery checks that the handler is still ours and sends the signal, and
# while stop_on_signals puts the previous handlers back: never the default's SIGTERM.
_redelivery = threading.Lock()


def _uncut(frame: FrameType | None) -> bool:
    """True when ``frame`` or a caller of it runs code an exception must not cut."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or any(part in code.co_filename for part in _UNCUT):
            return True
        frame = frame.f_back
    return False


def _redeliver(signum: int) -> None:
    with _redelivery:
        if _held and signal.getsignal(signum) is _handler:
            signal.pthread_kill(threading.main_thread().ident or 0, signum)


def _handler(signum: int, frame: FrameType | None) -> None:
    # A redelivered signal raises the exception held for it, not a second one.
    exc = _held[0] if _held else _exception_for(signum)
    for stop in list(_active):  # read-ahead threads unwatch theirs at any moment
        if stop.reason is None:
            stop.reason = exc
    if _depth() > 0:
        if not _held:
            _held.append(exc)
        return
    if _uncut(frame):
        if not _held:
            _held.append(exc)
        timer = threading.Timer(REDELIVER_AFTER, _redeliver, (signum,))
        timer.daemon = True
        timer.start()
        return
    _held.clear()
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
        with _redelivery:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    # A signal held by the very last database call: the process was still asked to stop.
    deliver_held()
