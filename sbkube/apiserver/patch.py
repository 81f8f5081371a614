"""The patch algorithms of the local API server: JSON patch (RFC 6902), JSON merge patch
(RFC 7386), Kubernetes strategic merge patch, and a simplified server-side apply.

kubectl's client-side apply sends strategic merge patches; helm 4 applies with server-side
apply; other clients use the two RFC formats. All functions are pure: they never change
their arguments and return a new object, or raise :class:`PatchError` (one line).

Strategic merge and server-side apply need to know, per list, whether it is merged by key,
merged as a set, or replaced whole. Real servers read this from the Go types
(``patchMergeKey``/``listMapKey`` tags); here :data:`LIST_RULES` is that table, matched by the
field-name path of the list (list items add nothing to the path), longest suffix first, so
a Service's ``spec.ports`` (keyed by ``port``) and a container's ``ports`` (keyed by
``containerPort``) differ. Lists not in the table are atomic: a patch replaces them whole.

Server-side apply simplifications (documented, deliberate):

- One ownership entry per (manager, operation); no subresources, no version conversion.
- ``metadata.managedFields`` is read and written in the real FieldsV1 shape (``f:name``,
  ``k:{"name":"web"}`` for keyed items, ``v:"x"`` for set items, ``.`` for an owned item),
  but fields are compared by value only: no schema defaulting happens here (the server
  defaults objects before and after), except that a missing ``protocol`` key of a port list
  item counts as ``TCP``, as the real server's defaulting makes it.
- Merged keyed lists keep the live order and append new items; a field removed because its
  manager stopped applying it also removes maps and lists that this left empty.
- A value ``null`` in an applied configuration is dropped (neither set nor owned).
- A conflict is a field another manager owns whose live value differs from the applied one;
  with ``force`` it moves to the applier. Updates (PUT, PATCH) are tracked only through
  :func:`record_update`, which the server calls so that later applies see them.
- Fields the server owns (apiVersion, kind, metadata.name/namespace/uid/resourceVersion/
  generation/creationTimestamp/managedFields, ...) are never owned by anyone.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class PatchError(Exception):
    """A patch that cannot be applied; ``str(err)`` is one line."""


class Conflict(PatchError):
    """A server-side apply that would overwrite fields another manager owns."""

    def __init__(self, conflicts: Sequence[tuple[str, str]]) -> None:
        self.conflicts = list(conflicts)
        noun = "conflict" if len(self.conflicts) == 1 else "conflicts"
        detail = "; ".join(f'conflict with "{m}": {path}' for m, path in self.conflicts)
        super().__init__(f"Apply failed with {len(self.conflicts)} {noun}: {detail}")


# --- the table of list merge rules -------------------------------------------------------


@dataclass(frozen=True)
class ListRule:
    """How one list merges: ``merge_key`` is strategic merge's ``patchMergeKey`` (None for a
    set of primitives); ``map_keys`` are server-side apply's ``listMapKey``s."""

    suffix: tuple[str, ...]
    merge_key: str | None
    map_keys: tuple[str, ...]


_PORT_KEYS = ("containerPort", "protocol")

LIST_RULES: tuple[ListRule, ...] = (
    ListRule(("containers",), "name", ("name",)),
    ListRule(("initContainers",), "name", ("name",)),
    ListRule(("ephemeralContainers",), "name", ("name",)),
    ListRule(("containers", "ports"), "containerPort", _PORT_KEYS),
    ListRule(("initContainers", "ports"), "containerPort", _PORT_KEYS),
    ListRule(("ephemeralContainers", "ports"), "containerPort", _PORT_KEYS),
    ListRule(("spec", "ports"), "port", ("port", "protocol")),  # a Service's ports
    ListRule(("env",), "name", ("name",)),
    ListRule(("volumes",), "name", ("name",)),
    ListRule(("volumeMounts",), "mountPath", ("mountPath",)),
    ListRule(("volumeDevices",), "devicePath", ("devicePath",)),
    ListRule(("imagePullSecrets",), "name", ("name",)),
    ListRule(("hostAliases",), "ip", ("ip",)),
    ListRule(("ownerReferences",), "uid", ("uid",)),
    ListRule(("conditions",), "type", ("type",)),
    ListRule(("topologySpreadConstraints",), "topologyKey", ("topologyKey", "whenUnsatisfiable")),
    ListRule(("metadata", "finalizers"), None, ()),
)

