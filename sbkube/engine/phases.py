"""Multi-dir runs: a file of ``phases:`` deployed as ONE recorded run, with a failure policy.

Shape of :func:`deploy_phases` (the file is read by ``sbkube.config.phases``):

1. pick the phases: every enabled one, or ``--phase NAME`` (repeatable) with the phases
   they need (``depends_on``, transitively) unless ``--no-deps``;
2. load each phase's app dirs (its groups: ``source``, ``app_groups``, inline ``apps``;
   ``sbkube.engine.units``, shared with the commands that read a run) and prepare every
   app, as ``deploy`` does per app dir (nothing recorded yet: bad input is exit 2). App
   names are unique across the run (one record holds them all);
3. take the locks: the cluster's lock of the file's namespace (where the run is
   recorded) and of every app dir's namespace, in ONE canonical order (sorted lock
   targets: ``Target.locked(also=...)``), so overlapping runs never deadlock; the second
   waits (``--wait-lock``) or is refused, naming the holder;
4. ONE deployment (``deploy``, namespace = the file's, ``app_dir`` = the file's dir)
   records every app, each with ``metadata`` ``{phase, group, app_dir, target}``. The
   apps of all phases go to one ``runner.run_apps``: an app depends on its phase's
   earlier apps as ``depends_on`` says, and on every app of the phases (and app groups)
   its phase (group) depends on, so a failure skips exactly what needs it; at most
   ``max_workers`` phases run at once, and under ``on_failure: stop`` (or rollback) no
   phase starts after an app failed (its apps are recorded ``skipped`` saying so);
   ``continue`` runs every phase that does not need the failed one;
5. the failure policy (:func:`_rollback_scope`): when an app failed in a phase whose
   ``on_failure`` is ``rollback`` (the phase's, the file's ``settings``, or
   ``--on-failure``/``--atomic``), every app in the scope (``rollback_scope``: the failed
   app, its phase, or the whole run) that this run changed goes back to its last
   successful recording before the run (``rollback_plan.plan_app``, each app planned as
   ``sbkube rollback`` plans it, from one batched read of the cluster for all of them:
   ``rollback_plan.read_rollback``); an app new in this run is uninstalled. The
   rollback is a deployment of its own (``rollback``, ``reverts_id`` = the failed one;
   still under the same locks), so ``state show`` of each names the other. A rollback
   that fails is said in one line (exit 1), and its record shows each app's state.

Apps are looked up by name under the run's record target (the cluster, the file's
namespace): the history of a multi-dir run is its own, apart from the history of
``deploy --app-dir`` of one of its dirs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from sbkube.engine.results import AppOutcome, DeployResult
from sbkube.engine.runner import WAIT, AppStep, run_apps
from sbkube.engine.target import Options, RenderArgs, RunArgs, Target
from sbkube.engine.units import Unit, phases_of, run_record, select_units
from sbkube.errors import ConfigError, RefusedError, SbkubeError, UsageError
from sbkube.model import AppStatus, Command, DeploymentStatus, Record, ResourceAction

if TYPE_CHECKING:
    from sbkube.cluster.port import Cluster
    from sbkube.config.phases import PhasesFile
    from sbkube.engine.rollback_plan import RollbackReads
    from sbkube.engine.work import AppWork
    from sbkube.state import AppDeploymentRecord, DeploymentHandle, DeploymentRecord

__all__ = ["PhasedResult", "RevertOutcome", "deploy_phases", "one_dir", "phases_of"]


@dataclass(frozen=True, slots=True)
class RevertOutcome(Record):
    """The failure policy's rollback: its deployment, status and per-app outcomes."""

    deployment_id: str | None
    status: DeploymentStatus
    scope: str
    apps: tuple[AppOutcome, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhasedResult(DeployResult):
    """A multi-dir run: the deploy's result, each app's phase, and the rollback its
    failure policy made (None when it made none)."""

    phase_of: Mapping[str, str]
    rollback: RevertOutcome | None = None

    @property
    def ok(self) -> bool:
        return self.status == DeploymentStatus.SUCCESS


class PhasedArgs(RenderArgs, RunArgs, total=False):
    """The keywords of :func:`deploy_phases`."""


def deploy_phases(
    phases_file: PhasesFile,
    *,
    cluster: Cluster,
    phases: Sequence[str] | None = None,
    on_failure: str | None = None,
    rollback_scope: str | None = None,
    atomic: bool = False,
    force_upgrade: bool = False,
    adopt: bool = False,
    **args: Unpack[PhasedArgs],
) -> PhasedResult:
    """Deploy the phases of ``phases_file`` as one recorded run; see the module docstring.

    ``phases``: ``--phase`` names (None: all); ``on_failure``/``rollback_scope``: the
    command line's, over every phase's; ``atomic``: ``on_failure: rollback`` with scope
    ``all``."""
    from sbkube.config.phases import FAILURE_POLICIES, ROLLBACK_SCOPES
    from sbkube.engine.fetch import fetch_sources
    from sbkube.engine.hooks import deploy_hook_lines
    from sbkube.engine.prepare import prepare_apps
    from sbkube.engine.steps import command_fields, exec_allowed, refuse_commands

    if on_failure is not None and on_failure not in FAILURE_POLICIES:
        raise UsageError(f"--on-failure {on_failure}: not one of {', '.join(FAILURE_POLICIES)}")
    if rollback_scope is not None and rollback_scope not in ROLLBACK_SCOPES:
        raise UsageError(
            f"--rollback-scope {rollback_scope}: not one of {', '.join(ROLLBACK_SCOPES)}"
        )
    if atomic:
        if on_failure not in (None, "rollback") or rollback_scope not in (None, "all"):
            raise UsageError("--atomic is --on-failure rollback --rollback-scope all")
        on_failure, rollback_scope = "rollback", "all"
    options = Options(**args)
    selected, loaded_units = select_units(phases_file, phases, options)
    units: list[Unit] = []
    for _p, _g, loaded, names in loaded_units:
        if loaded.config.hooks is not None and deploy_hook_lines(loaded.config.hooks.deploy):
            raise ConfigError(
                f"{loaded.shown_config}: hooks.deploy: command-level hooks of an app dir "
                "are not run in a multi-dir run yet (deploy the dir on its own, or make "
                "them an exec app of the phase)"
            )
        if not exec_allowed(options.no_exec):
            refuse_commands(
                ((n, loaded.app(n).type, command_fields(loaded.app(n))) for n in names),
                loaded.shown_config,
            )
    if options.dry_run:
        cluster.check_reachable()
    notes: list[str] = []
    for pname, group, loaded, names in loaded_units:
        # Git checkouts and http downloads first, as deploy of one app dir does.
        fetched = fetch_sources(loaded, names, mode="plan" if options.dry_run else "fetch")
        loaded, names = fetched.loaded, fetched.names(names)
        works = prepare_apps(loaded, names, cluster, concurrency=options.concurrency)
        for work in works:
            work.source = fetched.records.get(work.name)
        notes += fetched.notes
        units.append(Unit(pname, group, loaded, tuple(works)))
    target = Target.of_phases(phases_file, cluster, options)
    for note in notes:
        target.note(note)
    all_works = [w for u in units for w in u.works]
    target.adopt_renamed()
    target.settle((w.name, w.release_name, w.namespace) for w in all_works if w.release_name)
    record = run_record(phases_file, units, cluster, options.concurrency)
    policy = {p: (on_failure or phases_file.phases[p].on_failure) for p in selected}
    scope = {p: (rollback_scope or phases_file.phases[p].rollback_scope) for p in selected}
    phase_of = {w.name: u.phase for u in units for w in u.works}
    dry = options.dry_run
    also = sorted({u.loaded.config.namespace for u in units} - {target.namespace})
    tracker = target.tracker()
    track: dict[str, Any] = {
        "cluster": target.name,
        "cluster_id": target.key,
        "namespace": target.namespace,
        "command_args": list(options.command_args),
        "secret_keys": target.secret_keys,
        "profile": options.profile,
    }
    revert: RevertOutcome | None = None

    def run_all(dep: Any, *, dry: bool) -> tuple[AppOutcome, ...]:
        return _run(
            target,
            units,
            selected,
            phases_file,
            policy,
            dep,
            cluster,
            dry=dry,
            force_upgrade=force_upgrade,
            adopt=adopt,
        )

    if dry:
        with tracker.track_deployment(
            dry_run=True, command=Command.DEPLOY, **track, **record
        ) as dep:
            outcomes = run_all(dep, dry=True)
        return target.result(PhasedResult, dep, apps=outcomes, phase_of=phase_of)
    with target.locked(command=str(Command.DEPLOY), releases=all_works, also=also) as lock:
        with tracker.track_deployment(command=Command.DEPLOY, **track, **record) as dep:
            lock.set_deployment(dep.deployment_id)
            outcomes = run_all(dep, dry=False)
        scoped = _rollback_scope(outcomes, units, policy, scope)
        if scoped is not None:
            back, what = scoped
            revert = _revert(target, tracker, track, dep.deployment_id, back, what, units, cluster)
    return target.result(PhasedResult, dep, apps=outcomes, phase_of=phase_of, rollback=revert)


def _run(
    target: Target,
    units: Sequence[Unit],
    selected: Sequence[str],
    phases_file: PhasesFile,
    policy: Mapping[str, str],
    dep: DeploymentHandle,
    cluster: Cluster,
    *,
    dry: bool,
    force_upgrade: bool,
    adopt: bool,
) -> tuple[AppOutcome, ...]:
    """Every unit's apps as one runner graph on ``dep`` (see the module docstring)."""
    from sbkube.engine.deployer import deploy_steps, namespace_turns

    all_works = [w for u in units for w in u.works]
    previous = target.last_applied(w.name for w in all_works)
    at_once = 1 if dry else target.options.concurrency
    after = namespace_turns(all_works, cluster) if at_once > 1 else {}
    apps_of_phase: dict[str, list[str]] = {}
    apps_of_group: dict[str, list[str]] = {}
    for unit in units:
        apps_of_phase.setdefault(unit.phase, []).extend(w.name for w in unit.works)
        apps_of_group.setdefault(unit.group.name, []).extend(w.name for w in unit.works)
    run_cluster = cluster.as_dry_run() if dry else cluster
    steps: list[AppStep] = []
    for unit in units:
        phase = phases_file.phases[unit.phase]
        needed = [
            name for p in phase.depends_on if p in selected for name in apps_of_phase.get(p, ())
        ]
        needed += [name for g in unit.group.deps for name in apps_of_group.get(g, ())]
        made = deploy_steps(
            list(unit.works),
            run_cluster,
            previous,
            target.secret_keys,
            force_upgrade=force_upgrade,
            adopt=adopt,
            after=after,
            failed={w.name: target.failed_since(w.name, previous[w.name]) for w in unit.works},
        )
        for step in made:
            steps.append(
                replace(
                    step,
                    depends_on=(*step.depends_on, *needed),
                    metadata={
                        "phase": unit.phase,
                        "group": unit.group.name,
                        "app_dir": str(unit.loaded.app_dir),
                        "target": f"{target.name}/{unit.loaded.config.namespace}",
                    },
                )
            )
    phase_of_step = {s.name: str((s.metadata or {})["phase"]) for s in steps}
    steps_of_phase: dict[str, list[str]] = {}
    for s in steps:
        steps_of_phase.setdefault(phase_of_step[s.name], []).append(s.name)
    limit = phases_file.max_workers

    def admit(
        step: AppStep, outcomes: Mapping[str, AppOutcome], running: frozenset[str]
    ) -> str | None:
        mine = phase_of_step[step.name]

        def started(p: str) -> bool:
            return any(n in outcomes or n in running for n in steps_of_phase[p])

        def active(p: str) -> bool:
            return started(p) and not all(n in outcomes for n in steps_of_phase[p])

        if started(mine):
            return None
        stopped = [
            phase_of_step[n]
            for n, o in outcomes.items()
            if o.status == AppStatus.FAILED and policy[phase_of_step[n]] != "continue"
        ]
        if stopped:
            return (
                f"skipped: phase {stopped[0]} failed (on_failure: {policy[stopped[0]]}); "
                "no phase starts after it"
            )
        if sum(1 for p in steps_of_phase if active(p)) >= limit:
            return WAIT
        return None

    return run_apps(steps, dep, progress=target.progress, concurrency=at_once, admit=admit)


def _changed(outcome: AppOutcome) -> bool:
    """Whether the run changed the app on the cluster (a failed app may have, part-way)."""
    if outcome.status == AppStatus.FAILED:
        return True
    if outcome.status != AppStatus.SUCCESS:
        return False
    if outcome.release is not None and outcome.release.action != "unchanged":
        return True
    return any(c.action != ResourceAction.UNCHANGED for c in outcome.changes)


def _rollback_scope(
    outcomes: Sequence[AppOutcome],
    units: Sequence[Unit],
    policy: Mapping[str, str],
    scope: Mapping[str, str],
) -> tuple[list[str], str] | None:
    """The apps the failure policy rolls back (those changed, in the run's order) and the
    scope said, or None when no failure asks for a rollback."""
    phase_of = {w.name: u.phase for u in units for w in u.works}
    failed = [o.name for o in outcomes if o.status == AppStatus.FAILED]
    rolling = [n for n in failed if policy[phase_of[n]] == "rollback"]
    if not rolling:
        return None
    wanted: set[str] = set()
    scopes: list[str] = []
    for name in rolling:
        phase = phase_of[name]
        what = scope[phase]
        scopes.append(what)
        if what == "app":
            wanted.add(name)
        elif what == "phase":
            wanted.update(n for n, p in phase_of.items() if p == phase)
        else:
            wanted.update(phase_of)
    changed = [o.name for o in outcomes if o.name in wanted and _changed(o)]
    widest = max(scopes, key=("app", "phase", "all").index)
    return changed, widest


def _revert(
    target: Target,
    tracker: Any,
    track: Mapping[str, Any],
    failed_id: str,
    names: Sequence[str],
    scope: str,
    units: Sequence[Unit],
    cluster: Cluster,
) -> RevertOutcome:
    """The failure policy's rollback of ``names`` (see the module docstring), recorded as
    a deployment that ``reverts`` ``failed_id``; under the caller's locks.

    Planned as ``sbkube rollback`` plans: the cluster is read once for every app in scope
    (``rollback_plan.read_rollback``: one LIST of Helm's Secrets, one LIST per kind and
    namespace of the YAML apps' objects), then each app is planned from those reads, and
    its objects are not read again when it runs."""
    from sbkube.engine.rollback_plan import AppRollbackPlan, plan_app, read_rollback
    from sbkube.engine.rollback_run import planned_keys, rollback_step

    repo = target.repo
    failed = repo.get(failed_id)
    work_of = {w.name: (u, w) for u in units for w in u.works}
    deployments: dict[str, DeploymentRecord] = {}
    # Undone in the reverse of the run's order: an app goes back before what it needs.
    wanted: list[_Back] = []
    for name in reversed(names):
        unit, work = work_of[name]
        # The app as the last successful deployment holding it left it (a failed run's
        # own recordings, and those a failed rollback left, are not a state that worked).
        good = repo.list(
            cluster=target.key,
            namespace=target.namespace,
            status=[DeploymentStatus.SUCCESS],
            until=failed.started_at,
            include_dry_run=False,
            app=name,
            limit=1,
        )
        t_dep = None
        if good:
            t_dep = deployments.get(good[0].deployment_id) or repo.get(good[0].deployment_id)
            deployments[t_dep.deployment_id] = t_dep
        before: AppDeploymentRecord | None = t_dep.app(name) if t_dep is not None else None
        now = failed.app(name)
        current = now if now is not None and (now.resources or now.helm_releases) else None
        if current is None:
            # What the app applied last: its last successful recording on the target.
            current = target.last_successful_app(name)
        wanted.append(_Back(unit, work, t_dep, before, current))
    unrecorded = [b.work.namespace for b in wanted if b.before is None and b.current is None]
    reads = read_rollback(
        cluster, [a for b in wanted for a in (b.before, b.current)], namespaces=unrecorded
    )
    planned: list[tuple[_Back, AppRollbackPlan | str]] = []
    for back in wanted:
        try:
            if back.before is None and back.current is None:
                plan = _uninstall_unrecorded(back.work, reads, cluster)
                if plan is None:
                    continue
            else:
                plan = plan_app(
                    cluster, back.before, back.t_dep, back.current, back.work.namespace, reads
                )
        except SbkubeError as err:
            planned.append((back, err.message))
            continue
        if plan.action != "unchanged":
            planned.append((back, plan))
    # The YAML apps' objects were read with the plan, under the same locks: not again.
    plans = [p for _b, p in planned if not isinstance(p, str)]
    live_now = {k: reads.objects[k] for k in planned_keys(plans) if k in reads.objects}
    histories = reads.histories
    releases_now = {k: h[-1] for k, h in histories.items() if h} if histories is not None else None
    steps: list[AppStep] = []
    for back, plan in planned:
        name, unit = back.work.name, back.unit
        metadata = {
            "phase": unit.phase,
            "group": unit.group.name,
            "app_dir": str(unit.loaded.app_dir),
            "target": f"{target.name}/{unit.loaded.config.namespace}",
        }
        info = {
            "from_deployment": failed_id,
            "to_deployment": back.before.deployment_id if back.before else None,
        }
        if isinstance(plan, str):
            steps.append(_refused(name, back.work, plan, info, metadata))
            continue
        # One at a time, later apps of the run first; one that fails does not keep the
        # others from going back (they wait for it, whatever its outcome).
        steps.append(
            rollback_step(
                plan,
                back.before,
                back.t_dep,
                back.current,
                cluster,
                rollback_info={
                    **info,
                    "action": plan.action,
                    "from_revision": plan.from_revision,
                    "to_revision": plan.to_revision,
                },
                metadata=metadata,
                live_now=live_now,
                releases_now=releases_now,
            )
        )
    target.note(
        f"on_failure: rollback (scope {scope}): {len(steps)} app(s) of {failed_id} go back "
        "to their last successful deployment"
    )
    if not steps:
        return RevertOutcome(None, DeploymentStatus.SUCCESS, scope)
    with tracker.track_deployment(
        command=Command.ROLLBACK,
        reverts_id=failed_id,
        app_dir=failed.app_dir,
        config_file=failed.config_file,
        **track,
    ) as dep:
        outcomes = target.run_apps(steps, dep, concurrency=1)
    if dep.status == DeploymentStatus.SUCCESS:
        note = f"rolled back by {dep.deployment_id}: every app in scope is as it was"
    else:
        bad = [o.name for o in outcomes if o.status != AppStatus.SUCCESS]
        note = (
            f"the rollback {dep.deployment_id} of {failed_id} itself failed "
            f"({', '.join(bad)}): see sbkube state show {dep.deployment_id}"
        )
    target.note(note)
    error = None if dep.status == DeploymentStatus.SUCCESS else note
    return RevertOutcome(dep.deployment_id, dep.status, scope, outcomes, error)


@dataclass(frozen=True)
class _Back:
    """One app in the failure policy's scope: where it goes back to (``before``, recorded
    by ``t_dep``; None when no deployment before the run holds it) and what it applied
    last (``current``)."""

    unit: Unit
    work: AppWork
    t_dep: DeploymentRecord | None
    before: AppDeploymentRecord | None
    current: AppDeploymentRecord | None


def _uninstall_unrecorded(work: AppWork, reads: RollbackReads, cluster: Cluster) -> Any:
    """A Helm app new in the run whose failed install left a release but no record."""
    from sbkube.engine.rollback_plan import AppRollbackPlan

    if work.type != "helm" or not work.release_name:
        return None
    status = reads.current(cluster, work.release_name, work.namespace)
    if status is None:
        return None
    return AppRollbackPlan(
        work.name,
        "helm",
        work.namespace,
        "uninstall",
        release_name=work.release_name,
        from_revision=status.revision,
    )


def _refused(
    name: str,
    work: AppWork,
    message: str,
    info: Mapping[str, Any],
    metadata: Mapping[str, Any],
) -> AppStep:
    """A step that fails with ``message``: an app the rollback cannot restore is recorded
    failed, saying why."""

    def run(_handle: Any) -> Any:
        raise RefusedError(f"cannot roll back: {message}")

    return AppStep(
        name=name,
        type=work.type,
        namespace=work.namespace,
        run=run,
        rollback_info=dict(info),
        label="refused",
        metadata=metadata,
    )


def one_dir(
    app_dir: str | os.PathLike[str],
    config_file: str | None,
    *,
    namespace: str | None = None,
    profile: str | None = None,
) -> PhasesFile:
    """A plain app dir as a run of one phase (named after the dir), recorded on its own
    target: what ``deploy --atomic`` / ``--on-failure`` run on an app dir."""
    from sbkube.config import load_config
    from sbkube.config.phases import Group, Phase, PhasesFile

    loaded = load_config(Path(app_dir), config_file, namespace=namespace, profile=profile)
    name = "main"
    group = Group(name, loaded.app_dir, loaded.config_path.name, None, namespace, profile=profile)
    phase = Phase(name, (group,), (), "stop", "app")
    return PhasesFile(
        path=loaded.config_path,
        dialect=str(loaded.dialect),
        namespace=loaded.config.namespace,
        cluster=loaded.config.cluster,
        on_failure="stop",
        rollback_scope="app",
        max_workers=1,
        phases={name: phase},
        order=(name,),
        raw={},
        secret_keys=tuple(loaded.config.secret_keys or ()),
    )
