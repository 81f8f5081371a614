"""Helpers the CLI test modules import (conftest modules are not importable by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LiveCluster:
    """Reads the test's memory-cluster file the way a second process would: each read
    opens the file's cluster and closes it again (a file is used by one process at a time),
    asking the server and helm, never a copy of sbkube's record."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self, fn: Any) -> Any:
        from sbkube.cluster.memory import MemoryCluster

        with MemoryCluster(path=self.path) as cluster:
            return fn(cluster)

    def objects(self) -> list[dict[str, Any]]:
        return self._read(lambda c: c.objects())  # type: ignore[no-any-return]

    def release(self, name: str, namespace: str) -> Any:
        return self._read(lambda c: c.release(name, namespace))

    def get(self, key: tuple[str, str, str, str]) -> dict[str, Any] | None:
        return self._read(lambda c: c.get(key))  # type: ignore[no-any-return]
