"""Kubernetes manifest facts shared by every layer (config, cluster, state).

Which kinds live outside any namespace, and which fields the API server (or kubectl)
writes on its own. One list each, so that the config loader, the cluster adapters and the
state store agree on what an object's identity is and on what "unchanged" means.
Imports nothing heavier than the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Kinds the API server serves without a namespace. A manifest for one of these that carries
# a namespace anyway is still one object, so its key drops it; and no namespace is
# defaulted onto it.
CLUSTER_SCOPED_KINDS: frozenset[str] = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterIssuer",
        "ClusterRole",
        "ClusterRoleBinding",
        "ComponentStatus",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "FlowSchema",
        "IngressClass",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)

# Written by the API server (or by kubectl), not by the user: comparisons and checksums
# must ignore them, or every read would look like a change.
VOLATILE_METADATA: frozenset[str] = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
VOLATILE_ANNOTATIONS: frozenset[str] = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
    }
)


def is_cluster_scoped(kind: str) -> bool:
    """True if objects of ``kind`` live outside any namespace."""
    return kind in CLUSTER_SCOPED_KINDS


def strip_volatile(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a manifest without server-managed metadata, annotations and ``status``.

    The top level and ``metadata`` are new dicts; deeper values are shared with
    ``manifest`` (callers that mutate deeper must copy).
    """
    out = {k: v for k, v in manifest.items() if k != "status"}
    meta = manifest.get("metadata")
    if isinstance(meta, Mapping):
        meta_out = {k: v for k, v in meta.items() if k not in VOLATILE_METADATA}
        ann = meta_out.get("annotations")
        if isinstance(ann, Mapping):
            ann = {k: v for k, v in ann.items() if k not in VOLATILE_ANNOTATIONS}
            if ann:
                meta_out["annotations"] = ann
            else:
                meta_out.pop("annotations")
        out["metadata"] = meta_out
    return out


def fold_string_data(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret as the API server stores it: ``stringData`` folded into base64 ``data``
    (``stringData`` wins on a shared key, as on the server); other objects unchanged.

    Recording and comparing the stored shape keeps "unchanged" honest: a live Secret never
    has ``stringData``, so a manifest that uses it would otherwise always look changed.
    """
    out = dict(manifest)
    string_data = out.get("stringData")
    if out.get("kind") != "Secret" or not isinstance(string_data, Mapping):
        return out
    import base64

    data = dict(out.get("data") or {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    del out["stringData"]
    out["data"] = data
    return out
