"""Recovery from deployments that did not finish.

(Which target a command works on, and its lock, are ``target.py``'s; this module is
what a command does about the unfinished work it finds there.)

* A deployment left ``pending``/``in_progress`` by a process that died is marked
  ``interrupted`` (with what is known: who ran it, where, which apps had finished) by the
  next command that touches that target — a deploy or rollback once it holds the lock, or
  a read command when no live process holds the target's lock.
  On a store this process cannot write (``DeploymentDatabase.read_only``), the read
  command says once how many deployments it would have closed, and shows them as found.
* An app whose store writes were lost after helm made a revision (the store was
  unreachable past the tracker's retries; see ``sbkube.state.tracker``) is settled from
  the cluster by the next deploy (``--dry-run`` too): :func:`settle_releases`.
* A Helm release left ``pending-install``/``pending-upgrade``/``pending-rollback`` by an
  interrupted run blocks every later helm operation ("another operation is in progress").
  Before the next deploy, it is rolled back to its last deployed revision, or uninstalled
  if it never deployed, and the user is told.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sbkube.cluster.port import Releases, ReleaseStatus
from sbkube.errors import ClusterError
from sbkube.model import UNFINISHED, AppStatus, utcnow
from sbkube.state import list_deployments

if TYPE_CHECKING:
    from sbkube.cluster.port import ReleaseInfo
    from sbkube.engine.snapshot import Snapshot
    from sbkube.state import (
        DeploymentDatabase,
        DeploymentRepository,
        DeploymentSummary,
        UnsettledApp,
    )

Notify = Callable[[str], None]
# Helm stamps a revision with its client's clock, the store with ours: allow for rounding.
_CLOCK_SLACK = timedelta(seconds=2)
_SETTLED_STATUS = {
    ReleaseStatus.DEPLOYED: AppStatus.SUCCESS,
    ReleaseStatus.SUPERSEDED: AppStatus.SUCCESS,
    ReleaseStatus.FAILED: AppStatus.FAILED,
}


def _reason(summary: DeploymentSummary) -> str:
    who = f"{summary.operator or '?'}@{summary.host or '?'}"
    pid = summary.pid if summary.pid is not None else "?"
    return f"interrupted: the process ({who} pid {pid}) stopped before the deployment finished"


def _close(
    repo: DeploymentRepository,
    summaries: Iterable[DeploymentSummary],
    *,
    notify: Notify | None,
    spare_live_here: bool,
) -> list[str]:
    """Mark deployments ``interrupted``; with ``spare_live_here``, not one whose process
    is still running on this host (the caller does not hold the target's lock)."""
    from sbkube.state import pid_alive

    here = socket.gethostname()
    marked = []
    for summary in summaries:
        alive = summary.pid is not None and summary.host == here and pid_alive(summary.pid)
        if spare_live_here and alive:
            continue
        rec = repo.mark_interrupted(summary.deployment_id, _reason(summary))
        marked.append(rec.deployment_id)
        if notify:
            notify(f"marked deployment {rec.deployment_id} as interrupted ({rec.error_message})")
    return marked


def mark_interrupted_deployments(
    repo: DeploymentRepository, *, cluster: str, namespace: str, notify: Notify | None = None
) -> list[str]:
    """Mark the target's unfinished deployments ``interrupted``. The caller holds the
    target's lock, so every unfinished deployment there belongs to a process that is gone."""
    unfinished = repo.unfinished(cluster=cluster, namespace=namespace)
    return _close(repo, unfinished, notify=notify, spare_live_here=False)


def recover_orphans(db: DeploymentDatabase, *, notify: Notify | None = None) -> list[str]:
    """For read commands: close unfinished deployments whose target has no live lock holder.

    The common case — nothing unfinished — costs one ORM-free query.
    """
    unfinished = list_deployments(db, status=UNFINISHED, limit=None)
    if not unfinished:
        return []
    if db.read_only is not None:
        if notify:
            notify(
                f"state database {db.display} is read-only ({db.read_only}): "
                f"{len(unfinished)} unfinished deployment(s) shown as left, not recovered"
            )
        return []
    from sbkube.state import DeployLocks, DeploymentRepository

    repo = DeploymentRepository(db)
    locks = DeployLocks(db)
    by_target: dict[tuple[str, str], list[DeploymentSummary]] = {}
    for summary in unfinished:
        by_target.setdefault((summary.cluster_id, summary.namespace), []).append(summary)
    marked: list[str] = []
    for (cluster, namespace), summaries in by_target.items():
        if not locks.is_live(cluster, namespace):
            marked += _close(repo, summaries, notify=notify, spare_live_here=True)
    return marked


def recover_pending_releases(
    cluster: Releases,
    releases: Iterable[tuple[str, str]],
    *,
    notify: Notify | None = None,
    snapshot: Snapshot | None = None,
) -> list[str]:
    """Roll back (or uninstall) releases stuck in a pending state. Returns messages.

    The deploy's ``snapshot`` (its releases, read in one LIST) finds them, else one ``helm
    list --pending`` per namespace; only those are looked at closer, and the snapshot
    forgets each (it changed since it was read).
    """
    messages = []
    wanted = list(dict.fromkeys(releases))
    pending: set[tuple[str, str]] = set()
    for namespace in dict.fromkeys(ns for _name, ns in wanted):
        if snapshot is not None and namespace in snapshot.release_namespaces:
            pending.update(p for p in snapshot.pending() if p[1] == namespace)
        else:
            pending.update((name, namespace) for name in cluster.helm_pending(namespace))
    for name, namespace in wanted:
        if (name, namespace) not in pending:
            continue
        if snapshot is not None:
            snapshot.forget(name, namespace)
        status = cluster.helm_status(name, namespace)
        if status is None or not status.pending:
            continue
        history = cluster.helm_history(name, namespace)
        settled = (ReleaseStatus.DEPLOYED, ReleaseStatus.SUPERSEDED)
        good = [r.revision for r in history if r.revision < status.revision and r.status in settled]
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


def _live(app: UnsettledApp, lock_live: bool) -> bool:
    """Whether the app's deployment may still be running (its own writes may yet land)."""
    from sbkube.state import pid_alive

    if app.deployment_status not in UNFINISHED:
        return False
    if app.host == socket.gethostname() and app.pid is not None and pid_alive(app.pid):
        return True
    return lock_live


def _release_fields(cluster: Releases, rel: ReleaseInfo) -> dict[str, Any]:
    try:
        values = cluster.helm_get_values(rel.name, rel.namespace, rel.revision)
    except ClusterError:
        values = dict(rel.values)
    return {
        "release_name": rel.name,
        "namespace": rel.namespace,
        "chart": rel.chart,
        "chart_version": rel.chart_version,
        "app_version": rel.app_version,
        "revision": rel.revision,
        "status": rel.status,
        "values": values,
    }


def settle_releases(
    database: DeploymentDatabase,
    repo: DeploymentRepository,
    cluster: Releases,
    name: str,
    namespace: str,
    apps: Iterable[tuple[str, str, str]],
    *,
    notify: Notify | None = None,
) -> list[str]:
    """Record the Helm revisions that lost store writes hid, and the outcome they show.

    ``name`` and ``namespace`` are the target as recorded; ``apps`` are (app, release
    name, release namespace). For each app, its recordings on the target that neither
    succeeded nor recorded a revision (``unsettled_apps``: one query for all the apps,
    usually empty) are matched against ``helm history``: a revision no recording of the
    target holds, stamped between the recording's start and its end (else the
    next recording's start), is recorded on it once, and the app takes the revision's
    outcome. Recordings of a deployment that may still be running are left alone. Then,
    unless a live process holds the target, its unfinished deployments are closed as
    interrupted (their processes are gone). Returns what was said.
    """
    from sbkube.state import DeployLocks

    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        if notify:
            notify(msg)

    lock_live = DeployLocks(database).is_live(name, namespace)
    apps = list(apps)
    found: dict[str, list[UnsettledApp]] = {}
    for unsettled in repo.unsettled_apps(
        cluster=name, namespace=namespace, apps=[app for app, _, _ in apps]
    ):
        found.setdefault(unsettled.app_name, []).append(unsettled)
    for app_name, release, release_ns in apps:
        candidates = [a for a in found.get(app_name, ()) if not _live(a, lock_live)]
        if not candidates:
            continue
        try:
            history = cluster.helm_history(release, release_ns)
        except ClusterError as err:
            say(f"cannot settle app {app_name} from the cluster: {err.message}")
            continue
        recorded = repo.recorded_revisions(
            cluster=name,
            namespace=namespace,
            release_name=release,
            release_namespace=release_ns,
        )
        unrecorded = [r for r in history if r.revision not in recorded and r.updated is not None]
        now = utcnow()
        for app in sorted(candidates, key=lambda a: a.started_at):
            end = (app.window_end or now) + _CLOCK_SLACK
            mine = sorted(
                (
                    r
                    for r in unrecorded
                    if r.updated is not None and app.started_at - _CLOCK_SLACK <= r.updated <= end
                ),
                key=lambda r: r.revision,
            )
            if not mine:
                continue
            unrecorded = [r for r in unrecorded if r not in mine]
            # An app records one revision of its release: the last one it made (helm
            # makes one per upgrade; an atomic upgrade's rollback would be the second).
            last = mine[-1]
            status = _SETTLED_STATUS.get(last.status)
            note = (
                f"settled from the cluster: helm revision {last.revision} {last.status} (the "
                "store was unreachable when the app finished; its resources were not recorded)"
            )
            if repo.settle_app(
                app.app_id, _release_fields(cluster, last), status=status, note=note
            ):
                say(
                    f"deployment {app.deployment_id}: app {app_name} settled from the "
                    f"cluster as {status or app.app_status} at revision {last.revision}"
                )
    if not lock_live:
        _close(
            repo,
            repo.unfinished(cluster=name, namespace=namespace),
            notify=notify,
            spare_live_here=True,
        )
    return messages
