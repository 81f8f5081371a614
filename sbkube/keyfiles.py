"""Key files kept outside the store: where they live and how they are made.

sbkube keeps two keys beside each other, never in the database: the HMAC key of secret
digests (``digest.key``, see :mod:`sbkube.redaction`) and the key that seals secret
values (``seal.key``, see :mod:`sbkube.sealing`). Both live in
``$XDG_CONFIG_HOME/sbkube/`` (else ``~/.config/sbkube/``), are created on first use with
mode 0600 in a 0700 directory, and are cached per path for the life of the process.
"""

from __future__ import annotations

import functools
import os
from contextlib import suppress
from pathlib import Path

from sbkube.errors import ConfigError

_FILE_KEYS: dict[str, bytes] = {}


def key_path(name: str) -> Path:
    """The path of the key file ``name`` (``digest.key``, ``seal.key``) of this user."""
    return _key_path(name, os.environ.get("XDG_CONFIG_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=16)
def _key_path(name: str, xdg_config_home: str | None, _home: str | None) -> Path:
    # Cached by the variables it depends on: every Redactor asks for the key.
    base = xdg_config_home or str(Path.home() / ".config")
    return Path(base) / "sbkube" / name


def new_key_text() -> bytes:
    """A fresh random key as a key file holds it: 32 random bytes, in hex."""
    return os.urandom(32).hex().encode()


def write_new(path: Path, content: bytes) -> bool:
    """Create ``path`` (mode 0600) holding ``content`` unless it exists; True when created.

    Written whole under a private temporary name, then linked into place: the key file
    never exists half-written, and of two first runs at once one key wins (link fails on
    the other, which then reads the winner's)."""
    import tempfile  # only on the first run of a user: kept off `state list`'s imports

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    created = False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.strip() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with suppress(FileExistsError):
            os.link(tmp, path)
            created = True
    finally:
        os.unlink(tmp)
    return created


def read_key(path: Path, env: str) -> bytes:
    """The key held by ``path`` (no cache); ``env`` names the variable that replaces it."""
    key = path.read_bytes().strip()
    if not key:
        raise ConfigError(f"key file {path} is empty: remove it or set {env}")
    return key


def read_or_create_key(path: Path, env: str) -> bytes:
    """The key in ``path``, created (random, mode 0600) when the file does not exist."""
    cached = _FILE_KEYS.get(str(path))
    if cached is not None:
        return cached
    if not path.exists():
        write_new(path, new_key_text())
    key = read_key(path, env)
    _FILE_KEYS[str(path)] = key
    return key


def forget(path: Path | None = None) -> None:
    """Drop the cached key of ``path`` (all of them without one): the file was replaced."""
    if path is None:
        _FILE_KEYS.clear()
    else:
        _FILE_KEYS.pop(str(path), None)
