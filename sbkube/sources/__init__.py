"""Where app inputs come from: git checkouts (:mod:`~sbkube.sources.git`) and http
downloads (:mod:`~sbkube.sources.http`).

Shape: each source returns the files it produced and what the record keeps of them
(``record()``: a JSON-able mapping stored in the app's metadata as ``source``):

* :class:`~sbkube.sources.git.GitCache` ``.fetch(url, kind, name)`` -> ``Checkout``: a
  directory holding the repository's tree at one commit (immutable, shared by every app
  dir on this machine), and that commit's sha;
* :func:`~sbkube.sources.http.download` ``(url, dest, headers)`` -> ``Download``: the file
  written at ``dest`` (atomically) and its sha256.

Fetching never records anything and never reads a config: the engine
(``sbkube.engine.fetch``) decides what to fetch, names the app and field in errors, and
records. Every git call has a deadline (``sbkube.cluster.process``: the calling thread's
bound) and is stopped with the run.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_home"]

CACHE_ENV = "SBKUBE_CACHE_DIR"


def cache_home() -> Path:
    """sbkube's cache: ``$SBKUBE_CACHE_DIR``, else ``$XDG_CACHE_HOME/sbkube``
    (``~/.cache/sbkube``)."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sbkube"
