"""One way for a package ``__init__`` to export names that are imported on first use.

``import sbkube.state`` (or ``sbkube.cluster``...) must cost next to nothing: ``sbkube
state list`` starts on every "what happened?", and should not pay for the ORM, helm
parsing or the engine it never uses. A package lists ``{name: submodule}`` once and gets
a module ``__getattr__`` (PEP 562) that imports the submodule when the name is first
read, and a ``__dir__`` that shows the names before they are imported::

    _EXPORTS = {"DeploymentDatabase": "database", ...}
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

(plus the same imports under ``if TYPE_CHECKING:`` for type checkers and editors).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, which exports each name of
    ``exports`` from the submodule it maps to (a name relative to ``package``)."""
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *table})

    return __getattr__, __dir__
