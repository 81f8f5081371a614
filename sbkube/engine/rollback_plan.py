"""Planning a rollback: which deployment to go back to, and what that means per app.

Terms: SOURCE is the deployment rolled back *from* (default: the target's latest), TARGET
the deployment rolled back *to* (default: the last successful deployment before SOURCE).

The plan, per app (computed read-only, printed before anything runs):

* Helm app in TARGET -> ``helm rollback`` to the revision TARGET recorded (not "previous");
* YAML app in TARGET -> re-apply TARGET's manifests, delete objects sbkube manages now
  that TARGET did not have, recreate those deleted since;
* app in SOURCE but absent from TARGET -> uninstalled / its objects deleted (only with
  ``force``, since it removes an app);
* unchanged apps are listed and left alone.

Refused (``RefusedError``/``NotFoundError``, exit 2): TARGET on another cluster or
namespace, TARGET not successful (unless ``force``), unknown ids (nearest suggested), a
Secret that would have to be restored but whose data the store only has as digests
(named, unless ``force``, which leaves that Secret as it is live), a Helm revision that is
no longer in the release's history. ``rollback_run`` executes the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sbkube.cluster.port import Cluster, HookInfo, Objects, Releases
from sbkube.engine.apply import change_for, helm_resource_inputs, live_resources
from sbkube.engine.compare import matches
from sbkube.engine.results import ResourceChange
from sbkube.engine.work import owned_by
from sbkube.errors import NotFoundError, RefusedError, UsageError
from sbkube.model import AppStatus, DeploymentStatus, Record, ResourceAction, thaw
from sbkube.redaction import is_digest, is_secret_manifest
from sbkube.state import AppDeploymentRecord, DeploymentRecord, DeploymentRepository


@dataclass(frozen=True, slots=True)
class AppRollbackPlan(Record):
    name: str
    type: str
    namespace: str
    action: str  # helm-rollback | reapply | uninstall | delete | unchanged
    release_name: str | None = None
    from_revision: int | None = None
    to_revision: int | None = None
    changes: tuple[ResourceChange, ...] = ()


@dataclass(frozen=True, slots=True)
class RollbackPlan(Record):
    source_id: str
    target_id: str
    cluster: str
    namespace: str
    apps: tuple[AppRollbackPlan, ...]
    warnings: tuple[str, ...] = ()


class RemovalNeedsConfirmation(RefusedError):
    """The plan would uninstall an app that TARGET does not have: asked, or ``--force``."""

    def __init__(self, message: str, *, app: str) -> None:
        super().__init__(message)
        self.app = app


def resolve_pair(
    repo: DeploymentRepository,
    cluster: Cluster,
    *,
    deployment_id: str | None,
    to: str | None,
    namespace: str | None,
    force: bool,
    name: str | None = None,
) -> tuple[DeploymentRecord, DeploymentRecord]:
    # ``name``: what the cluster is recorded as (config.yaml's cluster:, else its identity).
    name = name or cluster.name
    # The scope narrows only 'latest' / 'latest~N'; a full id names one deployment anyway.
    source = repo.get(repo.resolve(deployment_id or "latest", cluster=name, namespace=namespace))
    if source.cluster != name:
        raise RefusedError(
            f"deployment {source.deployment_id} was made on cluster '{source.cluster}', "
            f"not '{name}'"
        )
    if to is None:
        candidates = repo.list(
            cluster=source.cluster,
            namespace=source.namespace,
            # A rolled-back deployment did succeed when it ran: counting it makes a second
            # plain `sbkube rollback` undo the first, as `helm rollback` does.
            status=["success", "rolled_back"],
            until=source.started_at,
            include_dry_run=False,
            limit=1,
        )
        if not candidates:
            raise NotFoundError(
                f"no successful deployment before {source.deployment_id} on "
                f"{source.cluster}/{source.namespace} to roll back to (use --to ID)"
            )
        target_id = candidates[0].deployment_id
    else:
        target_id = repo.resolve(to, cluster=source.cluster, namespace=source.namespace)
    target = repo.get(target_id)
    if (target.cluster, target.namespace) != (source.cluster, source.namespace):
        raise RefusedError(
            f"--to {target.deployment_id} targets {target.cluster}/{target.namespace}, but "
            f"{source.deployment_id} is on {source.cluster}/{source.namespace}; a rollback "
            "stays on one target"
        )
    if target.dry_run:
        raise RefusedError(f"--to {target.deployment_id} is a dry run; nothing was deployed")
    if target.status not in (DeploymentStatus.SUCCESS, DeploymentStatus.ROLLED_BACK) and not force:
        raise RefusedError(
            f"--to {target.deployment_id} has status {target.status}; rolling back to an "
            "unsuccessful deployment needs --force"
        )
    return source, target


def plan_app_names(source: DeploymentRecord, target: DeploymentRecord) -> list[str]:
    """TARGET's apps in their deploy order, then those only SOURCE has."""
    names = _deploy_order(target)
    return names + [a.name for a in source.apps if a.name not in names]


