"""Planning a rollback: which deployment to go back to, and what that means per app.

Terms: SOURCE is the deployment rolled back *from* (default: the target's latest), TARGET
the deployment rolled back *to* (default: the last successful deployment before SOURCE).
A rollback of one app (``--app X``) goes by X's own history: SOURCE defaults to the latest
deployment that holds X, TARGET to the last successful one before it that holds X, so
later deploys of other apps alone (``deploy --app Y``) neither hide X's previous state nor
make the plan remove X.

The plan, per app (computed read-only, printed before anything runs):

* Helm app in TARGET -> ``helm rollback`` to the revision TARGET recorded (not "previous"),
  when Helm's history still holds that revision as recorded: the same chart name and
  version, the same values (digest-aware), made no later than TARGET's app. Otherwise (the
  release was deleted and re-created, ``max-history`` trimmed it) -> ``helm upgrade`` to
  the recorded chart with the recorded values, unsealed (``helm-upgrade``, and the plan and
  the record say why); never a revision number alone. A release that still stands at the
  recorded revision (the current one, ``deployed``, every object live as Helm installed
  it) is ``unchanged``: no new revision, no helm process, recorded as Helm holds it;
* YAML app in TARGET -> re-apply TARGET's manifests, their secrets unsealed
  (:mod:`sbkube.sealing`), delete objects sbkube manages now that TARGET did not have,
  recreate those deleted since;
* app in SOURCE but absent from TARGET -> uninstalled / its objects deleted (only with
  ``force``, since it removes an app);
* unchanged apps are listed and left alone.

A deployment imported from the original sbkube (``state import --from-sbkube-db``) is
rolled back to the same way, for what it recorded enough of: a Helm app with a revision,
a YAML app with manifests; any other app of it is refused (:func:`_imported_refusal`).
The original recorded no time an app finished, only when its run started, so an imported
revision is matched by chart, version and values alone (not by its date).

Refused (``RefusedError``/``NotFoundError``, exit 2): TARGET on another cluster or
namespace, TARGET not successful (unless ``force``), unknown ids (nearest suggested), a
Secret that would have to be restored but whose data the store only has as digests
(named, unless ``force``, which leaves that Secret as it is live), a Helm revision that is
no longer in the release's history and whose values cannot be restored.

Without the seal key, objects whose secrets were sealed cannot be restored either: the
plan refuses before anything touches the cluster, naming them in one line (``force``
leaves them as they are live). Nothing sent to the cluster may hold a digest or a
redaction marker (``sbkube.guard``). ``rollback_run`` executes the plan.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sbkube.cluster.port import (
    ChartRef,
    Cluster,
    HookInfo,
    Objects,
    ReleaseInfo,
    Releases,
    ReleaseStatus,
)
from sbkube.engine.apply import change_for, helm_resource_inputs, live_resources
from sbkube.engine.compare import matches, object_differences, removed
from sbkube.engine.results import ResourceChange
from sbkube.engine.steps import ran_commands
from sbkube.engine.work import kept_on_removal, owned_by
from sbkube.errors import NotFoundError, RefusedError, UsageError
from sbkube.guard import unsendable
from sbkube.manifests import ObjectKey, object_key
from sbkube.model import AppStatus, DeploymentStatus, Record, ResourceAction, thaw
from sbkube.redaction import is_digest, is_secret_manifest
from sbkube.sealing import SealError, SealKey, key_id_of, restore, seal_key
from sbkube.state import (
    AppDeploymentRecord,
    DeploymentRecord,
    DeploymentRepository,
    HelmReleaseRecord,
    ResourceRecord,
)

#: How much later than its app's recording a Helm revision may be dated (the cluster's
#: clock and this machine's disagree a little) and still be the revision recorded.
CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class AppRollbackPlan(Record):
    name: str
    type: str
    namespace: str
    action: str  # helm-rollback | helm-upgrade | reapply | uninstall | delete | unchanged
    release_name: str | None = None
    from_revision: int | None = None
    to_revision: int | None = None
    changes: tuple[ResourceChange, ...] = ()
    reason: str | None = None
    """Why a Helm app is upgraded to the recorded chart and values instead of rolled back
    to the recorded revision (``helm-upgrade``)."""


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


@dataclass(frozen=True, slots=True)
class RollbackReads:
    """What a rollback plan reads of the cluster, read in batches before any app is
    planned (:func:`read_rollback`): every revision of each recorded release from one
    LIST of Helm's storage Secrets, and the live objects of the YAML apps with one LIST
    per kind and namespace, whatever the number of apps. Anything not read here is asked
    of the cluster itself."""

    histories: Mapping[tuple[str, str], list[ReleaseInfo]] | None
    """Revisions by (namespace, release), oldest first; None: ask ``helm history``."""
    objects: Mapping[ObjectKey, dict[str, Any] | None]

    def history(self, cluster: Releases, release: str, namespace: str) -> list[ReleaseInfo]:
        if self.histories is None:
            return cluster.helm_history(release, namespace)
        return list(self.histories.get((namespace, release), ()))

    def current(self, cluster: Releases, release: str, namespace: str) -> ReleaseInfo | None:
        """The release's current revision (what ``helm status`` shows), None when none."""
        if self.histories is None:
            return cluster.helm_status(release, namespace, chart=False)
        history = self.histories.get((namespace, release))
        return history[-1] if history else None

    def get(self, cluster: Objects, key: ObjectKey) -> dict[str, Any] | None:
        if key in self.objects:
            return copy.deepcopy(self.objects[key])
        return cluster.get(key)


