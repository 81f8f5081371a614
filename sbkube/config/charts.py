"""The digest of a local chart's files: what tells "same chart" apart from "same version".

Helm's release keeps a chart's name and version, not its files, and a local chart is often
edited without a version bump. ``deploy`` records this digest with every Helm revision it
makes and upgrades a release only when the digest (or anything else) changed. A chart's
files may hold a password (a default in ``values.yaml``, a literal in a template): the
digest is keyed (:func:`sbkube.redaction.keyed_checksum`), and :func:`chart_matches` also
reads the plain ``sha256:`` of older records.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sbkube.redaction import checksum_matches, rekey_checksum

_CHUNK = 1 << 20


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


def chart_digest(path: Path) -> str | None:
    """The keyed checksum (``hmac-checksum:…``) of :func:`chart_sha256`; None when the
    chart cannot be read."""
    plain = chart_sha256(path)
    return rekey_checksum(plain) if plain is not None else None


def chart_matches(path: Path, recorded: str | None) -> bool:
    """True when the chart at ``path`` has the files whose digest was ``recorded``."""
    plain = chart_sha256(path)
    return plain is not None and checksum_matches(recorded, plain)


def chart_sha256(path: Path) -> str | None:
    """The plain sha256 (hex) over a chart directory (every file's path relative to it and its
    bytes, in path order) or a packaged ``.tgz`` (its bytes); None when it cannot be read.

    Every file counts, ``.helmignore``'d ones too: one file too many only costs an upgrade
    that was not needed, one too few would skip one that was. Symlinks are followed (helm
    follows them), each directory once, so a loop ends.
    """
    try:
        if path.is_file():
            return hashlib.sha256(_file_digest(path)).hexdigest()
        if not path.is_dir():
            return None
        total = hashlib.sha256()
        files: list[tuple[str, Path]] = []
        seen: set[str] = set()
        for root, dirs, names in os.walk(path, followlinks=True):
            real = os.path.realpath(root)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
            dirs.sort()
            for name in names:
                full = Path(root, name)
                if full.is_file():
                    files.append((full.relative_to(path).as_posix(), full))
        for relative, full in sorted(files):
            total.update(relative.encode() + b"\0" + _file_digest(full))
        return total.hexdigest()
    except OSError:
        return None
