"""Running a cluster command-line tool (helm, kubectl): finding it, running it, its error.

``BinaryClient`` is what ``HelmClient`` and ``KubectlClient`` share: it resolves the binary
lazily, holds the flags that select the target cluster (built once from kubeconfig and
context, so the pure argv builders in ``helm.py``/``kubectl.py`` take them as one list), runs a
command and turns a non-zero exit into a ``ClusterError`` carrying the tool's whole error text
(its explaining line first, then the lines that detail it, e.g. every schema violation helm
lists). ``values_json`` is what hands values to helm, on stdin (``--values -``).

A command run by a worker of a concurrent run (``sbkube.interrupts.working_under``) is
registered with the run's Stop while it runs: asking the run to stop terminates it, and the
command then raises ``InterruptedDeployment`` instead of the tool's error (so does a command
asked to start after the request).

Every command has a deadline, so one request the cluster never answers cannot hang a run
(and keep its lock) for good. The bound is the calling thread's (:func:`calls_bounded`:
the runner bounds an app's calls by the app's ``timeout``), else
:data:`DEFAULT_CALL_TIMEOUT`. The tool is told the bound itself (``BinaryClient.bounded``:
kubectl's ``--request-timeout``, helm's ``--timeout``) and gets a tenth more (at least
:data:`REPORT_GRACE_MIN`, at most :data:`REPORT_GRACE_MAX`) to report it in its own words;
past that the process is terminated (SIGTERM, then SIGKILL) and the call raises
``ClusterError`` naming the bound, which fails the app that made it, not the run.
:func:`overdue` tells whether a call outlived even that (a child that cannot be stopped):
the lock's heartbeat then stops renewing the lease (``sbkube.engine.target``), so a stuck
run does not keep its target locked for ever.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from sbkube.errors import ClusterError
from sbkube.interrupts import Stop, current_stop

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar


def log_run(argv: Sequence[str]) -> None:
    """`sbkube -v` shows every command run through the "sbkube.cluster" logger (values
    travel in files, never in argv, so the lines hold no secrets). A logger can only have
    somewhere to write once ``logging`` is imported (`-v` imports it), so a run that never
    imports it (``sbkube template``: ~4 ms) logs nothing it would have shown."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("sbkube.cluster").debug("run: %s", shlex.join(argv))


#: How long one call to the cluster may take when no app's ``timeout`` bounds it: helm's
#: own default ``--timeout`` (5m).
DEFAULT_CALL_TIMEOUT = 300.0
#: A tool told its bound gets a tenth more, at least REPORT_GRACE_MIN and at most
#: REPORT_GRACE_MAX, to report the timeout itself: its bound covers its wait, not its own
#: start and chart loading, which on a loaded machine alone can take seconds.
REPORT_GRACE_MIN = 10.0
REPORT_GRACE_MAX = 30.0
# After SIGTERM, how long a timed-out tool gets to end (helm marks its revision failed)
# before SIGKILL; then how long its output is still read (a grandchild may hold the pipe).
_STOP_GRACE = 5.0

_bound = threading.local()
# The running calls: id -> the moment (time.monotonic) by which each must have ended,
# stopping included.
_running: dict[int, float] = {}
_running_lock = threading.Lock()


@contextmanager
def calls_bounded(seconds: float | None) -> Iterator[None]:
    """Within this block, every command the calling thread runs is bounded by ``seconds``
    (None: :data:`DEFAULT_CALL_TIMEOUT`)."""
    previous = getattr(_bound, "seconds", None)
    _bound.seconds = seconds
    try:
        yield
    finally:
        _bound.seconds = previous


def call_limit(seconds: float) -> float:
    """When a call told its bound of ``seconds`` is stopped: the bound and the grace the
    tool gets to report it (module docstring)."""
    return seconds + min(REPORT_GRACE_MAX, max(REPORT_GRACE_MIN, seconds / 10))


def call_timeout() -> tuple[float, bool]:
    """The calling thread's bound on one command, in seconds, and whether an app set it."""
    seconds: float | None = getattr(_bound, "seconds", None)
    return (DEFAULT_CALL_TIMEOUT, False) if seconds is None else (seconds, True)


