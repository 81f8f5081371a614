"""What changed between two recorded deployments (``sbkube state diff A B``).

Pure functions over frozen :class:`~sbkube.state.DeploymentRecord` values; no
database, no cluster. Four sections, each narrowed by ``apps`` when given:

* the config snapshot, as a unified diff of its YAML dump;
* every Helm release: chart, chart version and revision changes, and the values as
  dotted paths added / removed / changed;
* the resource set of every app: added, removed, changed (by checksum), unchanged;
* a unified diff of the stored manifest of every changed resource.

The result is data (records with ``to_dict``); ``sbkube.cli.output.render_diff`` turns it
into text. Secrets never show: the store keeps them as ``sha256:`` digests (``redact.py``),
and a digest is rendered as a marker — a value is only ever "(secret) changed" or
"(secret) unchanged", in the text output as in JSON.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sbkube import yamlio
from sbkube.errors import NotFoundError, UsageError
from sbkube.model import Record, ResourceAction, thaw
from sbkube.redaction import is_digest
from sbkube.state import AppDeploymentRecord, DeploymentRecord, HelmReleaseRecord, ResourceRecord

SECRET = "(secret)"
SECRET_CHANGED = "(secret, changed)"
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class DeploymentRef(Record):
    """Which deployment a side of the diff is."""

    deployment_id: str
    cluster: str
    namespace: str
    command: str
    status: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class ValueChange(Record):
    """One Helm value that differs. ``secret`` values carry no ``old``/``new``."""

    path: str
    change: str  # added | removed | changed
    old: Any = None
    new: Any = None
    secret: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseDiff(Record):
    app: str
    release_name: str
    namespace: str
    change: str  # added | removed | changed | unchanged
    chart_a: str | None
    chart_b: str | None
    chart_version_a: str | None
    chart_version_b: str | None
    revision_a: int | None
    revision_b: int | None
    values: tuple[ValueChange, ...] = ()
    unchanged_secrets: tuple[str, ...] = ()

    @property
    def chart_changed(self) -> bool:
        return (self.chart_a, self.chart_version_a) != (self.chart_b, self.chart_version_b)

    @property
    def revision_changed(self) -> bool:
        return self.revision_a != self.revision_b


@dataclass(frozen=True, slots=True)
class ResourceRef(Record):
    api_version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name} ({self.api_version})"


@dataclass(frozen=True, slots=True)
class ResourceDiff(Record):
    """A resource present in both deployments whose checksum differs, with its diff."""

    resource: ResourceRef
    checksum_a: str | None
    checksum_b: str | None
    diff: str


@dataclass(frozen=True, slots=True)
class AppResourceDiff(Record):
    app: str
    change: str  # added | removed | changed | unchanged (the app itself)
    added: tuple[ResourceRef, ...] = ()
    removed: tuple[ResourceRef, ...] = ()
    changed: tuple[ResourceDiff, ...] = ()
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class SourceChange(Record):
    """One field of a git or http app's recorded source that differs (commit, sha256...)."""

    field: str
    old: Any = None
    new: Any = None


@dataclass(frozen=True, slots=True)
class SourceDiff(Record):
    """A git or http app's recorded ``source`` (repository and commit; url and sha256)."""

    app: str
    kind: str  # git | http
    change: str  # added | removed | changed | unchanged
    fields: tuple[SourceChange, ...] = ()


@dataclass(frozen=True, slots=True)
class DeploymentDiff(Record):
    a: DeploymentRef
    b: DeploymentRef
    apps: tuple[str, ...] | None
    config_changed: bool
    config_diff: str
    releases: tuple[ReleaseDiff, ...]
    resources: tuple[AppResourceDiff, ...]
    sources: tuple[SourceDiff, ...] = ()

    @property
    def changed(self) -> bool:
        return (
            self.config_changed
            or any(r.change != "unchanged" for r in self.releases)
            or any(r.change != "unchanged" for r in self.resources)
            or any(s.change != "unchanged" for s in self.sources)
        )


