"""The OpenAPI schemas of Kubernetes' built-in kinds, read from ``kubernetes-validate``.

Two uses:

* :func:`generate` derives ``sbkube/kubernetes_fields.json``, the compact table the
  redaction layer walks a manifest with (so sbkube needs no schema package at run time).
  Rewrite it after upgrading ``kubernetes-validate``:
  ``python tests/unit/kubernetes_schemas.py``; ``test_redaction_schemas.py`` fails while
  the file is out of date.
* :func:`definitions` / :func:`kinds` give the full schemas to the test that fills every
  field of every built-in kind and checks what the store keeps of it.

The table holds, per built-in kind (``apiVersion/kind``, every API version of Kubernetes
1.25 onwards), the path of definitions down to every field whose name looks secret to the
default key patterns, marking each one a reference (``0``: a name, a key of a ConfigMap, a
label key, kept in the clear) or a secret (``1``), and the name/value pairs (``{name,
value}`` objects) whose value may be a secret (an env var's) or is not one (a toleration's).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLE = REPO_ROOT / "sbkube" / "kubernetes_fields.json"

#: The schema fields that hold a secret. Everything else a built-in kind declares is a
#: name, a reference or configuration: kept, however its name reads. (A Secret's
#: ``data``/``stringData`` are maps: their keys are the user's and their values are
#: secrets, which the redaction layer handles by kind.)
SECRET_FIELDS = {
    ("TokenReviewSpec", "token"),  # a bearer token, sent for review
    ("TokenRequestStatus", "token"),  # a bearer token, issued
}
#: Name/value objects whose value is a secret when the name looks secret (an env var
#: ``DB_PASSWORD``, a header ``X-Api-Token``). Other name/value objects (tolerations,
#: taints, sysctls, DNS options) carry configuration under names like ``kernel.keys``.
SECRET_VALUE_PAIRS = {"EnvVar", "HTTPHeader"}
_PAIR_NAMES = ("name", "key", "env", "variable")
WORD = r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])"


def _schema_root() -> Path:
    import kubernetes_validate  # dev dependency: only the generator and the tests use it

    return Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name[1:].split("-")[0].split("."))


def versions() -> list[str]:
    """The Kubernetes versions kubernetes-validate ships (non-strict schemas), oldest first."""
    names = [p.name for p in _schema_root().iterdir() if re.fullmatch(r"v[\d.]+-local", p.name)]
    return sorted(names, key=_version_key)


@functools.cache
def _version_defs(version: str) -> dict[str, Any]:
    path = _schema_root() / version / "_definitions.json"
    defs: dict[str, Any] = json.loads(path.read_text())["$defs"]
    return defs


@functools.cache
def definitions() -> dict[str, Any]:
    """Every definition of every version (a later version's text wins), by full name."""
    merged: dict[str, Any] = {}
    for version in versions():
        merged.update(_version_defs(version))
    return merged


@functools.cache
def kinds() -> dict[str, str]:
    """``apiVersion/kind`` -> definition name, for every built-in kind of every version."""
    out: dict[str, str] = {}
    for name, schema in definitions().items():
        if name.endswith("List"):
            continue
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            if kind.endswith("List") or kind in ("WatchEvent", "DeleteOptions", "Status"):
                continue
            api_version = f"{group}/{version}" if group else version
            out[f"{api_version}/{kind}"] = name
    return dict(sorted(out.items()))


def _ref(prop: dict[str, Any]) -> str | None:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    for combinator in ("allOf", "oneOf", "anyOf"):
        for sub in prop.get(combinator, ()):
            if "$ref" in sub:
                return str(sub["$ref"]).rsplit("/", 1)[-1]
    if isinstance(prop.get("items"), dict):
        return _ref(prop["items"])
    return None


def target(prop: dict[str, Any]) -> str | None:
    """The object definition a property's value (or its items') is, if any: a definition
    without properties (Time, Quantity, IntOrString, RawExtension) is a scalar here."""
    ref = _ref(prop)
    if ref is None or not definitions().get(ref, {}).get("properties"):
        return None
    return ref


def is_string(prop: dict[str, Any]) -> bool:
    """A string, a list of strings, or a string-shaped definition (Time, Quantity)."""
    ref = _ref(prop)
    if ref is not None:
        schema = definitions().get(ref, {})
        if schema.get("properties"):
            return False
        prop = schema
    elif isinstance(prop.get("items"), dict):
        prop = prop["items"]
    types = prop.get("type") or []
    types = [types] if isinstance(types, str) else types
    return "string" in types or ("format" in prop and not types)


def map_values(prop: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of a map's values, when ``prop`` is a map with keys of the user's."""
    extra = prop.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def is_secret_field(definition: str, field: str) -> bool:
    return (short(definition), field) in SECRET_FIELDS


def pair_kind(definition: str) -> str | None:
    """``"secret"``/``"plain"`` for a name/value definition, else None."""
    props = definitions()[definition].get("properties") or {}
    if "value" not in props or not any(f in props for f in _PAIR_NAMES):
        return None
    return "secret" if short(definition) in SECRET_VALUE_PAIRS else "plain"


def generate() -> dict[str, Any]:
    """The compact table ``sbkube/kubernetes_fields.json`` holds (see the module doc)."""
    sys.path.insert(0, str(REPO_ROOT))
    from sbkube.redaction import is_secret_key  # the default patterns decide what to list

    defs = definitions()

    def entry(prop: dict[str, Any]) -> Any:
        """A property's child in the table before pruning: a definition name, a map of
        one (``{"*": name}``) or None for a scalar."""
        values = map_values(prop)
        if values is not None:
            inner = target(values)
            return {"*": inner} if inner else {"*": None}
        return target(prop)

    # Which definitions matter: those with a secret-looking field, a name/value pair, or a
    # property leading to one. Fixpoint over the (recursive) definition graph.
    interesting: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, schema in defs.items():
            if name in interesting:
                continue
            props = schema.get("properties") or {}
            hit = pair_kind(name) is not None
            for field, prop in props.items():
                child = entry(prop)
                inner = child["*"] if isinstance(child, dict) else child
                if (child is None and is_secret_key(field)) or inner in interesting:
                    hit = True
            if hit:
                interesting.add(name)
                changed = True

    table_defs: dict[str, dict[str, Any]] = {}
    wanted = [name for name in kinds().values() if name in interesting]
    while wanted:
        name = wanted.pop()
        if name in table_defs:
            continue
        out: dict[str, Any] = {}
        kind = pair_kind(name)
        if kind is not None:
            out["@value"] = kind
        for field, prop in (defs[name].get("properties") or {}).items():
            child = entry(prop)
            inner = child["*"] if isinstance(child, dict) else child
            if inner in interesting:
                out[field] = {"*": inner} if isinstance(child, dict) else inner
                wanted.append(inner)
            elif child is None and is_secret_key(field):
                out[field] = 1 if is_secret_field(name, field) else 0
        table_defs[name] = out

    # Where the kind is unknown (a custom resource, chart values), a secret-looking field is
    # still known as a reference by the field that holds it: `key` under `secretKeyRef`.
    by_parent: dict[str, set[str]] = {}
    plain_pairs: set[str] = set()
    for schema in defs.values():
        for field, prop in (schema.get("properties") or {}).items():
            child = target(prop) if map_values(prop) is None else None
            if child is None or child not in defs:
                continue
            for sub, subprop in (defs[child].get("properties") or {}).items():
                scalar = entry(subprop) is None
                if scalar and is_secret_key(sub) and not is_secret_field(child, sub):
                    by_parent.setdefault(field, set()).add(sub)
            if pair_kind(child) == "plain" and pair_kind_of_field(field) == {"plain"}:
                plain_pairs.add(field)

    # Properties holding a reference object under a secret-looking name (`secretKeyRef`,
    # `imagePullSecrets`): in chart values, walked into rather than hidden whole. Not the
    # bare words (`secret`, `token`), which values use for secrets as often as not.
    reference_objects: set[str] = set()
    for schema in defs.values():
        for field, prop in (schema.get("properties") or {}).items():
            words = "".join(w.lower() for w in re.findall(WORD, field))
            bare = words.rstrip("s") in ("secret", "token", "key", "password", "credential")
            if target(prop) is not None and is_secret_key(field) and not bare:
                reference_objects.add(field)

    return {
        "source": "kubernetes-validate: Kubernetes "
        + ", ".join(v[1:].split("-")[0] for v in versions()),
        "kinds": {k: v for k, v in kinds().items() if v in table_defs},
        "defs": dict(sorted(table_defs.items())),
        "references": {k: sorted(v) for k, v in sorted(by_parent.items())},
        "plain_pairs": sorted(plain_pairs),
        "reference_objects": sorted(reference_objects),
    }


@functools.cache
def pair_kind_of_field(field: str) -> frozenset[str]:
    """The pair kinds of every definition a property named ``field`` holds, anywhere."""
    found: set[str] = set()
    for schema in definitions().values():
        prop = (schema.get("properties") or {}).get(field)
        if not prop or map_values(prop) is not None:
            continue
        child = target(prop)
        if child is not None and child in definitions():
            found.add(pair_kind(child) or "none")
    return frozenset(found)


def render() -> str:
    return json.dumps(generate(), sort_keys=True, indent=1) + "\n"


def string_paths(
    definition: str, seen: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str, str]]:
    """``(path, definition, field)`` of every string field under ``definition`` (a path's
    ``[]`` is a list's item, ``*`` a map's key); recursive definitions are entered once."""
    defs = definitions()
    for field, prop in (defs[definition].get("properties") or {}).items():
        values = map_values(prop)
        if values is not None:
            inner = target(values)
            if inner is None:
                if is_string(values):
                    yield (field, "*"), definition, field
            elif inner in defs and inner not in seen:
                for path, d, f in string_paths(inner, (*seen, definition)):
                    yield (field, "*", *path), d, f
            continue
        child = target(prop)
        listed = "items" in prop
        if child is None:
            if is_string(prop):
                yield ((field, "[]") if listed else (field,)), definition, field
        elif child in defs and child not in seen:
            prefix = (field, "[]") if listed else (field,)
            for path, d, f in string_paths(child, (*seen, definition)):
                yield (*prefix, *path), d, f


if __name__ == "__main__":
    TABLE.write_text(render())
    print(f"wrote {os.path.relpath(TABLE)}")