def read_rollback(
    cluster: Cluster,
    recorded: Sequence[AppDeploymentRecord | None],
    namespaces: Sequence[str] = (),
) -> RollbackReads:
    """The batched reads (:class:`RollbackReads`) of the apps ``recorded`` (TARGET's and
    the current recordings): the releases of their Helm apps, the objects of the others;
    and the releases of ``namespaces`` (those of Helm apps nothing recorded yet)."""
    apps = [a for a in recorded if a is not None]
    namespaces = sorted(
        {*namespaces, *(a.helm_release.namespace for a in apps if a.helm_release is not None)}
    )
    histories = cluster.helm_histories(namespaces) if namespaces else {}
    keys = list(dict.fromkeys(key for a in apps if a.type != "helm" for key in live_resources(a)))
    # The objects of each recorded release's current revision: whether it is live as
    # Helm installed it (an unchanged release is not rolled back).
    for app in apps:
        rel = app.helm_release
        history = (histories or {}).get((rel.namespace, rel.release_name)) if rel else None
        if history:
            keys += [object_key(m) for m in history[-1].manifest]
    keys = list(dict.fromkeys(keys))
    return RollbackReads(histories, cluster.list_many(keys) if keys else {})


def resolve_pair(
    repo: DeploymentRepository,
    cluster: Cluster,
    *,
    deployment_id: str | None,
    to: str | None,
    namespace: str | None,
    force: bool,
    name: str | None = None,
    app: str | None = None,
) -> tuple[DeploymentRecord, DeploymentRecord]:
    # ``name``: what the target's records go by (``Target.key``: the cluster's identity);
    # ``app``: the one app rolled back, whose own deployments SOURCE and TARGET are.
    name = name or cluster.identity() or cluster.name
    # The scope narrows only 'latest' / 'latest~N'; a full id names one deployment anyway.
    source = repo.get(
        repo.resolve(deployment_id or "latest", cluster=name, namespace=namespace, app=app)
    )
    if source.cluster_id != name:
        raise RefusedError(
            f"deployment {source.deployment_id} was made on cluster '{source.cluster}' "
            f"({source.cluster_id}), not on this one ({name})"
        )
    if to is None:
        candidates = repo.list(
            cluster=source.cluster_id,
            namespace=source.namespace,
            # A rolled-back deployment did succeed when it ran: counting it makes a second
            # plain `sbkube rollback` undo the first, as `helm rollback` does.
            status=["success", "rolled_back"],
            until=source.started_at,
            include_dry_run=False,
            app=app,
            limit=1,
        )
        if not candidates:
            holding = f" holding app {app}" if app is not None else ""
            raise NotFoundError(
                f"no successful deployment{holding} before {source.deployment_id} on "
                f"{source.cluster}/{source.namespace} to roll back to (use --to ID)"
            )
        target_id = candidates[0].deployment_id
    else:
        target_id = repo.resolve(to, cluster=source.cluster_id, namespace=source.namespace)
    target = repo.get(target_id)
    if (target.cluster_id, target.namespace) != (source.cluster_id, source.namespace):
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
    apps: Any = snapshot.get("apps") or {}
    if not isinstance(apps, Mapping):  # the original sbkube's list of apps (imported)
        apps = {a["name"]: a for a in apps if isinstance(a, Mapping) and "name" in a}
    configured: Mapping[str, Any] = apps
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
    unrestorable: list[str] = []  # recorded as digests only (before sealing)
    sealed_away: list[tuple[str, str]] = []  # (object, why): sealed, the key not at hand
    nows = {
        name: (
            current[name]
            if current is not None
            else repo.last_successful_app(
                cluster=source.cluster_id, namespace=source.namespace, app=name
            )
        )
        for name in names
    }
    reads = read_rollback(cluster, [*(target.app(n) for n in names), *nows.values()])
    for name in names:
        t_app = target.app(name)
        app_now = nows[name]
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
        plan, secrets, sealed = _plan_one(cluster, t_app, app_now, target, reads)
        if plan.action == "helm-upgrade":
            warnings.append(f"app {name}: {plan.reason}; upgrading to the recorded chart")
        plans.append(plan)
        unrestorable += secrets
        sealed_away += sealed
    # Commands are recorded steps, never re-run (the record cannot undo what a script did).
    for plan in plans:
        t_app = target.app(plan.name)
        ran = ran_commands(t_app.metadata.get("steps") or ()) if t_app is not None else 0
        if ran:
            warnings.append(
                f"app {plan.name}: its {ran} recorded command run(s) (exec, hooks, tasks) are "
                "not re-run; its objects and release are restored from the record"
            )
    if ran_commands(target.steps):
        warnings.append(
            f"the command-level hooks {target.deployment_id} ran (hooks.deploy) are not re-run"
        )
    if sealed_away:
        listed = ", ".join(what for what, _why in sealed_away)
        if not force or any(what.startswith("Helm values") for what, _ in sealed_away):
            raise RefusedError(
                f"cannot restore {listed}: {sealed_away[0][1]} (set {_SEAL_ENV} or put "
                "back the seal.key that recorded them; --force leaves objects as they are live)"
            )
        warnings.append(f"left as they are (sealed, no key): {listed}")
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


