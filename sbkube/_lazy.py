"""Lazy exports for package ``__init__`` files: one way for every package.

A package lists ``{name: "submodule"}`` and gets a module ``__getattr__`` that imports the
submodule on first access, so ``import sbkube.cluster`` (or ``sbkube.engine``, ...) costs
nothing for commands that never use it, and ``__dir__`` that shows the lazy names.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, table: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose names live in ``table``'s submodules.

    Values are submodule names relative to the package. A name is cached in the package's
    namespace after its first import, so later lookups skip ``__getattr__``.
    """
    names = dict(table)

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        setattr(import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(import_module(package)), *names})

    return __getattr__, __dir__
