"""Sealed values: the secrets the store hides, kept encrypted so a rollback can restore them.

The store shows a secret only as its keyed digest (:mod:`sbkube.redaction`). A rollback
needs the value itself, so every stored document that lost something to redaction (a
recorded manifest, a Helm release's values) also keeps a *seal*: the plain leaves that
redaction replaced, by their path in the document, encrypted with AES-256-GCM
(``cryptography``'s authenticated encryption: a changed byte fails to open, it never
yields a wrong value). :func:`sealed_leaves` finds those leaves, :func:`restore_leaves`
puts them back; between the two the exact document comes back, types included.

The key is never in the store. It is ``$SBKUBE_SEAL_KEY`` (any high-entropy text, e.g.
``openssl rand -hex 32``), else the user's ``seal.key`` beside ``digest.key``
(:mod:`sbkube.keyfiles`), created on first use with mode 0600. The AES key and a short
key id are derived from it with HKDF-SHA256; a seal names the id of the key that made it,
so a store holding seals of another key says so instead of failing to decrypt, and a
key rotation (``sbkube state rekey``) interrupted half way knows what it has done.

A rotation (:func:`begin_rotation`) is resumable: the new key is written first, beside the
old one (``seal.key.new``), and reused by a run that resumes; the store re-seals every
value in one transaction (a seal already under the new key is left as it is); only then
does the new key replace the old file (:meth:`Rotation.finish`). Killed at any point, the
store's seals open with the old key or with the new one, and the next run completes it.
With ``$SBKUBE_SEAL_KEY`` the new key is ``$SBKUBE_NEW_SEAL_KEY``, which the user then
puts in place of the old.

A seal reads ``sbkseal1:<key id>:<base64url(nonce || ciphertext)>``. Who steals the rows
without the key learns nothing: not the values, not whether two seals hold the same value
(every seal has its own random nonce).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbkube.errors import RefusedError, UsageError
from sbkube.keyfiles import forget, key_path, new_key_text, read_key, read_or_create_key, write_new

SEAL_KEY_ENV = "SBKUBE_SEAL_KEY"
NEW_SEAL_KEY_ENV = "SBKUBE_NEW_SEAL_KEY"
SEAL_KEY_FILE = "seal.key"
PREFIX = "sbkseal1:"
_AAD = b"sbkube sealed leaves v1"
_NONCE = 12


class SealError(RefusedError):
    """A seal that cannot be opened: no key, another key, or a damaged seal. Exit code 2."""


@dataclass(frozen=True, slots=True)
class SealKey:
    """An AES-256-GCM key and its id, derived from a key's text."""

    key_id: str
    secret: bytes

    @classmethod
    def from_text(cls, text: bytes) -> SealKey:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(text)

        key_id = derive(b"sbkube seal key id v1")[:8].hex()
        return cls(key_id, derive(b"sbkube seal aes-256-gcm v1"))

    def __repr__(self) -> str:  # never print the key itself
        return f"SealKey({self.key_id})"


def seal_key_file() -> Path:
    return key_path(SEAL_KEY_FILE)


def seal_key(*, create: bool = True) -> SealKey | None:
    """The key that seals: ``$SBKUBE_SEAL_KEY``, else the user's key file (created on first
    use; with ``create=False`` a missing file gives None: reading needs no new key)."""
    env = os.environ.get(SEAL_KEY_ENV)
    if env:
        return SealKey.from_text(env.encode())
    path = seal_key_file()
    if not create and not path.exists():
        return None
    return SealKey.from_text(read_or_create_key(path, SEAL_KEY_ENV))


def key_from_file(path: Path) -> SealKey:
    return SealKey.from_text(read_key(path, SEAL_KEY_ENV))


# --------------------------------------------------------------------------- seal / unseal


def seal(value: Any, key: SealKey) -> str:
    """``value`` (JSON-like) encrypted under ``key``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plain = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key.secret).encrypt(nonce, plain, _AAD)
    return f"{PREFIX}{key.key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def key_id_of(blob: str) -> str:
    """The id of the key that made a seal (a damaged seal raises :class:`SealError`)."""
    if not isinstance(blob, str) or not blob.startswith(PREFIX):
        raise SealError("not a sealed value")
    key_id, sep, _body = blob[len(PREFIX) :].partition(":")
    if not sep or not key_id:
        raise SealError("not a sealed value")
    return key_id


def unseal(blob: str, keys: SealKey | Iterable[SealKey | None]) -> Any:
    """The value a seal holds, opened with whichever of ``keys`` made it."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key_id = key_id_of(blob)
    candidates = [keys] if isinstance(keys, SealKey) else [k for k in keys if k is not None]
    key = next((k for k in candidates if k.key_id == key_id), None)
    if key is None:
        raise SealError(f"sealed under key {key_id}, which is not at hand")
    try:
        raw = base64.urlsafe_b64decode(blob.rsplit(":", 1)[1].encode())
        plain = AESGCM(key.secret).decrypt(raw[:_NONCE], raw[_NONCE:], _AAD)
    except (InvalidTag, ValueError, binascii.Error) as err:
        raise SealError(f"a sealed value under key {key_id} is damaged") from err
    return json.loads(plain)


def can_unseal(blob: str, keys: Iterable[SealKey | None]) -> bool:
    try:
        unseal(blob, keys)
    except SealError:
        return False
    return True


def reseal(blob: str, old: Iterable[SealKey | None], new: SealKey) -> str:
    """``blob`` sealed under ``new`` (unchanged when it already is)."""
    if key_id_of(blob) == new.key_id:
        return blob
    return seal(unseal(blob, old), new)


# --------------------------------------------------------------------------- leaves

_LeafPath = list[str | int]


def sealed_leaves(plain: Any, stored: Any) -> list[list[Any]]:
    """``[[path, plain value], …]`` for every place where ``stored`` (the store's form of
    ``plain``: same shape, some leaves replaced, some mapping keys dropped) differs from
    ``plain``; ``path`` is the list of keys and indexes from the root."""
    out: list[list[Any]] = []
    _differences(plain, stored, [], out)
    return out


def _differences(plain: Any, stored: Any, path: _LeafPath, out: list[list[Any]]) -> None:
    if isinstance(stored, Mapping) and isinstance(plain, Mapping):
        for k, v in stored.items():
            if k in plain:
                _differences(plain[k], v, [*path, k], out)
        return
    if (
        isinstance(stored, list | tuple)
        and isinstance(plain, list | tuple)
        and len(stored) == len(plain)
    ):
        for i, (p, s) in enumerate(zip(plain, stored, strict=True)):
            _differences(p, s, [*path, i], out)
        return
    if type(plain) is not type(stored) or plain != stored:
        out.append([path, _plain_json(plain)])


def _plain_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(v) for v in value]
    return value


def restore_leaves(stored: Any, leaves: Sequence[Sequence[Any]]) -> Any:
    """A plain copy of ``stored`` with the leaves of :func:`sealed_leaves` put back."""
    out = _plain_json(stored)
    for path, value in leaves:
        if not path:
            out = value
            continue
        parent = out
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value
    return out


def restore(
    blob: str, documents: Mapping[str, Any], keys: SealKey | Iterable[SealKey | None]
) -> dict[str, Any]:
    """Plain copies of a row's stored ``documents`` (``{column: stored form}``) with the
    leaves sealed in ``blob`` put back; a missing document stays None."""
    leaves = unseal(blob, keys)
    if not isinstance(leaves, Mapping):
        raise SealError("a sealed value does not hold a row's leaves")
    return {
        column: restore_leaves(doc, leaves.get(column, ())) if doc is not None else None
        for column, doc in documents.items()
    }


# --------------------------------------------------------------------------- rotation


@dataclass(frozen=True, slots=True)
class Rotation:
    """A key rotation under way: the keys that open today's seals, the new key, and the
    key file that takes the new key's place when the store is done (None: environment)."""

    old: tuple[SealKey, ...]
    new: SealKey
    pending: Path | None

    def finish(self) -> None:
        """The new key becomes the key: its file replaces the old one (atomically)."""
        if self.pending is not None:
            current = seal_key_file()
            os.replace(self.pending, current)
            forget(current)


def pending_key_file() -> Path:
    return seal_key_file().with_name(SEAL_KEY_FILE + ".new")


def begin_rotation() -> Rotation:
    """Start (or resume) replacing the seal key; see the module docstring."""
    env = os.environ.get(SEAL_KEY_ENV)
    if env:
        new_env = os.environ.get(NEW_SEAL_KEY_ENV)
        if not new_env:
            raise UsageError(
                f"the seal key comes from {SEAL_KEY_ENV}: give the new one in "
                f"{NEW_SEAL_KEY_ENV} (e.g. `openssl rand -hex 32`)"
            )
        old, new = SealKey.from_text(env.encode()), SealKey.from_text(new_env.encode())
        if old == new:
            raise UsageError(f"{NEW_SEAL_KEY_ENV} holds the key {SEAL_KEY_ENV} holds already")
        return Rotation((old,), new, None)
    current, pending = seal_key_file(), pending_key_file()
    olds = (key_from_file(current),) if current.exists() else ()
    if not pending.exists():
        write_new(pending, new_key_text())  # a resumed rotation keeps the key it made
    return Rotation(olds, key_from_file(pending), pending)
