"""The last check before anything reaches a cluster: no digest, no redaction marker.

The store keeps secrets as keyed digests (``hmac-sha256:…``, legacy ``sha256:…``) and
output masks them (``***``, ``(secret)``). Sent to a cluster, any of those is a corrupted
object: a Secret holding a digest as its password, a Deployment whose ``topologyKey`` is a
digest. A rollback restores the sealed values (:mod:`sbkube.sealing`) before it applies
anything; this guard, called by the cluster port right before every server-side apply and
every ``helm upgrade``, makes a miss impossible to send: it raises instead.

What counts, so that ordinary manifests pass:

* a keyed digest anywhere, whole or inside a string (a URL whose password was scrubbed):
  nothing but sbkube's store makes ``hmac-sha256:`` followed by 64 hex digits;
* a legacy ``sha256:<64 hex>`` or a marker (``***``, ``(secret)``, ``(secret, changed)``)
  as the whole value where the store puts digests: a Secret's ``data``/``stringData``, a
  scalar under a secret-looking key. An image digest (``image: x@sha256:…``,
  ``digest: sha256:…``) stands elsewhere and passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sbkube.errors import RefusedError
from sbkube.redaction import MASK, is_digest, is_secret_key, is_secret_manifest

_KEYED_DIGEST = re.compile(r"hmac-sha256:[0-9a-f]{64}")
MARKERS = frozenset({MASK, "(secret)", "(secret, changed)"})


class UnsendableValue(RefusedError):
    """A digest or a redaction marker on its way to a cluster. Exit code 2."""


def unsendable(value: Any) -> list[str]:
    """Paths (``spec.template…``) of the digests and markers ``value`` holds; [] when it
    may be sent."""
    found: list[str] = []
    _walk(value, "", False, found)
    return found


def refuse_unsendable(value: Any, what: str) -> None:
    """Raise :class:`UnsendableValue` naming ``what`` when ``value`` holds a digest or a
    redaction marker (see the module docstring)."""
    paths = unsendable(value)
    if paths:
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        raise UnsendableValue(
            f"refusing to send {what}: it holds a recorded secret digest or a redaction "
            f"marker instead of a value at {shown}"
        )


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _walk(value: Any, path: str, secret: bool, found: list[str]) -> None:
    if isinstance(value, str):
        keyed = "hmac-sha256:" in value and _KEYED_DIGEST.search(value) is not None
        if keyed or (secret and (is_digest(value) or value in MARKERS)):
            found.append(path or "(value)")
        return
    if isinstance(value, Mapping):
        payload = ("data", "stringData") if is_secret_manifest(value) else ()
        for k, v in value.items():
            key = str(k)
            _walk(v, _join(path, key), secret or k in payload or is_secret_key(key), found)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", secret, found)
