"""Executing a rollback plan (``rollback_plan``): the rollback is itself a deployment.

Command ``rollback``, ``rollback_target_id`` = TARGET, recorded through the same tracker,
under the same lock and through the same per-app runner as deploy (``concurrency`` apps
at once, along the ``depends_on`` graph TARGET's config recorded: an app waits for the
apps it depended on then, and is skipped when one of them fails); on success SOURCE is
marked ``rolled_back``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Unpack

from sbkube.cluster.port import Cluster, ReleaseInfo, UpgradeRequest
from sbkube.engine.apply import helm_resource_inputs, live_resources, record_release
from sbkube.engine.record_diff import apps_of_phases
from sbkube.engine.results import AppOutcome, ReleaseChange, TargetResult
from sbkube.engine.rollback_plan import (
    AppRollbackPlan,
    RollbackPlan,
    hooks_run_by,
    plan_app_names,
    plan_rollback,
    recorded_chart,
    resolve_pair,
    restored_state,
    restored_values,
)
from sbkube.engine.runner import AppStep, StepChanges
from sbkube.engine.target import Options, RunArgs, StoreArg, Target, confirmed
from sbkube.engine.wait import wait_and_record
from sbkube.errors import RefusedError
from sbkube.manifests import ObjectKey
from sbkube.model import Command, DeploymentStatus, ResourceAction, thaw
from sbkube.state import AppDeploymentRecord, AppHandle, DeploymentRecord, ResourceInput


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackResult(TargetResult[AppOutcome]):
    """Outcome of ``sbkube.engine.rollback``: the plan, and for a real run the recorded
    deployment and each app's outcome."""

    plan: RollbackPlan

    @property
    def app_status(self) -> tuple[tuple[str, str, str | None], ...]:
        """Each app's ``(name, status, error)``."""
        return tuple((o.name, o.status.value, o.error) for o in self.apps)


def _upgrade_to_recorded(
    plan: AppRollbackPlan,
    t_app: AppDeploymentRecord,
    target: DeploymentRecord,
    cluster: Cluster,
    handle: AppHandle,
) -> tuple[ReleaseInfo, dict[str, Any]]:
    """``helm upgrade`` to the chart and unsealed values ``t_app`` recorded: the rollback
    of a release whose history no longer holds the recorded revision as it was."""
    assert plan.release_name
    values, why = restored_values(t_app.helm_release)  # type: ignore[arg-type]
    if values is None:  # the plan refused this already; the key went away since
        raise RefusedError(f"app {t_app.name}: cannot restore the recorded values: {why}")
    chart = recorded_chart(t_app, target)
    before = cluster.helm_status(plan.release_name, plan.namespace, chart=False)
    config = t_app.config
    info = cluster.helm_upgrade_install(
        UpgradeRequest(
            chart,
            release_name=plan.release_name,
            namespace=plan.namespace,
            values=values,
            wait=bool(config.get("wait", False)),
            timeout=config.get("timeout"),
            force_conflicts=before is not None and before.apply_method == "ssa",
        )
    )
    if not info.manifest and not info.hooks:
        info = cluster.helm_status(plan.release_name, plan.namespace) or info
    handle.set_metadata(
        chart_ref=chart.ref,
        chart_version_requested=chart.version,
        previous_revision=before.revision if before else None,
        rollback_by="upgrade",
        rollback_reason=plan.reason,
    )
    return info, values


