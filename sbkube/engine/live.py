"""What sbkube would apply against what the cluster holds: field differences, and whether a
Helm release needs an upgrade at all.

Comparisons read a manifest as a set of fields it asks for (as ``kubectl apply`` and Helm's
three-way merge do): a field the manifest does not set is the server's business (defaults,
status, labels another tool added), so only the fields it sets are compared, and a field set
to null or to an empty map or list asks for nothing the server must keep. Secrets are
compared as the server stores them (``stringData`` folded into ``data``).

:func:`upgrade_reason` is the test of ``deploy`` for a Helm app, after ``helmfile apply``:
the release's current revision is kept when it is ``deployed``, was made from the same
chart (name, version, and the digest of its files that sbkube recorded with it) and the same
values, and every object of its manifest is live as the manifest says. A freshly rendered
manifest is never compared, so a chart that renders random values does not churn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sbkube.cluster.port import ReleaseStatus
from sbkube.manifests import fold_string_data, format_key, object_key, strip_volatile

if TYPE_CHECKING:
    from sbkube.cluster.port import ChartRef, Cluster, ReleaseInfo
    from sbkube.manifests import ObjectKey
    from sbkube.state import HelmReleaseRecord

_ABSENT: Any = object()


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping | list | tuple) and not value)


def path_join(prefix: str, key: str | int) -> str:
    """``spec.replicas``, ``containers[0]``, ``annotations['helm.sh/hook']``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if not key or any(c in key for c in ".[]'/ "):
        return f"{prefix}[{key!r}]"
    return f"{prefix}.{key}" if prefix else key


def _same_scalar(desired: Any, live: Any) -> bool:
    # True == 1 in Python; a manifest's true is not a server's 1.
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    return bool(desired == live)


def differences(desired: Any, live: Any, prefix: str = "") -> list[str]:
    """The paths of the fields ``desired`` sets that ``live`` does not hold as set."""
    if desired is None:
        return []  # null sets nothing
    if live is _ABSENT or live is None:
        return [] if _empty(desired) else [prefix or "."]
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return [prefix or "."]
        found: list[str] = []
        for key, value in desired.items():
            found += differences(value, live.get(key, _ABSENT), path_join(prefix, str(key)))
        return found
    if isinstance(desired, list | tuple):
        if not isinstance(live, list | tuple) or len(desired) != len(live):
            return [prefix or "."]
        found = []
        for index, (d, v) in enumerate(zip(desired, live, strict=True)):
            found += differences(d, v, path_join(prefix, index))
        return found
    return [] if _same_scalar(desired, live) else [prefix or "."]


def project(live: Any, desired: Any) -> Any:
    """``live`` cut down to the fields ``desired`` sets, so that a unified diff of the two
    shows the differences :func:`differences` finds and none of the server's own fields."""
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        out = {}
        for key, value in desired.items():
            if key in live:
                out[key] = project(live[key], value)
            elif _empty(value):
                out[key] = value  # asks for nothing: not a difference to show
        return out
    same_length = isinstance(live, list | tuple) and len(live) == len(desired)
    if isinstance(desired, list | tuple) and same_length:
        return [project(v, d) for v, d in zip(live, desired, strict=True)]
    return live


def without_nulls(value: Any) -> Any:
    """``value`` without the map entries set to null (they ask for nothing)."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [without_nulls(v) for v in value]
    return value


def comparable(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest as compared with its live object: as the server stores it (a Secret's
    ``stringData`` folded), without server-written fields, and without
    ``metadata.namespace``, which the object's key already matched (a kind the offline
    list does not know to be cluster-scoped gets one the server drops)."""
    out = strip_volatile(fold_string_data(manifest))
    meta = dict(out.get("metadata") or {})
    meta.pop("namespace", None)
    out["metadata"] = meta
    return out