# -- helpers -----------------------------------------------------------------------------


def _has_digest(value: Any) -> bool:
    if is_digest(value):
        return True
    if isinstance(value, Mapping):
        return any(_has_digest(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_digest(v) for v in value)
    return False


def mask_secrets(a: Any, b: Any) -> tuple[Any, Any]:
    """Copies of ``a`` and ``b`` with every digest replaced by a marker.

    Walked side by side so that a digest that differs from the one at the same place on
    the other side reads ``(secret, changed)`` on the newer side: a unified diff then
    still says that the secret changed, without showing either digest.
    """

    def walk(x: Any, y: Any) -> tuple[Any, Any]:
        # Each pair of children is walked once and both sides kept: walking it once per
        # side doubles the work at every level (2**depth for a deep manifest).
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            pairs = {k: walk(v, y.get(k, _MISSING)) for k, v in x.items()}
            xs = {k: p[0] for k, p in pairs.items()}
            ys = {k: pairs[k][1] if k in pairs else walk(_MISSING, v)[1] for k, v in y.items()}
            return xs, ys
        if isinstance(x, list | tuple) and isinstance(y, list | tuple):
            pl = [walk(v, y[i] if i < len(y) else _MISSING) for i, v in enumerate(x)]
            xs_l = [p[0] for p in pl]
            ys_l = [pl[i][1] if i < len(pl) else walk(_MISSING, v)[1] for i, v in enumerate(y)]
            return xs_l, ys_l
        return one(x, y), one(y, x, newer=True)

    def one(v: Any, other: Any, *, newer: bool = False) -> Any:
        if v is _MISSING:
            return _MISSING
        if is_digest(v):
            return SECRET_CHANGED if newer and other is not _MISSING and other != v else SECRET
        if isinstance(v, Mapping):
            return {k: one(x, _MISSING) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [one(x, _MISSING) for x in v]
        return v

    return walk(thaw(a) if a is not None else _MISSING, thaw(b) if b is not None else _MISSING)


def _yaml(value: Any) -> list[str]:
    if value is _MISSING or value is None:
        return []
    # Sorted keys: PostgreSQL's JSONB does not keep key order, SQLite's JSON does.
    # libyaml's emitter when PyYAML has it (yamlio): the pure-Python one is most of the time
    # of a report that diffs a thousand deployments.
    text = yamlio.dump(value, sort_keys=True, allow_unicode=True)
    return text.splitlines(keepends=True)


def _masked(value: Any) -> tuple[Any, bool, bool]:
    """``value`` thawed with every digest replaced by ``(secret)``; whether it had a
    digest; and whether its keys are all strings (JSON text then tells it apart).

    This is the older side of :func:`mask_secrets` whatever the other side is, and its
    newer side too when the value holds no digest.
    """
    found = False
    str_keys = True

    def walk(v: Any) -> Any:
        nonlocal found, str_keys
        if isinstance(v, str):
            if is_digest(v):
                found = True
                return SECRET
            return v
        if isinstance(v, Mapping):
            out = {k: walk(x) for k, x in v.items()}
            str_keys = str_keys and all(type(k) is str for k in out)
            return out
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    if value is None:
        return _MISSING, False, True
    return walk(value), found, str_keys


class Dumps:
    """The masked YAML lines of stored values, each made once however many diffs show it.

    A report diffs every deployment against the one before it, so each manifest and
    config snapshot is the newer side of one diff and then the older side of the next;
    and a history comes back to what it was (a rollback, a setting undone), so the same
    manifest recurs. Values are found by identity first (records are frozen and not
    copied on the way; each value is kept, so its id is not reused while the cache
    lives), then by content: the JSON text of the masked value, which tells apart every
    two JSON values with string keys, as YAML does.
    """

    __slots__ = ("_entries", "_texts")

    def __init__(self) -> None:
        self._entries: dict[int, _Dumped] = {}
        self._texts: dict[str, list[str]] = {}

    def _entry(self, value: Any) -> _Dumped:
        entry = self._entries.get(id(value))
        if entry is None:
            masked, secret, str_keys = _masked(value)
            entry = self._entries[id(value)] = _Dumped(value, masked, secret, str_keys)
        return entry

    def _lines(self, masked: Any, str_keys: bool) -> list[str]:
        if masked is _MISSING or not str_keys:
            return _yaml(masked)
        try:
            key = json.dumps(masked, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError):  # not JSON data: no content key, dumped each time
            return _yaml(masked)
        lines = self._texts.get(key)
        if lines is None:
            lines = self._texts[key] = _yaml(masked)
        return lines

    def _made(self, entry: _Dumped) -> list[str]:
        if entry.lines is None:
            entry.lines = self._lines(entry.masked, entry.str_keys)
        return entry.lines

    def unified(self, a: Any, b: Any, from_name: str, to_name: str) -> str:
        """The unified diff of ``a`` and ``b`` as YAML, secrets as :func:`mask_secrets`
        marks them; ``None`` is no text at all."""
        old, new = self._entry(a), self._entry(b)
        lines_b = self._made(new)
        if new.secret:
            # The newer side marks a digest that differs from the older one's as changed:
            # its text depends on the pair, unless no digest changed.
            masked_b = mask_secrets(a, b)[1]
            if masked_b != new.masked:
                lines_b = self._lines(masked_b, new.str_keys)
        lines = difflib.unified_diff(self._made(old), lines_b, fromfile=from_name, tofile=to_name)
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


class _Dumped:
    """One value in :class:`Dumps`: itself (which keeps its id taken), masked, and its
    YAML lines once asked for."""

    __slots__ = ("lines", "masked", "secret", "str_keys", "value")

    def __init__(self, value: Any, masked: Any, secret: bool, str_keys: bool) -> None:
        self.value, self.masked, self.secret, self.str_keys = value, masked, secret, str_keys
        self.lines: list[str] | None = None


def _path(prefix: str, key: str) -> str:
    part = f"[{key!r}]" if (not key or "." in key or "[" in key) else key
    if not prefix:
        return part
    return f"{prefix}{part}" if part.startswith("[") else f"{prefix}.{part}"


def diff_values(
    a: Mapping[str, Any], b: Mapping[str, Any]
) -> tuple[tuple[ValueChange, ...], tuple[str, ...]]:
    """Changed Helm values as dotted paths, and the paths of secrets that did not change.

    Maps are walked key by key; lists are compared whole, as Helm replaces them whole.
    """
    changes: list[ValueChange] = []
    same_secrets: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            for key in sorted(set(x) | set(y), key=str):
                walk(x.get(key, _MISSING), y.get(key, _MISSING), _path(prefix, str(key)))
            return
        secret = _has_digest(x) or _has_digest(y)
        if x == y:
            if secret:
                same_secrets.append(prefix)
            return
        change = "added" if x is _MISSING else "removed" if y is _MISSING else "changed"
        if secret:
            changes.append(ValueChange(path=prefix, change=change, secret=True))
        else:
            changes.append(
                ValueChange(
                    path=prefix,
                    change=change,
                    old=None if x is _MISSING else thaw(x),
                    new=None if y is _MISSING else thaw(y),
                )
            )

    walk(a, b, "")
    return tuple(changes), tuple(same_secrets)


def _ref(d: DeploymentRecord) -> DeploymentRef:
    return DeploymentRef(
        deployment_id=d.deployment_id,
        cluster=d.cluster,
        namespace=d.namespace,
        command=str(d.command),
        status=str(d.status),
        started_at=d.started_at,
    )


def _narrow_config(snapshot: Any, apps: Sequence[str] | None) -> Any:
    if snapshot is None or apps is None or not isinstance(snapshot, Mapping):
        return snapshot
    out = dict(snapshot)
    if isinstance(snapshot.get("apps"), Mapping):
        out["apps"] = {k: v for k, v in snapshot["apps"].items() if k in apps}
    return out


def _release_diffs(
    app: str, a: AppDeploymentRecord | None, b: AppDeploymentRecord | None
) -> list[ReleaseDiff]:
    def index(x: AppDeploymentRecord | None) -> dict[tuple[str, str], HelmReleaseRecord]:
        return {(h.release_name, h.namespace): h for h in (x.helm_releases if x else ())}

    ra, rb = index(a), index(b)
    out = []
    for key in sorted(set(ra) | set(rb)):
        ha, hb = ra.get(key), rb.get(key)
        values, same = diff_values(ha.values if ha else {}, hb.values if hb else {})
        if ha is None or hb is None:
            change = "added" if ha is None else "removed"
        elif (
            values
            or (ha.chart, ha.chart_version) != (hb.chart, hb.chart_version)
            or ha.revision != hb.revision
        ):
            change = "changed"
        else:
            change = "unchanged"
        out.append(
            ReleaseDiff(
                app=app,
                release_name=key[0],
                namespace=key[1],
                change=change,
                chart_a=ha.chart if ha else None,
                chart_b=hb.chart if hb else None,
                chart_version_a=ha.chart_version if ha else None,
                chart_version_b=hb.chart_version if hb else None,
                revision_a=ha.revision if ha else None,
                revision_b=hb.revision if hb else None,
                values=values,
                unchanged_secrets=same,
            )
        )
    return out


def _present(app: AppDeploymentRecord | None) -> dict[tuple[str, str, str, str], ResourceRecord]:
    if app is None:
        return {}
    return {r.key: r for r in app.resources if r.action != ResourceAction.DELETE}


def _resource_ref(r: ResourceRecord) -> ResourceRef:
    return ResourceRef(api_version=r.api_version, kind=r.kind, namespace=r.namespace, name=r.name)


def _resource_diff(
    app: str,
    a: AppDeploymentRecord | None,
    b: AppDeploymentRecord | None,
    ids: tuple[str, str],
    dumps: Dumps,
) -> AppResourceDiff:
    pa, pb = _present(a), _present(b)
    added = tuple(_resource_ref(pb[k]) for k in sorted(set(pb) - set(pa)))
    removed = tuple(_resource_ref(pa[k]) for k in sorted(set(pa) - set(pb)))
    changed: list[ResourceDiff] = []
    unchanged = 0
    for key in sorted(set(pa) & set(pb)):
        ra, rb = pa[key], pb[key]
        if ra.checksum == rb.checksum:
            unchanged += 1
            continue
        ref = _resource_ref(rb)
        name = f"{app}/{ref.kind}/{ref.namespace + '/' if ref.namespace else ''}{ref.name}"
        changed.append(
            ResourceDiff(
                resource=ref,
                checksum_a=ra.checksum,
                checksum_b=rb.checksum,
                diff=dumps.unified(
                    ra.current_state, rb.current_state, f"{ids[0]}/{name}", f"{ids[1]}/{name}"
                ),
            )
        )
    if a is None:
        change = "added"
    elif b is None:
        change = "removed"
    else:
        change = "changed" if added or removed or changed else "unchanged"
    return AppResourceDiff(
        app=app,
        change=change,
        added=added,
        removed=removed,
        changed=tuple(changed),
        unchanged=unchanged,
    )


def diff_deployments(
    a: DeploymentRecord,
    b: DeploymentRecord,
    apps: Iterable[str] | None = None,
    *,
    dumps: Dumps | None = None,
) -> DeploymentDiff:
    """Everything that differs from deployment ``a`` to deployment ``b``.

    ``apps`` narrows every section to those apps (the config snapshot keeps its
    top-level settings and only their entries under ``apps``); a name in neither
    deployment is refused with :class:`~sbkube.errors.NotFoundError`. Diffs of a run of
    deployments share one ``dumps``, so each stored value is turned into YAML once.
    """
    wanted = tuple(dict.fromkeys(apps)) if apps else None
    names_a = {x.name for x in a.apps}
    names_b = {x.name for x in b.apps}
    if wanted is not None:
        unknown = [n for n in wanted if n not in names_a | names_b]
        if unknown:
            known = ", ".join(sorted(names_a | names_b)) or "none"
            raise NotFoundError(
                f"app {', '.join(repr(n) for n in unknown)} is in neither "
                f"{a.deployment_id} nor {b.deployment_id} (apps: {known})"
            )
    names = sorted((names_a | names_b) if wanted is None else set(wanted))

    snap_a = _narrow_config(a.config_snapshot, wanted)
    snap_b = _narrow_config(b.config_snapshot, wanted)
    dumps = Dumps() if dumps is None else dumps
    config_diff = dumps.unified(
        snap_a, snap_b, f"{a.deployment_id}/config", f"{b.deployment_id}/config"
    )

    releases: list[ReleaseDiff] = []
    resources: list[AppResourceDiff] = []
    sources: list[SourceDiff] = []
    ids = (a.deployment_id, b.deployment_id)
    for name in names:
        app_a, app_b = a.app(name), b.app(name)
        releases.extend(_release_diffs(name, app_a, app_b))
        resources.append(_resource_diff(name, app_a, app_b, ids, dumps))
        source = _source_diff(name, app_a, app_b)
        if source is not None:
            sources.append(source)

    return DeploymentDiff(
        a=_ref(a),
        b=_ref(b),
        apps=wanted,
        config_changed=bool(config_diff),
        config_diff=config_diff,
        releases=tuple(releases),
        resources=tuple(resources),
        sources=tuple(sources),
    )


def apps_of_phases(
    source: DeploymentRecord,
    target: DeploymentRecord,
    phases: Sequence[str],
    apps: Sequence[str] | None,
) -> list[str]:
    """The apps of a multi-dir run's ``phases`` (``rollback --phase``), in SOURCE or
    TARGET, narrowed by ``--app``; UsageError naming the phases there are."""
    known: dict[str, None] = {}
    names: dict[str, None] = {}
    for rec in (target, source):
        for app in rec.apps:
            phase = app.metadata.get("phase")
            if isinstance(phase, str):
                known.setdefault(phase)
                if phase in phases and (not apps or app.name in apps):
                    names.setdefault(app.name)
    missing = [p for p in phases if p not in known]
    if missing:
        listed = ", ".join(known) or "none: not a multi-dir run"
        raise UsageError(
            f"--phase {missing[0]}: not a phase of {source.deployment_id} or "
            f"{target.deployment_id} (phases: {listed})"
        )
    return list(names)


def _source_diff(
    name: str, app_a: AppDeploymentRecord | None, app_b: AppDeploymentRecord | None
) -> SourceDiff | None:
    """How the ``source`` metadata of a git or http app differs; None for other apps."""
    old: Mapping[str, Any] | None = None
    new: Mapping[str, Any] | None = None
    if app_a is not None and isinstance(app_a.metadata.get("source"), Mapping):
        old = thaw(app_a.metadata["source"])
    if app_b is not None and isinstance(app_b.metadata.get("source"), Mapping):
        new = thaw(app_b.metadata["source"])
    if old is None and new is None:
        return None
    kind = str((new or old or {}).get("kind") or "")
    if old is None or new is None:
        change = "added" if old is None else "removed"
        old, new = old or {}, new or {}
    else:
        change = ""
    fields = tuple(
        SourceChange(k, old.get(k), new.get(k))
        for k in dict.fromkeys([*old, *new])
        if old.get(k) != new.get(k)
    )
    return SourceDiff(name, kind, change or ("changed" if fields else "unchanged"), fields)
