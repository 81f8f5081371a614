"""Helm-style value merging: deep merge (``helm -f a -f b``) and dotted keys (``--set a.b``).

Shared by config.yaml's ``values:``/``set:`` (:mod:`~sbkube.config.values`) and the
command line's ``-f``/``--set`` (:mod:`~sbkube.config.command_line`).
"""

from __future__ import annotations

import copy

from sbkube.config.reading import MAX_DEPTH
from sbkube.errors import ConfigError

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["deep_merge", "expand_dotted"]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` on top of ``base``, mappings merged recursively.

    Lists and scalars are replaced, not merged, and an explicit null is kept (Helm then
    drops the key from the chart's defaults), matching ``helm -f a.yaml -f b.yaml``.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _split_dotted(key: str) -> list[str]:
    # Like helm --set: "a.b" nests, "a\.b" is a literal dot.
    parts: list[str] = []
    current = ""
    escaped = False
    for char in key:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
    if escaped:
        current += "\\"
    parts.append(current)
    return parts


def expand_dotted(flat: dict[str, Any], where: str = "set") -> dict[str, Any]:
    """Turn ``{"auth.password": x}`` into ``{"auth": {"password": x}}``, merging siblings.

    ``where`` prefixes error messages (e.g. ``config.yaml: apps.redis.set``).
    """
    result: dict[str, Any] = {}
    for key, value in flat.items():
        parts = _split_dotted(str(key))
        if len(parts) > MAX_DEPTH:
            shown = str(key) if len(str(key)) <= 40 else str(key)[:37] + "..."
            raise ConfigError(
                f"{where}: key {shown!r} is nested {len(parts)} levels deep (at most {MAX_DEPTH})"
            )
        if any(part == "" for part in parts):
            raise ConfigError(f"{where}.{key}: empty path segment in key")
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise ConfigError(
                    f"{where}.{key}: conflicts with {prefix!r}, which is not a mapping"
                )
            node = child
        leaf = parts[-1]
        if isinstance(value, dict):
            value = expand_dotted(value, f"{where}.{key}")
        existing = node.get(leaf)
        if isinstance(existing, dict) and isinstance(value, dict):
            node[leaf] = deep_merge(existing, value)
        elif leaf in node and existing != value:
            raise ConfigError(f"{where}.{key}: set more than once with different values")
        else:
            node[leaf] = copy.deepcopy(value)
    return result
