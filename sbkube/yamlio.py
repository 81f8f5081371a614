"""YAML in and out for all of sbkube: libyaml's C loader and dumper when PyYAML has them.

``load``/``load_all`` parse with safe tags only; ``dump``/``dump_all`` write text. Both go
through libyaml (``yaml.CSafeLoader``, ``yaml.CSafeDumper``) when PyYAML was built with it,
several times faster than the pure-Python classes, which are the fallback otherwise. The
two give the same data and the same text (``tests/unit/test_yamlio.py`` compares them over
every YAML file of the repository, rendered charts and edge cases); what makes them agree:

* no line folding (``width=WIDTH``): the two fold long double-quoted strings at different
  places. Unfolded lines are also what helm and kubectl print;
* :class:`PureSafeDumper`, the pure-Python fallback, follows libyaml 0.2.5+ on three
  corner cases: no ``...`` after a plain scalar at the root; which keys are simple
  (``key: x``, not ``? key``): up to 128 bytes of UTF-8, an empty one too, none holding a
  carriage return; and NEL (U+0085) or a character outside the Basic Multilingual Plane is
  written double-quoted and escaped (libyaml does not count them as printable).

Everything else (which scalars are quoted, number and date resolution, key order) is
PyYAML's own Python code in both cases. Ground floor: imports nothing from sbkube.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.events import ScalarEvent

#: Whether PyYAML has libyaml (``yaml.__with_libyaml__``).
LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False))

#: No folding: the C and pure-Python emitters fold long lines differently (and a C int).
WIDTH = 2**31 - 1

# Characters libyaml's emitter does not count as printable but PyYAML's does.
_NOT_PRINTABLE_IN_LIBYAML = re.compile("[\x85\U00010000-\U0010ffff]")


class PureSafeDumper(yaml.SafeDumper):
    """PyYAML's pure-Python safe dumper, writing what libyaml writes (module docstring)."""

    def write_plain(self, text: str, split: bool = True) -> None:
        open_ended = self.open_ended
        super().write_plain(text, split)
        self.open_ended = open_ended  # libyaml ends a stream after a root scalar without "..."

    def check_simple_key(self) -> bool:
        if not isinstance(self.event, ScalarEvent):
            return bool(super().check_simple_key())
        # libyaml: a key on one line (a carriage return breaks it too) of at most 128 bytes
        # of UTF-8, counting an anchor and an explicit tag; PyYAML counts characters, and
        # refuses an empty key.
        value = self.event.value
        if self.analysis is None:
            self.analysis = self.analyze_scalar(value)
        if self.analysis.multiline or "\r" in value:
            return False
        length = len(value.encode("utf-8", "surrogatepass"))
        if self.event.anchor is not None:
            length += len(self.event.anchor)
        if self.event.tag is not None and not any(self.event.implicit):
            length += len(self.prepare_tag(self.event.tag))
        return length <= 128

    def analyze_scalar(self, scalar: str) -> Any:
        analysis = super().analyze_scalar(scalar)
        if _NOT_PRINTABLE_IN_LIBYAML.search(scalar):
            # As PyYAML does for special characters: double quotes, escaped.
            analysis.allow_flow_plain = analysis.allow_block_plain = False
            analysis.allow_single_quoted = analysis.allow_block = False
        return analysis


#: The pure-Python classes, always available (the tests compare them with the C ones).
PURE_LOADER: type[yaml.SafeLoader] = yaml.SafeLoader
PURE_DUMPER: type[yaml.SafeDumper] = PureSafeDumper
#: The libyaml classes, None when PyYAML was built without libyaml.
C_LOADER: Any = getattr(yaml, "CSafeLoader", None) if LIBYAML else None
C_DUMPER: Any = getattr(yaml, "CSafeDumper", None) if LIBYAML else None

#: What sbkube uses: libyaml when present. ``SafeLoader`` may be subclassed (config reading).
SafeLoader: Any = C_LOADER or PURE_LOADER
SafeDumper: Any = C_DUMPER or PURE_DUMPER

YAMLError = yaml.YAMLError


def load(text: str | bytes, *, loader: Any = None) -> Any:
    """The first document of ``text`` (None when empty), safe tags only."""
    return yaml.load(text, Loader=loader or SafeLoader)


def load_all(text: str | bytes, *, loader: Any = None) -> list[Any]:
    """Every document of ``text`` (None for an empty one), safe tags only."""
    return list(yaml.load_all(text, Loader=loader or SafeLoader))


def dump(
    data: Any, *, sort_keys: bool = False, allow_unicode: bool = True, dumper: Any = None
) -> str:
    """``data`` as one YAML document (block style, no folding); PyYAML's ``dump`` is
    ``dump_all`` of one document too."""
    return dump_all([data], sort_keys=sort_keys, allow_unicode=allow_unicode, dumper=dumper)


def dump_all(
    documents: Any, *, sort_keys: bool = False, allow_unicode: bool = True, dumper: Any = None
) -> str:
    """``documents`` as a YAML stream (``---`` between them; "" for none)."""
    return str(
        yaml.dump_all(
            documents,
            Dumper=dumper or SafeDumper,
            sort_keys=sort_keys,
            allow_unicode=allow_unicode,
            default_flow_style=False,
            width=WIDTH,
        )
    )
