"""Kubernetes manifest facts shared by every layer (config, cluster, state).

* ``kind: List`` (and typed ``*List``) documents, expanded into their items as kubectl does,
  so that the loader, helm output parsing, pruning and redaction only ever see objects;
* whether a kind is namespaced (:class:`Scope`): a CustomResourceDefinition among the
  manifests decides for its kind (``spec.scope``), then the cluster's discovery, and only
  when neither knows the kind the fixed list below (``template`` works offline);
* which fields the API server (or kubectl) writes on its own.

One place each, so that the config loader, the cluster adapters and the state store agree
on what an object's identity is and on what "unchanged" means. Imports nothing heavier than
the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from sbkube import yamlio
from sbkube.errors import ClusterError, ConfigError

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Kinds served without a namespace: the offline fallback when neither a CRD among the
# manifests nor the cluster's discovery says (built-in kinds, plus the cluster-scoped kinds
# of common operators). A manifest for one of these that carries a namespace anyway is
# still one object, so its key drops it; and no namespace is defaulted onto it.
CLUSTER_SCOPED_KINDS: frozenset[str] = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterExternalSecret",
        "ClusterIssuer",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterSecretStore",
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
        "VolumeAttributesClass",
    }
)

# The field manager of sbkube's server-side applies: the fields it owns on a live object
# (``metadata.managedFields``) are the ones its next apply removes if the manifest drops them.
FIELD_MANAGER = "sbkube"

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
    """True if ``kind`` is in the offline list of kinds that live outside any namespace
    (use a :class:`Scope` where a cluster or the app's CRDs can tell)."""
    return kind in CLUSTER_SCOPED_KINDS


# --------------------------------------------------------------------------- lists


def is_list(document: Mapping[str, Any]) -> bool:
    """True for a ``kind: List`` document, or a typed list (``ConfigMapList``) with items."""
    kind = document.get("kind")
    if kind == "List":
        return True
    return (
        isinstance(kind, str) and kind.endswith("List") and isinstance(document.get("items"), list)
    )


def expand_lists(documents: Iterable[Any]) -> Iterator[Any]:
    """The documents with every list replaced by its items, recursively, in order.

    As kubectl does: a typed list's items that name neither kind nor apiVersion (how the API
    server prints a ``ConfigMapList``) get the list's apiVersion and its kind without
    ``List``. Anything that is not a mapping passes through for the caller to reject.
    """
    for document in documents:
        if not isinstance(document, Mapping) or not is_list(document):
            yield document
            continue
        items = document.get("items")
        if not isinstance(items, list):
            continue  # "kind: List" with no items: an empty list
        item_kind = str(document["kind"])[: -len("List")]
        api_version = document.get("apiVersion")
        filled = []
        for item in items:
            if (
                isinstance(item, dict)
                and item_kind
                and "kind" not in item
                and "apiVersion" not in item
                and api_version
            ):
                item = {"apiVersion": api_version, "kind": item_kind, **item}
            filled.append(item)
        yield from expand_lists(filled)


# --------------------------------------------------------------------------- scope

Discovery = Callable[[str, str], "bool | None"]
"""``(api_version, kind) -> namespaced``, None when the source does not serve the kind."""


def api_group(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` -> ``""`` (the core group)."""
    return api_version.rpartition("/")[0]


def crd_scopes(manifests: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], bool]:
    """``{(group, kind): namespaced}`` for the CustomResourceDefinitions among ``manifests``,
    from their ``spec.scope`` (``Namespaced`` or ``Cluster``)."""
    scopes: dict[tuple[str, str], bool] = {}
    for manifest in manifests:
        if manifest.get("kind") != "CustomResourceDefinition":
            continue
        if api_group(str(manifest.get("apiVersion") or "")) != "apiextensions.k8s.io":
            continue
        spec = manifest.get("spec")
        if not isinstance(spec, Mapping):
            continue
        names = spec.get("names")
        group, kind = spec.get("group"), names.get("kind") if isinstance(names, Mapping) else None
        if isinstance(group, str) and isinstance(kind, str):
            scopes[(group, kind)] = spec.get("scope") != "Cluster"
    return scopes


class Scope:
    """Whether objects of a kind are namespaced: the CRDs among one app's manifests decide
    for their kinds, then ``discovery`` (the cluster), then the offline list.

    (A plain class, not a dataclass: ``sbkube template``'s quick path places what helm
    rendered with it, and ``dataclasses`` imports ``inspect``.)"""

    __slots__ = ("crds", "discovery")

    def __init__(
        self,
        crds: Mapping[tuple[str, str], bool] | None = None,
        discovery: Discovery | None = None,
    ) -> None:
        self.crds: Mapping[tuple[str, str], bool] = {} if crds is None else crds
        self.discovery = discovery

    @classmethod
    def of(cls, manifests: Iterable[Mapping[str, Any]], discovery: Discovery | None) -> Scope:
        return cls(crd_scopes(manifests), discovery)

    def namespaced(self, api_version: str, kind: str) -> bool:
        found = self.crds.get((api_group(api_version), kind))
        if found is None and self.discovery is not None:
            found = self.discovery(api_version, kind)
        return (not is_cluster_scoped(kind)) if found is None else found

    def place(self, manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
        """Put ``manifest`` (changed in place, and returned) where the API server will:
        a namespaced object without a namespace gets ``namespace``; a cluster-scoped one
        loses any namespace it names (the server ignores it, so the record must too)."""
        meta = manifest.get("metadata")
        kind, api_version = manifest.get("kind"), manifest.get("apiVersion")
        if (
            not isinstance(meta, dict)
            or not isinstance(kind, str)
            or not isinstance(api_version, str)
        ):
            return manifest
        if self.namespaced(api_version, kind):
            if not meta.get("namespace"):
                meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return manifest


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


ObjectKey = tuple[str, str, str, str]
"""``(api_version, kind, namespace, name)``; namespace is ``""`` for cluster-scoped kinds."""


def object_key(manifest: Mapping[str, Any]) -> ObjectKey:
    """The identity of a manifest: ``(api_version, kind, namespace, name)``.

    Raises ConfigError when apiVersion, kind or metadata.name is missing, because such a
    manifest can never be applied and the user has to fix the file it came from.
    """
    api_version = manifest.get("apiVersion")
    kind = manifest.get("kind")
    metadata = manifest.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    name = metadata.get("name")
    for field_name, value in (("apiVersion", api_version), ("kind", kind), ("metadata.name", name)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"manifest has no {field_name}: {_describe(manifest)}")
    assert isinstance(api_version, str) and isinstance(kind, str) and isinstance(name, str)
    namespace = "" if is_cluster_scoped(kind) else str(metadata.get("namespace") or "")
    return (api_version, kind, namespace, name)


def format_key(key: ObjectKey) -> str:
    """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped), for messages and logs."""
    _api_version, kind, namespace, name = key
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def _describe(manifest: Mapping[str, Any]) -> str:
    text = repr(dict(manifest))
    return text if len(text) <= 120 else text[:117] + "..."


def parse_rendered(text: str, what: str) -> list[dict[str, Any]]:
    """Multi-document YAML a tool rendered (``helm template``, ``kubectl kustomize``) -> its
    objects: ``List`` documents expanded, empty ones skipped; ClusterError naming ``what``
    when it is not YAML of mappings."""
    try:
        documents = yamlio.load_all(text)
    except yamlio.YAMLError as exc:
        raise ClusterError(f"{what} rendered invalid YAML: {' '.join(str(exc).split())}") from exc
    objects: list[dict[str, Any]] = []
    for doc in expand_lists(documents):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ClusterError(f"{what} rendered a document that is not a mapping: {doc!r:.80}")
        objects.append(doc)
    return objects
