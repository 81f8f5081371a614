"""sbkube's command line: ``sbkube deploy|template|rollback|state …``.

``root`` holds the top-level group and ``main`` (the console script); one module per
command (``deploy``, ``rollback``) and a package for the ``state`` group. ``options`` holds
the options several commands share, ``output`` every rendering (tables, JSON/YAML, diffs,
progress). Nothing here is imported until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbkube._lazy import lazy_exports

if TYPE_CHECKING:
    from sbkube.cli.root import cli, main

_EXPORTS: dict[str, str] = {"cli": "root", "main": "root"}

__all__ = ["cli", "main"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
