"""Decoding of the Kubernetes protobuf request bodies that helm and kubectl send.

client-go's typed clients write some objects as ``application/vnd.kubernetes.protobuf``
(helm's release Secrets, ``kubectl create secret|configmap|namespace``, DELETE options) and
never fall back to JSON, so the local API server must read them. The envelope is the 4-byte
magic ``k8s\\0`` followed by a ``runtime.Unknown`` message (1 TypeMeta {1 apiVersion, 2 kind},
2 raw object bytes, 3 contentEncoding, 4 contentType). The raw object uses the field numbers
of ``k8s.io/api`` and ``k8s.io/apimachinery`` ``generated.proto``; the tables below copy the
ones we need, and :func:`decode` turns the object into the JSON shape the API serves.

Go's JSON encoding decides which fields appear: non-pointer scalars tagged ``omitempty`` are
left out when zero (the Go protobuf marshaller still writes them), pointer fields appear
whenever they were sent, nested structs always appear, and a zero ``metav1.Time`` (sent as
an empty message) is left out. Unknown field numbers are skipped, as protobuf readers do, so
a newer client's extra fields (or ``managedFields``, which no client sends) do no harm.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

# Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

Kind = Literal["string", "bytes", "int", "bool", "time", "map", "map_bytes", "message"]
Schema = Mapping[int, "Field"]


@dataclass(frozen=True)
class Field:
    """One field of a message: its JSON name, how its wire value is read, and whether Go
    omits it from JSON when zero (``pointer`` fields are kept whenever they were sent)."""

    name: str
    kind: Kind
    repeated: bool = False
    pointer: bool = False
    message: Schema = field(default_factory=dict)


TIMESTAMP: Schema = {1: Field("seconds", "int"), 2: Field("nanos", "int")}

OWNER_REFERENCE: Schema = {
    1: Field("kind", "string"),
    3: Field("name", "string"),
    4: Field("uid", "string"),
    5: Field("apiVersion", "string"),
    6: Field("controller", "bool", pointer=True),
    7: Field("blockOwnerDeletion", "bool", pointer=True),
}

# k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto, message ObjectMeta. 15 (clusterName)
# is gone from the API and 16 was never used; 17 (managedFields) is server-owned: skipped.
OBJECT_META: Schema = {
    1: Field("name", "string"),
    2: Field("generateName", "string"),
    3: Field("namespace", "string"),
    4: Field("selfLink", "string"),
    5: Field("uid", "string"),
    6: Field("resourceVersion", "string"),
    7: Field("generation", "int"),
    8: Field("creationTimestamp", "time"),
    9: Field("deletionTimestamp", "time"),
    10: Field("deletionGracePeriodSeconds", "int", pointer=True),
    11: Field("labels", "map"),
    12: Field("annotations", "map"),
    13: Field("ownerReferences", "message", repeated=True, message=OWNER_REFERENCE),
    14: Field("finalizers", "string", repeated=True),
}

_METADATA = Field("metadata", "message", message=OBJECT_META)

# k8s.io/api/core/v1/generated.proto.
SECRET: Schema = {
    1: _METADATA,
    2: Field("data", "map_bytes"),
    3: Field("type", "string"),
    4: Field("stringData", "map"),
    5: Field("immutable", "bool", pointer=True),
}

CONFIG_MAP: Schema = {
    1: _METADATA,
    2: Field("data", "map"),
    3: Field("binaryData", "map_bytes"),
    4: Field("immutable", "bool", pointer=True),
}

NAMESPACE: Schema = {
    1: _METADATA,
    2: Field("spec", "message", message={1: Field("finalizers", "string", repeated=True)}),
    # NamespaceStatus.conditions (2) is written by the namespace controller, not by clients.
    3: Field("status", "message", message={1: Field("phase", "string")}),
}

OBJECT_REFERENCE: Schema = {
    1: Field("kind", "string"),
    2: Field("namespace", "string"),
    3: Field("name", "string"),
    4: Field("uid", "string"),
    5: Field("apiVersion", "string"),
    6: Field("resourceVersion", "string"),
    7: Field("fieldPath", "string"),
}

SERVICE_ACCOUNT: Schema = {
    1: _METADATA,
    2: Field("secrets", "message", repeated=True, message=OBJECT_REFERENCE),
    3: Field("imagePullSecrets", "message", repeated=True, message={1: Field("name", "string")}),
    4: Field("automountServiceAccountToken", "bool", pointer=True),
}

# k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto, message DeleteOptions.
DELETE_OPTIONS: Schema = {
    1: Field("gracePeriodSeconds", "int", pointer=True),
    2: Field(
        "preconditions",
        "message",
        pointer=True,
        message={
            1: Field("uid", "string", pointer=True),
            2: Field("resourceVersion", "string", pointer=True),
        },
    ),
    3: Field("orphanDependents", "bool", pointer=True),
    4: Field("propagationPolicy", "string", pointer=True),
    5: Field("dryRun", "string", repeated=True),
    6: Field("ignoreStoreReadErrorWithClusterBreakingPotential", "bool", pointer=True),
}

# Kinds this module reads, by kind; the apiVersion each must carry (None: any group, since
# DeleteOptions is registered in every group-version a DELETE is sent to).
KINDS: Mapping[str, tuple[str | None, Schema]] = {
    "Secret": ("v1", SECRET),
    "ConfigMap": ("v1", CONFIG_MAP),
    "Namespace": ("v1", NAMESPACE),
    "ServiceAccount": ("v1", SERVICE_ACCOUNT),
    "DeleteOptions": (None, DELETE_OPTIONS),
}

_TYPE_META: Schema = {1: Field("apiVersion", "string"), 2: Field("kind", "string")}
_UNKNOWN: Schema = {
    1: Field("typeMeta", "message", message=_TYPE_META),
    2: Field("raw", "bytes"),
    3: Field("contentEncoding", "string"),
    4: Field("contentType", "string"),
}
_MAP_ENTRY_STRING: Schema = {1: Field("key", "string"), 2: Field("value", "string")}
_MAP_ENTRY_BYTES: Schema = {1: Field("key", "string"), 2: Field("value", "bytes")}


def is_protobuf(content_type: str) -> bool:
    """True for ``application/vnd.kubernetes.protobuf``, with or without parameters."""
    return content_type.split(";", 1)[0].strip().lower() == MEDIA_TYPE


def decode(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object (apiVersion, kind, metadata, ...) of one protobuf body.

    Raises ``ValueError`` with a one-line message for a body that is not the envelope, is
    malformed, or holds a kind this module does not read.
    """
    if not body.startswith(MAGIC):
        raise ValueError("protobuf body does not start with the k8s magic prefix")
    envelope = _message(body[len(MAGIC) :], _UNKNOWN)
    if envelope.get("contentEncoding"):
        raise ValueError(
            f"protobuf content encoding {envelope['contentEncoding']!r} is not supported"
        )
    type_meta = envelope.get("typeMeta", {})
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    expected_version, schema = KINDS.get(kind, (None, None))
    if schema is None or (expected_version is not None and api_version != expected_version):
        raise ValueError(f"protobuf body of {api_version}/{kind}: kind {kind} not supported")
    raw = envelope.get("raw", b"")
    assert isinstance(raw, bytes)
    return {"apiVersion": api_version, "kind": kind, **_message(raw, schema)}


