"""What reaches the database: manifests without volatile fields, secrets as digests.

Secrets never reach the store in plain text. ``Secret`` objects keep their keys but
every ``data``/``stringData`` value becomes ``sha256:<hex>``; Helm values and config
snapshots have every scalar under a secret-looking key (``password``, ``token``,
``apiKey``, ``existingSecret``…) replaced the same way. A digest still changes when
the value changes, so diffs can say "changed" without showing either value. The
``last-applied-configuration`` annotation is dropped because it repeats the whole
object, secrets included.

Checksums are taken over the stored (normalized, redacted) form, with the fields a
server changes on its own left out, so "unchanged" means unchanged by the user.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sbkube.manifests import VOLATILE_METADATA, strip_volatile  # noqa: F401  (re-exported)

DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "apikey",
    "credential",
    "credentials",
    "privatekey",
    "pwd",
)
DIGEST_PREFIX = "sha256:"

_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    """``sha256:<hex>`` of a value (strings hashed as they are, anything else as JSON)."""
    data = value if isinstance(value, str) else canonical_json(value)
    return DIGEST_PREFIX + hashlib.sha256(data.encode()).hexdigest()


def is_digest(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(DIGEST_PREFIX) and len(value) == 71


def _words(key: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(key)]


def is_secret_key(key: str, patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> bool:
    """True when a key names a secret: one of its words (or all of them joined) is a pattern.

    Word matching rather than substring matching keeps ``keycloak`` or ``monkey`` in the
    clear while ``redisPassword``, ``api_key``, ``apiKey`` and ``tls.key`` are hidden.
    """
    words = _words(str(key))
    if not words:
        return False
    pats = {p.lower().replace("_", "").replace("-", "") for p in patterns}
    # Long patterns also end compound words written in one case: rootpassword, apitoken,
    # clientsecret. Short ones (key) must match a whole word, or "monkey" would be hidden.
    suffixes = tuple(p for p in pats if len(p) >= 5)
    joined = "".join(words)
    return (
        joined in pats
        or joined.endswith(suffixes)
        or any(w in pats or (w.endswith("s") and w[:-1] in pats) for w in words)
    )


def _redact_leaves(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _redact_leaves(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_leaves(v) for v in value]
    if value is None or isinstance(value, bool) or is_digest(value):
        return value
    return digest(value)


def redact_values(value: Any, patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> Any:
    """Copy of JSON-like ``value`` with every scalar under a secret-looking key digested."""
    pats = tuple(patterns)
    if isinstance(value, Mapping):
        return {
            k: _redact_leaves(v) if is_secret_key(str(k), pats) else redact_values(v, pats)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_values(v, pats) for v in value]
    return value


def redact_args(args: Iterable[Any], patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> list[Any]:
    """Command-line arguments with ``key=value`` secrets digested (``--set auth.password=x``)."""
    pats = tuple(patterns)
    out: list[Any] = []
    for arg in args:
        if isinstance(arg, str) and "=" in arg:
            key, _, value = arg.partition("=")
            if is_secret_key(key.lstrip("-"), pats) and not is_digest(value):
                arg = f"{key}={digest(value)}"
        out.append(redact_values(arg, pats) if not isinstance(arg, str) else arg)
    return out


def is_secret_manifest(manifest: Mapping[str, Any]) -> bool:
    return manifest.get("kind") == "Secret" and str(manifest.get("apiVersion", "")) == "v1"


def redact_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Normalized copy of a manifest fit for the store (Secret payloads digested)."""
    out = strip_volatile(manifest)
    if is_secret_manifest(out):
        for field in ("data", "stringData"):
            payload = out.get(field)
            if isinstance(payload, Mapping):
                out[field] = {k: v if is_digest(v) else digest(v) for k, v in payload.items()}
    return out


def secret_leaves(value: Any, patterns: Iterable[str] = DEFAULT_SECRET_KEYS) -> set[str]:
    """The string values under secret-looking keys (4+ characters), to scrub elsewhere."""
    pats = tuple(patterns)
    found: set[str] = set()

    def leaves(v: Any) -> None:
        if isinstance(v, Mapping):
            for item in v.values():
                leaves(item)
        elif isinstance(v, list | tuple):
            for item in v:
                leaves(item)
        elif isinstance(v, str | int | float) and not isinstance(v, bool):
            text = str(v)
            if len(text) >= 4 and not is_digest(text):
                found.add(text)

    def walk(v: Any) -> None:
        if isinstance(v, Mapping):
            for k, item in v.items():
                if is_secret_key(str(k), pats):
                    leaves(item)
                else:
                    walk(item)
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item)

    walk(value)
    return found


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """Copy of ``value`` with every occurrence of a known secret string digested.

    A chart may render a password anywhere — an env var, a connection URL in a ConfigMap —
    not only into a Secret; the values it came from are known, so their text is replaced
    wherever it shows up in the rendered manifests.
    """
    found = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not found:
        return value

    def fix(v: Any) -> Any:
        if isinstance(v, str):
            if is_digest(v):
                return v
            for secret in found:
                if secret in v:
                    v = digest(secret) if v == secret else v.replace(secret, digest(secret))
            return v
        if isinstance(v, Mapping):
            return {k: fix(item) for k, item in v.items()}
        if isinstance(v, list | tuple):
            return [fix(item) for item in v]
        return v

    return fix(value)


def store_form(manifest: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """What the store keeps of a manifest: :func:`redact_manifest`, then :func:`scrub`."""
    out: dict[str, Any] = scrub(redact_manifest(manifest), secrets)
    return out


def manifest_checksum(stored_manifest: Mapping[str, Any]) -> str:
    """Checksum of a manifest already passed through :func:`redact_manifest`."""
    return digest(canonical_json(stored_manifest))
