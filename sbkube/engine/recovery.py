"""Recovery from deployments that did not finish.

* A deployment left ``pending``/``in_progress`` by a process that died is marked
  ``interrupted`` (with what is known: who ran it, where, which apps had finished) by the
  next command that touches that target — a deploy or rollback once it holds the lock, or
  a read command when no live process holds the target's lock.
* A Helm release left ``pending-install``/``pending-upgrade``/``pending-rollback`` by an
  interrupted run blocks every later helm operation ("another operation is in progress").
  Before the next deploy, it is rolled back to its last deployed revision, or uninstalled
  if it never deployed, and the user is told.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sbkube.state.queries import UNFINISHED, list_deployments

if TYPE_CHECKING:
    from sbkube.cluster.port import Cluster
    from sbkube.state.database import DeploymentDatabase
    from sbkube.state.repository import DeploymentRepository

Notify = Callable[[str], None]


def _reason(summary_host: str | None, pid: int | None, operator: str | None) -> str:
    who = f"{operator or '?'}@{summary_host or '?'}"
    pid_text = pid if pid is not None else "?"
    return f"interrupted: the process ({who} pid {pid_text}) stopped before the deployment finished"


def mark_interrupted_deployments(
    repo: DeploymentRepository,
    *,
    cluster: str,
    namespace: str,
    notify: Notify | None = None,
    holding_lock: bool = True,
) -> list[str]:
    """Mark the target's unfinished deployments ``interrupted``.

    With ``holding_lock`` the caller owns the target's lock, so every unfinished
    deployment there belongs to a process that is gone.
    """
    from sbkube.state.locks import pid_alive

    marked = []
    for summary in repo.unfinished(cluster=cluster, namespace=namespace):
        rec = repo.get(summary.deployment_id)
        if not holding_lock and rec.pid is not None and pid_alive(rec.pid):
            import socket

            if rec.host == socket.gethostname():
                continue
        done = [a.name for a in rec.apps if a.status == "success"]
        reason = _reason(rec.host, rec.pid, rec.operator)
        if done:
            reason += f"; apps completed before: {', '.join(done)}"
        repo.mark_interrupted(rec.deployment_id, reason)
        marked.append(rec.deployment_id)
        if notify:
            notify(f"marked deployment {rec.deployment_id} as interrupted ({reason})")
    return marked


def recover_orphans(db: DeploymentDatabase, *, notify: Notify | None = None) -> list[str]:
    """For read commands: close unfinished deployments whose target has no live lock holder.

    The common case — nothing unfinished — costs one ORM-free query.
    """
    unfinished = list_deployments(db, status=UNFINISHED, limit=None)
    if not unfinished:
        return []
    from sbkube.state.locks import DeployLocks
    from sbkube.state.repository import DeploymentRepository

    repo = DeploymentRepository(db)
    locks = DeployLocks(db)
    marked: list[str] = []
    for target in {(d.cluster, d.namespace) for d in unfinished}:
        if locks.is_live(*target):
            continue
        marked += mark_interrupted_deployments(
            repo, cluster=target[0], namespace=target[1], notify=notify, holding_lock=False
        )
    return marked


def recover_pending_releases(
    cluster: Cluster, releases: Iterable[tuple[str, str]], *, notify: Notify | None = None
) -> list[str]:
    """Roll back (or uninstall) releases stuck in a pending state. Returns messages."""
    messages = []
    for name, namespace in releases:
        status = cluster.helm_status(name, namespace)
        if status is None or not status.pending:
            continue
        history = cluster.helm_history(name, namespace)
        good = [
            r.revision
            for r in history
            if r.revision < status.revision and r.status in ("deployed", "superseded")
        ]
        if good:
            target = max(good)
            cluster.helm_rollback(name, namespace, target)
            msg = (
                f"release {namespace}/{name} was left {status.status} at revision "
                f"{status.revision} by an interrupted run; rolled back to revision {target}"
            )
        else:
            cluster.helm_uninstall(name, namespace)
            msg = (
                f"release {namespace}/{name} was left {status.status} and never deployed; "
                "uninstalled it"
            )
        messages.append(msg)
        if notify:
            notify(msg)
    return messages
