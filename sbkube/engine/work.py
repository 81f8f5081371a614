"""What one app's deploy works from, computed before anything is recorded, and the labels
that make its objects its own.

``AppWork`` is prepared once per app (``prepare.py``: values merged, chart rendered, YAML
loaded and labelled) and then applied (``apply.py``), planned (``live_diff.py``) or
compared (``status.py``). Every object a YAML app applies carries the ownership labels
(kapp's model): the set to prune is a label selector, computed, never guessed.

Ownership names the app, its namespace and its app dir (the dir's path in an annotation,
its digest in a label, as label values cannot hold a path): two app dirs with an app of
the same name in one namespace own different objects, and neither prunes the other's.

Ownership before prune (:func:`claim`): an object a YAML app lists that already exists and
is not this app's (made by hand, by another tool, by another app or app dir) is not taken
over silently. The app is refused, naming the owner, unless it adopts (``adopt: true`` on
the app, or ``deploy --adopt``, as kapp asks). An adopted object carries the annotation
``sbkube.io/adopted`` from then on (sent with every apply, so it stays), and an adopted
Namespace is never deleted when the app drops it (:func:`kept_on_removal`): deleting a
namespace deletes everything in it, which was never sbkube's.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sbkube.cluster.port import ChartRef
from sbkube.manifests import ObjectKey, object_key

if TYPE_CHECKING:
    from sbkube.config.schema import TaskRollback, TaskValidation, TaskWaitFor

MANAGED_BY = "app.kubernetes.io/managed-by"
APP_LABEL = "sbkube.io/app"
NAMESPACE_LABEL = "sbkube.io/namespace"
APP_DIR_LABEL = "sbkube.io/app-dir"
APP_DIR_ANNOTATION = "sbkube.io/app-dir"
ADOPTED_ANNOTATION = "sbkube.io/adopted"


def app_dir_label(app_dir: str) -> str:
    # Label values are limited to 63 safe characters: a path does not fit, its digest does.
    return hashlib.sha256(app_dir.encode()).hexdigest()[:16]


def with_ownership(
    manifest: Mapping[str, Any], *, app: str, namespace: str, app_dir: str
) -> dict[str, Any]:
    out = copy.deepcopy(dict(manifest))
    meta = out.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels.update(
        {
            MANAGED_BY: "sbkube",
            APP_LABEL: app,
            NAMESPACE_LABEL: namespace,
            APP_DIR_LABEL: app_dir_label(app_dir),
        }
    )
    meta["labels"] = labels
    annotations = dict(meta.get("annotations") or {})
    annotations[APP_DIR_ANNOTATION] = app_dir
    meta["annotations"] = annotations
    return out


def with_metadata(
    manifest: dict[str, Any], labels: Mapping[str, str], annotations: Mapping[str, str]
) -> dict[str, Any]:
    """``manifest`` with an app's own labels and annotations added (the object's own win:
    they are the more specific); the same dict when there are none."""
    if not labels and not annotations:
        return manifest
    out = copy.deepcopy(manifest)
    meta = out.setdefault("metadata", {})
    if labels:
        meta["labels"] = {**labels, **(meta.get("labels") or {})}
    if annotations:
        meta["annotations"] = {**annotations, **(meta.get("annotations") or {})}
    return out


def owned_by(live: Mapping[str, Any], app: str, namespace: str, app_dir: str | None = None) -> bool:
    """True when ``live`` carries the ownership labels of ``app`` in ``namespace`` (and, with
    ``app_dir``, of that app dir; an object labelled before app dirs were is taken as any
    app dir's)."""
    labels = (live.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(MANAGED_BY) == "sbkube"
        and labels.get(APP_LABEL) == app
        and labels.get(NAMESPACE_LABEL) == namespace
        and (app_dir is None or labels.get(APP_DIR_LABEL) in (None, app_dir_label(app_dir)))
    )


def owner_of(live: Mapping[str, Any]) -> str:
    """Who a live object belongs to, for a refusal: an sbkube app (and its app dir), or the
    field managers that wrote it."""
    meta = live.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY) == "sbkube" and labels.get(APP_LABEL):
        where = (meta.get("annotations") or {}).get(APP_DIR_ANNOTATION) or labels.get(
            APP_DIR_LABEL, "?"
        )
        return f"it belongs to app {labels[APP_LABEL]} of app dir {where}"
    managers = sorted(
        {
            str(e.get("manager"))
            for e in meta.get("managedFields") or ()
            if isinstance(e, Mapping) and e.get("manager")
        }
    )
    return f"written by {', '.join(managers)}" if managers else "made outside sbkube"


