"""The one comparison: does a live object hold what a desired manifest sets?

``deploy``'s "unchanged", ``sbkube diff``, ``status`` drift and rollback plans all ask it
through :func:`differences` (the paths that differ) or :func:`matches`. The rules follow
the Kubernetes API server, as ``kubectl apply`` and Helm's three-way merge read a manifest:
a set of fields it asks for.

* A field the manifest does not set is the server's business (defaults such as
  ``imagePullPolicy``, ``status``, labels another tool added): never a difference.
* A field set to null asks for nothing (the server drops nulls from what is applied), nor
  does an empty map or list against a field the live object lacks (the server omits them).
* Scalars compare by value, with one exception Python would miss: a manifest's ``true`` is
  not a server's ``1``. ``1`` and ``1.0`` are the same JSON number.
* Lists compare element by element, in order; a list of another length differs as a whole.
  But list items that other field managers added to an object sbkube applies (an env var
  a mutating tool injected, a port another apply added) are theirs: left out of the live
  side first (:func:`without_items_of_others`), so they are neither a difference nor drift.
* A manifest (a map with ``apiVersion`` and ``kind``) is first read as the server stores
  it: a Secret's ``stringData`` folded into ``data``, server-written fields and
  ``metadata.namespace`` left out (the object's key matched already; a kind the offline
  list does not know to be cluster-scoped gets a namespace the server drops).

Fields a manifest no longer sets are the other half of "unchanged" (:func:`removed`): a
server-side apply removes the fields its field manager owned and no longer sends, but only
if something is sent. Which fields sbkube's manager (``manifests.FIELD_MANAGER``) owns is
read from the live object's ``metadata.managedFields`` (FieldsV1: ``f:name`` for a map key,
``k:{"name":"web"}`` for a keyed list item, ``v:"x"`` for a set member); those the manifest
no longer sets and the live object still holds are removals, and the object is not
unchanged. That is the truth the server acts on, so it wins over the record; the record
(what sbkube last applied) is the reference only where the live object shows no ownership
at all. Fields other managers own (an HPA's replicas, a label another tool added) are never
removals: sbkube's apply would leave them be.

With ``digests=True`` the desired side is a stored form (what the store keeps: secrets as
keyed digests ``hmac-sha256:…``, or legacy ``sha256:…``) and the live side is plain: a
digest matches the live value it is the digest of (also of its base64- or URL-decoded form,
as the store digests a secret wherever it reappears encoded), and a string with digests
inside (a URL whose password was scrubbed) matches when the text around them is the same
and each digested part is the digest of what stands there live.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus

from sbkube.manifests import (
    FIELD_MANAGER,
    ObjectKey,
    fold_string_data,
    object_key,
    strip_volatile,
)
from sbkube.redaction import DIGEST_PREFIX, LEGACY_PREFIX, canonical_json, digest, is_digest

_ABSENT: Any = object()
# A digest inside a longer string, where scrubbing put it.
_DIGEST_IN_TEXT = re.compile(r"(?:hmac-sha256|sha256):[0-9a-f]{64}")


def path_join(prefix: str, key: str | int) -> str:
    """``spec.replicas``, ``containers[0]``, ``annotations['helm.sh/hook']``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if not key or any(c in key for c in ".[]'/ "):
        return f"{prefix}[{key!r}]"
    return f"{prefix}.{key}" if prefix else key


def differences(desired: Any, live: Any, *, digests: bool = False) -> list[str]:
    """The paths (``spec.replicas``, ``spec.template.spec.containers[0].image``) of the
    fields ``desired`` sets that ``live`` does not hold as set; ``["."]`` when the whole
    value differs. ``desired`` is a manifest or any part of one (see the module
    docstring); ``digests``: it is a stored form, compared digest-aware."""
    if _is_manifest(desired):
        desired = comparable(desired)
        if isinstance(live, Mapping):
            live = without_items_of_others(live)
    found: list[str] = []
    _walk(desired, live, "", digests, found)
    return found


