"""Schema validation of writes, as a kube-apiserver validates an object before it stores it.

Built-in kinds are checked against the OpenAPI schemas of Kubernetes itself, as the
``kubernetes-validate`` package ships them (one JSON document of definitions per Kubernetes
version; this server speaks 1.33). Custom resources are checked against the
``openAPIV3Schema`` of the CRD version they are written at. What is checked: types
(``replicas: two`` is not an integer), required fields, enums, and for CRDs the value
constraints of OpenAPI (minimum/maximum, lengths, pattern, item and property counts,
``nullable``, ``x-kubernetes-int-or-string``).

The answer to an invalid write is the real server's: 422 ``Invalid``, with a message like
``Deployment.apps "web" is invalid: spec.replicas: Invalid value: "string": spec.replicas in
body must be of type integer: "string"`` (several problems in ``[...]``) and one cause per
problem, which helm and kubectl print as they are.

The schemas load on the first write of a built-in kind (one parse of a 1.4 MB document, kept
for the process); a check walks only the fields an object has, so it costs a fraction of a
millisecond. Not checked, as listed in the package's docstring: semantic rules written in Go
or CEL (names' syntax, selectors matching labels, immutable fields, ``x-kubernetes-
validations``), formats, and unknown fields (kept, neither pruned nor refused).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# The Kubernetes version this server reports (handler.VERSION), whose schemas it checks
# against; when a later kubernetes-validate no longer ships it, the nearest one it ships.
KUBERNETES_VERSION = (1, 33)

Schema = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """One invalid field: where, what the real server calls it, and its message."""

    field: str
    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    detail: str

    @property
    def message(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


class BuiltinSchemas:
    """The definitions document of one Kubernetes version, loaded once, indexed by kind."""

    def __init__(self, version: tuple[int, int] = KUBERNETES_VERSION) -> None:
        self.version = version
        self._lock = threading.Lock()
        self._definitions: dict[str, Schema] | None = None
        self._by_kind: dict[tuple[str, str, str], Schema] = {}

    def _load(self) -> dict[str, Schema]:
        with self._lock:
            if self._definitions is None:
                document = _schema_directory(self.version) / "_definitions.json"
                definitions: dict[str, Schema] = json.loads(document.read_bytes())["$defs"]
                for schema in definitions.values():
                    for gvk in schema.get("x-kubernetes-group-version-kind") or ():
                        key = (str(gvk.get("group") or ""), str(gvk["version"]), str(gvk["kind"]))
                        self._by_kind[key] = schema
                self._definitions = definitions
            return self._definitions

    def for_kind(self, group: str, version: str, kind: str) -> Schema | None:
        self._load()
        return self._by_kind.get((group, version, kind))

    def resolve(self, ref: str) -> Schema:
        """The definition a ``$ref`` (``#/$defs/NAME``) names."""
        return self._load()[ref.rsplit("/", 1)[-1]]


def _schema_directory(version: tuple[int, int]) -> Any:
    """kubernetes-validate's directory of the (non-strict) schemas nearest ``version``."""
    from importlib.resources import files

    root = files("kubernetes_validate") / "kubernetes-json-schema"
    shipped = {}
    for entry in root.iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.0-local", entry.name)
        if match:
            shipped[(int(match.group(1)), int(match.group(2)))] = entry
    if not shipped:
        raise RuntimeError("kubernetes-validate ships no schemas (is it installed whole?)")
    nearest = min(shipped, key=lambda v: abs(v[1] - version[1]) + 100 * abs(v[0] - version[0]))
    return shipped[nearest]


_BUILTIN = BuiltinSchemas()


def builtin_schemas() -> BuiltinSchemas:
    """The process's one BuiltinSchemas (its document is loaded at most once)."""
    return _BUILTIN


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return _type_name(value) == kind


def _shown(value: Any) -> str:
    """A value as the real server's messages quote it."""
    return json.dumps(value) if isinstance(value, str | int | float | bool) else _type_name(value)


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:
        return None


class _Walk:
    """One check of one object: the problems found, by a walk of the fields it has."""

    def __init__(self, resolve: Any, openapi: bool) -> None:
        self.resolve = resolve
        # openapi: a CRD's schema (single types, nullable); else the built-in JSON schemas.
        self.openapi = openapi
        self.problems: list[Problem] = []

    def add(self, path: str, reason: str, detail: str) -> None:
        self.problems.append(Problem(path, reason, detail))

    def _types(self, node: Schema) -> list[str]:
        declared = node.get("type")
        if declared is None:
            return []
        return [declared] if isinstance(declared, str) else [str(t) for t in declared]

    def check(self, node: Schema, value: Any, path: str) -> None:
        while "$ref" in node and self.resolve is not None:
            node = self.resolve(node["$ref"])
        types = self._types(node)
        if value is None:
            if self.openapi and types and not node.get("nullable"):
                self._wrong_type(path, value, types)
            return
        int_or_string = bool(node.get("x-kubernetes-int-or-string"))
        if int_or_string:
            if not (_is(value, "integer") or _is(value, "string")):
                self._wrong_type(path, value, ["integer-or-string"])
                return
        elif types:
            wanted = [t for t in types if t != "null"]
            if wanted and not any(_is(value, t) for t in wanted):
                self._wrong_type(path, value, wanted)
                return
        if "enum" in node and value not in node["enum"]:
            supported = ", ".join(_shown(v) for v in node["enum"] if v is not None)
            self.add(
                path,
                "FieldValueNotSupported",
                f"Unsupported value: {_shown(value)}: supported values: {supported}",
            )
            return
        for keyword in ("oneOf", "anyOf"):
            if keyword in node:
                self._alternatives(node[keyword], value, path)
        for part in node.get("allOf") or ():
            self.check(part, value, path)
        if isinstance(value, dict):
            self._object(node, value, path)
        elif isinstance(value, list):
            self._array(node, value, path)
        elif isinstance(value, str):
            self._string(node, value, path)
        elif _is(value, "number"):
            self._number(node, value, path)

    def _wrong_type(self, path: str, value: Any, wanted: list[str]) -> None:
        got = _type_name(value)
        where = path or "body"
        self.add(
            path,
            "FieldValueTypeInvalid",
            f'Invalid value: "{got}": {where} in body must be of type '
            f'{" or ".join(wanted)}: "{got}"',
        )

    def _alternatives(self, options: list[Schema], value: Any, path: str) -> None:
        for option in options:
            trial = _Walk(self.resolve, self.openapi)
            trial.check(option, value, path)
            if not trial.problems:
                return
        # Built-in alternatives are types only (IntOrString, Quantity): name them.
        wanted: list[str] = []
        for option in options:
            while "$ref" in option and self.resolve is not None:
                option = self.resolve(option["$ref"])
            wanted.extend(t for t in self._types(option) if t != "null" and t not in wanted)
        if wanted:
            self._wrong_type(path, value, wanted)
        else:
            self.add(
                path,
                "FieldValueInvalid",
                f"Invalid value: {_shown(value)}: {path or 'body'} in body must match "
                "one of the schemas",
            )

    def _object(self, node: Schema, value: dict[str, Any], path: str) -> None:
        properties = node.get("properties") or {}
        for name in node.get("required") or ():
            if name not in value:
                self.add(_join(path, name), "FieldValueRequired", "Required value")
        extra = node.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                self.check(properties[key], item, _join(path, key))
            elif isinstance(extra, Mapping):
                self.check(extra, item, f"{path}[{key}]" if path else key)
        count = len(value)
        if "maxProperties" in node and count > node["maxProperties"]:
            self.add(
                path,
                "TooMany",
                f"Too many: {count}: must have at most {node['maxProperties']} items",
            )
        if "minProperties" in node and count < node["minProperties"]:
            self.add(
                path,
                "FieldValueInvalid",
                f"Invalid value: {count}: {path or 'body'} in body should have at least "
                f"{node['minProperties']} properties",
            )

    def _array(self, node: Schema, value: list[Any], path: str) -> None:
        items = node.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                self.check(items, item, f"{path}[{index}]")
        count = len(value)
        if "maxItems" in node and count > node["maxItems"]:
            self.add(
                path, "TooMany", f"Too many: {count}: must have at most {node['maxItems']} items"
            )
        if "minItems" in node and count < node["minItems"]:
            self.add(
                path,
                "FieldValueInvalid",
                f"Invalid value: {count}: {path or 'body'} in body should have at least "
                f"{node['minItems']} items",
            )
        if node.get("uniqueItems"):
            seen: list[Any] = []
            for index, item in enumerate(value):
                if item in seen:
                    self.add(
                        f"{path}[{index}]",
                        "FieldValueDuplicate",
                        f"Duplicate value: {_shown(item)}",
                    )
                seen.append(item)

    def _string(self, node: Schema, value: str, path: str) -> None:
        where = path or "body"
        if "maxLength" in node and len(value) > node["maxLength"]:
            self.add(
                path,
                "FieldValueTooLong",
                f"Too long: may not be more than {node['maxLength']} bytes",
            )
        if "minLength" in node and len(value) < node["minLength"]:
            self.add(
                path,
                "FieldValueInvalid",
                f"Invalid value: {_shown(value)}: {where} in body should be at least "
                f"{node['minLength']} chars long",
            )
        pattern = _pattern(str(node["pattern"])) if "pattern" in node else None
        if pattern is not None and not pattern.search(value):
            self.add(
                path,
                "FieldValueInvalid",
                f"Invalid value: {_shown(value)}: {where} in body should match '{node['pattern']}'",
            )

    def _number(self, node: Schema, value: float, path: str) -> None:
        where = path or "body"
        shown = _shown(value)
        if "maximum" in node:
            limit = node["maximum"]
            if node.get("exclusiveMaximum") is True and value >= limit:
                self.add(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {shown}: {where} in body should be less than {limit}",
                )
            elif value > limit:
                self.add(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {shown}: {where} in body should be less than or "
                    f"equal to {limit}",
                )
        if "minimum" in node:
            limit = node["minimum"]
            if node.get("exclusiveMinimum") is True and value <= limit:
                self.add(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {shown}: {where} in body should be greater than {limit}",
                )
            elif value < limit:
                self.add(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {shown}: {where} in body should be greater than or "
                    f"equal to {limit}",
                )
        step = node.get("multipleOf")
        if step and (value / step) != int(value / step):
            self.add(
                path,
                "FieldValueInvalid",
                f"Invalid value: {shown}: {where} in body should be a multiple of {step}",
            )


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _body(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a write is checked on: its status is the status subresource's business, and the
    server writes managedFields itself."""
    body = {k: v for k, v in obj.items() if k != "status"}
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and "managedFields" in metadata:
        body["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return body


def check_builtin(group: str, version: str, kind: str, obj: Mapping[str, Any]) -> list[Problem]:
    """The problems of a built-in kind's object (none for a kind without a known schema)."""
    schemas = builtin_schemas()
    schema = schemas.for_kind(group, version, kind)
    if schema is None:
        return []
    walk = _Walk(schemas.resolve, openapi=False)
    walk.check(schema, _body(obj), "")
    return walk.problems


def check_custom(schema: Schema | None, obj: Mapping[str, Any]) -> list[Problem]:
    """The problems of a custom resource under its CRD version's ``openAPIV3Schema``."""
    if not isinstance(schema, Mapping):
        return []
    # The server owns metadata's shape (name, labels...), whatever the CRD's schema says.
    body = {k: v for k, v in _body(obj).items() if k != "metadata"}
    properties = {k: v for k, v in (schema.get("properties") or {}).items() if k != "metadata"}
    walk = _Walk(None, openapi=True)
    walk.check({**schema, "properties": properties}, body, "")
    return walk.problems


def message(kind: str, group: str, name: str, problems: list[Problem]) -> str:
    """The real server's words: ``Deployment.apps "web" is invalid: ...``."""
    qualified = f"{kind}.{group}" if group else kind
    listed = [p.message for p in problems]
    text = listed[0] if len(listed) == 1 else "[" + ", ".join(listed) + "]"
    return f'{qualified} "{name}" is invalid: {text}'


def causes(problems: list[Problem]) -> list[dict[str, str]]:
    """The Status details' causes, one per problem."""
    return [{"reason": p.reason, "message": p.detail, "field": p.field} for p in problems]
