"""An app's hooks beyond plain commands: manifest hooks and hook tasks (the original
tool's ``pre_deploy_manifests``, ``post_deploy_manifests``, ``pre_deploy_tasks``,
``post_deploy_tasks``), and the ``hook`` app type, whose deploy is its ``tasks``.

Prepared with the app (:func:`prepare_hooks`, nothing recorded yet): every object a hook
or task applies is read, checked and placed as a YAML app's manifests are, and carries
the app's ownership labels; an object both in the app and in one of its hooks is refused.

Run by :class:`HookRunner` inside the app's recorded step (``deployer.deploy_steps``), in
the original's documented order::

    pre_deploy_tasks, pre_deploy (commands), pre_deploy_manifests,
    the app itself (a hook app: its wait_for, tasks, validation),
    post_deploy_manifests, post_deploy (commands), post_deploy_tasks

and, when anything of it failed, ``on_deploy_failure`` (then the app fails: its
dependents are skipped). Objects go down the YAML path (``apply.apply_yaml_app``: one
server-side apply per hook or task, recorded with the app's resources); the app's prune
keeps them while they are configured and deletes them once they are not, so rollback and
uninstall treat them as the app's own objects.

A task (in its list's order): its ``dependency`` (earlier tasks of the list that must have
succeeded; objects to ``wait_for``), then the task (a ``command`` up to ``retry``
``max_attempts`` times, ``delay`` seconds apart, doubled with ``backoff: exponential``; a
command that still fails with ``on_failure: warn|ignore`` does not fail the task), then
its ``validation`` (the object exists; with ``wait_for_ready`` until it reports the
``conditions``, or is healthy (``engine.health``) without any). When any of the three
fails, the task's ``rollback`` runs if ``enabled`` and ``on_failure: always`` (its
manifests applied, its commands run), and the hook fails. A hook app's own ``rollback``
runs after the failed task's.

Every run is a step in the app's metadata (``steps``, after the app's earlier ones), as an
exec app's commands are: ``phase`` (the hook: ``pre_deploy_tasks``, ``tasks``,
``pre_deploy_manifests``, ``...rollback``), ``task`` and ``type`` for tasks
(``command``, ``manifests``, ``inline``, ``wait_for``, ``validation``, ``rollback``),
``command`` (masked; for objects: what was applied or checked), ``exit_code`` (an object
step: 0 done, 1 failed), ``seconds``, ``output_tail`` (masked) and, for a retried
command, ``attempt``. Clock and sleep are arguments: tests never wait on the wall clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from sbkube.engine.work import DesiredObject, HookPlan, TaskWork, with_ownership
from sbkube.errors import ClusterError, ConfigError, SbkubeError
from sbkube.manifests import ObjectKey, Scope, format_key, object_key
from sbkube.redaction import mask_text

if TYPE_CHECKING:
    from sbkube.cluster.port import Objects
    from sbkube.config import LoadedConfig
    from sbkube.config.schema import TaskRollback, TaskValidation, TaskWaitFor
    from sbkube.engine.results import ResourceChange
    from sbkube.engine.work import AppWork
    from sbkube.state import AppDeploymentRecord, AppHandle

Clock = Callable[[], float]
Sleep = Callable[[float], None]

#: Seconds between two reads while waiting for an object.
POLL_SECONDS = 1.0

_OBJECT_HOOKS = ("pre_deploy_manifests", "post_deploy_manifests")
_TASK_HOOKS = ("pre_deploy_tasks", "post_deploy_tasks")


class HookFailed(ClusterError):
    """A hook task, a manifest hook or a validation that failed (exit 1)."""


def prepare_hooks(loaded: LoadedConfig, name: str, cluster: Objects) -> HookPlan | None:
    """The app's hook plan (None when it has no manifest hook, task or hook tasks); its
    objects carry the app's ownership labels. Bad input is a ConfigError naming the field."""
    from sbkube.config.schema import HookApp
    from sbkube.config.values import load_hook_objects, rendered_objects

    app = loaded.app(name)
    namespace = loaded.app_namespace(name)
    app_dir = str(loaded.app_dir)
    hooks = app.hooks
    plan = HookPlan()

    def owned(found: Iterable[tuple[str, dict[str, Any]]]) -> list[DesiredObject]:
        return [
            DesiredObject(with_ownership(m, app=name, namespace=namespace, app_dir=app_dir), source)
            for source, m in found
        ]

    def files(paths: Sequence[str]) -> list[DesiredObject]:
        return owned(load_hook_objects(loaded, name, list(paths), cluster.namespaced))

    def task_works(tasks: Sequence[Any], where: str) -> list[TaskWork]:
        out = []
        for index, task in enumerate(tasks):
            work = TaskWork(task)
            if task.type == "manifests":
                work.objects = files(task.files)
            elif task.type == "inline":
                source = f"{where}[{index}].content"
                work.objects = owned(
                    rendered_objects(loaded, name, [dict(task.content)], source, cluster.namespaced)
                )
            if task.rollback is not None and task.rollback.manifests:
                work.rollback_objects = files(task.rollback.manifests)
            out.append(work)
        return out

    at = f"apps.{name}.hooks"
    if hooks is not None:
        for hook in _OBJECT_HOOKS:
            paths = getattr(hooks, hook)
            if paths:
                plan.objects[hook] = files(paths)
        for hook in _TASK_HOOKS:
            tasks = getattr(hooks, hook)
            if tasks:
                plan.tasks[hook] = task_works(tasks, f"{at}.{hook}")
    if isinstance(app, HookApp):
        plan.tasks["tasks"] = task_works(app.tasks, f"apps.{name}.tasks")
        plan.validation = app.validation
        plan.wait_for = app.wait_for
        plan.rollback = app.rollback
        if app.rollback is not None and app.rollback.manifests:
            plan.rollback_objects = files(app.rollback.manifests)
    elif not plan.objects and not plan.tasks:
        return None
    _refuse_twice(loaded, name, plan)
    return plan


