"""Namespaces an app's objects land in: created when missing, as ``helm --create-namespace``.

A YAML app whose objects name a namespace that does not exist would fail on the first of
them (the API server refuses objects in a missing namespace). So before applying, each such
namespace is created — unless the app declares that Namespace itself, which it then applies
like any of its objects — and recorded as one of the app's resources: ``create`` in the
deployment that made it, ``unchanged`` in the later ones while it exists, so the record
keeps saying where it came from.

Like Helm's, such a namespace carries no ownership labels: pruning and rollbacks delete
only what carries them, and deleting a namespace deletes everything in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sbkube.cluster.port import Cluster, ObjectKey
from sbkube.model import ResourceAction
from sbkube.state import AppDeploymentRecord, ResourceInput


def namespace_key(name: str) -> ObjectKey:
    return ("v1", "Namespace", "", name)


def namespace_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@dataclass
class NamespaceWork:
    """What ensuring the namespaces did: resources to record, and their keys."""

    inputs: list[ResourceInput] = field(default_factory=list)
    actions: list[tuple[ResourceAction, ObjectKey]] = field(default_factory=list)

    @property
    def keys(self) -> set[ObjectKey]:
        return {key for _, key in self.actions}


def needed_namespaces(manifests: Iterable[Mapping[str, Any]]) -> list[str]:
    """Namespaces the objects are placed in (sorted), less those the objects declare."""
    used: set[str] = set()
    declared: set[str] = set()
    for manifest in manifests:
        meta = manifest.get("metadata") or {}
        if manifest.get("kind") == "Namespace" and manifest.get("apiVersion") == "v1":
            declared.add(str(meta.get("name") or ""))
        elif meta.get("namespace"):
            used.add(str(meta["namespace"]))
    return sorted(used - declared)


def ensure_namespaces(
    manifests: Iterable[Mapping[str, Any]],
    cluster: Cluster,
    previous: AppDeploymentRecord | None,
) -> NamespaceWork:
    """Create the missing namespaces the objects need; see the module docstring."""
    recorded = {
        r.key
        for r in (previous.resources if previous is not None else ())
        if r.action != ResourceAction.DELETE
    }
    work = NamespaceWork()
    for name in needed_namespaces(manifests):
        key = namespace_key(name)
        live = cluster.get(key)
        if live is None:
            live = cluster.apply(namespace_manifest(name))
            action = ResourceAction.CREATE
        elif key in recorded:
            action = ResourceAction.UNCHANGED
        else:
            continue  # there before this app: not the app's to record
        work.inputs.append(ResourceInput.from_manifest(live, action))
        work.actions.append((action, key))
    return work