def matches(desired: Any, live: Any, *, digests: bool = False) -> bool:
    """True when ``live`` holds every field ``desired`` sets (:func:`differences` is empty)."""
    return not differences(desired, live, digests=digests)


def _walk(desired: Any, live: Any, path: str, digests: bool, found: list[str]) -> None:
    if desired is None:
        return  # null sets nothing
    if live is _ABSENT or live is None:
        if not _empty(desired):
            found.append(path or ".")
        return
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            found.append(path or ".")
            return
        for key, value in desired.items():
            _walk(value, live.get(key, _ABSENT), path_join(path, str(key)), digests, found)
        return
    if isinstance(desired, list | tuple):
        if not isinstance(live, list | tuple) or len(desired) != len(live):
            found.append(path or ".")
            return
        for index, (d, v) in enumerate(zip(desired, live, strict=True)):
            _walk(d, v, path_join(path, index), digests, found)
        return
    if not _same_scalar(desired, live, digests):
        found.append(path or ".")


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping | list | tuple) and not value)


def _same_scalar(desired: Any, live: Any, digests: bool) -> bool:
    # True == 1 in Python; a manifest's true is not a server's 1.
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if desired == live:
        return True
    if digests and isinstance(desired, str):
        return _digest_holds(desired, live)
    return False


def _is_manifest(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("apiVersion"), str)
        and isinstance(value.get("kind"), str)
    )