def _refuse_twice(loaded: LoadedConfig, name: str, plan: HookPlan) -> None:
    """An object applied by two hooks, or by a hook and its app, is refused: each object
    has one place in the app's record."""
    seen: dict[ObjectKey, str] = {}
    groups: list[tuple[str, list[DesiredObject]]] = [
        (f"hooks.{hook}", objs) for hook, objs in plan.objects.items()
    ]
    for hook, tasks in plan.tasks.items():
        where = hook if hook == "tasks" else f"hooks.{hook}"
        groups += [(f"{where}.{t.task.name}", t.objects) for t in tasks]
    for where, objs in groups:
        for obj in objs:
            other = seen.setdefault(obj.key, where)
            if other != where:
                raise ConfigError(
                    f"{loaded.shown_config}: apps.{name}.{where}: {format_key(obj.key)} is "
                    f"also applied by {other}: an object is applied once"
                )


def check_against_app(loaded: LoadedConfig, work: AppWork, plan: HookPlan) -> None:
    """Refuse a hook object the app applies itself (one place in the record)."""
    own = {o.key for o in work.objects}
    for obj in plan.all_objects():
        if obj.key in own:
            raise ConfigError(
                f"{loaded.shown_config}: apps.{work.name}.hooks: {format_key(obj.key)} is "
                "also one of the app's own objects: an object is applied once"
            )