def claim(
    manifest: dict[str, Any],
    live: Mapping[str, Any] | None,
    *,
    app: str,
    namespace: str,
    app_dir: str,
    adopt: bool,
) -> tuple[dict[str, Any], str | None]:
    """The manifest to apply over ``live``, and why the app may not (None: it may).

    Its own object (or a missing one) as it is; one it adopted keeps the adopted mark; one
    that is not its own gets the mark with ``adopt``, and is refused without it."""
    if live is None:
        return manifest, None
    adopted = ADOPTED_ANNOTATION in ((live.get("metadata") or {}).get("annotations") or {})
    if owned_by(live, app, namespace, app_dir) and not adopted:
        return manifest, None
    refusal = None
    if not owned_by(live, app, namespace, app_dir) and not adopt:
        meta = manifest.get("metadata") or {}
        ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
        refusal = (
            f"{manifest.get('kind')} {ns}{meta.get('name')} exists and is not app {app}'s "
            f"({owner_of(live)}): set adopt: true on the app, or pass --adopt, to take it over"
        )
    out = copy.deepcopy(manifest)
    annotations = out.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[ADOPTED_ANNOTATION] = "true"
    return out, refusal


def kept_on_removal(live: Mapping[str, Any]) -> bool:
    """True for an object a prune or an uninstall must leave in place although the app
    owns it: a Namespace it adopted (sbkube did not create it)."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    return live.get("kind") == "Namespace" and ADOPTED_ANNOTATION in annotations


@dataclass
class DesiredObject:
    manifest: dict[str, Any]
    source_file: str | None = None

    @property
    def key(self) -> ObjectKey:
        return object_key(self.manifest)


@dataclass(frozen=True)
class ActionStepWork:
    """One step of an action app: ``apply`` or ``delete`` the objects of the file ``path``
    (their keys, placed in ``namespace`` or the app's)."""

    type: str  # apply | delete
    path: str
    namespace: str | None
    keys: tuple[ObjectKey, ...]


@dataclass
class TaskWork:
    """One hook task (``tasks.py``), prepared: the schema's task and the objects it (and
    its rollback) apply."""

    task: Any  # ManifestsTask | InlineTask | CommandTask
    objects: list[DesiredObject] = field(default_factory=list)
    rollback_objects: list[DesiredObject] = field(default_factory=list)


@dataclass
class HookPlan:
    """What an app's hooks (and a hook app's tasks) will apply and run."""

    objects: dict[str, list[DesiredObject]] = field(default_factory=dict)
    """``pre_deploy_manifests`` / ``post_deploy_manifests``: their objects."""
    tasks: dict[str, list[TaskWork]] = field(default_factory=dict)
    """``pre_deploy_tasks`` / ``post_deploy_tasks`` / ``tasks`` (a hook app's)."""
    validation: TaskValidation | None = None
    wait_for: tuple[TaskWaitFor, ...] = ()
    rollback: TaskRollback | None = None
    rollback_objects: list[DesiredObject] = field(default_factory=list)

    def all_objects(self) -> list[DesiredObject]:
        """Every object the hooks apply when all goes well (not the rollbacks')."""
        found = [o for objs in self.objects.values() for o in objs]
        found += [o for tasks in self.tasks.values() for t in tasks for o in t.objects]
        return found

    def commands(self) -> list[tuple[str, str]]:
        """``(where, command)`` of every command task and rollback command, for
        ``--no-exec`` and the dry run."""
        out = []
        for hook, tasks in self.tasks.items():
            for t in tasks:
                if t.task.type == "command":
                    out.append((f"{hook}.{t.task.name}", t.task.command))
                if t.task.rollback is not None:
                    where = f"{hook}.{t.task.name}.rollback"
                    out += [(where, c) for c in t.task.rollback.commands]
        if self.rollback is not None:
            out += [("rollback", c) for c in self.rollback.commands]
        return out


@dataclass
class AppWork:
    """Everything needed to apply one app, computed before anything is recorded."""

    name: str
    type: str  # helm | yaml | noop | kustomize | exec | action | git | http | hook
    namespace: str
    config: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    objects: list[DesiredObject] = field(default_factory=list)
    chart: ChartRef | None = None
    release_name: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    wait: bool = False
    timeout: str | None = None
    chart_digest: str | None = None
    """``sha256:<hex>`` of a local chart's files; None for a repository or OCI chart."""
    app_dir: str = ""
    """The app dir the app comes from (its objects' ownership names it)."""
    adopt: bool = False
    """A YAML app may take over existing objects that are not its own (``adopt: true``)."""
    commands: tuple[str, ...] = ()
    """An exec app's commands (``steps.py``), run in order in the app dir."""
    source: dict[str, Any] | None = None
    """A git or http app's fetch, as recorded (``engine.fetch``): its ``source`` metadata."""
    actions: tuple[ActionStepWork, ...] = ()
    """An action app's steps, in order; ``objects`` are those of its apply steps."""
    hooks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Command hooks around the deploy: ``pre_deploy``, ``post_deploy``,
    ``on_deploy_failure`` (``steps.py``)."""
    hook_plan: HookPlan | None = None
    """Manifest hooks and hook tasks (a hook app's tasks), prepared (``tasks.py``)."""