# Values the real server's defaulting gives missing list-map keys before it merges.
KEY_DEFAULTS: Mapping[str, Any] = {"protocol": "TCP"}


def list_rule(path: Sequence[str]) -> ListRule | None:
    """The rule for the list at this field-name path (longest matching suffix), or None
    for an atomic list."""
    best: ListRule | None = None
    for rule in LIST_RULES:
        n = len(rule.suffix)
        if tuple(path[-n:]) == rule.suffix and (best is None or n > len(best.suffix)):
            best = rule
    return best


# --- RFC 6902 JSON patch -----------------------------------------------------------------


def json_patch(obj: dict[str, Any], ops: Any) -> dict[str, Any]:
    """Applies an RFC 6902 patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc: Any = copy.deepcopy(obj)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise PatchError(f"JSON patch operation {op!r} needs an op and a path")
        name, path = op.get("op"), _pointer(op["path"])
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"JSON patch {name} at {op['path']!r} has no value")
        if name == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif name == "remove":
            doc = _remove(doc, path)
        elif name == "replace":
            doc = _add(_remove(doc, path), path, copy.deepcopy(op["value"]))
        elif name in ("move", "copy"):
            if not isinstance(op.get("from"), str):
                raise PatchError(f"JSON patch {name} to {op['path']!r} has no from")
            source = _pointer(op["from"])
            value = copy.deepcopy(_resolve(doc, source))
            if name == "move":
                if path[: len(source)] == source and path != source:
                    raise PatchError(f"JSON patch cannot move {op['from']!r} into itself")
                doc = _remove(doc, source)
            doc = _add(doc, path, value)
        elif name == "test":
            if not _json_equal(_resolve(doc, path), op["value"]):
                raise PatchError(f"JSON patch test failed at {op['path']!r}")
        else:
            raise PatchError(f"JSON patch operation {name!r} is not supported")
    if not isinstance(doc, dict):
        raise PatchError("a JSON patch must leave an object")
    return doc


def _pointer(text: str) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"JSON pointer {text!r} must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in text[1:].split("/")]


def _index(container: list[Any], token: str, *, end_ok: bool) -> int:
    if token == "-" and end_ok:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"JSON pointer index {token!r} is not a valid array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not end_ok):
        raise PatchError(f"JSON pointer index {index} is out of range")
    return index


def _resolve(doc: Any, path: list[str]) -> Any:
    for token in path:
        if isinstance(doc, dict):
            if token not in doc:
                raise PatchError(f"JSON pointer member {token!r} does not exist")
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_index(doc, token, end_ok=False)]
        else:
            raise PatchError(f"JSON pointer reaches into a scalar at {token!r}")
    return doc


def _add(doc: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _resolve(doc, path[:-1])
    if isinstance(parent, dict):
        parent[path[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, path[-1], end_ok=True), value)
    else:
        raise PatchError(f"JSON patch cannot add {path[-1]!r} to a scalar")
    return doc


def _remove(doc: Any, path: list[str]) -> Any:
    if not path:
        raise PatchError("JSON patch cannot remove the whole document")
    parent = _resolve(doc, path[:-1])
    _resolve(parent, path[-1:])  # raises when the target is missing
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        del parent[_index(parent, path[-1], end_ok=False)]
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python's, true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# --- RFC 7386 JSON merge patch -----------------------------------------------------------


def merge_patch(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Applies an RFC 7386 merge patch: maps merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        raise PatchError("a merge patch must be a JSON object")
    return _merge_patch(obj, patch)


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


# --- Kubernetes strategic merge patch ----------------------------------------------------

_DELETE = object()  # a map that `$patch: delete` removes
_PATCH = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strategic_merge_patch(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Applies a Kubernetes strategic merge patch (see the module docstring for lists).

    Directives: ``$patch: replace|delete|merge`` on maps and list items, ``$retainKeys``,
    ``$setElementOrder/<list>`` and ``$deleteFromPrimitiveList/<list>``; null deletes a key.
    ``$setElementOrder`` puts the listed items first, in its order, and the others after them
    in their current order (the real server interleaves them; the set is the same).
    """
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    merged = _smp_map(obj, patch, ())
    if merged is _DELETE:
        raise PatchError("a strategic merge patch cannot delete the whole object")
    assert isinstance(merged, dict)
    return merged


