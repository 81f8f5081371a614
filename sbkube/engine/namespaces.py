"""Namespaces an app's objects land in: created when missing, as ``helm --create-namespace``.

A YAML app whose objects name a namespace that does not exist would fail on the first of
them (the API server refuses objects in a missing namespace). So each such namespace is
created — unless the app declares that Namespace itself, which it then applies like any of
its objects — ahead of the objects in the app's one apply (:func:`plan_namespaces` says
which, from the live objects read before it), and recorded as one of the app's resources:
``create`` in the deployment that made it, ``unchanged`` in the later ones while it exists,
so the record keeps saying where it came from.

Like Helm's, such a namespace carries no ownership labels: pruning and rollbacks delete
only what carries them, and deleting a namespace deletes everything in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sbkube.manifests import ObjectKey
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


@dataclass
class NamespacePlan:
    """The needed namespaces a YAML app records: each name with its live object, or None
    when it is missing and the app's apply creates it."""

    entries: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [name for name, live in self.entries if live is None]

    def work(self, created: Mapping[ObjectKey, Mapping[str, Any]]) -> NamespaceWork:
        """What to record once the missing ones were applied (``created``: the live objects
        the apply returned, by key)."""
        work = NamespaceWork()
        for name, live in self.entries:
            key = namespace_key(name)
            action = ResourceAction.UNCHANGED if live is not None else ResourceAction.CREATE
            obj = live if live is not None else created.get(key) or namespace_manifest(name)
            work.inputs.append(ResourceInput.from_manifest(obj, action))
            work.actions.append((action, key))
        return work


def plan_namespaces(
    manifests: Iterable[Mapping[str, Any]],
    live: Mapping[ObjectKey, Mapping[str, Any] | None],
    previous: AppDeploymentRecord | None,
) -> NamespacePlan:
    """The namespaces the objects need (:func:`needed_namespaces`, whose keys the caller
    read into ``live`` beforehand): missing ones are to be created; live ones this app
    recorded before are recorded ``unchanged``; live ones it did not make are not the app's
    to record."""
    recorded = {
        r.key
        for r in (previous.resources if previous is not None else ())
        if r.action != ResourceAction.DELETE
    }
    plan = NamespacePlan()
    for name in needed_namespaces(manifests):
        key = namespace_key(name)
        obj = live.get(key)
        if obj is None:
            plan.entries.append((name, None))
        elif key in recorded:
            plan.entries.append((name, dict(obj)))
    return plan