def duration_text(seconds: float) -> str:
    """``seconds`` as a Go duration, as kubectl's ``--request-timeout`` and helm's
    ``--timeout`` read it (``5s``, ``1.5s``, ``300s``)."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def overdue(now: float | None = None) -> bool:
    """True when a command still runs past its deadline and the time to stop it: it could
    not be stopped, so the run that waits for it is stuck."""
    at = time.monotonic() if now is None else now
    with _running_lock:
        return any(at > end for end in _running.values())


# client-go's klog lines ("E1126 09:54:35.957490   21844 memcache.go:265] ...") come before
# the tool's own one-line summary and repeat on every retry.
KLOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\] ")


def target_flags(*, kubeconfig: str | None, context: str | None, context_flag: str) -> list[str]:
    """Flags that select the cluster; empty when the tool's own defaults apply.

    helm and kubectl agree on ``--kubeconfig`` but not on the context flag
    (``--kube-context`` versus ``--context``), hence ``context_flag``.
    """
    flags: list[str] = []
    if kubeconfig:
        flags += ["--kubeconfig", kubeconfig]
    if context:
        flags += [context_flag, context]
    return flags


def first_error_line(stderr: str, *, noise: tuple[str, ...] = ()) -> str:
    """The line of a tool's stderr that explains a failure.

    helm and kubectl print warnings and client-go log lines before their ``Error: ...``
    (kubectl: ``error: ...``/``Error from server ...``) line and hints after it, so prefer
    that line, then the first line that is neither a log line nor known ``noise`` (lowercase
    prefixes), then the first line with its log prefix removed.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    own = [line for line in lines if not KLOG_LINE.match(line)]
    for line in own:
        lowered = line.lower()
        if lowered.startswith("error:"):
            return line[len("error:") :].strip()
        if lowered.startswith("error from server"):
            return line
    for line in own:
        if not line.lower().startswith(noise):
            return line
    if own:
        return own[0]
    return KLOG_LINE.sub("", lines[0]) if lines else ""


def error_text(stderr: str, *, noise: tuple[str, ...] = ()) -> str:
    """A tool's whole error: :func:`first_error_line`, then every line after it.

    helm puts the reason for a failure on the lines after ``Error: ...`` (a schema check
    lists each violation there), so they are kept, in order. Lines before the error line are
    warnings, and client-go log lines and known ``noise`` (``Use --debug ...``) never explain
    anything, so those are left out. Blank lines go; indentation within the text is kept.
    """
    first = first_error_line(stderr, noise=noise)
    if not first:
        return ""
    lines = [line.rstrip() for line in stderr.splitlines()]
    start = next(
        (
            index
            for index, line in enumerate(lines)
            if line.strip() and first in line and not KLOG_LINE.match(line.strip())
        ),
        None,
    )
    if start is None:
        return first
    rest = [
        line
        for line in lines[start + 1 :]
        if line.strip()
        and not KLOG_LINE.match(line.strip())
        and not line.strip().lower().startswith(noise)
    ]
    return "\n".join([first, *rest])


def resolve_binary(binary: str | None, env_var: str, default: str) -> str:
    """``binary`` if given, else ``$env_var``, else ``default``; resolved against PATH.

    Raises ClusterError naming the binary when it cannot be found, so a missing helm is one
    clear line rather than a FileNotFoundError traceback.
    """
    wanted = binary or os.environ.get(env_var) or default
    found = shutil.which(wanted)
    if found is None:
        raise ClusterError(
            f"{default} binary not found: {wanted!r} "
            f"(install {default}, put it on PATH, or set {env_var})"
        )
    return found


# helm reads ``--values -`` from stdin (helm v3 and v4): values holding passwords never
# touch the disk, so a sbkube killed mid-render leaves no file behind to sweep.
VALUES_FROM_STDIN = "-"


def values_json(values: Mapping[str, Any]) -> str:
    """``values`` as helm reads them from stdin.

    JSON is a subset of YAML, and unlike yaml.dump it cannot turn a string such as "on" or
    "1.10" into another type on helm's side.
    """
    return json.dumps(dict(values), default=str)


