"""The ``/scale`` subresource: an object's replica count seen as an ``autoscaling/v1`` Scale.

``kubectl scale`` PATCHes (merge patch) ``.../NAME/scale``, or GETs it and PUTs it back when
given ``--current-replicas`` or ``--resource-version``, and expects a Scale in the answer.
A Scale shows ``spec.replicas`` (the desired count, the only field a write may change),
``status.replicas`` and ``status.selector`` (the label selector as a string, as the HPA
reads it). Built-in kinds keep these at ``spec.replicas``, ``status.replicas`` and
``spec.selector``; a CRD names its own paths in ``subresources.scale``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScalePaths:
    """Where an object keeps what its Scale shows (dotted paths, as a CRD writes them)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None  # None: built-in, from spec.selector


BUILTIN = ScalePaths()


def crd_paths(version: Mapping[str, Any] | None) -> ScalePaths | None:
    """The paths a CRD version's ``subresources.scale`` declares (None: no scale)."""
    scale = ((version or {}).get("subresources") or {}).get("scale")
    if not isinstance(scale, Mapping):
        return None
    return ScalePaths(
        str(scale.get("specReplicasPath") or ".spec.replicas"),
        str(scale.get("statusReplicasPath") or ".status.replicas"),
        str(scale["labelSelectorPath"]) if scale.get("labelSelectorPath") else None,
    )


def _parts(path: str) -> list[str]:
    return [part for part in path.split(".") if part]


def read(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in _parts(path):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def write(obj: Obj, path: str, value: Any) -> Obj:
    """A copy of ``obj`` with ``value`` at ``path`` (the dicts along the path are new)."""
    parts = _parts(path)
    top: Obj = dict(obj)
    node = top
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}
        node = node[part]
    node[parts[-1]] = value
    return top


def selector_text(selector: Any) -> str:
    """A LabelSelector (or a ReplicationController's plain map) as selector syntax."""
    if not isinstance(selector, Mapping):
        return ""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or ():
        key = expression.get("key")
        operator = expression.get("operator")
        values = ",".join(sorted(str(v) for v in expression.get("values") or ()))
        if operator == "In":
            terms.append(f"{key} in ({values})")
        elif operator == "NotIn":
            terms.append(f"{key} notin ({values})")
        elif operator == "Exists":
            terms.append(str(key))
        elif operator == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)


def view(obj: Mapping[str, Any], paths: ScalePaths) -> Obj:
    """The Scale of ``obj``."""
    metadata = obj.get("metadata") or {}
    scale_meta = {
        k: metadata[k]
        for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        if k in metadata
    }
    replicas = read(obj, paths.spec_replicas)
    status: Obj = {"replicas": read(obj, paths.status_replicas) or 0}
    if paths.label_selector is None:
        selector = selector_text((obj.get("spec") or {}).get("selector"))
    else:
        selector = str(read(obj, paths.label_selector) or "")
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": replicas if isinstance(replicas, int) else 0},
        "status": status,
    }
