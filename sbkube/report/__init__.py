"""``sbkube state report --html FILE``: the deployment history as one self-contained page.

:func:`~sbkube.report.gather.gather` reads what the page shows from the store (through
``sbkube.state``) and diffs each deployment against the previous one of its target;
:func:`~sbkube.report.render.render` writes the HTML (its CSS, script and page skeleton
are the files next to this one); :func:`write_report` does both.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sbkube.model import utcnow
from sbkube.report.gather import Scope, gather
from sbkube.report.render import render
from sbkube.state import DeploymentRepository


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector paused (as it was before, after).

    A report holds every record of the history and builds hundreds of thousands of
    small objects (masked copies, YAML lines, diff dicts): each collection walks all
    that is alive, about a third of the time of a large report. What a report builds is
    trees, freed by reference counting; any cycle left is collected once it is resumed.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_report(repo: DeploymentRepository, path: Path, scope: Scope) -> int:
    """Write the report of ``scope`` to ``path``; returns the number of deployments in it."""
    with _no_cycle_collection():
        history = gather(repo, scope)
        html = render(history, generated_at=utcnow())
    path.write_text(html, encoding="utf-8")
    return len(history.entries)


__all__ = ["Scope", "write_report"]
