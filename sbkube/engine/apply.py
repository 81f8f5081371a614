"""Applying one app to a cluster and recording what happened: shared by deploy and rollback.

YAML apps (kapp-style): every object carries sbkube's ownership labels; the live objects
are read before applying (one LIST per kind and namespace, with their ``managedFields``) so
each is recorded as ``create``, ``update`` or ``unchanged``. Unchanged means both: every
field the manifest sets already has that value live (``compare.matches``, the one
comparison), and no field sbkube applied before is gone from the manifest while still live
(``compare.removed``: sbkube's field manager's ``managedFields``, else the record). Those
that change go to the cluster in one server-side apply (field manager ``sbkube``), which
removes the dropped fields; a Secret is sent as the server stores it (``stringData``
folded into ``data``), so that sbkube owns its ``data`` keys and a key dropped from
``stringData`` is removed too.
Before anything is applied, every listed object that exists must be the app's own (its
ownership labels name this app, namespace and app dir) or be adopted (``work.claim``): one
that is not fails the app, naming its owner, and nothing is applied. Pruning lists, per
kind the app recorded before, the live objects that carry this app's ownership labels (one
label-selector LIST per kind); those the desired set no longer has are deleted in one call
and recorded as ``delete`` with their previous state, so the prune set is computed, never
guessed. An adopted Namespace is never deleted (``work.kept_on_removal``).

Helm apps: ``helm upgrade --install``; the revision it made is recorded with chart version,
app version, revision, the values used and the digest of the chart's files, and its objects
as Helm installed them (helm's own manifest of the revision, hooks marked apart, test hooks
left out), their actions computed against the live cluster as it was before helm ran
(``create`` when an object was not live: a release uninstalled by hand, a fresh cluster;
``update`` when it differed: a repaired drift). A release whose
inputs and live objects match its current revision is not upgraded (``live.upgrade_reason``):
the app is recorded ``unchanged`` at that revision. On a first install, the chart's ``crds/``
that Helm created are recorded too, with ``hook`` set to ``crd-install`` (Helm 2's name for
them): they are not release objects, and Helm never upgrades or deletes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbkube.cluster.helm import chart_uses_lookup
from sbkube.cluster.port import Cluster, HookInfo, Objects, ReleaseInfo, Releases, UpgradeRequest
from sbkube.engine.compare import matches, removed
from sbkube.engine.live import upgrade_reason
from sbkube.engine.namespaces import (
    namespace_key,
    namespace_manifest,
    needed_namespaces,
    plan_namespaces,
)
from sbkube.engine.results import ReleaseChange, ResourceChange
from sbkube.engine.snapshot import Snapshot, SnapshotView
from sbkube.engine.work import (
    APP_DIR_LABEL,
    APP_LABEL,
    NAMESPACE_LABEL,
    AppWork,
    DesiredObject,
    app_dir_label,
    claim,
    kept_on_removal,
    owned_by,
)
from sbkube.errors import ClusterError, RefusedError
from sbkube.manifests import ObjectKey, fold_string_data, object_key
from sbkube.model import ResourceAction, thaw
from sbkube.redaction import (
    learn_manifests,
    manifest_checksum,
    secret_leaves,
    store_form,
)
from sbkube.state import AppDeploymentRecord, ResourceInput, ResourceRecord

if TYPE_CHECKING:
    from sbkube.state import AppHandle


def change_for(action: ResourceAction, key: ObjectKey) -> ResourceChange:
    api, kind, ns, name = key
    return ResourceChange(action, api, kind, ns or None, name)


def _change(action: ResourceAction, m: Mapping[str, Any]) -> ResourceChange:
    return change_for(action, object_key(m))


def live_resources(app: AppDeploymentRecord | None) -> dict[ObjectKey, ResourceRecord]:
    """The resources an app recording left in place (all but its deletes), by key."""
    if app is None:
        return {}
    return {r.key: r for r in app.resources if r.action != ResourceAction.DELETE}


def _recorded_state(res: ResourceRecord | None) -> dict[str, Any] | None:
    return thaw(res.current_state) if res is not None and res.current_state is not None else None


def _identity(key: ObjectKey) -> tuple[str, str, str, str]:
    """A key without its API version: a LIST may answer in another version of the group."""
    api_version, kind, namespace, name = key
    return (api_version.rpartition("/")[0], kind, namespace, name)


def _apply_rank(manifest: Mapping[str, Any]) -> int:
    # Namespaces, then CRDs, then the rest: what an object needs is applied before it.
    kind = manifest.get("kind")
    return 0 if kind == "Namespace" else 1 if kind == "CustomResourceDefinition" else 2


def apply_yaml_app(
    work: AppWork,
    cluster: Objects,
    handle: AppHandle,
    previous: AppDeploymentRecord | None,
    *,
    prune: bool = True,
    adopt: bool = False,
    failed: AppDeploymentRecord | None = None,
    spared: Iterable[ObjectKey] = (),
) -> tuple[ResourceChange, ...]:
    """Apply a YAML app's objects, prune what it no longer has, record every resource.

    Against the cluster, whatever the number of objects: one read of the live objects (a
    LIST per kind and namespace), one server-side apply of those that change (missing
    namespaces first), one label-selector LIST per kind the app recorded before, and one
    delete of the objects pruned. When the apply fails part-way, the objects are read
    again and those kubectl did apply are recorded as applied (the rest left out) before
    the app fails, so that ``failed`` (that recording, on the next deploy) has the prune
    look at their kinds too and delete them once they leave the manifests. ``adopt`` (or
    the app's own ``adopt``) lets it take over existing objects that are not its own;
    without it they fail the app before anything is applied. The prune leaves ``spared``
    (an action app's delete steps delete them, and record it, themselves)."""
    manifests = [o.manifest for o in work.objects]
    names = needed_namespaces(manifests)
    live = cluster.list_many([*(namespace_key(n) for n in names), *(o.key for o in work.objects)])
    namespaces = plan_namespaces(manifests, live, previous)
    writes = [namespace_manifest(name) for name in namespaces.missing]
    entries: list[tuple[DesiredObject, dict[str, Any], ResourceAction]] = []
    recorded = live_resources(previous)
    refusals = []
    for obj in work.objects:
        before = live.get(obj.key)
        manifest, refusal = claim(
            obj.manifest,
            before,
            app=work.name,
            namespace=work.namespace,
            app_dir=work.app_dir,
            adopt=adopt or work.adopt,
        )
        if refusal is not None:
            refusals.append(refusal)
        # Sent, compared and recorded as the server stores it (a Secret's stringData folded).
        stored = fold_string_data(manifest)
        if before is None:
            action = ResourceAction.CREATE
        elif matches(stored, before) and not removed(
            stored, before, _recorded_state(recorded.get(obj.key))
        ):
            action = ResourceAction.UNCHANGED
        else:
            action = ResourceAction.UPDATE
        if action != ResourceAction.UNCHANGED:
            writes.append(stored)
        entries.append((obj, stored, action))
    if refusals:
        more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
        raise RefusedError(refusals[0] + more)
    try:
        applied = cluster.apply_many(sorted(writes, key=_apply_rank))
    except ClusterError:
        _record_part(cluster, handle, namespaces.missing, entries, live)
        raise
    created = {object_key(o): o for o in applied if o.get("kind") == "Namespace"}
    done = namespaces.work(created)
    inputs: list[ResourceInput] = list(done.inputs)
    changes: list[ResourceChange] = [change_for(a, k) for a, k in done.actions]
    for obj, stored, action in entries:
        inputs.append(
            ResourceInput.from_manifest(
                stored, action, previous=live.get(obj.key), source_file=obj.source_file
            )
        )
        changes.append(_change(action, obj.manifest))
    if prune:
        desired = {_identity(key) for key in (*done.keys, *(o.key for o in work.objects), *spared)}
        for gone, source_file in _prune(work, cluster, previous, desired, failed):
            inputs.append(
                ResourceInput.from_manifest(
                    gone, ResourceAction.DELETE, previous=gone, source_file=source_file
                )
            )
            changes.append(_change(ResourceAction.DELETE, gone))
    handle.record_resources(inputs)
    return tuple(changes)


def prune_app(
    work: AppWork,
    cluster: Objects,
    handle: AppHandle,
    previous: AppDeploymentRecord | None,
    keep: Iterable[ObjectKey],
    *,
    failed: AppDeploymentRecord | None = None,
) -> tuple[ResourceChange, ...]:
    """The prune of :func:`apply_yaml_app` alone, for an app whose own apply does not
    prune (Helm, exec, noop, hook) but whose hooks applied objects: those carrying the
    app's ownership labels that ``keep`` no longer has are deleted and recorded."""
    desired = {_identity(key) for key in keep}
    inputs: list[ResourceInput] = []
    changes: list[ResourceChange] = []
    for gone, source_file in _prune(work, cluster, previous, desired, failed):
        inputs.append(
            ResourceInput.from_manifest(
                gone, ResourceAction.DELETE, previous=gone, source_file=source_file
            )
        )
        changes.append(_change(ResourceAction.DELETE, gone))
    if inputs:
        handle.record_resources(inputs)
    return tuple(changes)


def _record_part(
    cluster: Objects,
    handle: AppHandle,
    namespaces: Sequence[str],
    entries: Sequence[tuple[DesiredObject, dict[str, Any], ResourceAction]],
    before: Mapping[ObjectKey, dict[str, Any] | None],
) -> None:
    """Record what an apply that failed part-way did apply: each written object that is now
    live as sent (one read), with its action; those kubectl never applied are left out. A
    cluster that cannot be read now leaves the record as it is (the apply's error says
    why)."""
    written = [(o, stored, a) for o, stored, a in entries if a != ResourceAction.UNCHANGED]
    keys = [namespace_key(n) for n in namespaces] + [o.key for o, _, _ in written]
    try:
        now = cluster.list_many(keys)
    except ClusterError:
        return
    inputs: list[ResourceInput] = []
    for name in namespaces:
        made = now.get(namespace_key(name))
        if made is not None:
            inputs.append(ResourceInput.from_manifest(made, ResourceAction.CREATE))
    for obj, stored, action in entries:
        live = now.get(obj.key) if action != ResourceAction.UNCHANGED else before.get(obj.key)
        if live is None or not matches(stored, live):
            continue
        inputs.append(
            ResourceInput.from_manifest(
                stored, action, previous=before.get(obj.key), source_file=obj.source_file
            )
        )
    if inputs:
        handle.record_resources(inputs)


def _prune(
    work: AppWork,
    cluster: Objects,
    previous: AppDeploymentRecord | None,
    desired: set[tuple[str, str, str, str]],
    failed: AppDeploymentRecord | None = None,
) -> list[tuple[dict[str, Any], str | None]]:
    """Delete the live objects that carry this app's ownership labels, are of a kind the
    app recorded before (successfully, or in a run that ``failed`` part-way since), and
    are no longer desired (one LIST per kind, one delete); returns each deleted object with
    the file it was recorded from."""
    recorded = {**live_resources(failed), **live_resources(previous)}
    kinds = sorted({(key[0], key[1]) for key in recorded})
    if not kinds:
        return []
    labels = {
        APP_LABEL: work.name,
        NAMESPACE_LABEL: work.namespace,
        APP_DIR_LABEL: app_dir_label(work.app_dir),
    }
    gone = [
        obj
        for obj in cluster.list_labelled(kinds, labels)
        if _identity(object_key(obj)) not in desired
        and owned_by(obj, work.name, work.namespace, work.app_dir)
        and not kept_on_removal(obj)
    ]
    if not gone:
        return []
    deleted = set(cluster.delete_many([object_key(obj) for obj in gone]))
    sources = {_identity(key): rec.source_file for key, rec in recorded.items()}
    return [
        (obj, sources.get(_identity(object_key(obj)))) for obj in gone if object_key(obj) in deleted
    ]


def helm_resource_inputs(
    installed: Sequence[Mapping[str, Any]],
    previous: AppDeploymentRecord | None,
    secret_values: Iterable[str] = (),
    *,
    hooks: Sequence[HookInfo] = (),
    unchanged: bool = False,
    live_before: Mapping[ObjectKey, Mapping[str, Any] | None] | None = None,
    fresh: bool = False,
) -> tuple[list[ResourceInput], list[ResourceChange]]:
    """Actions for a release's objects (``installed``: Helm's manifest of the revision) and
    hooks. With ``live_before`` (the objects as they were live before helm ran) a release
    object's action is what helm did to the cluster: ``create`` when it was not live,
    ``unchanged`` when it was live as the manifest says and the record holds the same
    manifest, ``update`` otherwise; so a release uninstalled by hand, a fresh cluster and
    a repaired drift are recorded as what they were, whatever the record said. Hooks, and
    every object without ``live_before``, are compared with the app's last recorded ones by
    checksum of the stored form (secrets scrubbed as the store does). Release objects the
    revision no longer has are recorded ``delete`` (Helm removed them); hooks are never
    pruned by Helm, so a hook the chart dropped is simply no longer recorded; ``fresh`` (the
    release did not exist before) records every hook that ran ``create``. Test hooks
    are never recorded: an install or upgrade does not run them. With ``unchanged`` (the
    release was left as it was) every object is recorded ``unchanged`` and nothing
    ``delete``."""
    secrets = (
        *secret_values,
        *learn_manifests(installed),
        *learn_manifests(h.manifest for h in hooks),
    )
    prev = live_resources(previous)
    inputs: list[ResourceInput] = []
    changes: list[ResourceChange] = []
    seen = set()
    entries: list[tuple[Mapping[str, Any], str | None]] = [(m, None) for m in installed]
    # Only the hooks this revision ran: an install also stores its post-upgrade hooks.
    entries += [(h.manifest, h.annotation) for h in hooks if not h.is_test and h.ran]
    for manifest, hook in entries:
        key = object_key(manifest)
        seen.add(key)
        old = prev.get(key)
        same = old is not None and old.checksum == manifest_checksum(store_form(manifest, secrets))
        if unchanged:
            action = ResourceAction.UNCHANGED
        elif live_before is not None and hook is None:
            was = live_before.get(key)
            if was is None:
                action = ResourceAction.CREATE
            elif same and matches(fold_string_data(manifest), was):
                action = ResourceAction.UNCHANGED
            else:
                action = ResourceAction.UPDATE
        elif old is None or fresh:
            action = ResourceAction.CREATE
        elif same:
            action = ResourceAction.UNCHANGED
        else:
            action = ResourceAction.UPDATE
        prev_state = thaw(old.current_state) if old is not None and old.current_state else None
        inputs.append(ResourceInput.from_manifest(manifest, action, previous=prev_state, hook=hook))
        changes.append(_change(action, manifest))
    for key, old in ({} if unchanged else prev).items():
        if key not in seen and old.current_state is not None and old.hook is None:
            inputs.append(
                ResourceInput.from_manifest(
                    thaw(old.current_state), ResourceAction.DELETE, previous=thaw(old.current_state)
                )
            )
            changes.append(_change(ResourceAction.DELETE, old.current_state))
    return inputs, changes


def learn_looked_up(
    work: AppWork,
    info: ReleaseInfo,
    cluster: Objects,
    handle: AppHandle,
    previous: AppDeploymentRecord | None,
) -> None:
    """Learn the Secrets a chart's ``lookup`` may have read, before its manifest is
    recorded. ``helm template`` (the prepared render) reads nothing live, so a password a
    chart copies from a live Secret (``(lookup "v1" "Secret" ns "db").data.password``) is
    in Helm's manifest only: hidden there and everywhere after once every live Secret's
    data is known (one LIST, and only for a chart that calls ``lookup``; Helm's own release
    Secrets are left out: they hold Helm's record, not the user's secrets).

    Whether it does: helm prints the chart's templates with an install or upgrade; a local
    chart is read; an unchanged release of a repository chart (``helm status`` prints no
    chart) goes by what the app's last recording said (``chart_uses_lookup``)."""
    assert work.chart is not None
    recorded = previous is not None and bool(previous.metadata.get("chart_uses_lookup"))
    if not (info.uses_lookup or recorded or chart_uses_lookup(Path(work.chart.ref))):
        return
    handle.set_metadata(chart_uses_lookup=True)
    learn_manifests(
        s
        for s in cluster.list_labelled([("v1", "Secret")], {})
        if s.get("type") != "helm.sh/release.v1"
    )


def record_release(
    handle: AppHandle,
    info: ReleaseInfo,
    values: Mapping[str, Any],
    chart_digest: str | None = None,
) -> None:
    handle.record_helm_release(
        release_name=info.name,
        namespace=info.namespace,
        chart=info.chart,
        chart_version=info.chart_version,
        app_version=info.app_version,
        revision=info.revision,
        status=info.status,
        values=values,
        chart_digest=chart_digest,
    )


def _record_failed_revision(
    work: AppWork, cluster: Releases, handle: AppHandle, before: ReleaseInfo | None
) -> None:
    assert work.release_name is not None
    try:
        after = cluster.helm_status(work.release_name, work.namespace)
    except ClusterError:
        return  # the cluster is unreachable: the upgrade's own error says enough
    if after is not None and (before is None or after.revision != before.revision):
        record_release(handle, after, work.values, work.chart_digest)


def _manifest(info: ReleaseInfo | None) -> tuple[Mapping[str, Any], ...]:
    return info.manifest if info is not None else ()


CRD_INSTALL = "crd-install"
"""The ``hook`` recorded for a chart's ``crds/`` objects that its first install created."""


def _new_crds(work: AppWork, cluster: Cluster) -> list[dict[str, Any]]:
    """The chart's ``crds/`` objects that do not exist yet: a first install creates them
    (Helm skips those that exist)."""
    assert work.chart is not None
    crds = cluster.chart_crds(work.chart)
    live = cluster.get_many([object_key(c) for c in crds])
    return [c for c in crds if live.get(object_key(c)) is None]


def _unchanged_release(
    work: AppWork,
    cluster: Objects,
    handle: AppHandle,
    current: ReleaseInfo,
    previous: AppDeploymentRecord | None,
    secret_keys: Sequence[str],
) -> tuple[tuple[ResourceChange, ...], ReleaseChange]:
    """Record the app at its current revision, every release object ``unchanged``: no
    upgrade ran, so no hook ran either and none is recorded."""
    assert work.chart is not None
    handle.set_metadata(
        chart_ref=work.chart.ref,
        chart_version_requested=work.chart.version,
        previous_revision=current.revision,
    )
    record_release(handle, current, work.values, work.chart_digest)
    secrets = secret_leaves(work.values, tuple(secret_keys))
    learn_looked_up(work, current, cluster, handle, previous)
    inputs, changes = helm_resource_inputs(current.manifest, previous, secrets, unchanged=True)
    handle.record_resources(inputs)
    release = ReleaseChange.of(
        "unchanged", current, from_revision=current.revision, to_revision=current.revision
    )
    return tuple(changes), release


def apply_helm_app(
    work: AppWork,
    cluster: Cluster,
    handle: AppHandle,
    previous: AppDeploymentRecord | None,
    secret_keys: Sequence[str],
    *,
    force_upgrade: bool = False,
    snapshot: Snapshot | None = None,
) -> tuple[tuple[ResourceChange, ...], ReleaseChange]:
    """``helm upgrade --install`` and its recording; ``secret_keys`` name the values whose
    plain text must not reach the recorded manifests. With the deploy's ``snapshot``, the
    current revision and its live objects are read from it (no ``helm status``, no
    ``kubectl get``: an unchanged release costs no process).

    What is recorded is what Helm installed: the manifest and hooks of the revision the
    upgrade made, as helm prints them, never a second render (a chart that randomises
    names or generates certificates would differ from what is live). When nothing would
    change (``live.upgrade_reason``) and ``force_upgrade`` is off, there is no upgrade."""
    assert work.chart is not None and work.release_name is not None
    recorded = previous.helm_release if previous is not None else None
    # A local chart is compared by the digest of its files, so the chart's name and version
    # are not asked of helm (one process less); an unchanged release takes them from the
    # record of the same revision.
    known, before = (
        snapshot.release(work.release_name, work.namespace)
        if snapshot is not None
        else (False, None)
    )
    if not known:
        before = cluster.helm_status(
            work.release_name, work.namespace, chart=work.chart_digest is None
        )
    if before is not None and not force_upgrade:
        reads: Objects = SnapshotView(snapshot, cluster) if snapshot is not None else cluster
        reason = upgrade_reason(
            reads,
            before,
            recorded,
            chart=work.chart,
            chart_digest=work.chart_digest,
            values=work.values,
        )
        if reason is None:
            assert recorded is not None  # upgrade_reason: the recorded revision is current
            if not before.chart:
                before = replace(
                    before,
                    chart=recorded.chart,
                    chart_version=recorded.chart_version or "",
                    app_version=recorded.app_version,
                )
            return _unchanged_release(work, cluster, handle, before, previous, secret_keys)
    crds = _new_crds(work, cluster) if before is None else []
    # What helm is about to change, read before it does: the objects the chart renders and
    # those of the current revision (one request), so each is recorded as what helm did.
    # A dry run changes nothing, and its chart is rendered once, by the upgrade itself:
    # the objects its manifest names are read after it.
    rendered = [o.key for o in work.objects]
    live_before = (
        cluster.get_many(
            list(dict.fromkeys([*rendered, *(object_key(m) for m in _manifest(before))]))
        )
        if not cluster.dry_run
        else None
    )
    try:
        info = cluster.helm_upgrade_install(
            UpgradeRequest(
                work.chart,
                release_name=work.release_name,
                namespace=work.namespace,
                values=work.values,
                wait=work.wait,
                timeout=work.timeout,
                # A deploy puts back what the config declares, fields changed behind sbkube's
                # back included (helm's three-way merge did so before server-side apply).
                force_conflicts=before is not None and before.apply_method == "ssa",
            )
        )
    except ClusterError:
        # helm may have made a (failed) revision before giving up: record it, so the
        # history says "revision N failed" and later plans count revisions right.
        _record_failed_revision(work, cluster, handle, before)
        raise
    if not info.manifest and not info.hooks:
        # A helm build that prints the release without its manifest: ask for the revision.
        info = cluster.helm_status(work.release_name, work.namespace) or info
    if live_before is None:
        live_before = cluster.get_many(
            list(
                dict.fromkeys(
                    [
                        *rendered,
                        *(object_key(m) for m in info.manifest),
                        *(object_key(m) for m in _manifest(before)),
                    ]
                )
            )
        )
    handle.set_metadata(
        chart_ref=work.chart.ref,
        chart_version_requested=work.chart.version,
        previous_revision=before.revision if before else None,
    )
    record_release(handle, info, work.values, work.chart_digest)
    secrets = secret_leaves(work.values, tuple(secret_keys))
    learn_looked_up(work, info, cluster, handle, previous)
    inputs, changes = helm_resource_inputs(
        info.manifest,
        previous,
        secrets,
        hooks=info.hooks,
        live_before=live_before,
        fresh=before is None,
    )
    for crd in crds:
        inputs.append(ResourceInput.from_manifest(crd, ResourceAction.CREATE, hook=CRD_INSTALL))
        changes.append(_change(ResourceAction.CREATE, crd))
    handle.record_resources(inputs)
    release = ReleaseChange.of(
        "upgrade" if before is not None else "install",
        info,
        from_revision=before.revision if before else None,
        to_revision=info.revision,
    )
    return tuple(changes), release