def comparable(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest as compared with its live object: as the server stores it (a Secret's
    ``stringData`` folded into ``data``; a value already digested stays a digest, compared
    with the decoded live value), without server-written fields and without
    ``metadata.namespace``."""
    string_data = manifest.get("stringData")
    digested: dict[str, Any] = {}
    if manifest.get("kind") == "Secret" and isinstance(string_data, Mapping):
        digested = {k: v for k, v in string_data.items() if is_digest(v)}
        plain = {k: v for k, v in string_data.items() if k not in digested}
        manifest = {**manifest, "stringData": plain}
    out = strip_volatile(fold_string_data(manifest))
    if digested:
        out["data"] = {**(out.get("data") or {}), **digested}
    meta = dict(out.get("metadata") or {})
    meta.pop("namespace", None)
    out["metadata"] = meta
    return out


# --------------------------------------------------------------------------- digests


def _is_digest_of(recorded: str, value: Any) -> bool:
    """True when ``recorded`` is the store's digest of ``value`` (keyed, or legacy)."""
    if recorded.startswith(DIGEST_PREFIX):
        return hmac.compare_digest(digest(value), recorded)
    text = value if isinstance(value, str) else canonical_json(value)
    return recorded == LEGACY_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def _plain_forms(value: Any) -> list[Any]:
    """``value`` and, for a string, what it decodes to (base64, URL encoding): the store
    digests a secret's plain text wherever one of its encodings reappears."""
    if not isinstance(value, str):
        return [value]
    forms: list[Any] = [value, unquote(value), unquote_plus(value)]
    padded = value + "=" * (-len(value) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        with suppress(binascii.Error, UnicodeDecodeError, ValueError):
            forms.append(decode(padded).decode())
    return forms


def _digest_holds(recorded: str, live: Any) -> bool:
    """True when the stored string ``recorded`` (a digest, or text with digests in it) is
    what the store keeps of the plain ``live`` value."""
    if is_digest(recorded):
        return any(_is_digest_of(recorded, form) for form in _plain_forms(live))
    parts = _DIGEST_IN_TEXT.split(recorded)
    if len(parts) == 1 or not isinstance(live, str):
        return False
    pattern = "(.+?)".join(re.escape(p) for p in parts)
    held = re.fullmatch(pattern, live, re.DOTALL)
    if held is None:
        return False
    return all(
        any(_is_digest_of(stored, form) for form in _plain_forms(plain))
        for stored, plain in zip(_DIGEST_IN_TEXT.findall(recorded), held.groups(), strict=True)
    )


# --------------------------------------------------------------------------- helpers


def project(live: Any, desired: Any, removals: Sequence[Removal] = ()) -> Any:
    """``live`` cut down to the fields ``desired`` sets and those ``removals`` name, so
    that a unified diff of the two shows the differences :func:`differences` finds, the
    removals as ``-`` lines, and none of the server's own fields."""
    keep = [r.fields for r in removals if r.fields]
    return _project(live, desired, keep)


def _project(live: Any, desired: Any, keep: Sequence[FieldPath]) -> Any:
    if isinstance(live, Mapping) and (isinstance(desired, Mapping) or desired is _ABSENT):
        wanted = desired if isinstance(desired, Mapping) else {}
        out = {}
        for key, value in wanted.items():
            below = _below(keep, f"f:{key}")
            if key in live:
                out[key] = _project(live[key], value, below)
            elif _empty(value):
                out[key] = value  # asks for nothing: not a difference to show
        for key, value in live.items():
            if key in wanted:
                continue
            below = _below(keep, f"f:{key}")
            if () in below:
                out[key] = value  # removed whole
            elif below:
                out[key] = _project(value, _ABSENT, below)
        return out
    if isinstance(live, list | tuple) and (isinstance(desired, list | tuple) or desired is _ABSENT):
        wanted_items = list(desired) if isinstance(desired, list | tuple) else []
        items = [p[0] for p in keep if p and p[0][:2] in ("k:", "v:")]
        if items:
            return _project_keyed(live, wanted_items, keep, items)
        if len(live) == len(wanted_items):
            return [_project(v, d, ()) for v, d in zip(live, wanted_items, strict=True)]
        return live if desired is not _ABSENT else []
    return live


def _project_keyed(
    live: Sequence[Any], desired: list[Any], keep: Sequence[FieldPath], items: list[str]
) -> list[Any]:
    """A keyed list (or set) projected: live items the manifest has, in live order, and
    those being removed."""
    out = []
    for item in live:
        mine = next((e for e in items if _is_item(item, e)), None)
        twin = next((d for d in desired if mine is not None and _is_item(d, mine)), _ABSENT)
        if twin is _ABSENT and mine is None:
            twin = next((d for d in desired if _same_identity(d, item, items)), _ABSENT)
        if mine is not None and (mine,) in keep:
            out.append(item)
        elif twin is not _ABSENT:
            out.append(_project(item, twin, _below(keep, mine) if mine is not None else ()))
        elif mine is not None:
            out.append(_project(item, _ABSENT, _below(keep, mine)))
    return out


def _same_identity(desired: Any, live: Any, elements: list[str]) -> bool:
    """True when ``desired`` is the item ``live`` is, by the keys the list's ``k:``
    elements name."""
    keyed = [e for e in elements if e.startswith("k:")]
    if not keyed or not isinstance(live, Mapping):
        return bool(desired == live)
    names = json.loads(keyed[0][2:]).keys()
    identity = "k:" + json.dumps({n: live.get(n) for n in names if n in live}, sort_keys=True)
    return _is_item(desired, identity)


def _below(keep: Sequence[FieldPath], element: str) -> list[FieldPath]:
    return [p[1:] for p in keep if p and p[0] == element]


def without_nulls(value: Any) -> Any:
    """``value`` without the map entries set to null (they ask for nothing)."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [without_nulls(v) for v in value]
    return value


def object_differences(
    manifests: Sequence[Mapping[str, Any]], live: Mapping[ObjectKey, dict[str, Any] | None]
) -> list[tuple[Mapping[str, Any], dict[str, Any] | None, list[str]]]:
    """``(manifest, live object, differing paths)`` for each manifest whose live object is
    missing (paths ``["."]``) or differs."""
    found: list[tuple[Mapping[str, Any], dict[str, Any] | None, list[str]]] = []
    for manifest in manifests:
        obj = live.get(object_key(manifest))
        if obj is None:
            found.append((manifest, None, ["."]))
            continue
        paths = differences(manifest, obj)
        if paths:
            found.append((manifest, obj, paths))
    return found


# --------------------------------------------------------------------------- ownership

FieldPath = tuple[str, ...]
"""A field as FieldsV1 names it: ``("f:spec", "f:template", …, 'k:{"name":"web"}')``."""

# The server defaults a list item's missing key fields before it names the item (a port's
# protocol), so a manifest's item without one is the item whose key holds the default.
_KEY_DEFAULTS: Mapping[str, Any] = {"protocol": "TCP"}


@dataclass(frozen=True, slots=True)
class Removal:
    """A field sbkube applied before that the manifest no longer sets, still live.

    ``path`` is shown (``metadata.labels.tier``, ``spec.template.spec.containers[name=web]
    .env[name=DEBUG]``); ``fields`` is its FieldsV1 path when the live object's
    ``managedFields`` told it (empty when it came from the record)."""

    path: str
    fields: FieldPath = ()


def owned_fields(live: Mapping[str, Any], manager: str = FIELD_MANAGER) -> set[FieldPath] | None:
    """The fields ``manager``'s server-side applies own on ``live``; None when the object
    shows no ``managedFields`` at all (not read with them, or a server without them)."""
    entries = (live.get("metadata") or {}).get("managedFields")
    if not isinstance(entries, list) or not entries:
        return None
    owned: set[FieldPath] = set()
    for entry in entries:
        if (
            isinstance(entry, Mapping)
            and entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and isinstance(entry.get("fieldsV1"), Mapping)
        ):
            owned |= _paths_of(entry["fieldsV1"], ())
    return owned


def _paths_of(trie: Mapping[str, Any], prefix: FieldPath) -> set[FieldPath]:
    """The owned paths of a FieldsV1 trie: its leaves, and the nodes marked ``.``."""
    out: set[FieldPath] = set()
    if not trie and prefix:
        out.add(prefix)
    for element, child in trie.items():
        if element == ".":
            out.add(prefix)
        elif isinstance(child, Mapping):
            out |= _paths_of(child, (*prefix, element))
    return out


def removed(
    manifest: Mapping[str, Any],
    live: Mapping[str, Any],
    recorded: Mapping[str, Any] | None = None,
    *,
    manager: str = FIELD_MANAGER,
) -> list[Removal]:
    """The fields sbkube applied to ``live`` before that ``manifest`` no longer sets and
    ``live`` still holds (see the module docstring): from ``live``'s ``managedFields``, or,
    when it shows none, from ``recorded`` (the manifest sbkube last applied, in the store's
    form). Empty: nothing to remove."""
    owned = owned_fields(live, manager)
    if owned is None:
        if recorded is None:
            return []
        found: list[str] = []
        _absent(comparable(recorded), comparable(manifest), live, "", found)
        return [Removal(p) for p in found]
    sent = (manifest, fold_string_data(manifest))
    gone = sorted(
        path
        for path in owned
        if path
        and all(_locate(m, path) is _ABSENT for m in sent)
        and _locate(live, path) is not _ABSENT
    )
    # A removed item or map stands for the fields under it.
    top = [p for p in gone if not any(p[: len(q)] == q for q in gone if len(q) < len(p))]
    return [Removal(field_text(p), p) for p in top]


def without_items_of_others(
    live: Mapping[str, Any], manager: str = FIELD_MANAGER
) -> Mapping[str, Any]:
    """``live`` without the keyed list items and set members that only other managers own,
    when ``manager`` owns fields of it (an object sbkube applies); else ``live`` itself
    (a Helm release's object: sbkube owns nothing there, and compares what Helm set)."""
    owned = owned_fields(live, manager)
    if not owned:
        return live
    theirs: set[FieldPath] = set()
    for entry in (live.get("metadata") or {}).get("managedFields") or ():
        if isinstance(entry, Mapping) and entry.get("manager") != manager:
            trie = entry.get("fieldsV1")
            if isinstance(trie, Mapping):
                theirs |= _paths_of(trie, ())
    items = {
        p[: i + 1] for p in theirs for i, element in enumerate(p) if element[:2] in ("k:", "v:")
    }
    foreign = [item for item in items if not any(mine[: len(item)] == item for mine in owned)]
    return without_fields(live, foreign) if foreign else live


def without_fields(obj: Mapping[str, Any], paths: Sequence[FieldPath]) -> dict[str, Any]:
    """A copy of ``obj`` without the fields at ``paths`` (FieldsV1), copied only along them."""
    out: Any = dict(obj)
    for path in sorted(paths, key=len, reverse=True):
        out = _drop(out, path)
    return dict(out)


def _drop(node: Any, path: FieldPath) -> Any:
    if not path:
        return node
    element, rest = path[0], path[1:]
    if element.startswith("f:") and isinstance(node, Mapping):
        key = element[2:]
        if key not in node:
            return node
        out = dict(node)
        if rest:
            out[key] = _drop(node[key], rest)
        else:
            del out[key]
        return out
    if element[:2] in ("k:", "v:") and isinstance(node, list | tuple):
        items = []
        for item in node:
            if _is_item(item, element):
                if rest:
                    items.append(_drop(item, rest))
            else:
                items.append(item)
        return items
    return node


def _absent(recorded: Any, desired: Any, live: Any, path: str, found: list[str]) -> None:
    """The paths ``recorded`` sets that ``desired`` does not and ``live`` still holds."""
    if isinstance(recorded, Mapping) and isinstance(live, Mapping):
        wanted = desired if isinstance(desired, Mapping) else {}
        for key, value in recorded.items():
            if value is None or key not in live:
                continue
            here = path_join(path, str(key))
            if wanted.get(key) is None:
                if not _empty(value):
                    found.append(here)
            else:
                _absent(value, wanted[key], live[key], here, found)
    elif isinstance(recorded, list | tuple) and isinstance(live, list | tuple):
        if not isinstance(desired, list | tuple) or len(desired) < len(recorded):
            found.append(path or ".")
        else:
            for index, (r, d, v) in enumerate(zip(recorded, desired, live, strict=False)):
                _absent(r, d, v, path_join(path, index), found)


def _is_item(item: Any, element: str) -> bool:
    """True when list item ``item`` is the one a ``k:`` or ``v:`` element names (a missing
    key field counts as its server default)."""
    kind, _, text = element.partition(":")
    wanted = json.loads(text)
    if kind == "v":
        return bool(item == wanted)
    if not isinstance(item, Mapping) or not isinstance(wanted, Mapping):
        return False
    for key, value in wanted.items():
        have = item.get(key, _KEY_DEFAULTS.get(key))
        if have != value:
            return False
    return True


def _locate(obj: Any, path: FieldPath) -> Any:
    """The value at a FieldsV1 path in ``obj`` (a manifest or a live object), or _ABSENT."""
    node = obj
    for element in path:
        kind = element[:2]
        if kind == "f:" and isinstance(node, Mapping):
            node = node.get(element[2:], _ABSENT)
            if node is None:
                return _ABSENT  # null sets nothing
        elif kind in ("k:", "v:") and isinstance(node, list | tuple):
            node = next((x for x in node if _is_item(x, element)), _ABSENT)
        else:
            return _ABSENT
        if node is _ABSENT:
            return _ABSENT
    return node


def field_text(path: FieldPath) -> str:
    """A FieldsV1 path as :func:`differences` names fields: ``metadata.labels.tier``,
    ``spec.template.spec.containers[name=web].ports[containerPort=443,protocol=TCP]``."""
    out = ""
    for element in path:
        kind, _, text = element.partition(":")
        if kind == "f":
            out = path_join(out, text)
        elif kind == "k":
            pairs = ",".join(f"{k}={v}" for k, v in json.loads(text).items())
            out += f"[{pairs}]"
        else:
            out += f"[={json.loads(text)}]"
    return out or "."