class HookRunner:
    """Runs one app's hooks and tasks, recording each run on its handle (see the module
    docstring)."""

    def __init__(
        self,
        work: AppWork,
        plan: HookPlan | None,
        cluster: Objects,
        handle: AppHandle,
        *,
        previous: AppDeploymentRecord | None,
        adopt: bool = False,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
    ) -> None:
        # Running hooks needs the apply path; planning them (``prepare_hooks``, which
        # ``template`` uses) does not, so these are imported here, not with the module.
        from sbkube.engine.steps import command_environment
        from sbkube.engine.wait import stoppable_sleep

        self.work = work
        self.plan = plan or HookPlan()
        self.cluster = cluster
        self.handle = handle
        self.previous = previous
        self.adopt = adopt
        self.clock = clock
        self.sleep = sleep or stoppable_sleep
        self.env = command_environment(cluster, work.namespace, work.name)
        self.changes: list[ResourceChange] = []

    # -- recording -----------------------------------------------------------------------

    def _steps(self) -> list[dict[str, Any]]:
        return list(self.handle.metadata.get("steps") or [])

    def _record(self, step: Mapping[str, Any]) -> None:
        self.handle.set_metadata(steps=[*self._steps(), dict(step)])

    def _object_step(
        self,
        phase: str,
        what: str,
        run: Callable[[], str],
        **extra: Any,
    ) -> None:
        """Run an object step (apply, wait, check): recorded with exit code 0, or 1 and
        the error as its output tail (then raised)."""
        from sbkube.engine.steps import Step

        started = self.clock()
        extra = {**extra, "objects": True}  # not a command: a rollback re-applies it
        try:
            said = run()
        except SbkubeError as err:
            tail = mask_text(err.message)
            self._record(
                {
                    **asdict(Step(phase, what, 1, round(self.clock() - started, 3), tail)),
                    **extra,
                }
            )
            raise
        self._record(
            {
                **asdict(Step(phase, what, 0, round(self.clock() - started, 3), mask_text(said))),
                **extra,
            }
        )

    # -- objects ----------------------------------------------------------------------------

    def apply_objects(self, phase: str, objects: list[DesiredObject], **extra: Any) -> None:
        """Apply ``objects`` down the YAML path (no prune: the app's prune decides), one
        recorded step."""
        if not objects:
            return
        files = sorted({o.source_file or "?" for o in objects})
        from sbkube.engine.apply import apply_yaml_app

        def run() -> str:
            # Placed now: an earlier app may have installed the CRD of one of their kinds.
            scope = Scope.of([o.manifest for o in objects], self.cluster.namespaced)
            for obj in objects:
                scope.place(obj.manifest, self.work.namespace)
            sub = replace(self.work, objects=objects)
            changes = apply_yaml_app(
                sub, self.cluster, self.handle, self.previous, prune=False, adopt=self.adopt
            )
            self.changes += changes
            counts: dict[str, int] = {}
            for change in changes:
                counts[str(change.action)] = counts.get(str(change.action), 0) + 1
            return ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))

        self._object_step(phase, f"apply {', '.join(files)}", run, **extra)

    # -- commands ---------------------------------------------------------------------------

    def commands(self, phase: str, commands: Sequence[str]) -> None:
        from sbkube.engine.steps import run_recorded

        steps = self._steps()
        run_recorded(
            commands,
            steps,
            lambda done: self.handle.set_metadata(steps=done),
            cwd=self.work.app_dir,
            env=self.env,
            phase=phase,
            clock=self.clock,
        )

    # -- tasks ------------------------------------------------------------------------------

    def run_tasks(self, phase: str) -> None:
        """The tasks of ``phase`` in order (see the module docstring)."""
        for work in self.plan.tasks.get(phase, ()):
            task = work.task
            try:
                self._wait_for(
                    phase, task.name, task.dependency.wait_for if task.dependency else ()
                )
                if task.type == "command":
                    self._command_task(phase, task)
                else:
                    self.apply_objects(phase, work.objects, task=task.name, type=task.type)
                if task.validation is not None:
                    self._validate(phase, task.name, task.validation, work.objects)
            except SbkubeError as err:
                self._rollback(f"{phase}.rollback", task.name, task.rollback, work.rollback_objects)
                raise HookFailed(f"{phase} task {task.name!r} failed: {err.message}") from err

    def run_hook_app(self) -> None:
        """A hook app's deploy: its wait_for, its tasks, its validation; its rollback when
        any of them failed (after a failed task's own)."""
        try:
            self._wait_for("tasks", None, self.plan.wait_for)
            self.run_tasks("tasks")
            if self.plan.validation is not None:
                self._validate("validation", None, self.plan.validation, self.plan.all_objects())
        except SbkubeError:
            self._rollback("rollback", None, self.plan.rollback, self.plan.rollback_objects)
            raise

    def _command_task(self, phase: str, task: Any) -> None:
        retry = task.retry
        attempts = retry.max_attempts if retry is not None else 1
        delay = retry.delay if retry is not None else 0.0
        tag: dict[str, Any] = {"task": task.name, "type": "command"}
        for attempt in range(1, attempts + 1):
            error: SbkubeError | None = None
            try:
                self.commands(phase, [task.command])
            except SbkubeError as err:
                error = err
            steps = self._steps()
            if steps:
                steps[-1].update(tag, **({"attempt": attempt} if attempts > 1 else {}))
                self.handle.set_metadata(steps=steps)
            if error is None:
                return
            if attempt == attempts:
                if task.on_failure in ("warn", "ignore"):
                    return  # recorded with its exit code; the hook goes on
                raise error
            self.sleep(delay)
            if retry is not None and retry.backoff == "exponential":
                delay *= 2

    def _rollback(
        self,
        phase: str,
        task: str | None,
        rollback: TaskRollback | None,
        objects: list[DesiredObject],
    ) -> None:
        """The original's rule: only when enabled and ``on_failure: always``. Its own
        failure is recorded; the failure that brought it here is the one raised."""
        if rollback is None or not rollback.enabled or rollback.on_failure != "always":
            return
        extra = {"task": task, "type": "rollback"} if task else {"type": "rollback"}
        try:
            self.apply_objects(phase, objects, **extra)
            if rollback.commands:
                before = len(self._steps())
                try:
                    self.commands(phase, rollback.commands)
                finally:
                    steps = self._steps()
                    for step in steps[before:]:
                        step.update(extra)
                    self.handle.set_metadata(steps=steps)
        except SbkubeError:
            return

    # -- waiting and validation -------------------------------------------------------------

    def _api_version(self, kind: str, objects: Sequence[DesiredObject]) -> str:
        for obj in [*objects, *self.plan.all_objects(), *self.work.objects]:
            if str(obj.manifest.get("kind", "")).lower() == kind.lower():
                return str(obj.manifest["apiVersion"])
        found = _builtin_kinds().get(kind.lower())
        if found is None:
            raise HookFailed(
                f"kind {kind!r} is neither applied by the app nor a built-in kind: "
                "sbkube cannot tell its API group"
            )
        return found

    def _keys(
        self,
        kind: str,
        name: str | None,
        namespace: str | None,
        objects: Sequence[DesiredObject],
        selector: Mapping[str, str] | None = None,
    ) -> tuple[list[ObjectKey], str, str]:
        """The keys to look at (a name: one; else every live one of the kind in the
        namespace, matching ``selector``), the api version and the namespace."""
        api_version = self._api_version(kind, objects)
        canonical = next(
            (
                str(o.manifest["kind"])
                for o in [*objects, *self.plan.all_objects(), *self.work.objects]
                if str(o.manifest.get("kind", "")).lower() == kind.lower()
            ),
            _builtin_names().get(kind.lower(), kind),
        )
        ns = namespace or self.work.namespace
        if not Scope.of([], self.cluster.namespaced).namespaced(api_version, canonical):
            ns = ""
        if name is not None:
            return [(api_version, canonical, ns, name)], api_version, ns
        live = self.cluster.list_labelled([(api_version, canonical)], dict(selector or {}))
        keys = [
            object_key(o)
            for o in live
            if not ns or (o.get("metadata") or {}).get("namespace") == ns
        ]
        return keys, api_version, ns

    def _poll(self, describe: str, timeout: float, ready: Callable[[], tuple[bool, str]]) -> str:
        started = self.clock()
        while True:
            done, why = ready()
            if done:
                return why
            elapsed = self.clock() - started
            if elapsed >= timeout:
                raise HookFailed(f"{describe}: not within {timeout:g}s: {why}")
            self.sleep(min(POLL_SECONDS, max(timeout - elapsed, 0.0)))

    def _wait_for(self, phase: str, task: str | None, waits: Sequence[TaskWaitFor]) -> None:
        extra = {"task": task, "type": "wait_for"} if task else {"type": "wait_for"}
        for wait in waits:
            selector = _selector(wait.label_selector) if wait.label_selector else None
            target = wait.name or (f"-l {wait.label_selector}" if wait.label_selector else "all")
            what = f"wait for {wait.kind} {target} {wait.condition}"

            def ready(wait: TaskWaitFor = wait, selector: Any = selector) -> tuple[bool, str]:
                keys, _, _ = self._keys(wait.kind, wait.name, wait.namespace, [], selector)
                return _conditions_hold(self.cluster, keys, [(wait.condition, "True")])

            def run(what: str = what, timeout: float = wait.timeout, ready: Any = ready) -> str:
                return self._poll(what, timeout, ready)

            self._object_step(phase, what, run, **extra)

    def _validate(
        self,
        phase: str,
        task: str | None,
        rule: TaskValidation,
        objects: Sequence[DesiredObject],
    ) -> None:
        if rule.kind is None:
            return  # the original checks nothing without a kind
        kind = rule.kind
        extra = {"task": task, "type": "validation"} if task else {"type": "validation"}
        what = f"validate {kind} {rule.name or 'all'}" + (
            " ready" if rule.wait_for_ready else " exists"
        )
        conditions = [(c.type, c.status) for c in rule.conditions]

        def ready() -> tuple[bool, str]:
            keys, _, _ = self._keys(kind, rule.name, rule.namespace, objects)
            if not rule.wait_for_ready:
                return _exist(self.cluster, keys)
            if conditions:
                return _conditions_hold(self.cluster, keys, conditions)
            return _healthy(self.cluster, keys)

        def run() -> str:
            if not rule.wait_for_ready:
                done, why = ready()
                if not done:
                    raise HookFailed(f"{what}: {why}")
                return why
            return self._poll(what, rule.timeout, ready)

        self._object_step(phase, what, run, **extra)

    # -- the app's prune --------------------------------------------------------------------

    def prune(self, failed: AppDeploymentRecord | None) -> None:
        """For an app whose own apply does not prune (Helm, exec, noop, hook): delete the
        objects an earlier run of its hooks applied that they no longer have."""
        from sbkube.engine.apply import prune_app

        keep = [o.key for o in self.plan.all_objects()]
        self.changes += prune_app(
            self.work, self.cluster, self.handle, self.previous, keep, failed=failed
        )


