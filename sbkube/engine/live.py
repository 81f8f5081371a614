"""Whether a Helm release needs an upgrade at all (live objects compared with
:mod:`sbkube.engine.compare`, the one comparison).

:func:`upgrade_reason` is the test of ``deploy`` for a Helm app, after ``helmfile apply``:
the release's current revision is kept when it is ``deployed``, was made from the same
chart (name, version, and the digest of its files that sbkube recorded with it) and the same
values, and every object of its manifest is live as the manifest says. A freshly rendered
manifest is never compared, so a chart that renders random values does not churn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbkube.cluster.port import Objects, ReleaseStatus
from sbkube.config.charts import chart_matches
from sbkube.engine.compare import object_differences
from sbkube.manifests import format_key, object_key
from sbkube.redaction import KEYED_CHECKSUM_PREFIX

if TYPE_CHECKING:
    from sbkube.cluster.port import ChartRef, ReleaseInfo
    from sbkube.state import HelmReleaseRecord


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
        if recorded.chart_digest == digest or (
            not recorded.chart_digest.startswith(KEYED_CHECKSUM_PREFIX)
            and chart_matches(Path(chart.ref), recorded.chart_digest)
        ):
            return None
        return "chart files changed"
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


def drift_reason(cluster: Objects, current: ReleaseInfo) -> str | None:
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
    cluster: Objects,
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
