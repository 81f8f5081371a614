"""``deploy``: config.yaml -> apps applied in dependency order, every step recorded.

Shape of a deploy (each step can fail with a clear error; nothing is recorded before 4):

1. load and validate the config (``ConfigError``, exit 2);
2. prepare every selected app: Helm values merged and the chart rendered with the real
   ``helm template`` (once per app, ``concurrency`` charts at a time), YAML manifests loaded
   and labelled (a chart that fails to render is bad input: exit 2, nothing written);
3. take the target's deploy lock (``--wait-lock``), then recover: mark deployments left
   ``in_progress`` by dead processes ``interrupted`` and roll back Helm releases left
   ``pending-*``;
4. ``DeploymentTracker.track_deployment``; the apps run along their ``depends_on`` graph,
   ``concurrency`` at a time (``runner.run_apps``): an app is skipped when one of its
   dependencies failed, else ``track_app`` and apply it (``apply.py``). One app's failure
   does not stop the others that do not depend on it: the deployment is then
   ``partially_failed``;
5. release the lock.

A dry run does 1, 2 and 4 against the live cluster with every write a server-side dry run
(``Cluster.as_dry_run``: no lock, nothing changed, nothing recorded), so its plan is what
the cluster says the real run would do; an unreachable cluster is an error, never a plan.
A dry run applies one app at a time (its charts still render concurrently): each app's
dry runs must see what the earlier ones planned.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from typing import Unpack

from sbkube.cluster.port import Cluster, Objects
from sbkube.config.loader import LoadedConfig
from sbkube.engine.actions import delete_keys, run_delete_steps
from sbkube.engine.apply import apply_helm_app, apply_yaml_app
from sbkube.engine.fetch import fetch_sources
from sbkube.engine.hooks import DeployHooks, deploy_hook_lines
from sbkube.engine.namespaces import namespace_key, needed_namespaces
from sbkube.engine.prepare import place_objects, prepare_apps
from sbkube.engine.results import DeployResult
from sbkube.engine.runner import AppStep, StepChanges
from sbkube.engine.snapshot import Snapshot, SnapshotView, Stale, read_snapshot, unchanged_inputs
from sbkube.engine.steps import command_fields, exec_allowed, refuse_commands, run_commands
from sbkube.engine.target import (
    Options,
    RenderArgs,
    RunArgs,
    Target,
    config_record,
    open_database,
)
from sbkube.engine.tasks import HookRunner
from sbkube.engine.uninstall import AppUninstallPlan, plan_uninstall, remove_app
from sbkube.engine.wait import wait_and_record
from sbkube.engine.work import AppWork
from sbkube.errors import SbkubeError
from sbkube.model import AppType, Command, thaw
from sbkube.redaction import DEFAULT_SECRET_KEYS, mask_text
from sbkube.state import AppDeploymentRecord, AppHandle, DeploymentRepository


def deploy_steps(
    works: Sequence[AppWork],
    cluster: Cluster,
    previous: Mapping[str, AppDeploymentRecord | None],
    secret_keys: Sequence[str],
    *,
    force_upgrade: bool = False,
    adopt: bool = False,
    after: Mapping[str, tuple[str, ...]] | None = None,
    failed: Mapping[str, AppDeploymentRecord | None] | None = None,
    snapshot: Snapshot | None = None,
) -> list[AppStep]:
    """One runner step per app: apply it (``apply.py``) against its last recording;
    ``after``: the earlier apps each one waits for (:func:`namespace_turns`); ``failed``:
    each app's failed recording since its last successful one (what it applied then);
    ``snapshot``: the batched reads an unchanged app is decided from (``snapshot.py``)."""
    failed = failed or {}

    def step(work: AppWork) -> AppStep:
        def run(handle: AppHandle) -> StepChanges:
            if cluster.dry_run or (not work.hooks and work.hook_plan is None):
                return apply(handle, None)  # a dry run runs no hook (deploy noted them)
            hooks = work.hooks
            runner = HookRunner(
                work, work.hook_plan, cluster, handle, previous=previous[work.name], adopt=adopt
            )
            objects = runner.plan.objects
            # The original's documented order (tasks.py).
            try:
                runner.run_tasks("pre_deploy_tasks")
                runner.commands("pre_deploy", hooks.get("pre_deploy", ()))
                runner.apply_objects(
                    "pre_deploy_manifests", objects.get("pre_deploy_manifests", [])
                )
                changes, release = apply(handle, runner)
                runner.apply_objects(
                    "post_deploy_manifests", objects.get("post_deploy_manifests", [])
                )
                runner.commands("post_deploy", hooks.get("post_deploy", ()))
                runner.run_tasks("post_deploy_tasks")
                if work.type not in _PRUNED_BY_APPLY:
                    runner.prune(failed.get(work.name))
            except SbkubeError:
                if hooks.get("on_deploy_failure"):
                    with suppress(SbkubeError):  # recorded; the app's own error is the one
                        runner.commands("on_deploy_failure", hooks["on_deploy_failure"])
                raise
            return (*changes, *runner.changes), release

        def apply(handle: AppHandle, runner: HookRunner | None) -> StepChanges:
            if work.type == "noop":
                return (), None  # recorded, nothing applied
            if work.type in ("git", "http"):
                if work.source is not None:  # fetched before (engine.fetch): recorded here
                    handle.set_metadata(source=work.source)
                return (), None
            if work.type == "hook":
                if runner is not None:  # a dry run runs no task (deploy noted them)
                    runner.run_hook_app()
                return (), None
            if work.type == "exec":
                if not cluster.dry_run:  # a dry run runs no command (deploy noted them)
                    run_commands(work, work.commands, cluster, handle, cwd=work.app_dir)
                return (), None
            if work.type == "helm":
                return apply_helm_app(
                    work,
                    cluster,
                    handle,
                    previous[work.name],
                    secret_keys,
                    force_upgrade=force_upgrade,
                    # Hooks ran first: what they changed is not in the snapshot.
                    snapshot=snapshot if runner is None else None,
                )
            # Placed again now: an earlier app of this run may have installed the CRD of a
            # kind the cluster did not serve when the apps were prepared.
            place_objects(work.objects, work.namespace, cluster)
            spared = [
                *delete_keys(work),
                *(o.key for o in (runner.plan.all_objects() if runner else ())),
            ]
            changes = None
            if snapshot is not None and runner is None and previous[work.name] is not None:
                # Read from the snapshot: an app with nothing to write ends here; one that
                # has something is applied from fresh reads (nothing was done yet). An
                # app with hooks reads afresh: they ran first.
                with suppress(Stale):
                    changes = apply_yaml_app(
                        work,
                        SnapshotView(snapshot, cluster),
                        handle,
                        previous[work.name],
                        adopt=adopt,
                        failed=failed.get(work.name),
                        spared=spared,
                    )
            if changes is None:
                changes = apply_yaml_app(
                    work,
                    cluster,
                    handle,
                    previous[work.name],
                    adopt=adopt,
                    failed=failed.get(work.name),
                    spared=spared,
                )
            if work.type == "action":
                changes += run_delete_steps(work, cluster, handle, changes)
            if work.wait and not cluster.dry_run:
                wait_and_record(cluster, [o.key for o in work.objects], work.timeout, handle)
            return changes, None

        return AppStep(
            name=work.name,
            type=AppType(work.type),
            namespace=work.namespace,
            run=run,
            config=work.config,
            depends_on=work.depends_on,
            after=(after or {}).get(work.name, ()),
        )

    return [step(work) for work in works]


def namespace_turns(works: Sequence[AppWork], cluster: Objects) -> dict[str, tuple[str, ...]]:
    """For apps run at once: a namespace missing now is created by the first app (in deploy
    order) that needs it (a Helm app's release namespace, a YAML app's undeclared ones),
    as one-by-one deploys do; each later app that needs it waits for that one (``after``;
    a Helm app after a Helm app does not), so which app creates and records it is never a
    matter of timing. One LIST request, when two apps need the same namespace."""
    needs = {
        w.name: {w.namespace}
        if w.type == "helm"
        else set(needed_namespaces([o.manifest for o in w.objects]))
        if w.objects
        else set()
        for w in works
    }
    # Only a namespace two apps need can be raced for: only those are asked about.
    counts = Counter(n for wanted in needs.values() for n in wanted)
    names = sorted(n for n, count in counts.items() if count > 1)
    live = cluster.list_many([namespace_key(n) for n in names]) if names else {}
    missing = {n for n in names if live.get(namespace_key(n)) is None}
    kinds = {w.name: w.type for w in works}
    creator: dict[str, str] = {}
    after: dict[str, tuple[str, ...]] = {}
    for work in works:
        for namespace in sorted(needs[work.name] & missing):
            first = creator.setdefault(namespace, work.name)
            # Two Helm apps need not wait: neither records the namespace, and helm's
            # --create-namespace takes one that another helm just made.
            if first != work.name and not (work.type == kinds[first] == "helm"):
                after[work.name] = (*after.get(work.name, ()), first)
    return after


def orphaned_apps(
    target: Target, loaded: LoadedConfig, cluster: Cluster
) -> list[tuple[AppUninstallPlan, AppDeploymentRecord]]:
    """Apps that config.yaml no longer has but that an earlier deployment of the same app
    dir recorded on this target and that are still live (their release, or objects that
    still carry their ownership labels): each with the plan that uninstalls it
    (``uninstall.plan_uninstall``) and its last successful recording. The names of the
    apps the target's last 20 deployments recorded are read (one statement), then each
    such app's last recording."""
    app_dir = str(loaded.app_dir)
    recent = target.repo.recent_app_names(
        cluster=target.key, namespace=target.namespace, app_dir=app_dir, limit=20
    )
    configured = set(loaded.config.apps)
    names = [name for name in recent if name not in configured]
    found: list[tuple[AppUninstallPlan, AppDeploymentRecord]] = []
    for name in names:
        prev = target.last_successful_app(name)
        if prev is None:
            continue
        rel = prev.helm_release
        plan = plan_uninstall(
            cluster,
            (target.name, target.namespace),
            [
                (
                    name,
                    str(prev.type),
                    prev.namespace or target.namespace,
                    rel.release_name if rel is not None else None,
                    (),
                )
            ],
            {name: prev},
            app_dir,
        )
        found += [(p, prev) for p in plan.apps]
    return found


