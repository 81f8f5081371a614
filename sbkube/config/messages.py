"""One-line messages for what is wrong in a config: pydantic errors, closest-name hints.

Every message starts with the file as shown (``display_path``) and the dotted field
(``apps.redis.chart``), so the CLI prints it as is.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from sbkube.config.schema import APP_MODELS, APP_TYPES, SbkubeConfig
from sbkube.errors import ConfigError


def suggest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) turned into one space."""
    return " ".join(text.split())


def key_text(key: object) -> str:
    """A mapping key as an error message shows it: as written when printable, else quoted
    (``'web\\n'``), so that a message stays one line and the odd character shows."""
    text = str(key)
    return text if text.isprintable() and text.strip() == text else repr(text)


def dotted(loc: Sequence[str | int]) -> str:
    """A pydantic/YAML location as users write it: ``apps.redis.values[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{key_text(part)}" if out else key_text(part)
    return out


def describe(value: Any) -> str:
    """What a wrong value is, in words (``a list``, ``int 3``), for "expected X, got Y"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def validation_error(err: ValidationError, shown: str) -> ConfigError:
    """The first (most useful) pydantic error as one ConfigError line."""
    errors = err.errors()
    # A misspelt key also makes the real key "missing"; the misspelling is the useful news.
    errors.sort(key=lambda e: 0 if e["type"] == "extra_forbidden" else 1)
    first = errors[0]
    loc = list(first["loc"])
    kind = first["type"]
    app_type: str | None = None
    if len(loc) >= 3 and loc[0] == "apps" and loc[2] in APP_TYPES:
        app_type = str(loc.pop(2))
    if loc and loc[-1] == "[key]":
        loc.pop()
        key = loc.pop() if loc else "?"
        return ConfigError(
            f"{shown}: {dotted(loc)}: key {key!r} must be a string (quote it in the YAML)"
        )
    path = dotted(loc)
    ctx = first.get("ctx") or {}

    if kind == "extra_forbidden":
        key = str(loc[-1])
        if app_type is not None:
            model = APP_MODELS[app_type]
            elsewhere = [
                t for t, m in APP_MODELS.items() if t != app_type and key in m.model_fields
            ]
            if elsewhere:
                return ConfigError(
                    f"{shown}: {path}: unknown field for a {app_type!r} app "
                    f"(it belongs to {elsewhere[0]!r} apps)"
                )
            fields: Iterable[str] = model.model_fields
        elif len(loc) == 1:
            fields = SbkubeConfig.model_fields
        else:
            fields = ()
        return ConfigError(f"{shown}: {path}: unknown field{suggest(key, fields)}")
    if kind == "union_tag_invalid":
        valid = ", ".join(APP_TYPES)
        return ConfigError(
            f"{shown}: {path}.type: unknown app type {ctx.get('tag')!r} (valid types: {valid})"
        )
    if kind == "union_tag_not_found":
        valid = ", ".join(APP_TYPES)
        return ConfigError(f"{shown}: {path}.type: required field missing (one of: {valid})")
    if kind == "missing":
        return ConfigError(f"{shown}: {path}: required field missing")
    expected = {
        "string_type": "a string",
        "bool_type": "true or false",
        "int_type": "an integer",
        "dict_type": "a mapping",
        "model_attributes_type": "a mapping",
        "model_type": "a mapping",
        "list_type": "a list",
        "tuple_type": "a list",
    }.get(kind)
    if expected is not None:
        return ConfigError(
            f"{shown}: {path}: expected {expected}, got {describe(first.get('input'))}"
        )
    if kind in ("too_short", "string_too_short"):
        return ConfigError(f"{shown}: {path}: must not be empty")
    message = str(first["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    elif message:
        message = message[0].lower() + message[1:]
    return ConfigError(f"{shown}: {path}: {one_line(message)}")
