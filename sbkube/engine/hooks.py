"""Command-level hooks: the commands a deploy runs once, around all of its apps (the
original tool's ``hooks.deploy.pre|post|on_failure``).

Shape (:class:`DeployHooks`, built by ``deployer.deploy`` inside the tracked deployment):

* ``pre`` runs before any app. When one of its commands fails, no app starts: each is
  recorded ``skipped`` (naming the hook), ``on_failure`` runs, and the hook's error ends
  the command (exit 1; the deployment is recorded ``failed``).
* after the apps, ``post`` runs when every app succeeded, else ``on_failure`` does. A
  failing ``post`` fails the deployment (recorded ``failed`` with its error), and
  ``on_failure`` runs then too.

Each command is a recorded step of the deployment itself (``DeploymentRecord.steps``, in
the order they ran: ``phase`` ``hooks.deploy.pre`` and so on, the masked command and
output tail, the exit code, the seconds), run with ``sh -c`` in the app dir, with
``SBKUBE_NAMESPACE`` (the config's namespace) and a ``KUBECONFIG`` for the target cluster
(``steps.command_environment``). A dry run runs none of them (``deploy`` notes what would
run). ``--no-exec`` / ``SBKUBE_ALLOW_EXEC=false`` refuse them before anything is applied
(``steps.refuse_commands``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from sbkube.engine.results import AppOutcome
from sbkube.engine.runner import AppStep
from sbkube.engine.steps import command_environment, run_recorded
from sbkube.errors import SbkubeError
from sbkube.model import AppStatus

if TYPE_CHECKING:
    from sbkube.cluster.port import Objects
    from sbkube.config.schema import PhaseHooks
    from sbkube.state import DeploymentHandle

PHASES = ("pre", "post", "on_failure")


def deploy_hook_lines(hooks: PhaseHooks | None) -> list[tuple[str, str]]:
    """``(phase, command)`` for every command-level deploy hook, in phase order."""
    if hooks is None:
        return []
    return [(f"hooks.deploy.{p}", c) for p in PHASES for c in getattr(hooks, p)]


class DeployHooks:
    """The deploy's command-level hooks, recorded on the deployment ``dep``."""

    def __init__(
        self,
        hooks: PhaseHooks,
        cluster: Objects,
        dep: DeploymentHandle,
        *,
        namespace: str,
        cwd: str,
    ) -> None:
        self.hooks = hooks
        self.dep = dep
        self.cwd = cwd
        self.env = command_environment(cluster, namespace)
        self.steps: list[dict[str, Any]] = []

    def _run(self, phase: str) -> None:
        run_recorded(
            getattr(self.hooks, phase),
            self.steps,
            self.dep.set_steps,
            cwd=self.cwd,
            env=self.env,
            phase=f"hooks.deploy.{phase}",
        )

    def _on_failure(self) -> None:
        with suppress(SbkubeError):  # recorded; the failure that brought it here is the one
            self._run("on_failure")

    def around(
        self, steps: Sequence[AppStep], run: Callable[[], tuple[AppOutcome, ...]]
    ) -> tuple[AppOutcome, ...]:
        """``pre``, the apps (``run``), then ``post`` or ``on_failure``; see the module."""
        try:
            self._run("pre")
        except SbkubeError as err:
            reason = f"skipped: hooks.deploy.pre failed ({err.message})"
            for step in steps:
                self.dep.skip_app(
                    name=step.name, type=step.type, namespace=step.namespace, reason=reason
                )
            self._on_failure()
            raise
        outcomes = run()
        if any(o.status != AppStatus.SUCCESS for o in outcomes):
            self._on_failure()
            return outcomes
        try:
            self._run("post")
        except SbkubeError:
            self._on_failure()
            raise
        return outcomes