def _deploy_order(target: DeploymentRecord) -> list[str]:
    """TARGET's apps in the order its config deploys them one at a time: by ``depends_on``,
    the earliest in the file first (``config.ordering``). The record lists apps in the
    order they started, which concurrent apps make a matter of timing."""
    from sbkube.config.ordering import file_order

    names = [a.name for a in target.apps]
    snapshot: Mapping[str, Any] = target.config_snapshot or {}
    configured: Mapping[str, Any] = snapshot.get("apps") or {}
    position = {name: i for i, name in enumerate(configured)}
    position.update({n: len(position) + i for i, n in enumerate(names) if n not in position})
    graph = {
        name: [d for d in (configured.get(name) or {}).get("depends_on") or () if d in names]
        for name in names
    }
    try:
        return file_order(graph, position)
    except ValueError:  # a cycle (an edited record): the recorded order
        return names


def plan_rollback(
    repo: DeploymentRepository,
    cluster: Cluster,
    source: DeploymentRecord,
    target: DeploymentRecord,
    *,
    apps: Sequence[str] | None = None,
    force: bool = False,
    allow_removal: bool = False,
    current: Mapping[str, AppDeploymentRecord | None] | None = None,
) -> RollbackPlan:
    """The rollback plan, from the records and read-only looks at the cluster.

    ``current``: each app's last successful recording (read here when not given).
    """
    names = plan_app_names(source, target)
    if apps:
        unknown = [a for a in apps if a not in names]
        if unknown:
            raise UsageError(
                f"--app {unknown[0]}: not in {source.deployment_id} or {target.deployment_id} "
                f"(apps: {', '.join(names) or 'none'})"
            )
        names = [n for n in names if n in apps]
    plans: list[AppRollbackPlan] = []
    warnings: list[str] = []
    unrestorable: list[str] = []
    for name in names:
        t_app = target.app(name)
        app_now = (
            current[name]
            if current is not None
            else repo.last_successful_app(
                cluster=source.cluster, namespace=source.namespace, app=name
            )
        )
        if t_app is not None and t_app.status != AppStatus.SUCCESS and not force:
            raise RefusedError(
                f"app {name} has status {t_app.status} in {target.deployment_id}; "
                "rolling it back there needs --force"
            )
        if t_app is None:
            if app_now is None:
                continue
            if not (force or allow_removal):
                raise RemovalNeedsConfirmation(
                    f"app {name} is not in {target.deployment_id}: rolling back would "
                    f"{'uninstall' if app_now.type == 'helm' else 'delete'} it; use --force "
                    "to confirm (or --app to leave it out)",
                    app=name,
                )
            plans.append(_removal_plan(app_now, source.namespace))
            continue
        if t_app.type == "helm":
            plans.append(_helm_plan(cluster, t_app, app_now))
        else:
            plan, secrets = _yaml_plan(cluster, t_app, app_now)
            plans.append(plan)
            unrestorable += secrets
    if unrestorable:
        listed = ", ".join(unrestorable)
        if not force:
            raise RefusedError(
                f"cannot restore Secret data only recorded as digests: {listed} "
                "(use --force to leave them as they are live)"
            )
        warnings.append(f"left as they are (only digests recorded): {listed}")
    return RollbackPlan(
        source.deployment_id,
        target.deployment_id,
        source.cluster,
        source.namespace,
        tuple(plans),
        tuple(warnings),
    )