def plan_app(
    cluster: Cluster,
    t_app: AppDeploymentRecord | None,
    target: DeploymentRecord | None,
    current: AppDeploymentRecord | None,
    namespace: str,
    reads: RollbackReads | None = None,
) -> AppRollbackPlan:
    """One app's way back to ``t_app`` (recorded in ``target``) from ``current`` (what
    it applied last); with no ``t_app``, its removal. What a failure policy's rollback
    plans per app (``sbkube.engine.phases``), where each app goes back to its own last
    successful recording, planned as :func:`plan_rollback` plans each of its apps, from
    the batched ``reads`` (:func:`read_rollback`) of all of them. RefusedError when that
    recording cannot be restored (secrets recorded as digests only, or sealed without the
    key)."""
    if t_app is None or target is None:
        if current is None:
            raise RefusedError("nothing recorded to roll back from")
        return _removal_plan(current, namespace)
    plan, secrets, sealed = _plan_one(cluster, t_app, current, target, reads)
    if secrets or sealed:
        listed = ", ".join([*secrets, *(what for what, _ in sealed)])
        why = f": {sealed[0][1]}" if sealed else " (only digests recorded)"
        raise RefusedError(f"app {t_app.name}: cannot restore {listed}{why}")
    return plan


def _plan_one(
    cluster: Cluster,
    t_app: AppDeploymentRecord,
    current: AppDeploymentRecord | None,
    target: DeploymentRecord,
    reads: RollbackReads | None,
) -> tuple[AppRollbackPlan, list[str], list[tuple[str, str]]]:
    """The plan of an app TARGET holds; the objects to restore that only digests were
    recorded for; what is sealed under a key not at hand (with why), its Helm values
    included."""
    refusal = _imported_refusal(t_app)
    if refusal is not None:
        raise RefusedError(refusal)
    if t_app.type != "helm":
        return _yaml_plan(cluster, t_app, current, reads)
    plan = _helm_plan(cluster, t_app, current, target, reads)
    sealed: list[tuple[str, str]] = []
    if plan.action == "helm-upgrade":
        rel = t_app.helm_release
        assert rel is not None
        _values, why = restored_values(rel)
        if why is not None:
            sealed.append((f"Helm values of {rel.namespace}/{rel.release_name}", why))
    return plan, [], sealed


