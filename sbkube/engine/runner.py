"""The per-app loop shared by deploy and rollback: one step per app, each tracked and timed.

For every :class:`AppStep`, in order: skip it (recorded as ``skipped``) when one of its
dependencies failed in this run; else open ``track_app`` and run the step, which applies
the app and returns what it changed. An app's failure (any ``SbkubeError``) is recorded by
``track_app``, reported and does not stop the apps that do not depend on it; a request to
stop (``InterruptedDeployment``: SIGTERM through :func:`interrupt_on_sigterm`, or Ctrl-C's
``KeyboardInterrupt``) is not an app failure and stops the run, ``track_app`` having
recorded the app as interrupted. Every app yields one :class:`AppOutcome`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sbkube.engine.results import AppOutcome, ReleaseChange, ResourceChange
from sbkube.errors import InterruptedDeployment, SbkubeError
from sbkube.interrupts import stop_on_signals
from sbkube.model import AppStatus
from sbkube.state import AppHandle, DeploymentHandle

Progress = Callable[[str], None]
"""Where progress lines go. A progress object that also has ``running(label | None)`` is
told which app is running (its label) and when it stops, to show elapsed time."""
# What a step changed: the resources (as recorded) and the Helm release, if any.
StepChanges = tuple[tuple[ResourceChange, ...], ReleaseChange | None]


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
    # What progress lines say after the app's name; "(type)" when empty.
    label: str = ""


def run_apps(
    steps: Sequence[AppStep], dep: DeploymentHandle, *, progress: Progress | None
) -> tuple[AppOutcome, ...]:
    """Run ``steps`` in order under the tracked deployment ``dep``; see the module docstring."""
    outcomes: list[AppOutcome] = []
    broken: set[str] = set()
    total = len(steps)

    def report(line: str) -> None:
        if progress:
            progress(line)

    for index, step in enumerate(steps, start=1):
        prefix = f"[{index}/{total}] {step.name} {step.label or f'({step.type})'}"
        blocked = [d for d in step.depends_on if d in broken]
        if blocked:
            reason = f"skipped: dependency {', '.join(blocked)} failed"
            dep.skip_app(name=step.name, type=step.type, namespace=step.namespace, reason=reason)
            broken.add(step.name)
            outcomes.append(
                AppOutcome(step.name, step.type, step.namespace, AppStatus.SKIPPED, reason, 0.0)
            )
            report(f"{prefix} {reason}")
            continue
        started = time.monotonic()
        running = getattr(progress, "running", None)
        if callable(running):
            running(prefix)
        try:
            with dep.track_app(
                name=step.name,
                type=step.type,
                namespace=step.namespace,
                config=step.config,
                rollback_info=step.rollback_info,
            ) as handle:
                changes, release = step.run(handle)
        except InterruptedDeployment:
            raise  # asked to stop: not an app failure; later apps must not run
        except SbkubeError as err:
            broken.add(step.name)
            seconds = time.monotonic() - started
            outcomes.append(
                AppOutcome(
                    step.name, step.type, step.namespace, AppStatus.FAILED, err.message, seconds
                )
            )
            # Detail lines (helm's list of schema violations, say) indented under the first.
            detail = err.message.replace("\n", "\n    ")
            report(f"{prefix} FAILED after {seconds:.1f}s: {detail}")
            continue
        finally:
            if callable(running):
                running(None)
        seconds = time.monotonic() - started
        outcome = AppOutcome(
            step.name, step.type, step.namespace, AppStatus.SUCCESS, None, seconds, changes, release
        )
        outcomes.append(outcome)
        rel = ""
        if release is not None and release.to_revision is None:
            rel = (
                f"{release.action} {release.release_name} (was revision {release.from_revision}); "
            )
        elif release is not None and release.from_revision == release.to_revision:
            rel = f"{release.action} {release.release_name} at revision {release.to_revision}; "
        elif release is not None:
            rel = f"{release.action} {release.release_name} to revision {release.to_revision}; "
        report(f"{prefix} ok in {seconds:.1f}s: {rel}{outcome.summary}")
    return tuple(outcomes)


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into InterruptedDeployment (and Ctrl-C into KeyboardInterrupt), so the
    deployment is marked interrupted and the lock released by this process before it
    exits; a signal that arrives during a database call waits for that call to end (see
    :mod:`sbkube.interrupts`). Does nothing outside the main thread."""
    with stop_on_signals():
        yield