def object_differences(
    manifests: Sequence[Mapping[str, Any]], live: Mapping[ObjectKey, dict[str, Any] | None]
) -> list[tuple[Mapping[str, Any], dict[str, Any] | None, list[str]]]:
    """``(manifest, live object, differing paths)`` for each manifest whose live object is
    missing (paths ``["."]``) or differs."""
    found: list[tuple[Mapping[str, Any], dict[str, Any] | None, list[str]]] = []
    for manifest in manifests:
        obj = live.get(object_key(manifest))
        if obj is None:
            found.append((manifest, None, ["."]))
            continue
        paths = differences(comparable(manifest), obj)
        if paths:
            found.append((manifest, obj, paths))
    return found


def normalised_values(values: Mapping[str, Any]) -> str:
    """Values as canonical JSON: sorted keys, and whole floats as integers (Helm stores
    values as JSON numbers, so the ``1.0`` sbkube passes comes back as ``1``)."""

    def norm(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): norm(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [norm(v) for v in value]
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    return json.dumps(norm(values), sort_keys=True, separators=(",", ":"), default=str)


def chart_name_of(ref: str) -> str:
    """The chart name a repository or OCI ref asks for (``bitnami/redis`` -> ``redis``)."""
    return ref.rstrip("/").rsplit("/", 1)[-1].split(":", 1)[0]


def chart_reason(
    chart: ChartRef, digest: str | None, current: ReleaseInfo, recorded: HelmReleaseRecord
) -> str | None:
    """Why the chart to deploy is not the one the current revision was made from; None
    when it is. A local chart is the same when its files are (the digest sbkube recorded
    with the revision); a repository chart when its name and pinned version are."""
    if digest is not None:
        if recorded.chart_digest is None:
            return f"revision {current.revision} has no recorded chart digest"
        return None if recorded.chart_digest == digest else "chart files changed"
    if not chart.version:
        return "chart version not pinned"
    if chart_name_of(chart.ref) != current.chart:
        return f"chart {current.chart} -> {chart_name_of(chart.ref)}"
    if chart.version.lstrip("v") != current.chart_version.lstrip("v"):
        return f"chart version {current.chart_version} -> {chart.version}"
    return None


def inputs_reason(
    current: ReleaseInfo,
    recorded: HelmReleaseRecord | None,
    *,
    chart: ChartRef,
    chart_digest: str | None,
    values: Mapping[str, Any],
) -> str | None:
    """Why the inputs differ from those of the current revision (``recorded``: sbkube's
    last record of the release), or why that cannot be known; None when they match."""
    if current.status != ReleaseStatus.DEPLOYED:
        return f"release is {current.status}"
    if recorded is None or recorded.revision != current.revision:
        return f"revision {current.revision} is not the one sbkube recorded"
    reason = chart_reason(chart, chart_digest, current, recorded)
    if reason is not None:
        return reason
    if normalised_values(current.values) != normalised_values(values):
        return "values changed"
    return None


def drift_reason(cluster: Cluster, current: ReleaseInfo) -> str | None:
    """Why the live objects are not those of the current revision's manifest (read in one
    request); None when every one is live as the manifest says."""
    if not current.manifest:
        return f"helm reported no manifest for revision {current.revision}"
    live = cluster.get_many([object_key(m) for m in current.manifest])
    drifted = object_differences(current.manifest, live)
    if not drifted:
        return None
    manifest, obj, paths = drifted[0]
    what = format_key(object_key(manifest))
    return f"{what} is missing" if obj is None else f"{what} differs at {paths[0]}"


def upgrade_reason(
    cluster: Cluster,
    current: ReleaseInfo,
    recorded: HelmReleaseRecord | None,
    *,
    chart: ChartRef,
    chart_digest: str | None,
    values: Mapping[str, Any],
) -> str | None:
    """Why ``helm upgrade`` must run for a release whose current revision is ``current``;
    None when nothing would change. The live objects are read only when the inputs match."""
    return inputs_reason(
        current, recorded, chart=chart, chart_digest=chart_digest, values=values
    ) or drift_reason(cluster, current)
