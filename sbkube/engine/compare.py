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
* A manifest (a map with ``apiVersion`` and ``kind``) is first read as the server stores
  it: a Secret's ``stringData`` folded into ``data``, server-written fields and
  ``metadata.namespace`` left out (the object's key matched already; a kind the offline
  list does not know to be cluster-scoped gets a namespace the server drops).

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
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any
from urllib.parse import unquote, unquote_plus

from sbkube.manifests import ObjectKey, fold_string_data, object_key, strip_volatile
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


def project(live: Any, desired: Any) -> Any:
    """``live`` cut down to the fields ``desired`` sets, so that a unified diff of the two
    shows the differences :func:`differences` finds and none of the server's own fields."""
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        out = {}
        for key, value in desired.items():
            if key in live:
                out[key] = project(live[key], value)
            elif _empty(value):
                out[key] = value  # asks for nothing: not a difference to show
        return out
    if (
        isinstance(desired, list | tuple)
        and isinstance(live, list | tuple)
        and len(live) == len(desired)
    ):
        return [project(v, d) for v, d in zip(live, desired, strict=True)]
    return live


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