def prune_steps(
    orphans: Sequence[tuple[AppUninstallPlan, AppDeploymentRecord]],
    cluster: Cluster,
    after: Sequence[str],
) -> list[AppStep]:
    """One step per orphaned app that uninstalls it (``deploy --prune-apps``), recorded in
    the deploy's deployment as an uninstall's would be; each runs after the configured
    apps (``after``)."""
    return [
        AppStep(
            name=plan.name,
            type=plan.type,
            namespace=plan.namespace,
            run=_pruner(plan, prev, cluster),
            config=thaw(prev.config) if prev.config else None,
            after=tuple(after),
            label="uninstall",
        )
        for plan, prev in orphans
    ]


def _pruner(
    plan: AppUninstallPlan, prev: AppDeploymentRecord, cluster: Cluster
) -> Callable[[AppHandle], StepChanges]:
    return lambda handle: remove_app(plan, prev, cluster, handle)


# App types whose own apply prunes the objects they (and their hooks) no longer have.
_PRUNED_BY_APPLY = frozenset({"yaml", "kustomize", "action"})


class _LockedReads:
    """What deploy reads under the lock, before recovery and before any app runs: each
    app's last successful recording (the base of pruning and of the dry-run plan) and its
    failed one since, then (a real run) the batched snapshot of the cluster."""

    def __init__(self, target: Target, works: Sequence[AppWork], cluster: Cluster, *, app_dir: str):
        self.target, self.works, self.cluster, self.app_dir = target, works, cluster, app_dir
        self.previous: dict[str, AppDeploymentRecord | None] = {}
        self.failed: dict[str, AppDeploymentRecord | None] = {}
        self.snapshot: Snapshot | None = None

    def read(self) -> Snapshot | None:
        target = self.target
        self.previous = target.last_applied(w.name for w in self.works)
        self.failed = target.failed_since_each(self.previous)
        if not target.options.dry_run:
            self.snapshot = read_snapshot(
                self.cluster, self.works, self.previous, self.failed, self.app_dir
            )
        return self.snapshot


