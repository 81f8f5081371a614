"""The per-app loop shared by deploy, rollback and uninstall: apps run concurrently along
their ``depends_on`` graph, each tracked and timed.

Shape of :func:`run_apps` (``steps`` in config order, ``concurrency`` N >= 1):

* The main thread schedules; at most N apps run at once, each in a worker thread of a pool.
  An app starts once every app it depends on (``AppStep.depends_on``, among the EARLIER
  steps: a name that is not a step, or a later one, is not waited for) has succeeded, and
  every app it only waits for (``AppStep.after``) has ended, whatever its outcome. The
  steps are scanned in order, so with N = 1 the apps run exactly one after another in
  config order, as they always did.
* A worker opens ``track_app`` and runs the step (each of its helm and kubectl calls bounded
  by the step's ``timeout``: a call the cluster never answers fails the app, see
  ``sbkube.cluster.process``), which applies the app and returns what it
  changed; ``track_app`` records the app in that worker thread (the store's writers queue:
  see ``sbkube.state.database``). An app's failure (any ``SbkubeError``) is recorded by
  ``track_app``, reported, and skips its dependents, transitively: each is recorded
  ``skipped`` with the reason, and the apps that do not depend on it go on.
* ``admit`` (optional, see :data:`Admit`) is asked before a ready step starts: start it,
  hold it for now, or skip it with a reason (recorded as ``skipped``). A multi-dir run
  (``sbkube.engine.phases``) bounds with it how many phases run at once, and starts no
  phase after a failure under ``on_failure: stop``. Steps carry ``metadata`` (recorded
  with the app: its phase, app dir and target).
* A line is reported for each app when it ends, in the order apps end (``[k/total]`` counts
  them); a progress object with ``app_started(label)`` / ``app_ended(label)`` is told which
  apps run, for a live status line. The outcomes (one :class:`AppOutcome` per app) are
  returned in the steps' order, so printed results do not depend on timing.
* A request to stop (SIGTERM's ``InterruptedDeployment`` or Ctrl-C's ``KeyboardInterrupt``,
  raised in the main thread: see :func:`interrupt_on_sigterm`) is not an app failure: no
  further app starts, the running ones are told through a :class:`~sbkube.interrupts.Stop`
  (their helm/kubectl processes are terminated, their ``track_app`` records them
  ``interrupted``), the main thread waits for them, then raises the request again so that
  the deployment is recorded ``interrupted`` and its lock released. Apps that never
  started are not recorded, as before. An unexpected error in a worker (a bug) stops the
  run the same way and is raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sbkube.cluster.process import calls_bounded
from sbkube.engine.results import AppOutcome, ReleaseChange, ResourceChange
from sbkube.errors import InterruptedDeployment, SbkubeError, UsageError
from sbkube.interrupts import Stop, active, interruption, stop_on_signals, working_under
from sbkube.model import MAX_CONCURRENCY, AppStatus

if TYPE_CHECKING:
    from sbkube.state import AppHandle, DeploymentHandle

Progress = Callable[[str], None]
"""Where progress lines go. A progress object that also has ``app_started(label)`` and
``app_ended(label)`` is told which apps are running (their labels), to show elapsed time."""
# What a step changed: the resources (as recorded) and the Helm release, if any.
StepChanges = tuple[tuple[ResourceChange, ...], ReleaseChange | None]

#: The default number of apps run at once (``--concurrency``).
DEFAULT_CONCURRENCY = 4
# How long the children of an interrupted run get to end after SIGTERM, before SIGKILL.
_STOP_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class AppStep:
    """One app to run: how it is recorded (``track_app``'s arguments) and ``run``, which
    applies it, records its resources on the handle and returns what it changed."""

    name: str
    type: str
    namespace: str
    run: Callable[[AppHandle], StepChanges]
    config: Mapping[str, Any] | None = None
    depends_on: tuple[str, ...] = ()
    rollback_info: Mapping[str, Any] | None = None
    # Earlier apps this one only waits for, whatever their outcome (never skipped for them):
    # the first app to need a namespace that is missing creates it (see ``deployer``).
    after: tuple[str, ...] = ()
    # What progress lines say after the app's name; "(type)" when empty.
    label: str = ""
    # Recorded with the app (``track_app``'s metadata): a multi-dir run's phase, app dir
    # and target (``sbkube.engine.phases``).
    metadata: Mapping[str, Any] | None = None

    @property
    def title(self) -> str:
        return f"{self.name} {self.label or f'({self.type})'}"

    @property
    def timeout(self) -> float | None:
        """Seconds that bound each of the app's calls to the cluster: its config's
        ``timeout`` (a Go duration, as validated); None for the default bound."""
        text = (self.config or {}).get("timeout")
        if not isinstance(text, str):
            return None
        from sbkube.config.schema import MAX_TIMEOUT_SECONDS, duration_seconds

        seconds = duration_seconds(text)
        return seconds if 0 < seconds <= MAX_TIMEOUT_SECONDS else None


def check_concurrency(concurrency: int) -> int:
    """``concurrency`` when it is a whole number from 1 to :data:`MAX_CONCURRENCY`; else a
    one-line UsageError (a thread pool of a billion workers is a typo, not a plan)."""
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise UsageError(
            f"concurrency: {concurrency!r} is not a number of apps at once "
            f"(1 or more, at most {MAX_CONCURRENCY})"
        )
    return concurrency


def _release_text(release: ReleaseChange | None) -> str:
    if release is None:
        return ""
    if release.to_revision is None:
        return f"{release.action} {release.release_name} (was revision {release.from_revision}); "
    if release.from_revision == release.to_revision:
        return f"{release.action} {release.release_name} at revision {release.to_revision}; "
    return f"{release.action} {release.release_name} to revision {release.to_revision}; "


@dataclass(frozen=True, slots=True)
class _Ended:
    """What a worker hands back: the app's outcome and its progress line (after the
    ``[k/total]`` prefix, given when the main thread reports it)."""

    outcome: AppOutcome
    line: str


def _run_step(step: AppStep, dep: DeploymentHandle, stop: Stop) -> _Ended:
    """One app, in a worker thread: tracked, run, timed (see the module docstring)."""
    started = time.monotonic()
    with working_under(stop), calls_bounded(step.timeout):
        try:
            with dep.track_app(
                name=step.name,
                type=step.type,
                namespace=step.namespace,
                config=step.config,
                rollback_info=step.rollback_info,
                metadata=step.metadata,
            ) as handle:
                stop.check()
                try:
                    changes, release = step.run(handle)
                except SbkubeError as err:
                    # A tool that died of the same Ctrl-C (the whole process group gets
                    # it) failed because of the request: the app is interrupted, not failed.
                    if stop.reason is not None and not isinstance(err, InterruptedDeployment):
                        raise interruption(stop.reason) from err
                    raise
        except InterruptedDeployment as err:
            if stop.reason is None:
                raise  # the step itself was told to stop: the whole run stops
            seconds = time.monotonic() - started
            outcome = AppOutcome(
                step.name, step.type, step.namespace, AppStatus.INTERRUPTED, err.message, seconds
            )
            return _Ended(outcome, f"{step.title} interrupted after {seconds:.1f}s")
        except SbkubeError as err:
            seconds = time.monotonic() - started
            outcome = AppOutcome(
                step.name, step.type, step.namespace, AppStatus.FAILED, err.message, seconds
            )
            # Detail lines (helm's list of schema violations, say) indented under the first.
            detail = err.message.replace("\n", "\n    ")
            return _Ended(outcome, f"{step.title} FAILED after {seconds:.1f}s: {detail}")
    seconds = time.monotonic() - started
    outcome = AppOutcome(
        step.name, step.type, step.namespace, AppStatus.SUCCESS, None, seconds, changes, release
    )
    line = f"{step.title} ok in {seconds:.1f}s: {_release_text(release)}{outcome.summary}"
    healthy = handle.metadata.get("healthy_seconds")  # a wait: true app (engine.wait)
    if healthy is not None:
        line += f"; healthy after {healthy:.1f}s"
    return _Ended(outcome, line)


Admit = Callable[[AppStep, Mapping[str, AppOutcome], frozenset[str]], str | None]
"""Asked before a ready step starts, with the outcomes so far and the apps running (by
name); it must not change anything (a step it admits may still wait for a free worker).
None: start it; :data:`WAIT`: hold it for now (only while something runs); else the
reason it is skipped (``skipped: ...``). A multi-dir run's phases use it: how many phases
run at once, and no new phase after a failure (``sbkube.engine.phases``)."""
WAIT = "wait"


def run_apps(
    steps: Sequence[AppStep],
    dep: DeploymentHandle,
    *,
    progress: Progress | None,
    concurrency: int = DEFAULT_CONCURRENCY,
    admit: Admit | None = None,
) -> tuple[AppOutcome, ...]:
    """Run ``steps`` under the tracked deployment ``dep``, at most ``concurrency`` at once
    along their ``depends_on`` graph; see the module docstring. ``admit``: see
    :data:`Admit`."""
    limit = check_concurrency(concurrency)
    total = len(steps)
    index_of = {step.name: i for i, step in enumerate(steps)}

    def earlier(names: Sequence[str], i: int) -> tuple[int, ...]:
        # Only earlier steps are waited for (never a later one: no cycle, and N = 1 is
        # config order).
        return tuple(dict.fromkeys(index_of[d] for d in names if index_of.get(d, total) < i))

    # What each step needs to have succeeded, and everything it waits for (needs and after).
    needs = [earlier(step.depends_on, i) for i, step in enumerate(steps)]
    waits = [earlier((*step.depends_on, *step.after), i) for i, step in enumerate(steps)]
    outcomes: dict[int, AppOutcome] = {}
    pending = list(range(total))
    running: dict[Future[_Ended], int] = {}
    ended = 0
    started_hook = getattr(progress, "app_started", None)
    ended_hook = getattr(progress, "app_ended", None)

    def report(line: str) -> None:
        nonlocal ended
        ended += 1
        if progress:
            progress(f"[{ended}/{total}] {line}")

    def ok(i: int) -> bool:
        outcome = outcomes.get(i)
        return outcome is not None and outcome.status == AppStatus.SUCCESS

    def schedule(pool: ThreadPoolExecutor, stop: Stop) -> None:
        """Skip what a failure blocks and start what is ready, scanning in order."""
        for i in list(pending):
            step = steps[i]
            blocked = [steps[d].name for d in needs[i] if d in outcomes and not ok(d)]
            reason = f"skipped: dependency {', '.join(blocked)} failed" if blocked else None
            if reason is None:
                if any(d not in outcomes for d in waits[i]):
                    continue  # a dependency (or an app it waits for) is pending or running
                if admit is not None:
                    verdict = admit(
                        step,
                        {steps[k].name: o for k, o in outcomes.items()},
                        frozenset(steps[k].name for k in running.values()),
                    )
                    if verdict == WAIT:
                        continue
                    reason = verdict
                if reason is None and len(running) >= limit:
                    break  # full: later steps wait (and N = 1 keeps config order)
            if reason is not None:
                dep.skip_app(
                    name=step.name,
                    type=step.type,
                    namespace=step.namespace,
                    reason=reason,
                    metadata=step.metadata,
                )
                pending.remove(i)
                outcomes[i] = AppOutcome(
                    step.name, step.type, step.namespace, AppStatus.SKIPPED, reason, 0.0
                )
                report(f"{step.title} {reason}")
                continue
            pending.remove(i)
            if callable(started_hook):
                started_hook(step.title)
            running[pool.submit(_run_step, step, dep, stop)] = i

    def collect(future: Future[_Ended]) -> None:
        i = running.pop(future)
        if callable(ended_hook):
            ended_hook(steps[i].title)
        result = future.result()  # an unexpected error in the worker is raised here
        outcomes[i] = result.outcome
        report(result.line)

    stop = Stop()
    with (
        active(stop),
        ThreadPoolExecutor(max_workers=min(limit, max(total, 1)), thread_name_prefix="app") as pool,
    ):
        try:
            while pending or running:
                schedule(pool, stop)
                if not running:
                    continue
                done, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f]):
                    collect(future)
        except BaseException as exc:
            # Asked to stop (or a worker's bug): nothing more starts; the running apps
            # end interrupted; then the request goes on up, to close the deployment.
            stop.request(exc)
            for future in _wait_for_workers(list(running), stop):
                with suppress(BaseException):
                    collect(future)
            raise
    return tuple(outcomes[i] for i in range(total))


def _wait_for_workers(futures: list[Future[_Ended]], stop: Stop) -> list[Future[_Ended]]:
    """Wait for the running workers after a stop request: their children got SIGTERM;
    those still running after a grace period (or a second Ctrl-C) get SIGKILL. The
    workers' futures, in the order they ended."""
    deadline = time.monotonic() + _STOP_GRACE
    order: list[Future[_Ended]] = []
    while len(order) < len(futures):
        try:
            left = [f for f in futures if f not in order]
            done, _ = wait(left, timeout=0.5, return_when=FIRST_COMPLETED)
            order += [f for f in left if f in done]
            if time.monotonic() >= deadline:
                stop.kill()
        except (KeyboardInterrupt, InterruptedDeployment):
            stop.kill()  # asked again: no more grace
    return order


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into InterruptedDeployment (and Ctrl-C into KeyboardInterrupt), so the
    deployment is marked interrupted and the lock released by this process before it
    exits; a signal that arrives during a database call waits for that call to end (see
    :mod:`sbkube.interrupts`). Does nothing outside the main thread."""
    with stop_on_signals():
        yield