def _removal_plan(current: AppDeploymentRecord, namespace: str) -> AppRollbackPlan:
    rel = current.helm_release
    changes = tuple(change_for(ResourceAction.DELETE, k) for k in live_resources(current))
    if current.type == "helm" and rel is not None:
        return AppRollbackPlan(
            current.name,
            "helm",
            current.namespace or namespace,
            "uninstall",
            release_name=rel.release_name,
            from_revision=rel.revision,
            changes=changes,
        )
    return AppRollbackPlan(
        current.name, current.type, current.namespace or namespace, "delete", changes=changes
    )


def _helm_plan(
    cluster: Releases, t_app: AppDeploymentRecord, current: AppDeploymentRecord | None
) -> AppRollbackPlan:
    rel = t_app.helm_release
    if rel is None:
        raise RefusedError(f"app {t_app.name}: no Helm release recorded in {t_app.deployment_id}")
    status = cluster.helm_status(rel.release_name, rel.namespace)
    history = {r.revision for r in cluster.helm_history(rel.release_name, rel.namespace)}
    if rel.revision not in history:
        raise RefusedError(
            f"app {t_app.name}: release {rel.namespace}/{rel.release_name} no longer has "
            f"revision {rel.revision} (helm keeps {len(history)} revision(s)); redeploy instead"
        )
    installed, hooks = recorded_release(t_app)
    _, changes = helm_resource_inputs(installed, current, hooks=hooks)
    return AppRollbackPlan(
        t_app.name,
        "helm",
        t_app.namespace or rel.namespace,
        "helm-rollback",
        release_name=rel.release_name,
        from_revision=status.revision if status else None,
        to_revision=rel.revision,
        changes=tuple(changes),
    )


def _yaml_plan(
    cluster: Objects, t_app: AppDeploymentRecord, current: AppDeploymentRecord | None
) -> tuple[AppRollbackPlan, list[str]]:
    changes: list[ResourceChange] = []
    secrets: list[str] = []
    wanted = live_resources(t_app)
    for key, res in wanted.items():
        live = cluster.get(key)
        state = thaw(res.current_state)
        if live is None:
            action = ResourceAction.CREATE
        elif matches(state, live, digests=True):
            action = ResourceAction.UNCHANGED
        else:
            action = ResourceAction.UPDATE
        if action != ResourceAction.UNCHANGED and has_digests(state):
            secrets.append(f"Secret {key[2]}/{key[3]}")
        changes.append(change_for(action, key))
    for key in live_resources(current):
        if key not in wanted:
            live = cluster.get(key)
            if live is not None and owned_by(live, t_app.name, t_app.namespace or ""):
                changes.append(change_for(ResourceAction.DELETE, key))
    quiet = all(c.action == ResourceAction.UNCHANGED for c in changes)
    return (
        AppRollbackPlan(
            t_app.name,
            "yaml",
            t_app.namespace or "",
            "unchanged" if quiet else "reapply",
            changes=tuple(changes),
        ),
        secrets,
    )


def recorded_manifests(app: AppDeploymentRecord) -> list[dict[str, Any]]:
    """The manifests an app recording left in place (its deletes left out)."""
    return [
        thaw(r.current_state)
        for r in app.resources
        if r.current_state is not None and r.action != ResourceAction.DELETE
    ]


def recorded_release(app: AppDeploymentRecord) -> tuple[list[dict[str, Any]], list[HookInfo]]:
    """A Helm app recording's release objects and hooks, as it left them in place."""
    installed: list[dict[str, Any]] = []
    hooks: list[HookInfo] = []
    for r in app.resources:
        if r.current_state is None or r.action == ResourceAction.DELETE:
            continue
        if r.hook is None:
            installed.append(thaw(r.current_state))
        else:
            events = tuple(e.strip() for e in r.hook.split(","))
            hooks.append(HookInfo(events=events, manifest=thaw(r.current_state)))
    return installed, hooks


def has_digests(state: dict[str, Any]) -> bool:
    """True for a Secret whose data the store kept only as digests (cannot be restored)."""
    if not is_secret_manifest(state):
        return False
    return any(
        is_digest(v) for field in ("data", "stringData") for v in (state.get(field) or {}).values()
    )
