"""Drift: what the record says is on the cluster, compared with what the cluster holds.

For every app, the target's last successful recording of it (``last_successful_app``) is
the reference: each resource it left in place is read live through the cluster port and
its recorded fields compared with the live ones (``compare.differences``, digest-aware:
the record keeps secrets as digests), and a field sbkube's field manager still owns live
that the record no longer has (``compare.removed``: removed from the manifest, yet never
removed from the cluster) is drift too; fields other managers own are not. For a Helm app
the release's current revision must also be the recorded one, in the ``deployed`` state.
An app is

* ``in-sync``: every recorded object exists with every recorded field unchanged;
* ``drifted``: something changed outside sbkube (a field, an object gone, another Helm
  revision), with the changed field paths;
* ``missing``: nothing of it is left live (its release and every object are gone);
* ``not-deployed``: nothing is recorded for it (never deployed, or uninstalled).

An app whose recorded run put nothing in the cluster is ``in-sync``: a git or http app's
fetch, a noop, exec or command-hook app's run (nothing of it lives there to drift).

Health is read from the same live objects (``health.object_health``, Argo CD's rules):
each recorded object has one (``Missing`` when it is gone), and an app's is the worst of
its objects' (``health.worst``), a Helm release that is gone counting as ``Missing``.
A hook that Helm deleted as its ``hook-delete-policy`` asks (``hook-succeeded``) is not
missing: it is left out. Hooks (and a chart's ``crds/``) are left out of an app's health,
as Argo CD leaves hooks out: they are not what runs. A not-deployed app has no health (None).

The cluster is read in batches (:func:`read_live`), as deploy reads it: Helm's releases
in one LIST of its storage Secrets, the recorded objects with one LIST per kind and
namespace, whatever the number of apps and objects.

A cluster that cannot be reached (no such context, no kubeconfig, a memory-cluster file
another process serves) is an error naming it (exit 1), never a report.

A file of phases (:func:`status_phases`) is read as deploy runs it: every app of the phases
taken, under the run's own target, each app saying its phase.

Only data here; ``sbkube status`` renders it. Reads only: no lock, nothing recorded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Unpack

from sbkube.cluster.port import Cluster, ObjectKey, ReleaseInfo, ReleaseStatus
from sbkube.engine.apply import live_resources
from sbkube.engine.compare import differences, removed
from sbkube.engine.health import Health, object_health, worst
from sbkube.engine.results import TargetResult
from sbkube.engine.target import Options, ReadArgs, Target
from sbkube.errors import ClusterError
from sbkube.model import Record, thaw
from sbkube.state import AppDeploymentRecord, ResourceRecord

if TYPE_CHECKING:
    from sbkube.config.phases import PhasesFile


class DriftState(StrEnum):
    IN_SYNC = "in-sync"
    DRIFTED = "drifted"
    MISSING = "missing"
    NOT_DEPLOYED = "not-deployed"


@dataclass(frozen=True, slots=True)
class ObjectDrift(Record):
    """One recorded object against its live copy; ``fields`` are the changed paths."""

    api_version: str
    kind: str
    namespace: str | None
    name: str
    state: DriftState
    fields: tuple[str, ...] = ()
    health: Health = Health.HEALTHY
    health_message: str = ""
    hook: str | None = None

    @property
    def ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"


@dataclass(frozen=True, slots=True)
class ReleaseDrift(Record):
    """A Helm release: the recorded revision against the current one (None: gone)."""

    release_name: str
    namespace: str
    recorded_revision: int
    live_revision: int | None
    live_status: str | None
    state: DriftState


@dataclass(frozen=True, slots=True)
class AppDrift(Record):
    name: str
    type: str | None
    namespace: str | None
    state: DriftState
    deployment_id: str | None
    release: ReleaseDrift | None = None
    objects: tuple[ObjectDrift, ...] = ()
    health: Health | None = None
    phase: str | None = None
    """The phase of a multi-dir run the app belongs to (None: an app dir's own app)."""

    @property
    def unhealthy(self) -> tuple[ObjectDrift, ...]:
        """The objects (hooks aside) that are not Healthy."""
        return tuple(o for o in self.objects if o.hook is None and o.health != Health.HEALTHY)

    @property
    def reasons(self) -> tuple[str, ...]:
        """One short phrase per difference, for a table."""
        out: list[str] = []
        rel = self.release
        if rel is not None and rel.state != DriftState.IN_SYNC:
            if rel.live_revision is None:
                out.append(f"release {rel.release_name} gone")
            else:
                out.append(
                    f"release {rel.release_name} at revision {rel.live_revision} "
                    f"({rel.live_status}), recorded {rel.recorded_revision}"
                )
        for obj in self.objects:
            if obj.state == DriftState.MISSING:
                out.append(f"{obj.ref} missing")
            elif obj.state == DriftState.DRIFTED:
                out.append(f"{obj.ref}: {', '.join(obj.fields)}")
        for obj in self.unhealthy:
            if obj.health != Health.MISSING:
                why = f": {obj.health_message}" if obj.health_message else ""
                out.append(f"{obj.ref} {obj.health}{why}")
        return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftReport(TargetResult[AppDrift]):
    """Each app's drift on the target (``dry_run``: nothing was changed)."""

    dry_run: bool = True

    @property
    def drifted(self) -> bool:
        """True when any app is drifted or missing."""
        return any(a.state in (DriftState.DRIFTED, DriftState.MISSING) for a in self.apps)

    @property
    def failing(self) -> bool:
        """True when any app is drifted or missing, or its health is Degraded or Missing
        (``--exit-code`` exits 1)."""
        return self.drifted or any(a.health is not None and a.health.failing for a in self.apps)


@dataclass(frozen=True, slots=True)
class LiveReads:
    """What the cluster holds of recorded apps, read in batches (:func:`read_live`)."""

    releases: Mapping[tuple[str, str], ReleaseInfo] | None
    """Current revisions by (namespace, release); None: ask ``helm status``."""
    objects: Mapping[ObjectKey, dict[str, Any] | None]


def read_live(cluster: Cluster, recorded: Sequence[AppDeploymentRecord | None]) -> LiveReads:
    """The releases and the live objects of ``recorded``, whatever their number: Helm's
    releases in one label-selector LIST of Secrets (per namespace, or one for the
    cluster), the objects with one LIST per kind and namespace."""
    apps = [r for r in recorded if r is not None]
    namespaces = sorted({a.helm_release.namespace for a in apps if a.helm_release is not None})
    releases = cluster.helm_releases(namespaces) if namespaces else {}
    keys = list(dict.fromkeys(key for a in apps for key in live_resources(a)))
    return LiveReads(releases, cluster.list_many(keys) if keys else {})


def app_drift(
    cluster: Cluster,
    name: str,
    recorded: AppDeploymentRecord | None,
    reads: LiveReads | None = None,
) -> AppDrift:
    """One app's drift against its last successful recording (None: never recorded);
    ``reads``: what :func:`read_live` read of it (else it is read now)."""
    if recorded is None:
        return AppDrift(name, None, None, DriftState.NOT_DEPLOYED, None)
    rel = recorded.helm_release
    wanted = live_resources(recorded)
    if not wanted and rel is None and not recorded.resources:
        # What ran is recorded and put nothing in the cluster that could drift: a git or
        # http app's fetch, a noop, exec or command-hook app's run. (An uninstall records
        # the objects it deleted, so an uninstalled app is not-deployed below.)
        return AppDrift(
            name, recorded.type, recorded.namespace, DriftState.IN_SYNC, recorded.deployment_id
        )
    if not wanted and (rel is None or rel.status == ReleaseStatus.UNINSTALLED):
        return AppDrift(
            name, recorded.type, recorded.namespace, DriftState.NOT_DEPLOYED, recorded.deployment_id
        )
    release: ReleaseDrift | None = None
    if rel is not None:
        if reads is not None and reads.releases is not None:
            live_rel = reads.releases.get((rel.namespace, rel.release_name))
        else:
            live_rel = cluster.helm_status(rel.release_name, rel.namespace)
        if live_rel is None or live_rel.status == ReleaseStatus.UNINSTALLED:
            rel_state = DriftState.MISSING
        elif live_rel.revision != rel.revision or live_rel.status != ReleaseStatus.DEPLOYED:
            rel_state = DriftState.DRIFTED
        else:
            rel_state = DriftState.IN_SYNC
        release = ReleaseDrift(
            rel.release_name,
            rel.namespace,
            rel.revision,
            live_rel.revision if live_rel is not None else None,
            live_rel.status if live_rel is not None else None,
            rel_state,
        )
    objects: list[ObjectDrift] = []
    for key, res in wanted.items():
        api_version, kind, namespace, obj_name = key
        live = reads.objects.get(key) if reads is not None else cluster.get(key)
        if live is None and deleted_by_helm(res):
            continue
        health = object_health(live)
        if live is None:
            paths: tuple[str, ...] = ()
            state = DriftState.MISSING
        else:
            desired = thaw(res.current_state) if res.current_state is not None else {}
            paths = tuple(differences(desired, live, digests=True))
            if desired:
                paths += tuple(r.path for r in removed(desired, live))
            state = DriftState.DRIFTED if paths else DriftState.IN_SYNC
        objects.append(
            ObjectDrift(
                api_version,
                kind,
                namespace or None,
                obj_name,
                state,
                paths,
                health.status,
                health.message,
                res.hook,
            )
        )
    states = [o.state for o in objects] + ([release.state] if release is not None else [])
    if states and all(s == DriftState.MISSING for s in states):
        state = DriftState.MISSING
    elif any(s != DriftState.IN_SYNC for s in states):
        state = DriftState.DRIFTED
    else:
        state = DriftState.IN_SYNC
    return AppDrift(
        name,
        recorded.type,
        recorded.namespace,
        state,
        recorded.deployment_id,
        release,
        tuple(objects),
        app_health(objects, release),
    )


def deleted_by_helm(res: ResourceRecord) -> bool:
    """A hook whose ``helm.sh/hook-delete-policy`` has Helm delete it once it has run
    (``hook-succeeded``, or ``hook-failed``: a hook that failed fails its release): that it
    is gone is what the chart asked for, not drift."""
    if res.hook is None or res.current_state is None:
        return False
    annotations = (res.current_state.get("metadata") or {}).get("annotations") or {}
    policy = str(annotations.get("helm.sh/hook-delete-policy") or "")
    return bool({p.strip() for p in policy.split(",")} & {"hook-succeeded", "hook-failed"})


def app_health(objects: Sequence[ObjectDrift], release: ReleaseDrift | None = None) -> Health:
    """An app's health: the worst of its objects' (hooks aside), a Helm release that is gone
    counting as Missing."""
    healths = [o.health for o in objects if o.hook is None]
    if release is not None and release.state == DriftState.MISSING:
        healths.append(Health.MISSING)
    return worst(healths)


def check_drift(target: Target, apps: Sequence[str]) -> DriftReport:
    """Drift of ``apps`` on ``target``.

    A cluster that cannot be read is an error naming it (exit 1), never a report."""
    cluster = target.cluster
    target.note_other_cluster()
    try:
        last = target.last_applied(apps)
        recorded = [last[name] for name in apps]
        reads = read_live(cluster, recorded)
        drifts = tuple(
            app_drift(cluster, name, rec, reads) for name, rec in zip(apps, recorded, strict=True)
        )
    except ClusterError as err:
        raise ClusterError(f"cluster {cluster.name}: {err.message}") from err
    return target.result(DriftReport, apps=drifts)


def status(
    app_dir: str | os.PathLike[str], *, cluster: Cluster, **args: Unpack[ReadArgs]
) -> DriftReport:
    """Drift of an app dir's apps (``apps``: a selection) on ``cluster``; ``namespace``
    overrides config.yaml's (``target.ReadArgs``)."""
    options = Options(**args)
    loaded, names = options.load(app_dir)
    # Asked before anything else: an app with no record reads nothing live, and a status of
    # a cluster that cannot be reached would say "not-deployed" of everything.
    cluster.check_reachable()
    return check_drift(Target.of_config(loaded, cluster, options), names)


def status_phases(
    phases_file: PhasesFile,
    *,
    cluster: Cluster,
    phases: Sequence[str] | None = None,
    **args: Unpack[ReadArgs],
) -> DriftReport:
    """Drift of a multi-dir run's apps (a file of phases): the apps of the phases taken as
    ``deploy`` takes them (``phases``: ``--phase`` names with the phases they need; ``apps``,
    ``selectors``), each against its last successful recording under the run's target
    (the cluster, the file's namespace: where deploy records the run), each with its phase."""
    from sbkube.engine.units import select_units

    options = Options(**args)
    _taken, units = select_units(phases_file, phases, options)
    cluster.check_reachable()
    target = Target.of_phases(phases_file, cluster, options)
    phase_of = {name: phase for phase, _group, _loaded, names in units for name in names}
    report = check_drift(target, list(phase_of))
    return replace(report, apps=tuple(replace(a, phase=phase_of[a.name]) for a in report.apps))