def _imported_refusal(t_app: AppDeploymentRecord) -> str | None:
    """Why an app imported from the original sbkube cannot be rolled back to (None when
    it can, or was not imported): its record must hold a Helm revision or manifests."""
    imported = t_app.metadata.get("imported")
    if not isinstance(imported, Mapping):
        return None
    original = str(imported.get("type") or t_app.type)
    where = f"app {t_app.name} in {t_app.deployment_id} (imported, type {original})"
    if t_app.type == "helm":
        if t_app.helm_release is None:
            return f"{where}: the original recorded no Helm revision; use --app to leave it out"
        return None
    if not any(word in original for word in ("yaml", "kubectl", "kustomize", "action")):
        return f"{where}: sbkube cannot redo what it ran; use --app to leave it out"
    if not recorded_manifests(t_app):
        return f"{where}: the original recorded no manifests; use --app to leave it out"
    return None


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
    cluster: Cluster,
    t_app: AppDeploymentRecord,
    current: AppDeploymentRecord | None,
    target: DeploymentRecord,
    reads: RollbackReads | None = None,
) -> AppRollbackPlan:
    rel = t_app.helm_release
    if rel is None:
        raise RefusedError(f"app {t_app.name}: no Helm release recorded in {t_app.deployment_id}")
    if reads is None or reads.histories is None:
        status = cluster.helm_status(rel.release_name, rel.namespace)
        history = cluster.helm_history(rel.release_name, rel.namespace)
    else:
        # The current revision is the newest stored one (what ``helm status`` shows).
        history = reads.history(cluster, rel.release_name, rel.namespace)
        status = history[-1] if history else None
    revision = next((r for r in history if r.revision == rel.revision), None)
    reason = revision_mismatch(revision, rel, t_app)
    if reason is not None:
        # Not the revision recorded: the recorded chart, with the recorded values.
        recorded_chart(t_app, target)  # refused here, before anything ran, when it is gone
        values, why = restored_values(rel)
        if values is None and why is None:  # only digests were recorded, no seal
            raise RefusedError(
                f"app {t_app.name}: {reason}, and the values of revision {rel.revision} were "
                "recorded as digests only; redeploy instead"
            )
    installed, hooks = recorded_release(t_app)
    action = "helm-rollback" if reason is None else "helm-upgrade"
    if reason is None and reads is not None and _left_as_recorded(cluster, rel, status, reads):
        action = "unchanged"
    _, changes = helm_resource_inputs(
        installed, current, hooks=hooks_run_by(action, hooks), unchanged=action == "unchanged"
    )
    return AppRollbackPlan(
        t_app.name,
        "helm",
        t_app.namespace or rel.namespace,
        action,
        release_name=rel.release_name,
        from_revision=status.revision if status else None,
        to_revision=rel.revision,
        changes=tuple(changes),
        reason=reason,
    )


def _left_as_recorded(
    cluster: Objects, rel: HelmReleaseRecord, current: ReleaseInfo | None, reads: RollbackReads
) -> bool:
    """Whether the release still stands at the revision ``rel`` recorded: that revision is
    the current one, ``deployed``, and every object of its manifest is live as Helm
    installed it (read in the batch). Then ``helm rollback`` would only make a new revision
    of the same thing: the app is ``unchanged``."""
    if current is None or current.revision != rel.revision or not current.manifest:
        return False
    if current.status != ReleaseStatus.DEPLOYED:
        return False
    live = {object_key(m): reads.get(cluster, object_key(m)) for m in current.manifest}
    return not object_differences(current.manifest, live)