def _selector(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def _exist(cluster: Objects, keys: Sequence[ObjectKey]) -> tuple[bool, str]:
    if not keys:
        return False, "none found"
    live = cluster.list_many(list(keys))
    missing = [format_key(k) for k in keys if live.get(k) is None]
    if missing:
        return False, f"missing: {', '.join(missing)}"
    return True, f"found {', '.join(format_key(k) for k in keys)}"


def _conditions_hold(
    cluster: Objects, keys: Sequence[ObjectKey], wanted: Sequence[tuple[str, str]]
) -> tuple[bool, str]:
    if not keys:
        return False, "none found"
    live = cluster.list_many(list(keys))
    waiting = []
    for key in keys:
        obj = live.get(key)
        if obj is None:
            waiting.append(f"{format_key(key)} missing")
            continue
        have = {
            str(c.get("type")): str(c.get("status"))
            for c in ((obj.get("status") or {}).get("conditions") or [])
            if isinstance(c, Mapping)
        }
        for ctype, status in wanted:
            if have.get(ctype) != status:
                waiting.append(f"{format_key(key)} {ctype}={have.get(ctype, 'unset')}")
    if waiting:
        return False, "; ".join(waiting)
    return True, ", ".join(f"{format_key(k)} {t}={s}" for k in keys for t, s in wanted)


def _healthy(cluster: Objects, keys: Sequence[ObjectKey]) -> tuple[bool, str]:
    if not keys:
        return False, "none found"
    from sbkube.engine.health import Health, object_health

    live = cluster.list_many(list(keys))
    health = {k: object_health(live.get(k)) for k in keys}
    bad = [
        f"{format_key(k)} {h.status}" + (f" ({h.message})" if h.message else "")
        for k, h in health.items()
        if h.status not in (Health.HEALTHY, Health.SUSPENDED)
    ]
    if any(h.status == Health.DEGRADED for h in health.values()):
        raise HookFailed(f"degraded: {'; '.join(bad)}")
    if bad:
        return False, "; ".join(bad)
    return True, f"healthy: {', '.join(format_key(k) for k in keys)}"


_KINDS: dict[str, str] | None = None
_NAMES: dict[str, str] | None = None


def _load_kinds() -> None:
    """Built-in kinds (lowercased) -> their preferred apiVersion and their name, from the
    bundled Kubernetes field list (a stable version before a beta one)."""
    global _KINDS, _NAMES
    from importlib import resources

    data = json.loads(resources.files("sbkube").joinpath("kubernetes_fields.json").read_text())
    kinds: dict[str, str] = {}
    names: dict[str, str] = {}
    for ref in sorted(data["kinds"], key=lambda r: ("beta" in r or "alpha" in r, r)):
        api_version, _, kind = ref.rpartition("/")
        kinds.setdefault(kind.lower(), api_version)
        names.setdefault(kind.lower(), kind)
    _KINDS, _NAMES = kinds, names


def _builtin_kinds() -> dict[str, str]:
    if _KINDS is None:
        _load_kinds()
    assert _KINDS is not None
    return _KINDS


def _builtin_names() -> dict[str, str]:
    if _NAMES is None:
        _load_kinds()
    assert _NAMES is not None
    return _NAMES
