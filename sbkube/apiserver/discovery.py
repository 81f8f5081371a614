"""The kinds the local API server serves, as data, and the discovery documents built from them.

``BUILTIN`` lists the built-in resources of current Kubernetes by group-version, one row per
resource: plural, singular, kind, namespaced, short names, subresources. ``Registry`` adds
the kinds of stored CustomResourceDefinitions to those and answers the lookups the HTTP
layer needs (by URL segment, by apiVersion + kind) and the ``/api``, ``/apis`` and
``/apis/G/V`` documents. Objects are stored per (group, plural), whatever version they were
written at: the server does no conversion between versions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")

# (plural, singular, kind, namespaced, shortNames, subresources)
Row = tuple[str, str, str, bool, tuple[str, ...], tuple[str, ...]]

BUILTIN: dict[str, list[Row]] = {
    "v1": [
        ("configmaps", "configmap", "ConfigMap", True, ("cm",), ()),
        ("endpoints", "endpoints", "Endpoints", True, ("ep",), ()),
        ("events", "event", "Event", True, ("ev",), ()),
        ("limitranges", "limitrange", "LimitRange", True, ("limits",), ()),
        ("namespaces", "namespace", "Namespace", False, ("ns",), ("status", "finalize")),
        ("nodes", "node", "Node", False, ("no",), ("status",)),
        (
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            True,
            ("pvc",),
            ("status",),
        ),
        ("persistentvolumes", "persistentvolume", "PersistentVolume", False, ("pv",), ("status",)),
        ("pods", "pod", "Pod", True, ("po",), ("status",)),
        ("podtemplates", "podtemplate", "PodTemplate", True, (), ()),
        (
            "replicationcontrollers",
            "replicationcontroller",
            "ReplicationController",
            True,
            ("rc",),
            ("status", "scale"),
        ),
        ("resourcequotas", "resourcequota", "ResourceQuota", True, ("quota",), ("status",)),
        ("secrets", "secret", "Secret", True, (), ()),
        ("serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",), ()),
        ("services", "service", "Service", True, ("svc",), ("status",)),
    ],
    "apps/v1": [
        ("controllerrevisions", "controllerrevision", "ControllerRevision", True, (), ()),
        ("daemonsets", "daemonset", "DaemonSet", True, ("ds",), ("status",)),
        ("deployments", "deployment", "Deployment", True, ("deploy",), ("status", "scale")),
        ("replicasets", "replicaset", "ReplicaSet", True, ("rs",), ("status", "scale")),
        ("statefulsets", "statefulset", "StatefulSet", True, ("sts",), ("status", "scale")),
    ],
    "batch/v1": [
        ("cronjobs", "cronjob", "CronJob", True, ("cj",), ("status",)),
        ("jobs", "job", "Job", True, (), ("status",)),
    ],
    "networking.k8s.io/v1": [
        ("ingressclasses", "ingressclass", "IngressClass", False, (), ()),
        ("ingresses", "ingress", "Ingress", True, ("ing",), ("status",)),
        ("networkpolicies", "networkpolicy", "NetworkPolicy", True, ("netpol",), ()),
    ],
    "rbac.authorization.k8s.io/v1": [
        ("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False, (), ()),
        ("clusterroles", "clusterrole", "ClusterRole", False, (), ()),
        ("rolebindings", "rolebinding", "RoleBinding", True, (), ()),
        ("roles", "role", "Role", True, (), ()),
    ],
    "policy/v1": [
        (
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            True,
            ("pdb",),
            ("status",),
        ),
    ],
    "autoscaling/v2": [
        (
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            True,
            ("hpa",),
            ("status",),
        ),
    ],
    "autoscaling/v1": [
        (
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            True,
            ("hpa",),
            ("status",),
        ),
    ],
    "storage.k8s.io/v1": [
        ("csidrivers", "csidriver", "CSIDriver", False, (), ()),
        ("csinodes", "csinode", "CSINode", False, (), ()),
        ("csistoragecapacities", "csistoragecapacity", "CSIStorageCapacity", True, (), ()),
        ("storageclasses", "storageclass", "StorageClass", False, ("sc",), ()),
        ("volumeattachments", "volumeattachment", "VolumeAttachment", False, (), ("status",)),
        (
            "volumeattributesclasses",
            "volumeattributesclass",
            "VolumeAttributesClass",
            False,
            ("vac",),
            (),
        ),
    ],
    "apiextensions.k8s.io/v1": [
        (
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            False,
            ("crd", "crds"),
            ("status",),
        ),
    ],
    "apiregistration.k8s.io/v1": [
        ("apiservices", "apiservice", "APIService", False, (), ("status",)),
    ],
    "coordination.k8s.io/v1": [
        ("leases", "lease", "Lease", True, (), ()),
    ],
    "admissionregistration.k8s.io/v1": [
        (
            "mutatingwebhookconfigurations",
            "mutatingwebhookconfiguration",
            "MutatingWebhookConfiguration",
            False,
            (),
            (),
        ),
        (
            "validatingadmissionpolicies",
            "validatingadmissionpolicy",
            "ValidatingAdmissionPolicy",
            False,
            (),
            ("status",),
        ),
        (
            "validatingadmissionpolicybindings",
            "validatingadmissionpolicybinding",
            "ValidatingAdmissionPolicyBinding",
            False,
            (),
            (),
        ),
        (
            "validatingwebhookconfigurations",
            "validatingwebhookconfiguration",
            "ValidatingWebhookConfiguration",
            False,
            (),
            (),
        ),
    ],
    "scheduling.k8s.io/v1": [
        ("priorityclasses", "priorityclass", "PriorityClass", False, ("pc",), ()),
    ],
    "discovery.k8s.io/v1": [
        ("endpointslices", "endpointslice", "EndpointSlice", True, (), ()),
    ],
    "events.k8s.io/v1": [
        ("events", "event", "Event", True, ("ev",), ()),
    ],
    "certificates.k8s.io/v1": [
        (
            "certificatesigningrequests",
            "certificatesigningrequest",
            "CertificateSigningRequest",
            False,
            ("csr",),
            ("status", "approval"),
        ),
    ],
    "node.k8s.io/v1": [
        ("runtimeclasses", "runtimeclass", "RuntimeClass", False, (), ()),
    ],
}

# Resources `kubectl get all` shows.
ALL_CATEGORY = frozenset(
    {
        "pods", "replicationcontrollers", "services", "daemonsets", "deployments",
        "replicasets", "statefulsets", "horizontalpodautoscalers", "cronjobs", "jobs",
    }
)  # fmt: skip

CRD_GROUP = "apiextensions.k8s.io"
CRD_PLURAL = "customresourcedefinitions"


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One resource served at one group-version."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    custom: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Where objects of this resource are stored, whatever version they are served at."""
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """``deployments.apps``, ``configmaps``: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def entry(self) -> list[dict[str, Any]]:
        """The APIResource entries (the resource, then its subresources) for discovery."""
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(VERBS),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        entries = [main]
        for sub in self.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{self.plural}/{sub}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": list(SUBRESOURCE_VERBS),
            }
            if sub == "scale":
                sub_entry.update(kind="Scale", group="autoscaling", version="v1")
            entries.append(sub_entry)
        return entries


def _split_gv(group_version: str) -> tuple[str, str]:
    group, _, version = group_version.rpartition("/")
    return group, version


def builtin_types() -> list[ResourceType]:
    types = []
    for group_version, rows in BUILTIN.items():
        group, version = _split_gv(group_version)
        for plural, singular, kind, namespaced, short, subs in rows:
            categories = ("all",) if plural in ALL_CATEGORY else ()
            types.append(
                ResourceType(group, version, plural, singular, kind, namespaced, short, subs,
                             categories)
            )  # fmt: skip
    return types


def crd_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition declares: one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = str(spec.get("group") or "")
    plural = str(names.get("plural") or "")
    kind = str(names.get("kind") or "")
    if not group or not plural or not kind:
        return []
    singular = str(names.get("singular") or kind.lower())
    namespaced = spec.get("scope", "Namespaced") != "Cluster"
    short = tuple(str(s) for s in names.get("shortNames") or ())
    categories = tuple(str(c) for c in names.get("categories") or ())
    types = []
    for version in spec.get("versions") or ():
        if not version.get("served", True) or not version.get("name"):
            continue
        subs = tuple(sorted((version.get("subresources") or {}).keys()))
        types.append(
            ResourceType(group, str(version["name"]), plural, singular, kind, namespaced,
                         short, subs, categories, custom=True)
        )  # fmt: skip
    return types


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version order: GA before beta before alpha, higher numbers first."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    stage = {"alpha": 2, "beta": 1, None: 0}[match.group(2)]
    return (stage, -int(match.group(1)), -int(match.group(3) or 0))


class Registry:
    """Built-in kinds plus the kinds of stored CRDs; safe to read from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._builtin = builtin_types()
        self._crds: dict[str, list[ResourceType]] = {}
        self._crd_docs: dict[str, Mapping[str, Any]] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        types = list(self._builtin)
        for declared in self._crds.values():
            types.extend(declared)
        by_gv: dict[str, list[ResourceType]] = {}
        for rtype in types:
            by_gv.setdefault(rtype.api_version, []).append(rtype)
        # Swapped in whole, so readers never see a half-built index.
        self._by_gv = by_gv
        self._by_segment = {(t.group, t.version, t.plural): t for t in types}
        self._by_kind = {(t.api_version, t.kind): t for t in types}
        by_key: dict[tuple[str, str], ResourceType] = {}
        for rtype in sorted(types, key=lambda t: _version_priority(t.version)):
            by_key.setdefault(rtype.key, rtype)
        self._by_key = by_key
        crd_versions: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for crd in self._crd_docs.values():
            spec = crd.get("spec") or {}
            plural = str((spec.get("names") or {}).get("plural") or "")
            for version in spec.get("versions") or ():
                if isinstance(version, Mapping) and version.get("name"):
                    crd_versions[(str(spec.get("group") or ""), str(version["name"]), plural)] = (
                        version
                    )
        self._crd_versions = crd_versions

    def set_crd(self, name: str, crd: Mapping[str, Any] | None) -> None:
        """Registers (or, with None, removes) the kinds of the CRD called ``name``."""
        with self._lock:
            if crd is None:
                self._crds.pop(name, None)
                self._crd_docs.pop(name, None)
            else:
                self._crds[name] = crd_types(crd)
                self._crd_docs[name] = crd
            self._rebuild()

    def resource(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_segment.get((group, version, plural))

    def for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def crd_version(self, rtype: ResourceType) -> Mapping[str, Any] | None:
        """The entry of ``spec.versions`` that declares a custom ``rtype`` (its schema and
        subresources), or None for a built-in kind."""
        return self._crd_versions.get((rtype.group, rtype.version, rtype.plural))

    def for_key(self, key: tuple[str, str]) -> ResourceType | None:
        """The preferred-version resource type of a storage key."""
        return self._by_key.get(key)

    def has_group_version(self, group_version: str) -> bool:
        return group_version in self._by_gv

    def group_versions(self) -> list[str]:
        return list(self._by_gv)

    def types(self, group_version: str) -> list[ResourceType]:
        return list(self._by_gv.get(group_version, ()))

    # Discovery documents ------------------------------------------------------------------

    def core_versions(self, address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for group_version in self._by_gv:
            group, version = _split_gv(group_version)
            if group:
                groups.setdefault(group, []).append(version)
        return groups

    @staticmethod
    def _group_doc(group: str, versions: Iterable[str]) -> dict[str, Any]:
        ordered = sorted(versions, key=_version_priority)
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def group_list(self) -> dict[str, Any]:
        groups = [self._group_doc(g, vs) for g, vs in self._groups().items()]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def group(self, group: str) -> dict[str, Any] | None:
        versions = self._groups().get(group)
        if not versions:
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group, versions)}

    def resource_list(self, group_version: str) -> dict[str, Any] | None:
        types = self._by_gv.get(group_version)
        if types is None:
            return None
        resources = [entry for rtype in types for entry in rtype.entry()]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }
