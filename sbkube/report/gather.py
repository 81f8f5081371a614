"""What ``sbkube state report`` shows, as plain data: read once from the store, then diffed.

:func:`gather` reads the history in a bounded number of statements
(:meth:`DeploymentRepository.get_many`, plus one ``list`` and one ``get`` per target for
the deployment just before the window, so the first deployment of a window has a diff
too) and pairs each deployment with the previous one of the same target. The diffs are
:func:`sbkube.engine.record_diff.diff_deployments`, the same data ``state diff`` prints.

Everything that leaves this module has been through :func:`mask`: the store keeps secrets
as ``sha256:`` digests only, and the report shows not even those, as ``state diff`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sbkube.engine.record_diff import SECRET, Dumps, diff_deployments
from sbkube.model import jsonable
from sbkube.redaction import mask_digests
from sbkube.state import DeploymentRecord, DeploymentRepository


@dataclass(frozen=True, slots=True)
class Scope:
    """Which part of the history a report covers (the command's filters)."""

    since: datetime | None = None
    cluster: str | None = None
    namespace: str | None = None
    app: str | None = None

    def describe(self) -> str:
        parts = [
            f"cluster {self.cluster}" if self.cluster else "",
            f"namespace {self.namespace}" if self.namespace else "",
            f"app {self.app}" if self.app else "",
            f"since {self.since.isoformat(timespec='seconds')}" if self.since else "",
        ]
        return ", ".join(p for p in parts if p) or "the whole history"


@dataclass(frozen=True, slots=True)
class Entry:
    """One deployment of the report and the deployment its diff starts from."""

    record: DeploymentRecord
    previous_id: str | None
    diff: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class History:
    scope: Scope
    entries: tuple[Entry, ...] = field(default_factory=tuple)


def mask(value: Any) -> Any:
    """JSON-ready ``value`` with every secret digest replaced by ``(secret)``.

    Digests reach records from Helm values, config snapshots, Secret payloads and
    ``--set key=value`` arguments; a digest of a short password can be guessed back, so
    the report (a file that is passed around) never carries one.
    """
    if isinstance(value, str):
        return mask_digests(value, SECRET)
    if isinstance(value, Mapping):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value


def _target(rec: DeploymentRecord) -> tuple[str, str]:
    return rec.cluster, rec.namespace


def _narrow(rec: DeploymentRecord, app: str | None) -> DeploymentRecord:
    """With ``--app``, a deployment shows that app only."""
    if app is None:
        return rec
    return dataclasses.replace(rec, apps=tuple(a for a in rec.apps if a.name == app))


def gather(repo: DeploymentRepository, scope: Scope) -> History:
    """The deployments in ``scope`` (oldest first), each with its diff to the previous one."""
    records = repo.get_many(
        cluster=scope.cluster, namespace=scope.namespace, app=scope.app, since=scope.since
    )
    # The previous deployment of a target is the last real one before it: a dry run
    # changed nothing, so it is never a diff's base (and has no diff itself).
    last: dict[tuple[str, str], DeploymentRecord] = {}
    if scope.since is not None:
        for target in dict.fromkeys(_target(r) for r in records if not r.dry_run):
            before = repo.list(
                cluster=target[0],
                namespace=target[1],
                app=scope.app,
                until=scope.since,
                include_dry_run=False,
                limit=1,
            )
            if before:
                last[target] = repo.get(before[0].deployment_id)
    entries = []
    apps = [scope.app] if scope.app else None
    # Each deployment is the newer side of one diff and the older side of the next: one
    # cache makes the YAML of each of its manifests once.
    dumps = Dumps()
    for rec in records:
        base = last.get(_target(rec))
        diff = None
        if base is not None and not rec.dry_run:
            diff = mask(diff_deployments(base, rec, apps=apps, dumps=dumps).to_dict())
        entries.append(
            Entry(
                record=_narrow(rec, scope.app),
                previous_id=base.deployment_id if base is not None and diff is not None else None,
                diff=diff,
            )
        )
        if not rec.dry_run:
            last[_target(rec)] = rec
    return History(scope=scope, entries=tuple(entries))


def detail(entry: Entry) -> dict[str, Any]:
    """The on-demand part of one deployment: its contents and its diff, JSON-ready, masked."""
    rec = entry.record
    apps = []
    for a in rec.apps:
        apps.append(
            {
                "name": a.name,
                "type": str(a.type),
                "namespace": a.namespace,
                "status": str(a.status),
                "error": a.error_message,
                "started_at": jsonable(a.started_at),
                "finished_at": jsonable(a.finished_at),
                "releases": [
                    {
                        "release": h.release_name,
                        "namespace": h.namespace,
                        "chart": h.chart,
                        "version": h.chart_version,
                        "app_version": h.app_version,
                        "revision": h.revision,
                        "status": h.status,
                    }
                    for h in a.helm_releases
                ],
                "resources": [
                    [str(r.action), r.kind, r.namespace or "", r.name, r.api_version]
                    for r in a.resources
                ],
            }
        )
    out = {
        "id": rec.deployment_id,
        "command_args": list(rec.command_args),
        "app_dir": rec.app_dir,
        "config_file": rec.config_file,
        "host": rec.host,
        "sbkube_version": rec.sbkube_version,
        "error": rec.error_message,
        "apps": apps,
        "previous": entry.previous_id,
    }
    masked: dict[str, Any] = mask(out)
    masked["diff"] = entry.diff  # masked by gather() already
    return masked
