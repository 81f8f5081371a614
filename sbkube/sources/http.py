"""HTTP downloads: a file fetched from a URL and written where other apps read it.

Shape: :func:`download` GETs ``url`` (with ``headers``; redirects followed; within the
calling thread's bound on a call, ``sbkube.cluster.process.call_timeout``), checks the
answer is a 2xx of at most :data:`MAX_DOWNLOAD_BYTES`, writes it to ``dest`` under a
temporary name then renames it (a reader never sees half a file) and returns a
:class:`Download`: the file and its ``sha256:<hex>``. ``FetchError`` (field ``url``) names
the status or the reason, never a header value.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbkube.cluster.process import call_timeout
from sbkube.messages import one_line
from sbkube.redaction import mask_url
from sbkube.sources.git import FetchError

__all__ = ["MAX_DOWNLOAD_BYTES", "Download", "download", "file_digest"]

#: The largest download: a manifest or a chart this big is a mistake (10 MiB, as the
#: largest config file sbkube reads).
MAX_DOWNLOAD_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Download:
    """One file downloaded: where it is, from where, and its digest."""

    url: str
    dest: Path
    shown_dest: str
    sha256: str
    size: int

    def record(self) -> dict[str, Any]:
        return {
            "kind": "http",
            "url": mask_url(self.url),
            "dest": self.shown_dest,
            "sha256": self.sha256,
            "bytes": self.size,
        }


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def download(url: str, dest: Path, shown_dest: str, headers: Mapping[str, str]) -> Download:
    """GET ``url`` into ``dest`` (see the module docstring)."""
    # urllib.request pulls in http.client, ssl and email: only a download pays for them
    # (``template`` and cached deploys import this module without downloading).
    import urllib.error
    import urllib.request

    shown = mask_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": "sbkube", **headers})
    seconds, _by_app = call_timeout()
    try:
        with urllib.request.urlopen(request, timeout=seconds) as answer:
            data = answer.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as err:
        raise FetchError(f"GET {shown}: {err.code} {err.reason}", field="url") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise FetchError(f"GET {shown}: {one_line(str(reason))}", field="url") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise FetchError(
            f"GET {shown}: more than {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MiB; refused",
            field="url",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.part"
    try:
        partial.write_bytes(data)
        os.replace(partial, dest)
    except OSError as err:
        raise FetchError(
            f"{shown_dest}: cannot write: {err.strerror or err}", field="dest"
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Download(url, dest, shown_dest, digest, len(data))
