"""What one app's deploy works from, computed before anything is recorded, and the labels
that make its objects its own.

``AppWork`` is prepared once per app (``prepare.py``: values merged, chart rendered, YAML
loaded and labelled) and then applied (``apply.py``), planned (``live_diff.py``) or
compared (``status.py``). Every object a YAML app applies carries the ownership labels
(kapp's model): the set to prune is a label selector, computed, never guessed.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sbkube.cluster.port import ChartRef
from sbkube.manifests import ObjectKey, object_key

MANAGED_BY = "app.kubernetes.io/managed-by"
APP_LABEL = "sbkube.io/app"
NAMESPACE_LABEL = "sbkube.io/namespace"
APP_DIR_LABEL = "sbkube.io/app-dir"
APP_DIR_ANNOTATION = "sbkube.io/app-dir"


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


def owned_by(live: Mapping[str, Any], app: str, namespace: str) -> bool:
    labels = (live.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(MANAGED_BY) == "sbkube"
        and labels.get(APP_LABEL) == app
        and labels.get(NAMESPACE_LABEL) == namespace
    )


@dataclass
class DesiredObject:
    manifest: dict[str, Any]
    source_file: str | None = None

    @property
    def key(self) -> ObjectKey:
        return object_key(self.manifest)


@dataclass
class AppWork:
    """Everything needed to apply one app, computed before anything is recorded."""

    name: str
    type: str  # helm | yaml | noop
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
