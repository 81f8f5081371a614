"""Label and field selectors, parsed once per request into a predicate on objects.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``,
``!k``, joined by commas. Field selectors: ``path=v``, ``path==v``, ``path!=v`` where path
is a dotted field path (``metadata.name``, ``metadata.namespace``, ``status.phase``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]


class SelectorError(ValueError):
    """A selector that does not parse; the message quotes it."""


def _split_terms(selector: str) -> list[str]:
    """Splits on commas that are not inside parentheses."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    terms.append("".join(current).strip())
    return [term for term in terms if term]


_SET_TERM = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)\Z")
_EQ_TERM = re.compile(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)\Z")
_KEY = re.compile(r"^(!?)\s*([^=!\s(),]+)\Z")


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_TERM.match(term):
        key, op, raw = match.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQ_TERM.match(term):
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _KEY.match(term):
        negate, key = match.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f'unable to parse requirement: "{term}"')


def label_selector(selector: str | None) -> Predicate | None:
    """A predicate for a ``labelSelector`` query parameter; None when it selects everything."""
    if not selector or not selector.strip():
        return None
    terms = [_label_term(term) for term in _split_terms(selector)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(term(labels) for term in terms)

    return matches


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_selector(selector: str | None) -> Predicate | None:
    """A predicate for a ``fieldSelector`` query parameter; None when it selects everything."""
    if not selector or not selector.strip():
        return None
    terms: list[tuple[str, bool, str]] = []
    for term in _split_terms(selector):
        match = _EQ_TERM.match(term)
        if not match:
            raise SelectorError(f'invalid field selector: "{term}"')
        path, op, value = match.groups()
        terms.append((path, op != "!=", value))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in terms)

    return matches


def equality_value(selector: str | None, path: str) -> str | None:
    """The value a field selector pins ``path`` to (``metadata.name=x`` -> ``x``), if any.

    Lets a list by name look up one object instead of scanning every object of the kind.
    """
    if not selector:
        return None
    for term in _split_terms(selector):
        match = _EQ_TERM.match(term)
        if match and match.group(1) == path and match.group(2) != "!=":
            return match.group(3)
    return None