def _skip_render(
    loaded: LoadedConfig, options: Options, *, force_upgrade: bool
) -> Callable[[AppWork], bool] | None:
    """Which Helm apps the preparation does not render: in a dry run every one (``helm
    upgrade --dry-run=server`` renders it, once), else those whose inputs are unchanged
    (``snapshot.unchanged_inputs``; never with ``--force-upgrade``)."""
    if options.dry_run:
        return lambda work: True
    if force_upgrade:
        return None
    config = loaded.config
    keys = (*DEFAULT_SECRET_KEYS, *(config.secret_keys or ()))
    database = open_database(options.db)
    helm = [n for n in loaded.order if getattr(loaded.app(n), "type", None) == "helm"]
    return unchanged_inputs(
        DeploymentRepository(database, secret_keys=keys), config.namespace, keys, helm
    )


class DeployArgs(RenderArgs, RunArgs, total=False):
    """The keywords of :func:`deploy`."""


def deploy(
    app_dir: str | os.PathLike[str],
    *,
    cluster: Cluster,
    force_upgrade: bool = False,
    adopt: bool = False,
    prune_apps: bool = False,
    **args: Unpack[DeployArgs],
) -> DeployResult:
    """Deploy an app dir to ``cluster`` and record it; see the module docstring.

    The keywords are the shared ones (``target.ReadArgs``, ``RenderArgs``, ``RunArgs``):
    ``namespace`` (``-n``) and ``values`` (``-f``/``--set``) come from the command line;
    ``concurrency`` is how many apps are applied (and charts rendered) at once; ``adopt``
    lets every YAML app take over existing objects that are not its own (``work.claim``).
    An app config.yaml no longer has that is still live from an earlier deployment of the
    same app dir is named ``orphaned`` (a note); ``prune_apps`` uninstalls such apps in
    the same deployment, recorded as an uninstall records them."""
    options = Options(**args)
    loaded, names = options.load(app_dir)
    deploy_hooks = loaded.config.hooks.deploy if loaded.config.hooks else None
    if not exec_allowed(options.no_exec):
        # Before anything is prepared, applied or recorded: one line per exec app.
        refuse_commands(
            ((n, loaded.app(n).type, command_fields(loaded.app(n))) for n in names),
            loaded.shown_config,
            command_hooks=bool(deploy_hook_lines(deploy_hooks)),
        )
    if options.dry_run:
        # A plan of an unreachable cluster is no plan: one error naming it, before the
        # preparation asks its discovery anything.
        cluster.check_reachable()
    # Git checkouts and http downloads (a dry run fetches nothing: it plans with what is
    # there, and leaves out the apps that read what is not).
    fetched = fetch_sources(loaded, names, mode="plan" if options.dry_run else "fetch")
    loaded, names = fetched.loaded, fetched.names(names)
    # The store is opened once, before the preparation asks it which charts need no render.
    options = replace(options, db=open_database(options.db))
    # The config is good and the store open: discovery, the cluster's name and identity
    # are read (at once) while the apps are prepared.
    cluster.read_ahead()
    works = prepare_apps(
        loaded,
        names,
        cluster,
        concurrency=options.concurrency,
        skip_render=_skip_render(loaded, options, force_upgrade=force_upgrade),
    )
    for work in works:
        work.source = fetched.records.get(work.name)
    target = Target.of_config(loaded, cluster, options)
    for note in fetched.notes:
        target.note(note)
    if options.dry_run:
        for phase, command in deploy_hook_lines(deploy_hooks):
            target.note(f"would run ({phase} hook): {mask_text(command)}")
        for work in works:
            hook_plan = work.hook_plan
            for hook, objs in hook_plan.objects.items() if hook_plan else ():
                files = ", ".join(sorted({o.source_file or "?" for o in objs}))
                target.note(f"app {work.name} would apply ({hook}): {files}")
            for where, command in hook_plan.commands() if hook_plan else ():
                target.note(f"app {work.name} would run ({where}): {mask_text(command)}")
            for phase, commands in (
                ("pre_deploy hook", work.hooks.get("pre_deploy", ())),
                ("", work.commands),
                ("post_deploy hook", work.hooks.get("post_deploy", ())),
            ):
                for command in commands:
                    what = f" ({phase})" if phase else ""
                    target.note(f"app {work.name} would run{what}: {mask_text(command)}")
    target.adopt_renamed()
    # Revisions whose recording a lost store connection cut short are settled from the
    # cluster first, so the plan (and the real run's pruning) starts from the truth.
    target.settle((w.name, w.release_name, w.namespace) for w in works if w.release_name)

    orphans = orphaned_apps(target, loaded, cluster)
    for plan, prev in orphans:
        doing = (
            "uninstalled"
            if prune_apps and not options.dry_run
            else "left as it is (deploy --prune-apps removes it)"
        )
        target.note(
            f"app {plan.name} is orphaned: not in config.yaml, still live from "
            f"{prev.deployment_id}; {doing}"
        )
    recorded = config_record(loaded, cluster, prepared=names, concurrency=options.concurrency)
    reads = _LockedReads(target, works, cluster, app_dir=str(loaded.app_dir))
    with target.run(
        command=Command.DEPLOY, releases=works, before_recovery=reads.read, **recorded
    ) as dep:
        previous, failed, snapshot = reads.previous, reads.failed, reads.snapshot
        # A dry run applies one app at a time: each dry run sees what the earlier ones
        # planned (the view's overlay), so the plan is the same whatever the timing.
        at_once = 1 if options.dry_run else options.concurrency
        live: Objects = SnapshotView(snapshot, cluster) if snapshot is not None else cluster
        steps = deploy_steps(
            works,
            cluster.as_dry_run() if options.dry_run else cluster,
            previous,
            target.secret_keys,
            force_upgrade=force_upgrade,
            adopt=adopt,
            after=namespace_turns(works, live) if at_once > 1 else {},
            failed=failed,
            snapshot=snapshot,
        )
        if prune_apps and not options.dry_run:
            steps += prune_steps(orphans, cluster, [w.name for w in works])
        if deploy_hooks is not None and not options.dry_run:  # a dry run runs no hook
            hooks = DeployHooks(
                deploy_hooks, cluster, dep, namespace=target.namespace, cwd=str(loaded.app_dir)
            )
            outcomes = hooks.around(steps, lambda: target.run_apps(steps, dep, concurrency=at_once))
        else:
            outcomes = target.run_apps(steps, dep, concurrency=at_once)
    return target.result(DeployResult, dep, apps=outcomes)
