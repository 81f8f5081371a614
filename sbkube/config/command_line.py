"""Values given on the command line: ``--set [APP:]key=value`` and ``-f/--values [APP:]FILE``.

As with helm, command-line values come last: on top of config.yaml's ``values:`` files and
``set:``; files first, in the order given, then ``--set``. Without ``APP:`` they apply to
every Helm app; an ``APP:`` that names no app is refused (``url\\:x=1`` is the key
``url:x``). ``--set`` follows helm's syntax where it matters: dotted keys nest
(``a\\.b`` is a literal dot), commas separate pairs (``\\,`` is a literal comma), ``{a,b}``
is a list, and ``true``/``false``/``null``/integers are typed (anything else is a string).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbkube.config.merge import deep_merge, expand_dotted
from sbkube.config.reading import display_path, parse_yaml, read_file
from sbkube.errors import ConfigError

ALL_APPS = "*"
_INT = re.compile(r"^[-+]?\d+$")


@dataclass(frozen=True)
class CommandLineValues:
    """The raw ``-f`` and ``--set`` arguments, as typed (parsed by :func:`resolve`)."""

    files: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.files or self.sets)


@dataclass(frozen=True)
class ResolvedValues:
    """Command-line values per target (``*`` = every Helm app), and the files read."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[Path, bytes] = field(default_factory=dict)

    def for_app(self, app: str) -> list[dict[str, Any]]:
        """The layers that apply to ``app``, lowest precedence first."""
        return [v for target, v in self.values.items() if target in (ALL_APPS, app)]


# What an APP: prefix looks like (an app name is a DNS-1123 label); a key or a path with a
# ":" in it (`prometheus\.io/port:x`, `./a:b.yaml`) does not.
_APP_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def _split_app(
    text: str, apps: Collection[str], helm_apps: Collection[str], opt: str
) -> tuple[str, str]:
    head, sep, rest = text.partition(":")
    if sep and head in apps:
        if head not in helm_apps:
            raise ConfigError(f"{opt} {text}: app {head!r} is not a helm app")
        return head, rest
    if sep and _APP_PREFIX.match(head) and not (opt == "--values" and Path(text).exists()):
        # `--set typo:key=v` would otherwise set the key `typo:key` in every Helm app.
        known = ", ".join(sorted(helm_apps)) or "none"
        hint = f"; a key holding ':' is written {head}\\:..." if opt == "--set" else ""
        raise ConfigError(f"{opt} {_short(text)}: no app {head!r} (helm apps: {known}{hint})")
    return ALL_APPS, text


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside ``{...}`` and not escaped by a backslash (kept)."""
    parts: list[str] = []
    current = ""
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == "{":
            depth += 1
            current += char
        elif char == "}":
            depth = max(0, depth - 1)
            current += char
        elif char == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\([,{}=\\])", r"\1", text)


def typed_value(text: str) -> Any:
    """A ``--set`` value as helm types it."""
    if text.startswith("{") and text.endswith("}"):
        inner = text[1:-1]
        return [typed_value(p) for p in _split_unescaped(inner, ",")] if inner else []
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if _INT.match(text):
        return int(text)
    return _unescape(text)


def parse_set(text: str, opt: str = "--set") -> dict[str, Any]:
    """``a.b=1,c=x`` -> ``{"a.b": 1, "c": "x"}`` (keys still dotted)."""
    out: dict[str, Any] = {}
    for pair in _split_unescaped(text, ","):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{opt} {text}: expected NAME=VALUE, got {pair!r}")
        out[key] = typed_value(value)
    return out


def resolve(
    given: CommandLineValues, apps: Collection[str], helm_apps: Collection[str]
) -> ResolvedValues:
    """Read the ``-f`` files and parse the ``--set`` pairs; ConfigError (exit 2) on a bad one."""
    layers: dict[str, dict[str, Any]] = {}
    read: dict[Path, bytes] = {}
    for arg in given.files:
        target, name = _split_app(arg, apps, helm_apps, "--values")
        path = Path(name).expanduser().resolve()
        shown = display_path(path)
        data = read_file(path, shown, "values file")
        document = parse_yaml(data, shown)
        if document is None:
            document = {}
        if not isinstance(document, dict):
            raise ConfigError(f"{shown}: values file must be a mapping")
        read[path] = data
        layers[target] = deep_merge(layers.get(target, {}), document)
    for arg in given.sets:
        target, pairs = _split_app(arg, apps, helm_apps, "--set")
        expanded = expand_dotted(parse_set(pairs), "--set")
        layers[target] = deep_merge(layers.get(target, {}), expanded)
    # Every-app values first: an APP: value is the more specific one, so it wins.
    ordered = {k: layers[k] for k in sorted(layers, key=lambda t: t != ALL_APPS)}
    return ResolvedValues(ordered, read)
