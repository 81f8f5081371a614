"""``sbkube diff``: what a deploy would change, object by object, against the live cluster.

For every selected app, the objects a deploy would apply are compared with the live ones,
field by field (``compare.differences``: the fields a manifest sets, as kubectl apply and
Helm's three-way merge see them), and each difference is shown as a unified diff of YAML
with secrets masked, like helm-diff and ``kubectl diff``:

* a Helm app whose inputs (chart, values) match its current revision is compared with that
  revision's manifest: what the release is meant to hold, so only drift shows, and a chart
  that renders random values shows none. Otherwise the would-be manifest comes from
  ``helm upgrade --install --dry-run=server`` (the server renders, with its lookups), and
  the objects the current revision has that it lacks are shown deleted; a first install
  also shows the chart's ``crds/`` Helm would create;
* a YAML app is compared with its desired manifests (ownership labels included), and the
  fields sbkube applied before that a manifest no longer sets (``compare.removed``) are
  shown as removed (``-`` lines); the namespaces it would create and the objects it would
  prune (recorded before, still live and owned by it) are shown too.

An unreachable cluster is an error (one line naming it), never an empty diff.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Unpack

from sbkube.cluster.port import Cluster, Objects, UpgradeRequest
from sbkube.engine.actions import delete_keys
from sbkube.engine.apply import live_resources
from sbkube.engine.compare import (
    Removal,
    comparable,
    differences,
    project,
    removed,
    without_fields,
    without_nulls,
)
from sbkube.engine.fetch import fetch_sources
from sbkube.engine.live import inputs_reason
from sbkube.engine.namespaces import namespace_manifest, needed_namespaces
from sbkube.engine.prepare import prepare_apps
from sbkube.engine.record_diff import Dumps
from sbkube.engine.results import TargetResult
from sbkube.engine.target import Options, RenderArgs, Target
from sbkube.engine.work import AppWork, claim, kept_on_removal, owned_by
from sbkube.manifests import ObjectKey, fold_string_data, format_key, object_key, strip_volatile
from sbkube.model import Record, thaw
from sbkube.redaction import learn_manifests, secret_leaves, store_form
from sbkube.state import AppDeploymentRecord

if TYPE_CHECKING:
    from sbkube.cluster.port import ReleaseInfo
    from sbkube.config.phases import PhasesFile

CREATE, UPDATE, DELETE = "create", "update", "delete"


@dataclass(frozen=True, slots=True)
class ObjectDiff(Record):
    """One object a deploy would create, change or delete, with its fields and YAML diff."""

    action: str  # create | update | delete
    api_version: str
    kind: str
    namespace: str | None
    name: str
    fields: tuple[str, ...]
    """The paths of the fields that differ (``spec.replicas``); empty for create/delete."""
    diff: str

    @property
    def ref(self) -> str:
        return format_key((self.api_version, self.kind, self.namespace or "", self.name))


@dataclass(frozen=True, slots=True)
class AppDiff(Record):
    name: str
    type: str
    namespace: str
    release: str | None
    """What would happen to a Helm release: ``install``, ``upgrade: <why>`` or
    ``unchanged``; None for a YAML app."""
    objects: tuple[ObjectDiff, ...]
    changed: bool
    phase: str | None = None
    """The phase of a multi-dir run the app belongs to (None: an app dir's own app)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveDiff(TargetResult[AppDiff]):
    """What deploying would change on the target (``dry_run``: nothing was changed)."""

    dry_run: bool = True
    changed: bool


def _object_diff(
    action: str,
    manifest: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    secrets: Sequence[str],
    fields: Sequence[str] = (),
    removals: Sequence[Removal] = (),
) -> ObjectDiff:
    key = object_key(manifest)
    desired = without_nulls(comparable(manifest)) if action != DELETE else None
    if action == CREATE or live is None:
        before = None
    elif action == DELETE:
        before = store_form(strip_volatile(live), secrets)
    else:
        before = store_form(project(strip_volatile(live), desired, removals), secrets)
    after = store_form(desired, secrets) if desired is not None else None
    ref = format_key(key)
    api_version, kind, namespace, name = key
    return ObjectDiff(
        action=action,
        api_version=api_version,
        kind=kind,
        namespace=namespace or None,
        name=name,
        fields=tuple(fields),
        diff=Dumps().unified(before, after, f"live {ref}", f"desired {ref}"),
    )


def known_secrets(
    values_secrets: Sequence[str],
    manifests: Sequence[Mapping[str, Any]],
    live: Mapping[ObjectKey, dict[str, Any] | None],
) -> list[str]:
    """The secret strings to hide wherever they show: the values' and those the desired
    and live objects hold (a Secret's password quoted in a ConfigMap), as the store does."""
    held = learn_manifests([*manifests, *(obj for obj in live.values() if obj is not None)])
    return sorted({*values_secrets, *held})


def compare(
    manifests: Sequence[Mapping[str, Any]],
    live: Mapping[ObjectKey, dict[str, Any] | None],
    secrets: Sequence[str] = (),
    recorded: Mapping[ObjectKey, Mapping[str, Any]] | None = None,
) -> list[ObjectDiff]:
    """The creates and updates that applying ``manifests`` over ``live`` would make; with
    ``recorded`` (sbkube's own applies: what it last recorded of each object) also the
    updates that remove fields the manifests no longer set."""
    found = []
    for manifest in manifests:
        key = object_key(manifest)
        obj = live.get(key)
        if obj is None:
            found.append(_object_diff(CREATE, manifest, None, secrets))
            continue
        gone = (
            removed(fold_string_data(manifest), obj, recorded.get(key))
            if recorded is not None
            else []
        )
        # A list that differs only by the items being removed is named by those alone.
        paths = differences(manifest, without_fields(obj, [r.fields for r in gone if r.fields]))
        if paths or gone:
            fields = [*paths, *(r.path for r in gone)]
            found.append(_object_diff(UPDATE, manifest, obj, secrets, fields, gone))
    return found


def _drift(first: ObjectDiff) -> str:
    if first.action == CREATE:
        return f"{first.ref} is missing"
    return f"{first.ref} differs at {first.fields[0]}"


def _helm_diff(
    work: AppWork,
    cluster: Cluster,
    previous: AppDeploymentRecord | None,
    secret_keys: Sequence[str],
) -> tuple[str, list[ObjectDiff]]:
    assert work.chart is not None and work.release_name is not None
    secrets = sorted(secret_leaves(work.values, tuple(secret_keys)))
    current = cluster.helm_status(work.release_name, work.namespace)
    reason: str | None = "install"
    if current is not None:
        recorded = previous.helm_release if previous is not None else None
        reason = inputs_reason(
            current,
            recorded,
            chart=work.chart,
            chart_digest=work.chart_digest,
            values=work.values,
        )
        if reason is None:
            # Same inputs: the release should hold its current revision's manifest.
            live = cluster.get_many([object_key(m) for m in current.manifest])
            secrets = known_secrets(secrets, current.manifest, live)
            found = compare(current.manifest, live, secrets)
            return ("unchanged" if not found else f"upgrade: {_drift(found[0])}"), found
    planned: ReleaseInfo = cluster.as_dry_run().helm_upgrade_install(
        UpgradeRequest(
            work.chart,
            release_name=work.release_name,
            namespace=work.namespace,
            values=work.values,
            force_conflicts=current is not None and current.apply_method == "ssa",
        )
    )
    manifests = list(planned.manifest)
    if current is None:
        crds = cluster.chart_crds(work.chart)
        manifests = crds + manifests
    wanted = {object_key(m) for m in manifests}
    gone = [m for m in (current.manifest if current else ()) if object_key(m) not in wanted]
    live = cluster.get_many([*wanted, *(object_key(m) for m in gone)])
    secrets = known_secrets(secrets, manifests, live)
    found = compare(manifests, live, secrets)
    for manifest in gone:
        obj = live.get(object_key(manifest))
        if obj is not None:
            found.append(_object_diff(DELETE, obj, obj, secrets))
    label = "install" if current is None else f"upgrade: {reason}"
    return label, found


def _yaml_diff(
    work: AppWork, cluster: Objects, previous: AppDeploymentRecord | None
) -> list[ObjectDiff]:
    manifests = [o.manifest for o in work.objects]
    wanted = {o.key for o in work.objects}
    namespaces = [namespace_manifest(ns) for ns in needed_namespaces(manifests)]
    states = {
        key: thaw(res.current_state)
        for key, res in live_resources(previous).items()
        if res.current_state is not None
    }
    deleting = [k for k in delete_keys(work) if k not in wanted]
    recorded = [k for k in live_resources(previous) if k not in wanted and k not in deleting]
    live = cluster.get_many([*wanted, *(object_key(n) for n in namespaces), *recorded, *deleting])
    # As a deploy would apply them: an adopted object keeps its mark (one the app does not
    # own yet is shown as adopting it would change it; the deploy itself needs adopt).
    manifests = [
        claim(
            o.manifest,
            live.get(o.key),
            app=work.name,
            namespace=work.namespace,
            app_dir=work.app_dir,
            adopt=True,
        )[0]
        for o in work.objects
    ]
    missing = [n for n in namespaces if live.get(object_key(n)) is None]
    secrets = known_secrets((), manifests, live)
    found = [_object_diff(CREATE, n, None, ()) for n in missing]
    found += compare(manifests, live, secrets, states)
    for key in recorded:
        obj = live.get(key)
        if (
            obj is not None
            and owned_by(obj, work.name, work.namespace, work.app_dir)
            and not kept_on_removal(obj)
        ):
            found.append(_object_diff(DELETE, obj, obj, secrets))
    for key in deleting:  # an action app's delete steps: whoever made the object
        obj = live.get(key)
        if obj is not None:
            found.append(_object_diff(DELETE, obj, obj, secrets))
    return found


def live_diff(
    app_dir: str | os.PathLike[str], *, cluster: Cluster, **args: Unpack[RenderArgs]
) -> LiveDiff:
    """Compare what deploying ``app_dir`` would apply with the live objects of ``cluster``;
    see the module docstring. Nothing is changed on the cluster or in the store.
    The keywords are deploy's (``target.RenderArgs``: ``-n``, ``-f``/``--set``...)."""
    options = Options(**args)
    loaded, names = options.load(app_dir)
    cluster.check_reachable()
    # Git checkouts and downloads as the last deploy left them: a diff fetches nothing.
    loaded = fetch_sources(loaded, names, mode="cached").loaded
    # A Helm app is rendered once, below: by the server (``helm upgrade --dry-run``) when
    # its inputs changed, not at all when they did not (``helm template`` here would be
    # a second render nobody reads).
    works = prepare_apps(loaded, names, cluster, skip_render=lambda work: True)
    target = Target.of_config(loaded, cluster, options)
    results = [_app_diff(target, cluster, work) for work in works]
    return target.result(LiveDiff, apps=tuple(results), changed=any(a.changed for a in results))


def live_diff_phases(
    phases_file: PhasesFile,
    *,
    cluster: Cluster,
    phases: Sequence[str] | None = None,
    **args: Unpack[RenderArgs],
) -> LiveDiff:
    """:func:`live_diff` of a multi-dir run (a file of phases): the apps of the phases
    taken as ``deploy`` takes them (``phases``: ``--phase`` names with the phases they
    need), each compared with its last successful recording under the run's target (the
    cluster, the file's namespace: where deploy records the run), each with its phase."""
    from sbkube.engine.units import select_units

    options = Options(**args)
    _taken, units = select_units(phases_file, phases, options)
    cluster.check_reachable()
    target = Target.of_phases(phases_file, cluster, options)
    results = []
    for phase, _group, loaded, names in units:
        loaded = fetch_sources(loaded, names, mode="cached").loaded
        works = prepare_apps(loaded, names, cluster, skip_render=lambda work: True)
        results += [replace(_app_diff(target, cluster, work), phase=phase) for work in works]
    return target.result(LiveDiff, apps=tuple(results), changed=any(a.changed for a in results))


def _app_diff(target: Target, cluster: Cluster, work: AppWork) -> AppDiff:
    previous = target.last_successful_app(work.name)
    release: str | None = None
    if work.type == "helm":
        release, found = _helm_diff(work, cluster, previous, target.secret_keys)
    else:
        found = _yaml_diff(work, cluster, previous)
    changed = bool(found) or release not in (None, "unchanged")
    return AppDiff(work.name, work.type, work.namespace, release, tuple(found), changed)