def _execute_app(
    plan: AppRollbackPlan,
    t_app: AppDeploymentRecord | None,
    current: AppDeploymentRecord | None,
    cluster: Cluster,
    handle: AppHandle,
    target: DeploymentRecord,
    live_now: Mapping[ObjectKey, dict[str, Any] | None] | None = None,
    releases_now: Mapping[tuple[str, str], ReleaseInfo] | None = None,
) -> StepChanges:
    """Carry out one app's plan and record it on ``handle``; what it changed.
    ``live_now``: the objects of the plan's YAML apps, read in one batch before any app
    ran (:func:`read_planned_objects`); the app's other objects are read in one batch when
    it starts."""
    if plan.action == "unchanged" and plan.type == "helm":
        kept = _kept_release(plan, cluster, releases_now)
        if kept is not None:
            return kept_release(handle, kept, t_app, current)
        # The release changed since the plan read it: rolled back after all.
        handle.set_metadata(rollback_reason="the release changed after the plan was made")
        plan = replace(plan, action="helm-rollback")
    if plan.action in ("helm-rollback", "helm-upgrade"):
        assert t_app is not None and plan.release_name and plan.to_revision
        if plan.action == "helm-rollback":
            # The revision the rollback made, with its values, manifest and hooks, as
            # Helm's storage holds it (``Releases.helm_rollback``).
            info = cluster.helm_rollback(plan.release_name, plan.namespace, plan.to_revision)
            values = dict(info.values)
        else:
            info, values = _upgrade_to_recorded(plan, t_app, target, cluster, handle)
        # The new revision is made from the target's chart: it keeps that chart's digest,
        # so a later deploy of the same chart files and values finds nothing to upgrade.
        recorded = t_app.helm_release
        record_release(handle, info, values, recorded.chart_digest if recorded else None)
        # The revision the rollback made, as Helm installed it (the tracker scrubs the
        # values' secrets wherever the chart rendered them).
        helm_inputs, changes = helm_resource_inputs(
            info.manifest, current, hooks=hooks_run_by(plan.action, info.hooks)
        )
        handle.record_resources(helm_inputs)
        release = ReleaseChange.of(
            "rollback" if plan.action == "helm-rollback" else "upgrade",
            info,
            from_revision=plan.from_revision,
            to_revision=info.revision,
        )
        return tuple(changes), release
    if plan.action == "uninstall":
        assert plan.release_name
        cluster.helm_uninstall(plan.release_name, plan.namespace)
    inputs: list[ResourceInput] = []
    wanted = live_resources(t_app) if t_app is not None else {}
    keys: list[ObjectKey] = [
        (c.api_version, c.kind, c.namespace or "", c.name) for c in plan.changes
    ]
    known = live_now or {}
    unread = [key for key in keys if key not in known]
    fresh = cluster.get_many(unread) if unread else {}
    to_apply: list[dict[str, Any]] = []
    to_delete: list[ObjectKey] = []
    for change, key in zip(plan.changes, keys, strict=True):
        live = copy.deepcopy(known[key]) if key in known else fresh[key]
        if change.action == ResourceAction.DELETE:
            if live is not None and plan.action != "uninstall":
                to_delete.append(key)
            state = live if live is not None else thaw(live_resources(current)[key].current_state)
            inputs.append(ResourceInput.from_manifest(state, ResourceAction.DELETE, previous=state))
            continue
        res = wanted[key]
        restored, _why = restored_state(res)
        action = ResourceAction(change.action)
        if action != ResourceAction.UNCHANGED and restored is None:
            # Only digests recorded, or sealed without the key (forced): left as it is live.
            stored = thaw(res.current_state)
            action, state = ResourceAction.UNCHANGED, live if live is not None else stored
        else:
            state = restored if restored is not None else thaw(res.current_state)
            if action != ResourceAction.UNCHANGED:
                to_apply.append(state)
        inputs.append(
            ResourceInput.from_manifest(state, action, previous=live, source_file=res.source_file)
        )
    # As a deploy does: the app's objects in one apply, then what it no longer has removed.
    cluster.apply_many(to_apply)
    cluster.delete_many(to_delete)
    handle.record_resources(inputs)
    if t_app is not None and t_app.metadata.get("source") is not None:
        # A git or http app: the rollback stands at the source TARGET recorded (its objects
        # and charts are restored from the record; nothing is fetched).
        handle.set_metadata(source=thaw(t_app.metadata["source"]))
    if t_app is not None and t_app.config.get("wait") and wanted and not cluster.dry_run:
        # As the deploy it restores did: done once its objects are healthy.
        wait_and_record(cluster, list(wanted), t_app.config.get("timeout"), handle)
    return plan.changes, None


def _kept_release(
    plan: AppRollbackPlan,
    cluster: Cluster,
    releases_now: Mapping[tuple[str, str], ReleaseInfo] | None,
) -> ReleaseInfo | None:
    """The release an ``unchanged`` Helm plan leaves as it is, read under the lock; None
    when it no longer stands at the planned revision."""
    assert plan.release_name
    if releases_now is None:
        info = cluster.helm_status(plan.release_name, plan.namespace)
    else:
        info = releases_now.get((plan.namespace, plan.release_name))
    if info is None or info.revision != plan.to_revision or info.status != "deployed":
        return None
    return info


