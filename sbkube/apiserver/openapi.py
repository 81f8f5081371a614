"""The OpenAPI documents of the local API server: just enough for clients to skip validation.

kubectl and helm download OpenAPI before writing. When every kind's PATCH operation lists the
``fieldValidation`` query parameter, they treat the server as one that validates fields itself
and do no client-side schema validation. The documents carry no schemas, so kubectl's
client-side apply computes strategic merge patches from its compiled-in types (built-in
kinds) or falls back to JSON merge patches (custom resources), as it does against a server
whose OpenAPI lacks a kind.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sbkube.apiserver.discovery import Registry, ResourceType

INFO = {"title": "Kubernetes", "version": "v1.33.0"}

_FIELD_VALIDATION = {
    "name": "fieldValidation",
    "in": "query",
    "description": "Strict, Warn or Ignore: how the server treats unknown or duplicate fields.",
    "schema": {"type": "string", "uniqueItems": True},
}


def _paths(rtype: ResourceType) -> tuple[str, dict[str, Any]]:
    prefix = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else "/api/v1"
    scope = "/namespaces/{namespace}" if rtype.namespaced else ""
    path = f"{prefix}{scope}/{rtype.plural}/{{name}}"
    gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    operation = {
        "operationId": f"patch{rtype.kind}",
        "parameters": [_FIELD_VALIDATION],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": gvk,
    }
    return path, {"patch": operation}


def _gv_path(group_version: str) -> str:
    return f"apis/{group_version}" if "/" in group_version else f"api/{group_version}"


def v3_document(registry: Registry, group_version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group-version, or None if it is not served."""
    if not registry.has_group_version(group_version):
        return None
    paths = dict(_paths(rtype) for rtype in registry.types(group_version))
    return {"openapi": "3.0.0", "info": INFO, "paths": paths, "components": {"schemas": {}}}


def v3_index(registry: Registry) -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document lives."""
    entries = {}
    for group_version in registry.group_versions():
        # The hash lets clients cache a document; a CRD changes its group-version's hash.
        kinds = ",".join(sorted(t.kind for t in registry.types(group_version)))
        digest = hashlib.sha256(kinds.encode()).hexdigest()[:16]
        path = _gv_path(group_version)
        entries[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": entries}


# What the real server answers: the "@" of the Accept header is no valid media type.
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _field(number: int, text: str | bytes) -> bytes:
    """One length-delimited protobuf field (all this document needs; lengths < 128)."""
    data = text.encode() if isinstance(text, str) else text
    return bytes([number << 3 | 2, len(data)]) + data


def v2_protobuf() -> bytes:
    """``/openapi/v2`` as kubectl asks for it: a gnostic ``Document`` with no paths.

    kubectl validates a ``v1/List`` (and kinds the v3 documents do not claim) on the client
    with this document; it parses only protobuf, and skips kinds the document lacks.
    """
    info = _field(1, INFO["title"]) + _field(2, INFO["version"])
    return _field(1, "2.0") + _field(2, info)


def v2_document(registry: Registry) -> dict[str, Any]:
    """``/openapi/v2``: every kind's PATCH operation in one Swagger document."""
    paths: dict[str, Any] = {}
    for group_version in registry.group_versions():
        for rtype in registry.types(group_version):
            path, item = _paths(rtype)
            paths[path] = item
    return {"swagger": "2.0", "info": INFO, "paths": paths, "definitions": {}}
