"""One-line messages for bad input: ``where: field.path: what is wrong``.

Every room that validates user input with pydantic (config files, imported histories)
reports its first error the same way: the file as shown (with a line number where there
is one), the dotted field (``apps.redis.chart``, ``apps[0].resources[1].action``) and
what is wrong, on one line, so that the CLI prints it as is. The wording of the common
errors (missing, wrong type, not one of, a validator's own message) is here; a room adds
its own cases in front (``sbkube.config.messages``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False

if TYPE_CHECKING:  # only the types: a command that reads no config must not pay for pydantic
    from typing import Any

    from pydantic import ValidationError
    from pydantic_core import ErrorDetails

#: What a type error says is expected, in the words of a YAML config.
EXPECTED = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
    "model_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def suggest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    import difflib

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


def first_error(err: ValidationError) -> ErrorDetails:
    """The most useful of pydantic's errors: the first, but a misspelt key before the
    "missing" it also causes for the real key."""
    errors = err.errors()
    errors.sort(key=lambda e: 0 if e["type"] == "extra_forbidden" else 1)
    return errors[0]


def error_text(
    error: ErrorDetails,
    *,
    missing: str = "required field missing",
    expected: Mapping[str, str] = EXPECTED,
) -> str:
    """What is wrong, without where: the wording of the common pydantic errors. A room
    may word "missing" and the expected types its own way (an import speaks JSON)."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return missing
    if kind in expected:
        return f"expected {expected[kind]}, got {describe(error.get('input'))}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind in ("enum", "literal_error") and "expected" in ctx:
        return f"{describe_value(error.get('input'))} is not one of {ctx['expected']}"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    elif message:
        message = message[0].lower() + message[1:]
    return one_line(message)


def describe_value(value: Any) -> str:
    """A wrong value as a message quotes it: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def error_line(shown: str, loc: Sequence[str | int], text: str) -> str:
    """``shown: field.path: text``, or ``shown: text`` when the error has no field."""
    path = dotted(loc)
    return f"{shown}: {path}: {text}" if path else f"{shown}: {text}"
