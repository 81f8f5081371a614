"""``-l/--selector``: which apps of a config a command works on, by their labels.

The syntax and meaning are helmfile's (``--selector tier=db,env!=dev``):

* one selector is a comma-separated list of requirements, ``key=value`` (also
  ``key==value``) or ``key!=value``, all of which must hold (AND); ``key!=value`` holds
  for an app without the label, as in Kubernetes;
* the option is repeatable, and an app is picked when ANY selector matches (OR);
* an app's labels are its ``labels:`` plus, unless it sets them itself, ``name`` (the app
  name), ``namespace`` (where it deploys) and ``type`` (``helm``, ``yaml``...), as
  helmfile gives every release ``name``, ``namespace`` and ``chart``.

Picked apps come with every app they need (``depends_on``, transitively) unless
``--no-deps``; ``uninstall`` takes the apps that need them instead (they would break).
A selector that matches no enabled app is one line and exit 2, as is a malformed one.

Shape: :func:`parse_selectors` turns the option's texts into :class:`Selector` tuples,
:func:`pick` takes them with the config's apps (name -> labels, depends_on, in deploy
order) and returns the picked names in deploy order. Pure: no file system, no cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sbkube.errors import UsageError

__all__ = ["AppLabels", "Requirement", "Selector", "parse_selectors", "pick"]

_KEY = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
_REQUIREMENT = re.compile(r"\s*(?P<key>[^=!\s]+)\s*(?P<op>!=|==|=)\s*(?P<value>[^,\s]*)\s*\Z")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    equal: bool
    value: str

    def holds(self, labels: Mapping[str, str]) -> bool:
        return (labels.get(self.key) == self.value) is self.equal

    def __str__(self) -> str:
        return f"{self.key}{'=' if self.equal else '!='}{self.value}"


Selector = tuple[Requirement, ...]


@dataclass(frozen=True, slots=True)
class AppLabels:
    """What selection needs of one app."""

    name: str
    labels: Mapping[str, str]
    depends_on: tuple[str, ...] = ()


def parse_selectors(texts: Iterable[str]) -> tuple[Selector, ...]:
    """The selectors of ``-l`` options; UsageError (one line naming the bad one) else."""
    out: list[Selector] = []
    for text in texts:
        parts = text.split(",")
        reqs: list[Requirement] = []
        for part in parts:
            m = _REQUIREMENT.match(part)
            if m is None:
                raise UsageError(
                    f"--selector {text!r}: {part.strip()!r} is not label=value or label!=value"
                )
            key, value = m.group("key"), m.group("value")
            if not _KEY.match(key) or len(key) > 316:
                raise UsageError(f"--selector {text!r}: {key!r} is not a label key")
            if not _VALUE.match(value) or len(value) > 63:
                raise UsageError(f"--selector {text!r}: {value!r} is not a label value")
            reqs.append(Requirement(key, m.group("op") != "!=", value))
        out.append(tuple(reqs))
    return tuple(out)


def _closure(start: set[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def pick(
    apps: Sequence[AppLabels],
    selectors: Sequence[Selector],
    *,
    with_deps: bool = True,
    dependents: bool = False,
) -> tuple[str, ...]:
    """The names of ``apps`` (in deploy order) that any selector matches, with the apps
    they depend on (or, ``dependents``, the apps that depend on them) unless not
    ``with_deps``. UsageError (one line) when nothing matches."""
    matched = {
        app.name for app in apps if any(all(r.holds(app.labels) for r in s) for s in selectors)
    }
    if not matched:
        shown = " ".join(f"-l {','.join(str(r) for r in s)}" for s in selectors)
        raise UsageError(f"{shown}: no app matches (of {', '.join(a.name for a in apps)})")
    if with_deps:
        known = {app.name for app in apps}
        edges: dict[str, list[str]] = {}
        for app in apps:
            for dep in app.depends_on:
                if dep in known:
                    if dependents:
                        edges.setdefault(dep, []).append(app.name)
                    else:
                        edges.setdefault(app.name, []).append(dep)
        matched = _closure(matched, edges)
    return tuple(app.name for app in apps if app.name in matched)
