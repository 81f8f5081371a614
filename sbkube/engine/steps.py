"""Recorded steps: the commands of an ``exec`` app, run and recorded one by one.

Shape: :func:`run_commands` runs each command with ``sh -c`` in the app dir, in order,
with ``SBKUBE_APP_NAME``, ``SBKUBE_NAMESPACE`` and a ``KUBECONFIG`` selecting the target
cluster (``Cluster.command_kubeconfig``: a ``kubectl`` in a command talks to the same
cluster, the memory cluster included) on top of sbkube's environment. Each becomes a
:class:`Step` in the app's metadata (``steps``): the command and the tail of its output
(stdout and stderr, interleaved as written) masked by :func:`sbkube.redaction.mask_text`,
its exit code and its seconds (``clock``, injectable). The first command that fails
fails the app (ClusterError: a failure of the world, exit 1), after what ran is recorded.

A dry run runs nothing: it notes what would run. ``--no-exec`` or
``SBKUBE_ALLOW_EXEC=false`` refuse every exec app before anything is applied
(:func:`refuse_commands`).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sbkube.errors import ClusterError, FieldRefusals, RefusedError
from sbkube.interrupts import current_stop
from sbkube.redaction import mask_text

if TYPE_CHECKING:
    from sbkube.cluster.port import Objects
    from sbkube.engine.work import AppWork
    from sbkube.state import AppHandle

#: How much of a command's output is kept: its last lines, at most this many characters.
TAIL_LINES = 20
TAIL_CHARS = 4000
_ALLOW_EXEC_ENV = "SBKUBE_ALLOW_EXEC"


@dataclass(frozen=True, slots=True)
class Step:
    """One command as recorded; ``phase``: ``exec``, or the hook that ran it."""

    phase: str
    command: str
    exit_code: int
    seconds: float
    output_tail: str


def ran_commands(steps: Iterable[Mapping[str, Any]]) -> int:
    """How many of recorded ``steps`` ran a command (an exec app's, a hook's, a task's);
    object steps (a manifest hook's apply, a validation, an action app's step) are not."""
    return sum(1 for s in steps if not s.get("objects") and s.get("phase") != "action")


def exec_allowed(no_exec: bool = False, environ: Mapping[str, str] | None = None) -> bool:
    """False with ``--no-exec`` or ``SBKUBE_ALLOW_EXEC`` set to false/0/no/off."""
    value = (environ if environ is not None else os.environ).get(_ALLOW_EXEC_ENV, "")
    return not no_exec and value.strip().lower() not in ("false", "0", "no", "off")


def _task_commands(tasks: Sequence[object]) -> bool:
    for task in tasks:
        rollback = getattr(task, "rollback", None)
        if getattr(task, "type", None) == "command" or (rollback and rollback.commands):
            return True
    return False


def command_fields(app: object) -> tuple[str, ...]:
    """The fields of an app that run commands besides an exec app's own (``hooks``: its
    command hooks and command tasks; ``tasks``: a hook app's), for ``--no-exec``."""
    out = []
    hooks = getattr(app, "hooks", None)
    if hooks is not None and (
        any((hooks.pre_deploy, hooks.post_deploy, hooks.on_deploy_failure))
        or _task_commands((*hooks.pre_deploy_tasks, *hooks.post_deploy_tasks))
    ):
        out.append("hooks")
    rollback = getattr(app, "rollback", None)
    if _task_commands(getattr(app, "tasks", ())) or (rollback and rollback.commands):
        out.append("tasks")
    return tuple(out)


def refuse_commands(
    apps: Iterable[tuple[str, str, Sequence[str]]],
    shown_config: str,
    *,
    command_hooks: bool = False,
) -> None:
    """One line per app (``(name, type, fields that run commands)``: ``hooks``, a hook
    app's ``tasks``) that would run a command, and one for the command-level hooks
    (``command_hooks``), exit 2, when commands are not allowed."""
    why = f"commands are not allowed (--no-exec or {_ALLOW_EXEC_ENV}=false)"
    lines = []
    if command_hooks:
        lines.append(f"{shown_config}: hooks.deploy: command hooks refused: {why}")
    for name, kind, fields in apps:
        if kind == "exec":
            lines.append(f"{shown_config}: apps.{name}: exec app refused: {why}")
        for where in fields:
            what = "command hooks" if where == "hooks" else "command tasks"
            lines.append(f"{shown_config}: apps.{name}.{where}: {what} refused: {why}")
    if len(lines) == 1:
        raise RefusedError(lines[0])
    if lines:
        raise FieldRefusals("\n".join(lines))


def _tail(output: str) -> str:
    lines = output.rstrip("\n").split("\n")[-TAIL_LINES:]
    return mask_text("\n".join(lines)[-TAIL_CHARS:])


def _run(command: str, cwd: str, env: Mapping[str, str]) -> tuple[int, str]:
    """``sh -c command``: its exit code and output; stopped (terminated) with the run."""
    stop = current_stop()
    if stop is not None:
        stop.check()
    with subprocess.Popen(
        ["sh", "-c", command],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        if stop is not None:
            stop.adopt(proc)
        try:
            out, _ = proc.communicate()
        except BaseException:
            proc.kill()
            raise
        finally:
            if stop is not None:
                stop.release(proc)
    if stop is not None:
        stop.check()
    return proc.returncode, out or ""


def command_environment(cluster: Objects, namespace: str, app: str | None = None) -> dict[str, str]:
    """sbkube's environment, with the app's name (none for a command-level hook), the
    namespace and the target's kubeconfig."""
    env = dict(os.environ)
    if app is not None:
        env["SBKUBE_APP_NAME"] = app
    env["SBKUBE_NAMESPACE"] = namespace
    kubeconfig = cluster.command_kubeconfig()
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    return env


def run_recorded(
    commands: Iterable[str],
    steps: list[dict[str, Any]],
    record: Callable[[list[dict[str, Any]]], None],
    *,
    cwd: str,
    env: Mapping[str, str],
    phase: str,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``commands`` in order, each appended to ``steps`` and the whole list handed to
    ``record`` as soon as it ended; the first that fails raises ClusterError (after it
    was recorded)."""
    for index, command in enumerate(commands):
        started = clock()
        code, output = _run(command, cwd, env)
        step = Step(phase, mask_text(command), code, round(clock() - started, 3), _tail(output))
        steps.append(asdict(step))
        record(list(steps))
        if code != 0:
            last = step.output_tail.rsplit("\n", 1)[-1] if step.output_tail else ""
            where = "command" if phase == "exec" else f"{phase} hook"
            raise ClusterError(
                f"{where} {index + 1} ({step.command}) exited with code {code}"
                + (f": {last}" if last else "")
            )


def run_commands(
    work: AppWork,
    commands: Iterable[str],
    cluster: Objects,
    handle: AppHandle,
    *,
    cwd: str,
    phase: str = "exec",
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``commands`` in order (see the module docstring); recorded on ``handle``, after
    the steps recorded there before (an app's hooks and commands, in the order they ran)."""
    env = command_environment(cluster, work.namespace, work.name)
    steps: list[dict[str, Any]] = list(handle.metadata.get("steps") or [])
    run_recorded(
        commands,
        steps,
        lambda done: handle.set_metadata(steps=done),
        cwd=cwd,
        env=env,
        phase=phase,
        clock=clock,
    )