def kept_release(
    handle: AppHandle,
    info: ReleaseInfo,
    t_app: AppDeploymentRecord | None,
    current: AppDeploymentRecord | None,
) -> StepChanges:
    """Record a Helm app left at its current revision (the one rolled back to): its
    release as Helm holds it, every object ``unchanged``; no helm process."""
    recorded = t_app.helm_release if t_app is not None else None
    record_release(handle, info, dict(info.values), recorded.chart_digest if recorded else None)
    inputs, changes = helm_resource_inputs(info.manifest, current, unchanged=True)
    handle.record_resources(inputs)
    release = ReleaseChange.of(
        "unchanged", info, from_revision=info.revision, to_revision=info.revision
    )
    return tuple(changes), release


def read_kept_releases(
    plans: Sequence[AppRollbackPlan], cluster: Cluster
) -> dict[tuple[str, str], ReleaseInfo] | None:
    """The current revision of each release an ``unchanged`` Helm plan keeps, from one
    LIST of Helm's storage Secrets (None: Helm keeps them elsewhere; each is asked)."""
    namespaces = sorted(
        {p.namespace for p in plans if p.type == "helm" and p.action == "unchanged"}
    )
    return cluster.helm_releases(namespaces) if namespaces else {}


def rollback_step(
    app_plan: AppRollbackPlan,
    t_app: AppDeploymentRecord | None,
    target: DeploymentRecord | None,
    current: AppDeploymentRecord | None,
    cluster: Cluster,
    *,
    rollback_info: Mapping[str, Any],
    depends_on: tuple[str, ...] = (),
    metadata: Mapping[str, Any] | None = None,
    live_now: Mapping[ObjectKey, dict[str, Any] | None] | None = None,
    releases_now: Mapping[tuple[str, str], ReleaseInfo] | None = None,
) -> AppStep:
    """The runner step that carries out one app's plan (``target``: the deployment that
    recorded ``t_app``; None for a removal); ``live_now``: :func:`read_planned_objects`;
    ``releases_now``: :func:`read_kept_releases`."""

    def run(handle: AppHandle) -> StepChanges:
        return _execute_app(
            app_plan,
            t_app,
            current,
            cluster,
            handle,
            target,  # type: ignore[arg-type]
            live_now,
            releases_now,
        )

    return AppStep(
        name=app_plan.name,
        type=app_plan.type,
        namespace=app_plan.namespace,
        run=run,
        config=thaw(t_app.config) if t_app else None,
        depends_on=depends_on,
        rollback_info=rollback_info,
        label=app_plan.action,
        metadata=metadata,
    )


_PLACE = ("phase", "group", "app_dir", "target")


def planned_keys(plans: Sequence[AppRollbackPlan]) -> list[ObjectKey]:
    """The live objects the YAML apps of ``plans`` (reapply, unchanged, delete) change or
    keep, read once before any app runs. An object more than one app names is left out
    (an earlier app may change it: read when it is reached), as are a Helm app's (its
    release changes them first)."""
    seen: dict[ObjectKey, int] = {}
    for app_plan in plans:
        if app_plan.type == "helm":
            continue
        for change in app_plan.changes:
            key: ObjectKey = (
                change.api_version,
                change.kind,
                change.namespace or "",
                change.name,
            )
            seen[key] = seen.get(key, 0) + 1
    shared = {
        (c.api_version, c.kind, c.namespace or "", c.name)
        for app_plan in plans
        if app_plan.type == "helm"
        for c in app_plan.changes
    }
    return [key for key, n in seen.items() if n == 1 and key not in shared]


def read_planned_objects(
    plans: Sequence[AppRollbackPlan], cluster: Cluster
) -> dict[ObjectKey, dict[str, Any] | None]:
    """:func:`planned_keys`, with one LIST per kind and namespace whatever the number of
    apps."""
    keys = planned_keys(plans)
    return cluster.list_many(keys) if keys else {}


def rollback_steps(
    plan: RollbackPlan,
    target: DeploymentRecord,
    current: Mapping[str, AppDeploymentRecord | None],
    cluster: Cluster,
    live_now: Mapping[ObjectKey, dict[str, Any] | None] | None = None,
    releases_now: Mapping[tuple[str, str], ReleaseInfo] | None = None,
) -> list[AppStep]:
    """One runner step per app of the plan, recorded with where it rolls back from and to;
    ``live_now``: :func:`read_planned_objects`; ``releases_now``:
    :func:`read_kept_releases`."""

    def step(app_plan: AppRollbackPlan) -> AppStep:
        t_app = target.app(app_plan.name)
        # An app of a multi-dir run keeps its phase, app dir and target (engine.phases).
        was = t_app or current.get(app_plan.name)
        placed = {k: was.metadata[k] for k in _PLACE if was is not None and k in was.metadata}
        return rollback_step(
            app_plan,
            t_app,
            target,
            current[app_plan.name],
            cluster,
            depends_on=tuple((t_app.config if t_app else {}).get("depends_on") or ()),
            metadata=thaw(placed) or None,
            rollback_info={
                "from_deployment": plan.source_id,
                "to_deployment": plan.target_id,
                "action": app_plan.action,
                "from_revision": app_plan.from_revision,
                "to_revision": app_plan.to_revision,
                **({"reason": app_plan.reason} if app_plan.reason else {}),
            },
            live_now=live_now,
            releases_now=releases_now,
        )

    return [step(app_plan) for app_plan in plan.apps]


