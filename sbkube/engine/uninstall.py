"""``uninstall``: remove an app dir's apps from the cluster, recorded as a deployment.

Per app, from its last successful recording on the target:

* Helm app -> ``helm uninstall --keep-history``: the release's objects go, its revisions
  stay (the current one ``uninstalled``), so ``sbkube rollback`` (a ``helm rollback`` to
  the recorded revision) can bring it back, as with helm itself;
* YAML app -> every object the recording left in place that still carries this app's
  ownership labels is deleted (an object someone else took over is left, with a warning).

The plan is computed first (read-only) and handed to ``confirm``; then, under the
target's lock and through the per-app runner (``runner.run_apps``), each app is removed
and recorded with command ``uninstall``: its resources as ``delete`` with their last
state, its release with status ``uninstalled``. Dependents go before what they depend on
(``concurrency`` apps at once, along the reversed graph); an app whose dependent failed to
go is skipped. Apps with nothing recorded or live are
left out; when no app has anything to remove, nothing is recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Unpack

from sbkube.cluster.port import Cluster, ReleaseStatus
from sbkube.engine.apply import change_for, live_resources, record_release
from sbkube.engine.results import AppOutcome, ReleaseChange, ResourceChange, TargetResult
from sbkube.engine.runner import AppStep, StepChanges
from sbkube.engine.target import (
    Options,
    ReadArgs,
    RunArgs,
    Target,
    config_record,
    confirmed,
)
from sbkube.engine.work import MANAGED_BY, kept_on_removal, owned_by, owner_of
from sbkube.errors import UsageError
from sbkube.manifests import ObjectKey
from sbkube.model import Command, Record, ResourceAction, thaw
from sbkube.state import AppDeploymentRecord, AppHandle, ResourceInput, ResourceRecord

if TYPE_CHECKING:
    from sbkube.config.phases import PhasesFile


@dataclass(frozen=True, slots=True)
class AppUninstallPlan(Record):
    name: str
    type: str
    namespace: str
    action: str  # helm-uninstall | delete
    release_name: str | None = None
    revision: int | None = None
    changes: tuple[ResourceChange, ...] = ()
    # Apps that depend on this one (they are removed first).
    dependents: tuple[str, ...] = ()
    phase: str | None = None
    """The phase of a multi-dir run the app belongs to (None: an app dir's own app)."""


@dataclass(frozen=True, slots=True)
class UninstallPlan(Record):
    cluster: str
    namespace: str
    apps: tuple[AppUninstallPlan, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UninstallResult(TargetResult[AppOutcome]):
    """Outcome of :func:`uninstall`; ``deployment_id`` is None for a dry run or when
    there was nothing to remove."""

    plan: UninstallPlan


def plan_uninstall(
    cluster: Cluster,
    target: tuple[str, str],
    apps: Sequence[tuple[str, str, str, str | None, tuple[str, ...]]],
    recorded: Mapping[str, AppDeploymentRecord | None],
    app_dir: str | None = None,
) -> UninstallPlan:
    """The plan for ``apps`` (name, type, namespace, release name, depends_on), in deploy
    order, on ``target`` (recorded cluster name, namespace); the result lists them in
    removal order (reversed). A YAML app's object is removed only while it carries the
    app's ownership labels (of ``app_dir`` too, when given), and never an adopted
    Namespace."""
    plans: list[AppUninstallPlan] = []
    warnings: list[str] = []
    names = {a[0] for a in apps}
    for name, app_type, app_ns, release_name, _deps in reversed(apps):
        dependents = tuple(n for n, _t, _ns, _r, deps in apps if name in deps and n in names)
        prev = recorded.get(name)
        changes: list[ResourceChange] = []
        for key, res in live_resources(prev).items():
            live = cluster.get(key)
            if live is None:
                continue
            if app_type != "helm" and key[1] == "Namespace" and not _labelled(res):
                # Made for the app's objects, as helm --create-namespace makes one
                # (engine.namespaces): never deleted, since everything in it would go too.
                warnings.append(
                    f"app {name}: Namespace {key[3]} was created for its objects, not from "
                    "its manifests; left in place (deleting it deletes everything in it)"
                )
                continue
            if app_type != "helm" and not owned_by(live, name, app_ns, app_dir):
                warnings.append(
                    f"app {name}: {key[1]} {key[3]} no longer carries its ownership labels "
                    f"({owner_of(live)}); left in place"
                )
                continue
            if app_type != "helm" and kept_on_removal(live):
                warnings.append(
                    f"app {name}: {key[1]} {key[3]} was adopted, not created by sbkube; "
                    "left in place"
                )
                continue
            changes.append(change_for(ResourceAction.DELETE, key))
        if app_type == "helm" and release_name is not None:
            info = cluster.helm_status(release_name, app_ns)
            if info is None or info.status == ReleaseStatus.UNINSTALLED:
                if not changes:
                    continue
                info = None
            plans.append(
                AppUninstallPlan(
                    name,
                    "helm",
                    app_ns,
                    "helm-uninstall",
                    release_name=release_name,
                    revision=info.revision if info else None,
                    changes=tuple(changes),
                    dependents=dependents,
                )
            )
        elif changes:
            plans.append(
                AppUninstallPlan(
                    name, app_type, app_ns, "delete", changes=tuple(changes), dependents=dependents
                )
            )
    return UninstallPlan(*target, tuple(plans), tuple(warnings))


def _labelled(res: ResourceRecord) -> bool:
    """Whether a recorded object carried sbkube's ownership labels when recorded."""
    state = thaw(res.current_state) if res.current_state is not None else {}
    labels = (state.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY) == "sbkube")


def remove_app(
    plan: AppUninstallPlan,
    prev: AppDeploymentRecord | None,
    cluster: Cluster,
    handle: AppHandle,
) -> StepChanges:
    """Remove one app and record it on ``handle``: its resources as ``delete``."""
    recorded = live_resources(prev)
    release: ReleaseChange | None = None
    if plan.action == "helm-uninstall":
        assert plan.release_name is not None
        info = cluster.helm_status(plan.release_name, plan.namespace)
        if info is not None and info.status != ReleaseStatus.UNINSTALLED:
            values: dict[str, Any] = cluster.helm_get_values(plan.release_name, plan.namespace)
            cluster.helm_uninstall(plan.release_name, plan.namespace, keep_history=True)
            gone = replace(info, status=ReleaseStatus.UNINSTALLED)
            record_release(handle, gone, values)
            release = ReleaseChange.of(
                "uninstall", gone, from_revision=info.revision, to_revision=None
            )
    inputs: list[ResourceInput] = []
    for change in plan.changes:
        key: ObjectKey = (change.api_version, change.kind, change.namespace or "", change.name)
        live = cluster.get(key)
        if live is not None:
            cluster.delete(key)
        rec = recorded.get(key)
        state = live if live is not None else thaw(rec.current_state) if rec else None
        if state is not None:
            inputs.append(
                ResourceInput.from_manifest(
                    state,
                    ResourceAction.DELETE,
                    previous=state,
                    source_file=rec.source_file if rec else None,
                )
            )
    handle.record_resources(inputs)
    return plan.changes, release


class UninstallArgs(ReadArgs, RunArgs, total=False):
    """The keywords of :func:`uninstall`."""


def uninstall(
    app_dir: str | os.PathLike[str],
    *,
    cluster: Cluster,
    confirm: Callable[[UninstallPlan], bool] | None = None,
    **args: Unpack[UninstallArgs],
) -> UninstallResult:
    """Remove an app dir's apps (or ``apps``) from ``cluster``; see the module docstring."""
    options = Options(**args)
    # A selector takes the apps that need the picked ones: they would break without them.
    loaded, names = options.load(app_dir, dependents=True)
    target = Target.of_config(loaded, cluster, options)
    target.adopt_renamed()
    plan = plan_uninstall(
        cluster,
        (target.name, target.namespace),
        _described(loaded, names),
        target.last_applied(names),
        str(loaded.app_dir),
    )
    if options.dry_run or not plan.apps:
        return target.result(UninstallResult, dry_run=options.dry_run, plan=plan)
    confirmed(confirm, plan, "uninstall")
    recorded = config_record(loaded, cluster, concurrency=options.concurrency)
    with target.run(command=Command.UNINSTALL, releases=plan.apps, **recorded) as dep:
        # Read again under the lock: a deploy that finished meanwhile changed the record.
        previous = target.last_applied(names)
        steps = [_step(p, previous.get(p.name), cluster, loaded.app(p.name)) for p in plan.apps]
        outcomes = target.run_apps(steps, dep)
    return target.result(UninstallResult, dep, apps=outcomes, plan=plan)


def _described(
    loaded: Any, names: Sequence[str]
) -> list[tuple[str, str, str, str | None, tuple[str, ...]]]:
    """``plan_uninstall``'s apps: (name, type, namespace, release name, depends_on)."""
    return [
        (
            n,
            loaded.app(n).type,
            loaded.app_namespace(n),
            loaded.release_name(n) if loaded.app(n).type == "helm" else None,
            tuple(loaded.app(n).depends_on),
        )
        for n in names
    ]


def _step(
    plan: AppUninstallPlan, prev: AppDeploymentRecord | None, cluster: Cluster, app: Any
) -> AppStep:
    def run(handle: AppHandle) -> StepChanges:
        return remove_app(plan, prev, cluster, handle)

    return AppStep(
        name=plan.name,
        type=plan.type,
        namespace=plan.namespace,
        run=run,
        config=app.model_dump(mode="json"),
        # Reversed: an app is removed only once the apps that depend on it are gone.
        depends_on=plan.dependents,
        label="uninstall",
    )


def uninstall_phases(
    phases_file: PhasesFile,
    *,
    cluster: Cluster,
    phases: Sequence[str] | None = None,
    confirm: Callable[[UninstallPlan], bool] | None = None,
    **args: Unpack[UninstallArgs],
) -> UninstallResult:
    """Remove a multi-dir run's apps (a file of phases) from ``cluster``, recorded as ONE
    ``uninstall`` deployment under the run's target (the cluster, the file's namespace:
    where deploy records the run), each app with its phase, group, app dir and target.

    ``phases``: those phases and every phase that needs them (what needs a removed phase
    would break without it); ``--no-deps``: those phases alone. None: every enabled phase,
    with the app dirs the run took in through ``deps:``. Apps go in reverse: a phase's apps
    after the apps of every phase that needs it, each app dir's after the dirs that deploy
    after it, and within an app dir dependents first (as ``uninstall`` of an app dir)."""
    from sbkube.engine.units import Unit, run_record, select_units

    options = Options(**args)
    if options.apps or options.selectors:
        raise UsageError(
            "--app and --selector do not pick apps of a file of phases for uninstall "
            "(the apps that need them are in other phases): give --phase NAME"
        )
    taken = list(phases_file.order)
    if phases:
        phases_file.closure(list(phases), with_deps=False)  # unknown names: one line
        wanted = set(phases)
        if not options.no_deps:
            needs = {p: set(phases_file.closure([p], with_deps=True)) - {p} for p in taken}
            wanted |= {p for p in taken if needs[p] & wanted}
        taken = [p for p in taken if p in wanted]
        options = replace(options, no_deps=True)
    _taken, loaded_units = select_units(phases_file, taken, options)
    target = Target.of_phases(phases_file, cluster, options)
    target.adopt_renamed()
    names = [n for _p, _g, _l, unit_names in loaded_units for n in unit_names]
    recorded = target.last_applied(names)
    # Who deploys after whom across app dirs: a phase after the phases it depends on, a
    # group after the groups of its deps.
    after: dict[str, set[str]] = {}
    apps_of: dict[str, list[str]] = {}
    for phase, group, _loaded, unit_names in loaded_units:
        apps_of.setdefault(phase, []).extend(unit_names)
        apps_of.setdefault(group.name, []).extend(unit_names)
    for phase, group, _loaded, unit_names in loaded_units:
        before = {*phases_file.closure([phase], with_deps=True)} - {phase}
        earlier = {n for b in (*before, *group.deps) for n in apps_of.get(b, ())}
        for name in unit_names:
            after[name] = earlier
    parts: list[AppUninstallPlan] = []
    warnings: list[str] = []
    loaded_of: dict[str, Any] = {}
    metadata: dict[str, dict[str, str]] = {}
    for phase, group, loaded, unit_names in reversed(loaded_units):
        part = plan_uninstall(
            cluster,
            (target.name, target.namespace),
            _described(loaded, unit_names),
            recorded,
            str(loaded.app_dir),
        )
        parts += part.apps
        warnings += part.warnings
        for n in unit_names:
            loaded_of[n] = loaded
            metadata[n] = {
                "phase": phase,
                "group": group.name,
                "app_dir": str(loaded.app_dir),
                "target": f"{target.name}/{loaded.config.namespace}",
            }
    planned = {p.name for p in parts}
    apps = tuple(
        replace(
            p,
            dependents=(
                *p.dependents,
                *sorted(n for n in planned if p.name in after.get(n, ()) and n != p.name),
            ),
            phase=metadata[p.name]["phase"],
        )
        for p in parts
    )
    plan = UninstallPlan(target.name, target.namespace, apps, tuple(warnings))
    if options.dry_run or not plan.apps:
        return target.result(UninstallResult, dry_run=options.dry_run, plan=plan)
    confirmed(confirm, plan, "uninstall")
    units = [Unit(p, g, ld, ()) for p, g, ld, _n in loaded_units]
    record = run_record(phases_file, units, cluster, options.concurrency)
    also = sorted({ld.config.namespace for _p, _g, ld, _n in loaded_units} - {target.namespace})
    with target.run(command=Command.UNINSTALL, releases=plan.apps, also=also, **record) as dep:
        previous = target.last_applied(names)
        steps = [
            replace(
                _step(p, previous.get(p.name), cluster, loaded_of[p.name].app(p.name)),
                metadata=metadata[p.name],
            )
            for p in plan.apps
        ]
        outcomes = target.run_apps(steps, dep)
    return target.result(UninstallResult, dep, apps=outcomes, plan=plan)