def _message(data: bytes, schema: Schema) -> dict[str, Any]:
    """Reads one message. Repeated fields accumulate; a repeated singular field keeps the
    last value (protobuf's merge rule)."""
    out: dict[str, Any] = {}
    seen: dict[str, Field] = {}
    for number, wire_type, value in _fields(data):
        spec = schema.get(number)
        if spec is None:
            continue
        seen[spec.name] = spec
        decoded = _value(spec, wire_type, value)
        if spec.kind in ("map", "map_bytes"):
            key, item = decoded
            out.setdefault(spec.name, {})[key] = item
        elif spec.repeated:
            out.setdefault(spec.name, []).append(decoded)
        else:
            out[spec.name] = decoded
    return {name: value for name, value in out.items() if _kept(seen[name], value)}


def _kept(spec: Field, value: Any) -> bool:
    """Go's ``omitempty`` for what was read: zero non-pointer scalars and zero times go;
    pointers and nested structs stay whenever they were sent."""
    if spec.pointer or (spec.kind == "message" and not spec.repeated):
        return True
    return value not in ("", 0, False, None)


def _value(spec: Field, wire_type: int, value: int | bytes) -> Any:
    expected = _VARINT if spec.kind in ("int", "bool") else _LEN
    if wire_type != expected:
        raise ValueError(f"protobuf field {spec.name!r} has wire type {wire_type}")
    if isinstance(value, int):
        # int32/int64 negatives are sign-extended to ten bytes on the wire.
        signed = value - (1 << 64) if value >= 1 << 63 else value
        return bool(value) if spec.kind == "bool" else signed
    match spec.kind:
        case "string":
            return _text(value, spec.name)
        case "bytes":
            return value
        case "time":
            return _time(value)
        case "map":
            entry = _message(value, _MAP_ENTRY_STRING)
            return entry.get("key", ""), entry.get("value", "")
        case "map_bytes":
            entry = _message(value, _MAP_ENTRY_BYTES)
            return entry.get("key", ""), base64.b64encode(entry.get("value", b"")).decode()
        case _:
            return _message(value, spec.message)


def _text(value: bytes, name: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"protobuf field {name!r} is not valid UTF-8") from None


def _time(value: bytes) -> str | None:
    """metav1.Time as the API's RFC 3339 string: whole seconds, UTC, ``Z``. An empty
    message is the zero time (JSON null, so left out)."""
    if not value:
        return None
    stamp = _message(value, TIMESTAMP)
    try:
        moment = datetime.fromtimestamp(stamp.get("seconds", 0), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"protobuf timestamp {stamp.get('seconds')} is out of range") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field of one message."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("protobuf field number 0 is invalid")
        value: int | bytes
        if wire_type == _VARINT:
            value, pos = _varint(data, pos)
        elif wire_type == _LEN:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("protobuf length-delimited field runs past the end")
            value, pos = data[pos : pos + length], pos + length
        elif wire_type in (_I64, _I32):
            size = 8 if wire_type == _I64 else 4
            if pos + size > len(data):
                raise ValueError("protobuf fixed-width field runs past the end")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        else:
            raise ValueError(f"protobuf wire type {wire_type} is not supported")
        yield number, wire_type, value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("protobuf varint runs past the end")
        if shift >= 64:
            raise ValueError("protobuf varint is longer than ten bytes")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result & ((1 << 64) - 1), pos
