"""sbkube's command line: ``sbkube deploy|template|rollback|state …``.

``root`` holds the top-level group and ``main`` (the console script); one module per
command (``deploy``, ``rollback``) and a package for the ``state`` group. ``options`` holds
the options several commands share, ``output`` every rendering (tables, JSON/YAML, diffs,
progress). Nothing here is imported until used.
"""

from __future__ import annotations

from sbkube._lazy import lazy_exports

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from sbkube.cli.entry import main
    from sbkube.cli.root import cli

_EXPORTS: dict[str, str] = {"cli": "root", "main": "entry"}

__all__ = ["cli", "main"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