def _smp_map(original: Mapping[str, Any], patch: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    directive = patch.get(_PATCH, "merge")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != _PATCH}
    if directive != "merge":
        raise PatchError(f"unknown $patch directive {directive!r} at {_dotted(path)}")
    result = copy.deepcopy(dict(original))
    if _RETAIN in patch:
        keep = patch[_RETAIN]
        if not isinstance(keep, list):
            raise PatchError(f"$retainKeys at {_dotted(path)} must be a list")
        result = {k: v for k, v in result.items() if k in keep}
    for key, value in patch.items():
        if key.startswith("$"):
            if key in (_PATCH, _RETAIN) or key.startswith((_ORDER, _DELETE_PRIMITIVE)):
                continue
            raise PatchError(f"unknown strategic merge directive {key!r} at {_dotted(path)}")
        here = (*path, key)
        current = result.get(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(current if isinstance(current, dict) else {}, value, here)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(current if isinstance(current, list) else [], value, here)
        else:
            result[key] = value
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            name = key.removeprefix(_DELETE_PRIMITIVE)
            if isinstance(result.get(name), list):
                result[name] = [x for x in result[name] if x not in value]
    for key, value in patch.items():
        if key.startswith(_ORDER):
            name = key.removeprefix(_ORDER)
            if isinstance(result.get(name), list):
                result[name] = _ordered(result[name], value, list_rule((*path, name)))
    return result


def _smp_list(original: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    if any(_is_directive(item, "replace") for item in patch):
        return [copy.deepcopy(x) for x in patch if not _is_directive(x, "replace")]
    rule = list_rule(path)
    if rule is None:
        return copy.deepcopy(patch)
    if rule.merge_key is None:
        result = copy.deepcopy(original)
        result.extend(x for x in copy.deepcopy(patch) if x not in result)
        return result
    key = rule.merge_key
    result = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"an item of {_dotted(path)} lacks its merge key {key!r}")
        matches = [
            i for i, x in enumerate(result) if isinstance(x, dict) and x.get(key) == item[key]
        ]
        if item.get(_PATCH) == "delete":
            result = [x for i, x in enumerate(result) if i not in matches]
            continue
        if matches:
            result[matches[0]] = _smp_map(result[matches[0]], item, path)
        else:
            result.append(_smp_map({}, item, path))
    return result


def _is_directive(item: Any, directive: str) -> bool:
    return isinstance(item, dict) and item.get(_PATCH) == directive and len(item) == 1


def _ordered(items: list[Any], order: Any, rule: ListRule | None) -> list[Any]:
    if not isinstance(order, list):
        raise PatchError("$setElementOrder must be a list")
    key = rule.merge_key if rule is not None else None

    def ident(value: Any) -> Any:
        return value.get(key) if key is not None and isinstance(value, dict) else value

    wanted = [ident(x) for x in order]
    first = [x for w in wanted for x in items if ident(x) == w]
    return first + [x for x in items if ident(x) not in wanted]


def _dotted(path: Sequence[str]) -> str:
    return "." + ".".join(path) if path else "the object root"


# --- server-side apply -------------------------------------------------------------------

Path = tuple[str, ...]  # FieldsV1 elements: "f:spec", 'k:{"name":"web"}', 'v:"x"'

_MISSING = object()
_PRESENT = object()  # a keyed or set item that exists (its fields are compared one by one)

# Paths (as field names) the server owns: they are stripped before ownership is computed.
NEVER_OWNED: frozenset[tuple[str, ...]] = frozenset(
    {
        ("apiVersion",),
        ("kind",),
        *(
            ("metadata", name)
            for name in (
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
                "managedFields",
            )
        ),
    }
)


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    fields: set[Path]

    def as_json(self) -> dict[str, Any]:
        return {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(self.fields),
        }


def server_side_apply(
    live: dict[str, Any] | None, applied: dict[str, Any], *, manager: str, force: bool
) -> dict[str, Any]:
    """The object after ``manager`` applies ``applied`` to ``live`` (None: a create).

    Raises :class:`Conflict` when the apply would change fields another manager owns,
    unless ``force``, which moves those fields to ``manager``.
    """
    if not isinstance(applied, dict):
        raise PatchError("an applied configuration must be a JSON object")
    current = copy.deepcopy(live) if live is not None else {}
    wanted = _without_nulls(applied)
    wanted.get("metadata", {}).pop("managedFields", None)
    entries = _entries(current)
    ours = _take(entries, manager, "Apply", wanted.get("apiVersion", ""))
    others = [e for e in entries if e is not ours]
    applying = set(_owned_paths(wanted))

    conflicts = [
        (entry, path)
        for entry in others
        if entry.manager != manager  # a manager never conflicts with itself
        for path in sorted(entry.fields & applying)
        if not _same(_get(current, path), _get(wanted, path))
    ]
    if conflicts and not force:
        raise Conflict([(e.manager, _display(p)) for e, p in conflicts])
    for entry, path in conflicts:
        entry.fields.discard(path)

    result = _merge(current, wanted, ())
    kept_by_others = set().union(*(e.fields for e in others))
    dropped = ours.fields - applying
    for path in sorted(dropped, key=len, reverse=True):
        if not any(p[: len(path)] == path for p in kept_by_others) and not _is_key(path):
            _delete(result, path)
    ours.fields = applying
    ours.time = _now()
    _store(result, [*others, ours])
    return result


def record_update(
    live_before: dict[str, Any] | None, live_after: dict[str, Any], manager: str
) -> dict[str, Any]:
    """``live_after`` with ``manager`` (operation Update) owning every field that changed
    from ``live_before``; fields that went away are no longer owned by anyone. Other
    managers lose the changed fields, as a real server's Update does (no conflicts)."""
    before = _without_nulls(live_before or {})
    after = copy.deepcopy(live_after)
    entries = _entries(before)
    old_paths = set(_owned_paths(before))
    new_paths = set(_owned_paths(after))
    changed = {p for p in new_paths if not _same(_get(before, p), _get(after, p))}
    gone = old_paths - new_paths
    for entry in entries:
        entry.fields -= changed | gone
    if changed:
        ours = _take(entries, manager, "Update", after.get("apiVersion", ""))
        ours.fields |= changed
        ours.time = _now()
    _store(after, entries)
    return after


def fields_v1(paths: set[Path]) -> dict[str, Any]:
    """The FieldsV1 trie of a set of owned paths (``.`` marks an owned inner node)."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    return _tidy(root)


def _tidy(node: dict[str, Any]) -> dict[str, Any]:
    """Leaves are ``{}``; only owned nodes with children keep their ``.``."""
    children = {k: _tidy(v) for k, v in node.items() if k != "."}
    return {".": {}, **children} if "." in node and children else children


def paths_of(fields: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    """The owned paths of a FieldsV1 trie (the inverse of :func:`fields_v1`)."""
    out: set[Path] = set()
    if not fields and prefix:
        out.add(prefix)
    for key, child in fields.items():
        if key == ".":
            out.add(prefix)
        elif isinstance(child, Mapping):
            out |= paths_of(child, (*prefix, key))
    return out


def _entries(obj: Mapping[str, Any]) -> list[_Entry]:
    raw = obj.get("metadata", {}).get("managedFields") or []
    return [
        _Entry(
            manager=str(e.get("manager", "")),
            operation=str(e.get("operation", "Update")),
            api_version=str(e.get("apiVersion", "")),
            time=str(e.get("time", "")),
            fields=paths_of(e.get("fieldsV1") or {}),
        )
        for e in raw
        if isinstance(e, Mapping)
    ]


def _take(entries: list[_Entry], manager: str, operation: str, api_version: str) -> _Entry:
    for entry in entries:
        if (entry.manager, entry.operation) == (manager, operation):
            entry.api_version = api_version or entry.api_version
            return entry
    entry = _Entry(manager, operation, api_version, _now(), set())
    entries.append(entry)
    return entry


def _store(obj: dict[str, Any], entries: list[_Entry]) -> None:
    managed = [e.as_json() for e in entries if e.fields]
    meta = obj.setdefault("metadata", {})
    if managed:
        meta["managedFields"] = managed
    else:
        meta.pop("managedFields", None)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _identity(item: Any, rule: ListRule) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise PatchError(f"a keyed list item must be an object, not {item!r}")
    ident = {k: item.get(k, KEY_DEFAULTS.get(k)) for k in rule.map_keys}
    return {k: v for k, v in ident.items() if v is not None}


def _key_element(item: Any, rule: ListRule) -> str:
    return "k:" + json.dumps(_identity(item, rule), sort_keys=True, separators=(",", ":"))


def _value_element(value: Any) -> str:
    return "v:" + json.dumps(value, sort_keys=True, separators=(",", ":"))


def _owned_paths(obj: Mapping[str, Any]) -> Iterator[Path]:
    for key, value in obj.items():
        if (key,) in NEVER_OWNED:
            continue
        if key == "metadata" and isinstance(value, dict):
            inner = {k: v for k, v in value.items() if ("metadata", k) not in NEVER_OWNED}
            if inner:
                yield from _leaves(inner, ("metadata",), ("f:metadata",))
            continue
        yield from _leaves(value, (key,), (f"f:{key}",))


def _leaves(value: Any, names: tuple[str, ...], path: Path) -> Iterator[Path]:
    """Every owned path under ``value``: scalars, empty maps, atomic lists, keyed items
    (the item itself and its fields) and set members."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, (*names, key), (*path, f"f:{key}"))
        return
    rule = list_rule(names) if isinstance(value, list) else None
    if rule is None:
        yield path
    elif not rule.map_keys:
        for item in value:
            yield (*path, _value_element(item))
    else:
        for item in value:
            item_path = (*path, _key_element(item, rule))
            yield item_path
            for key, child in item.items():
                yield from _leaves(child, (*names, key), (*item_path, f"f:{key}"))


def _locate(obj: Any, path: Path) -> tuple[Any, Any]:
    """(container, index-or-key) of the element at ``path``, or (None, None) if absent."""
    node: Any = obj
    names: tuple[str, ...] = ()
    parent: Any = None
    where: Any = None
    for element in path:
        kind, _, text = element.partition(":")
        if kind == "f" and isinstance(node, dict) and text in node:
            parent, where, node, names = node, text, node[text], (*names, text)
        elif kind in ("k", "v") and isinstance(node, list):
            rule = list_rule(names)
            if rule is None:
                return None, None
            index = next(
                (
                    i
                    for i, item in enumerate(node)
                    if (_key_element(item, rule) if kind == "k" else _value_element(item))
                    == element
                ),
                None,
            )
            if index is None:
                return None, None
            parent, where, node = node, index, node[index]
        else:
            return None, None
    return parent, where


def _is_key(path: Path) -> bool:
    """A key field of a keyed item: it goes with its item, never on its own (another
    manager may still own the item's other fields)."""
    if len(path) < 2 or not path[-2].startswith("k:"):
        return False
    return path[-1].removeprefix("f:") in json.loads(path[-2][2:])


def _get(obj: Any, path: Path) -> Any:
    parent, where = _locate(obj, path)
    if parent is None:
        return _MISSING
    return _PRESENT if path[-1][0] in "kv" else parent[where]


def _same(a: Any, b: Any) -> bool:
    if a is _PRESENT or b is _PRESENT or a is _MISSING or b is _MISSING:
        return a is b
    return _json_equal(a, b)


def _delete(obj: Any, path: Path) -> None:
    """Removes the element at ``path``, then any maps or lists this left empty on the way
    up."""
    parent, where = _locate(obj, path)
    if parent is None:
        return
    del parent[where]
    for depth in range(len(path) - 1, 0, -1):
        up, key = _locate(obj, path[:depth])
        if up is None or not isinstance(up[key], dict | list) or up[key]:
            return
        del up[key]


def _merge(live: Any, applied: Any, names: tuple[str, ...]) -> Any:
    """Live merged with applied: maps recursively, keyed lists by key, sets by value,
    anything else replaced by the applied value."""
    if isinstance(applied, dict):
        result = dict(live) if isinstance(live, dict) else {}
        for key, value in applied.items():
            result[key] = _merge(result.get(key, _MISSING), value, (*names, key))
        return result
    rule = list_rule(names) if isinstance(applied, list) else None
    if rule is None or not isinstance(live, list):
        return copy.deepcopy(applied)
    if not rule.map_keys:
        return [*live, *(copy.deepcopy(v) for v in applied if v not in live)]
    result_list = list(live)
    for item in applied:
        element = _key_element(item, rule)
        index = next(
            (i for i, x in enumerate(result_list) if _key_element(x, rule) == element), None
        )
        if index is None:
            result_list.append(copy.deepcopy(item))
        else:
            result_list[index] = _merge(result_list[index], item, names)
    return result_list


def _display(path: Path) -> str:
    """A field path the way the API server's conflict messages print it."""
    out = ""
    for element in path:
        kind, _, text = element.partition(":")
        if kind == "f":
            out += "." + text
        elif kind == "k":
            pairs = ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(text).items())
            out += f"[{pairs}]"
        else:
            out += f"[={text}]"
    return out