def revision_mismatch(
    revision: ReleaseInfo | None, rel: HelmReleaseRecord, t_app: AppDeploymentRecord
) -> str | None:
    """Why Helm's ``revision`` is not the revision ``rel`` recorded (None when it is): a
    revision number alone says nothing once a release was deleted and re-created."""
    number = rel.revision
    if revision is None:
        return f"helm no longer has revision {number} of {rel.namespace}/{rel.release_name}"
    if (revision.chart, revision.chart_version) != (rel.chart, rel.chart_version or ""):
        return (
            f"revision {number} is chart {revision.chart}-{revision.chart_version}, "
            f"recorded {rel.chart}-{rel.chart_version}"
        )
    if unsendable(revision.values) or not same_values(rel, revision.values):
        return f"revision {number} holds other values than recorded"
    if isinstance(t_app.metadata.get("imported"), Mapping):
        return None  # the original recorded no time the revision was made (module docstring)
    made = t_app.finished_at or t_app.started_at
    if revision.updated is not None and revision.updated > made + CLOCK_SKEW:
        return f"revision {number} was made after it was recorded (the release was re-created)"
    return None


def same_values(rel: HelmReleaseRecord, values: Mapping[str, Any]) -> bool:
    """Whether ``values`` (plain, from helm) are the values ``rel`` recorded: exactly, when
    the seal opens; else by their digests, key for key."""
    plain, _why = restored_values(rel)
    if plain is not None:
        return bool(plain == thaw(values))
    stored = thaw(rel.values)
    return _same_shape(stored, thaw(values)) and matches(stored, thaw(values), digests=True)


