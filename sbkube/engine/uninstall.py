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
from typing import Any, Unpack

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
from sbkube.engine.work import kept_on_removal, owned_by, owner_of
from sbkube.manifests import ObjectKey
from sbkube.model import Command, Record, ResourceAction, thaw
from sbkube.state import AppDeploymentRecord, AppHandle, ResourceInput


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
        for key in live_resources(prev):
            live = cluster.get(key)
            if live is None:
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
    described = [
        (
            n,
            loaded.app(n).type,
            loaded.app_namespace(n),
            loaded.release_name(n) if loaded.app(n).type == "helm" else None,
            tuple(loaded.app(n).depends_on),
        )
        for n in names
    ]
    plan = plan_uninstall(
        cluster,
        (target.name, target.namespace),
        described,
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