class BinaryClient:
    """A command-line tool run against one kubeconfig/context (helm, kubectl).

    Subclasses name the tool (``NAME``), the variable that overrides its path (``ENV_VAR``),
    its context flag (``CONTEXT_FLAG``) and the stderr prefixes that never explain a
    failure (``NOISE``).
    """

    NAME: ClassVar[str] = ""
    ENV_VAR: ClassVar[str] = ""
    CONTEXT_FLAG: ClassVar[str] = "--context"
    NOISE: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        binary: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        env: Mapping[str, str] | None = None,
        *,
        dry_run: bool = False,
    ) -> None:
        # The binary is resolved on first use, so that building a client (e.g. for a
        # MemoryCluster that never renders a chart) does not require the tool installed.
        self._binary = binary
        self._resolved: str | None = None
        self.kubeconfig = kubeconfig
        self.context = context
        self.env = dict(env) if env else {}
        # Every write this client makes is a server-side dry run: the cluster validates and
        # answers with what it would do, and keeps nothing.
        self.dry_run = dry_run
        self.flags: tuple[str, ...] = tuple(
            target_flags(kubeconfig=kubeconfig, context=context, context_flag=self.CONTEXT_FLAG)
        )

    @property
    def binary(self) -> str:
        """Absolute path of the binary; ClusterError if it cannot be found."""
        if self._resolved is None:
            self._resolved = resolve_binary(self._binary, self.ENV_VAR, self.NAME)
        return self._resolved

    def execute(
        self, argv: Sequence[str], *, what: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` whatever its exit code, within the calling thread's bound (see the
        module docstring); ClusterError if it cannot be started or does not end in time."""
        extra = self.environment()
        env = {**os.environ, **extra} if extra else None
        seconds, by_app = call_timeout()
        argv = self.bounded(list(argv), seconds)
        stop = current_stop()
        if stop is not None:
            stop.check()  # asked to stop: nothing is started (or logged as started)
        log_run(argv)
        limit = call_limit(seconds)
        try:
            return _run(argv, stdin, env, stop, limit)
        except OSError as exc:
            raise ClusterError(f"{what} failed: cannot run {argv[0]}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            bound = "the app's timeout" if by_app else "the timeout of a call to the cluster"
            raise ClusterError(
                f"{what} failed: no answer within {duration_text(seconds)} ({bound}); "
                f"{self.NAME} was stopped"
            ) from exc

    def bounded(self, argv: list[str], seconds: float) -> list[str]:
        """``argv`` with the flags that tell the tool its bound of ``seconds`` (none here)."""
        return argv

    def environment(self) -> dict[str, str]:
        """Variables set for the tool on top of this process's environment."""
        return self.env

    def failure(self, proc: subprocess.CompletedProcess[str], what: str) -> ClusterError:
        """The error for a failed run: the tool's error text (first line: what failed and
        why; further lines: the tool's details)."""
        reason = error_text(proc.stderr, noise=self.NOISE)
        return ClusterError(
            f"{what} failed: {reason or f'{self.NAME} exited with code {proc.returncode}'}"
        )

    def run(self, argv: Sequence[str], *, what: str, stdin: str | None = None) -> str:
        """Run ``argv``; stdout on success, ClusterError with the tool's error text otherwise."""
        proc = self.execute(argv, what=what, stdin=stdin)
        if proc.returncode != 0:
            raise self.failure(proc, what)
        return proc.stdout


def _run(
    argv: list[str],
    stdin: str | None,
    env: Mapping[str, str] | None,
    stop: Stop | None,
    limit: float,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` that ends within ``limit`` seconds (else TimeoutExpired, the
    child stopped) and, under ``stop``, is terminated when the run is asked to stop (the
    caller then gets InterruptedDeployment, never the killed tool's error)."""
    if stop is not None:
        stop.check()
    key = object()
    with subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        with _running_lock:
            _running[id(key)] = time.monotonic() + limit + 3 * _STOP_GRACE
        if stop is not None:
            stop.adopt(proc)
        try:
            try:
                out, err = proc.communicate(stdin, timeout=limit)
            except subprocess.TimeoutExpired:
                _stop_child(proc)
                raise
        except BaseException:
            proc.kill()
            raise
        finally:
            with _running_lock:
                _running.pop(id(key), None)
            if stop is not None:
                stop.release(proc)
    if stop is not None:
        stop.check()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _stop_child(proc: subprocess.Popen[str]) -> None:
    """Stop a child that ran out of time: SIGTERM (helm then marks its revision failed),
    SIGKILL after a grace; its pipes are read so it can end, but not waited on for ever
    (a grandchild may hold them)."""
    proc.terminate()
    try:
        proc.communicate(timeout=_STOP_GRACE)
        return
    except subprocess.TimeoutExpired:
        proc.kill()
    try:
        proc.communicate(timeout=_STOP_GRACE)
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
