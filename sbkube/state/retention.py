"""Retention: which recorded deployments ``sbkube state prune`` may delete, and deleting them.

The unit of retention is an app on a target, ``(cluster, namespace, app)``. A deployment
may go only when, for *every* app it contains, it is neither among the newest
``keep_last`` deployments of that app on that target nor younger than
``older_than_days``. A deployment without apps is judged the same way against all the
deployments of its target. On top of that, some deployments are never deleted:

* the latest successful (non-dry-run) deployment of any app on a target, and the latest
  successful deployment of a target: what sbkube last applied is the base of the next
  deploy's prune and of rollbacks;
* any deployment a rollback's ``rollback_target_id`` points to: the history must keep
  explaining where a rollback went;
* unfinished (``pending`` / ``in_progress``) deployments: they belong to a running
  process, or to recovery.

Planning reads only lightweight columns, in two statements (deployments, apps) whatever
the size of the store, and decides in Python. Applying deletes in one statement per
chunk of :data:`DELETE_CHUNK` ids, in one transaction; the database cascades to apps,
resources and Helm releases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from sbkube.errors import UsageError
from sbkube.model import UNFINISHED, AppStatus, DeploymentStatus, FrozenDict, Record, utcnow
from sbkube.state.database import DeploymentDatabase
from sbkube.state.schema import AppDeployment, Deployment
from sbkube.state.sessions import read_session, write_session

DELETE_CHUNK = 500

# Why a deployment is kept, strongest reason first (each kept deployment counts once).
KEEP_REASONS = (
    "unfinished",
    "rollback_target",
    "latest_success",
    "keep_last",
    "recent",
)


@dataclass(frozen=True, slots=True)
class PruneCandidate(Record):
    """A deployment the plan deletes."""

    deployment_id: str
    cluster: str
    namespace: str
    command: str
    status: str
    dry_run: bool
    started_at: datetime
    apps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PrunePlan(Record):
    keep_last: int
    older_than_days: float
    cutoff: datetime
    total: int
    delete: tuple[PruneCandidate, ...]
    kept: int
    kept_by_reason: FrozenDict = field(default_factory=FrozenDict)

    @property
    def deployment_ids(self) -> tuple[str, ...]:
        return tuple(c.deployment_id for c in self.delete)


@dataclass
class _Row:
    pk: int
    deployment_id: str
    cluster: str
    namespace: str
    command: str
    status: str
    dry_run: bool
    started_at: datetime
    rollback_target_id: str | None
    apps: list[tuple[str, str]] = field(default_factory=list)  # (name, status)
    reasons: set[str] = field(default_factory=set)


def _load(db: DeploymentDatabase) -> list[_Row]:
    with read_session(db) as session:
        deps = session.execute(
            select(
                Deployment.id,
                Deployment.deployment_id,
                Deployment.cluster,
                Deployment.namespace,
                Deployment.command,
                Deployment.status,
                Deployment.dry_run,
                Deployment.started_at,
                Deployment.rollback_target_id,
            ).order_by(Deployment.started_at.desc(), Deployment.id.desc())
        ).all()
        apps = session.execute(
            select(AppDeployment.deployment_pk, AppDeployment.name, AppDeployment.status)
        ).all()
    rows = [
        _Row(
            pk=d.id,
            deployment_id=d.deployment_id,
            cluster=d.cluster,
            namespace=d.namespace,
            command=d.command,
            status=d.status,
            dry_run=bool(d.dry_run),
            started_at=d.started_at,
            rollback_target_id=d.rollback_target_id,
        )
        for d in deps
    ]
    by_pk = {r.pk: r for r in rows}
    for pk, name, status in apps:
        row = by_pk.get(pk)
        if row is not None:
            row.apps.append((name, status))
    return rows


def plan_prune(
    db: DeploymentDatabase,
    *,
    keep_last: int,
    older_than_days: float,
    now: datetime | None = None,
) -> PrunePlan:
    """Decide which deployments retention allows to delete (nothing is deleted here)."""
    if keep_last < 0:
        raise UsageError(f"--keep-last must be 0 or more (got {keep_last})")
    if older_than_days < 0:
        raise UsageError(f"--older-than must be 0 or more days (got {older_than_days:g})")
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    rows = _load(db)  # newest first

    referenced = {r.rollback_target_id for r in rows if r.rollback_target_id}
    per_app: dict[tuple[str, str, str], list[_Row]] = defaultdict(list)
    per_target: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    latest_app_success: set[tuple[str, str, str]] = set()
    latest_target_success: set[tuple[str, str]] = set()

    for row in rows:
        target = (row.cluster, row.namespace)
        per_target[target].append(row)
        if row.status in UNFINISHED:
            row.reasons.add("unfinished")
        if row.deployment_id in referenced:
            row.reasons.add("rollback_target")
        if row.started_at > cutoff:
            row.reasons.add("recent")
        real = not row.dry_run
        if real and row.status == DeploymentStatus.SUCCESS and target not in latest_target_success:
            latest_target_success.add(target)
            row.reasons.add("latest_success")
        for name, app_status in row.apps:
            key = (row.cluster, row.namespace, name)
            per_app[key].append(row)
            if real and app_status == AppStatus.SUCCESS and key not in latest_app_success:
                latest_app_success.add(key)
                row.reasons.add("latest_success")

    # Ranks: a deployment with apps is ranked once per app; one without, in its target.
    for group in per_app.values():
        for row in group[:keep_last]:
            row.reasons.add("keep_last")
    for group in per_target.values():
        for row in group[:keep_last]:
            if not row.apps:
                row.reasons.add("keep_last")

    doomed = [r for r in rows if not r.reasons]
    reasons: dict[str, int] = {}
    for row in rows:
        if row.reasons:
            first = next(r for r in KEEP_REASONS if r in row.reasons)
            reasons[first] = reasons.get(first, 0) + 1
    doomed.reverse()  # report oldest first
    return PrunePlan(
        keep_last=keep_last,
        older_than_days=older_than_days,
        cutoff=cutoff,
        total=len(rows),
        delete=tuple(
            PruneCandidate(
                deployment_id=r.deployment_id,
                cluster=r.cluster,
                namespace=r.namespace,
                command=r.command,
                status=r.status,
                dry_run=r.dry_run,
                started_at=r.started_at,
                apps=tuple(sorted(name for name, _ in r.apps)),
            )
            for r in doomed
        ),
        kept=len(rows) - len(doomed),
        kept_by_reason=FrozenDict((k, reasons[k]) for k in KEEP_REASONS if k in reasons),
    )


def _chunks(ids: tuple[str, ...], size: int) -> Iterator[tuple[str, ...]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def apply_prune(db: DeploymentDatabase, plan: PrunePlan) -> int:
    """Delete the plan's deployments; returns how many were deleted.

    One transaction, one ``DELETE`` per chunk of ids. The statement re-checks the two
    rules that another process could have changed since planning (a new rollback that
    targets a candidate, a candidate reused by a running deployment), so a stale plan
    can delete less, never more.
    """
    ids = plan.deployment_ids
    if not ids:
        return 0
    deleted = 0
    targets = select(Deployment.rollback_target_id).where(
        Deployment.rollback_target_id.is_not(None)
    )
    with write_session(db) as session:
        for chunk in _chunks(ids, DELETE_CHUNK):
            result: Any = session.execute(
                delete(Deployment)
                .where(
                    Deployment.deployment_id.in_(chunk),
                    Deployment.status.not_in(UNFINISHED),
                    Deployment.deployment_id.not_in(targets),
                )
                .execution_options(synchronize_session=False)
            )
            deleted += int(result.rowcount)
    return deleted