def _same_shape(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same_shape(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_shape(x, y) for x, y in zip(a, b, strict=True))
    return not isinstance(a, Mapping | list) and not isinstance(b, Mapping | list)


def recorded_chart(t_app: AppDeploymentRecord, target: DeploymentRecord) -> ChartRef:
    """The chart ``t_app``'s revision was made from, as helm takes it: a local chart only
    when its files are still those recorded (their digest), a repository chart at the
    recorded version."""
    from sbkube.config.charts import chart_matches

    rel = t_app.helm_release
    assert rel is not None
    ref = str(t_app.metadata.get("chart_ref") or t_app.config.get("chart") or "")
    if not ref:
        raise RefusedError(f"app {t_app.name}: no chart recorded in {t_app.deployment_id}")
    base = Path(target.app_dir or ".")
    path = Path(ref) if Path(ref).is_absolute() else base / ref
    local = ref.startswith(("/", "./", "../")) or path.exists()
    if local:
        if rel.chart_digest is None:
            raise RefusedError(
                f"app {t_app.name}: the files of chart {ref} were not recorded with revision "
                f"{rel.revision}; cannot tell the recorded chart"
            )
        if not chart_matches(path, rel.chart_digest):
            raise RefusedError(
                f"app {t_app.name}: chart {path} is not the chart recorded with revision "
                f"{rel.revision} (its files changed or are gone)"
            )
        return ChartRef(str(path))
    snapshot: Mapping[str, Any] = target.config_snapshot or {}
    repos: Mapping[str, Any] = snapshot.get("repos") or {}
    repo_url = repos.get(ref.split("/", 1)[0])
    if repo_url is not None and unsendable({"password": repo_url}):
        raise RefusedError(
            f"app {t_app.name}: the URL of chart {ref}'s repository was recorded without its "
            "password; redeploy instead"
        )
    version = rel.chart_version or t_app.metadata.get("chart_version_requested")
    return ChartRef(ref, version=version, repo_url=repo_url)


# --------------------------------------------------------------------------- unsealing

_SEAL_ENV = "SBKUBE_SEAL_KEY"


def _keys() -> tuple[SealKey | None, ...]:
    # Read on each rollback, never cached across them (a test or a rekey changes it).
    return (seal_key(create=False),)


def _why(err: SealError, blob: str) -> str:
    try:
        key_id = key_id_of(blob)
    except SealError:
        return str(err)
    if "not at hand" in str(err):
        have = _keys()[0]
        held = f"the key at hand is {have.key_id}" if have is not None else "no seal key is set"
        return f"their secret values are sealed under key {key_id} and {held}"
    return f"a sealed value under key {key_id} is damaged"


def restored_state(res: ResourceRecord) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest a rollback applies for ``res``: its recorded state with the sealed
    secrets put back, ``(state, None)``; ``(None, why)`` when they are sealed under a key
    not at hand; ``(None, None)`` when only digests were recorded (before sealing)."""
    if res.current_state is None:
        return None, None
    if res.sealed is not None:
        try:
            plain = restore(res.sealed, {"current_state": res.current_state}, _keys())
        except SealError as err:
            return None, _why(err, res.sealed)
        state: dict[str, Any] = plain["current_state"]
        return (state, None) if not unsendable(state) else (None, None)
    stored: dict[str, Any] = thaw(res.current_state)
    return (stored, None) if not unsendable(stored) else (None, None)


def restored_values(rel: HelmReleaseRecord) -> tuple[dict[str, Any] | None, str | None]:
    """A release's recorded values with the sealed secrets put back (see
    :func:`restored_state`)."""
    if rel.sealed is not None:
        try:
            values: dict[str, Any] = restore(rel.sealed, {"values": rel.values}, _keys())["values"]
        except SealError as err:
            return None, _why(err, rel.sealed)
        return (values, None) if not unsendable(values) else (None, None)
    stored: dict[str, Any] = thaw(rel.values)
    return (stored, None) if not unsendable(stored) else (None, None)


def describe_object(key: ObjectKey) -> str:
    _api, kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _yaml_plan(
    cluster: Objects,
    t_app: AppDeploymentRecord,
    current: AppDeploymentRecord | None,
    reads: RollbackReads | None = None,
) -> tuple[AppRollbackPlan, list[str], list[tuple[str, str]]]:
    """The app's plan; the objects to restore that only digests were recorded for; those
    whose secrets are sealed under a key not at hand (with why)."""
    changes: list[ResourceChange] = []
    secrets: list[str] = []
    sealed: list[tuple[str, str]] = []
    wanted = live_resources(t_app)
    now = live_resources(current)
    objects = reads or RollbackReads(None, {})
    for key, res in wanted.items():
        live = objects.get(cluster, key)
        plain, why = restored_state(res)
        # Compared digest-aware: a state that could not be unsealed still tells "unchanged".
        state = plain if plain is not None else thaw(res.current_state)
        last = now.get(key)
        last_state = thaw(last.current_state) if last and last.current_state else None
        if live is None:
            action = ResourceAction.CREATE
        elif matches(state, live, digests=True) and not removed(state, live, last_state):
            action = ResourceAction.UNCHANGED
        else:
            action = ResourceAction.UPDATE
        if action != ResourceAction.UNCHANGED and plain is None:
            if why is not None:
                sealed.append((describe_object(key), why))
            else:
                secrets.append(describe_object(key))
        changes.append(change_for(action, key))
    for key in live_resources(current):
        if key not in wanted:
            live = objects.get(cluster, key)
            if (
                live is not None
                and owned_by(live, t_app.name, t_app.namespace or "")
                and not kept_on_removal(live)
            ):
                changes.append(change_for(ResourceAction.DELETE, key))
    quiet = all(c.action == ResourceAction.UNCHANGED for c in changes)
    return (
        AppRollbackPlan(
            t_app.name,
            str(t_app.type),
            t_app.namespace or "",
            "unchanged" if quiet else "reapply",
            changes=tuple(changes),
        ),
        secrets,
        sealed,
    )


def recorded_manifests(app: AppDeploymentRecord) -> list[dict[str, Any]]:
    """The manifests an app recording left in place (its deletes left out)."""
    return [
        thaw(r.current_state)
        for r in app.resources
        if r.current_state is not None and r.action != ResourceAction.DELETE
    ]


_HOOK_EVENTS = {
    "helm-rollback": frozenset({"pre-rollback", "post-rollback"}),
    "helm-upgrade": frozenset({"pre-upgrade", "post-upgrade"}),
}


def hooks_run_by(action: str, hooks: Sequence[HookInfo]) -> list[HookInfo]:
    """The hooks a Helm rollback step runs (``action``: ``helm-rollback`` runs the rollback
    hooks, ``helm-upgrade`` the upgrade ones), of those the revision holds: never its
    install hooks nor the chart's ``crds/`` (recorded with the ``crd-install`` hook), which
    Helm creates on a first install only. The plan and the run's record both list these, so
    a dry run's plan is what the run records."""
    wanted = _HOOK_EVENTS.get(action, frozenset())
    return [h for h in hooks if wanted.intersection(h.events)]


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