def rollback(
    db: StoreArg,
    cluster: Cluster,
    *,
    deployment_id: str | None = None,
    to: str | None = None,
    apps: Sequence[str] | None = None,
    force: bool = False,
    allow_removal: bool = False,
    namespace: str | None = None,
    confirm: Callable[[RollbackPlan], bool] | None = None,
    configured_cluster: str | None = None,
    phases: Sequence[str] | None = None,
    **args: Unpack[RunArgs],
) -> RollbackResult:
    """Roll back to a recorded deployment; see ``rollback_plan`` and the module docstring.

    ``configured_cluster`` is config.yaml's ``cluster:`` (the name the target's deployments
    are recorded under), when the rollback was given the app dir; the other keywords are
    the shared ones of a command that records a deployment (``target.RunArgs``).
    """
    # The namespace is known once SOURCE is: until then, the one given (or none).
    target = Target.open(
        cluster,
        namespace=namespace or "",
        configured_cluster=configured_cluster,
        options=Options(db=db, apps=apps, namespace=namespace, **args),
    )
    repo = target.repo
    adopt_namespace = namespace
    if adopt_namespace is None and deployment_id and not deployment_id.startswith("latest"):
        # An id names its target: that is the one whose history may need carrying over.
        adopt_namespace = repo.get(repo.resolve(deployment_id)).namespace
    if adopt_namespace is not None:
        target.at(adopt_namespace).adopt_renamed()
    elif target.identity is not None:
        # 'latest' of any namespace: the records still keyed by the name, in every one.
        repo.adopt_identity(name=target.name, identity=target.identity, namespace=None)
    source, to_dep = resolve_pair(
        repo,
        cluster,
        deployment_id=deployment_id,
        to=to,
        namespace=namespace,
        force=force,
        name=target.key,
        app=apps[0] if apps is not None and len(apps) == 1 else None,
    )
    if phases:
        apps = apps_of_phases(source, to_dep, phases, apps)
    target = target.at(source.namespace)
    if configured_cluster is None:
        # Given an id alone, the rollback is recorded under the name its source showed.
        target = replace(target, name=source.cluster)
    # Each app's last successful recording, read once: the plan and the execution use it.
    current = target.last_applied(plan_app_names(source, to_dep))
    plan = plan_rollback(
        repo,
        cluster,
        source,
        to_dep,
        apps=apps,
        force=force,
        allow_removal=allow_removal,
        current=current,
    )
    if target.options.dry_run:
        return target.result(RollbackResult, dry_run=True, plan=plan)
    confirmed(confirm, plan, "rollback")
    with target.run(
        command=Command.ROLLBACK,
        releases=plan.apps,
        app_dir=to_dep.app_dir,
        config=thaw(to_dep.config_snapshot) if to_dep.config_snapshot else None,
        config_file=to_dep.config_file,
        sources=thaw(to_dep.sources_snapshot) if to_dep.sources_snapshot else None,
        rollback_target_id=to_dep.deployment_id,
        # What it restores was made with that profile: list --profile finds the rollback too.
        profile=to_dep.profile,
    ) as dep:
        # Under the lock, before any app runs: the YAML apps' objects in one batch.
        live_now = read_planned_objects(plan.apps, cluster)
        releases_now = read_kept_releases(plan.apps, cluster)
        steps = rollback_steps(plan, to_dep, current, cluster, live_now, releases_now)
        outcomes = target.run_apps(steps, dep)
    if dep.status == DeploymentStatus.SUCCESS and source.deployment_id != to_dep.deployment_id:
        repo.set_status(source.deployment_id, DeploymentStatus.ROLLED_BACK)
    return target.result(RollbackResult, dep, apps=outcomes, plan=plan)
