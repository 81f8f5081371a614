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

With libyaml, parsing and emitting are C, but building Python objects from nodes (and
nodes from objects) is PyYAML's Python code, and it is most of the time a rendered chart
costs (``sbkube template`` of one chart: ~40 ms of 58 documents). ``load``/``load_all``/
``dump``/``dump_all`` therefore use :class:`FastLoader` and :class:`FastDumper`, which do
the same work in one plain recursive pass for what Kubernetes YAML is made of (mappings,
sequences, strings, ints, bools, nulls) and hand every other node or object (tags, merge
keys, floats, dates, sets...) to PyYAML's own methods; and remember which tag a scalar
resolves to (the resolver's regular expressions ran twice per scalar on output). Their
data and text are PyYAML's (``tests/unit/test_yamlio.py`` compares them over the corpus).

Everything else (which scalars are quoted, number and date resolution, key order) is
PyYAML's own Python code in both cases. Ground floor: imports nothing from sbkube.
"""

from __future__ import annotations

import re
from contextlib import suppress

import yaml
from yaml.events import ScalarEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
#: Remembered scalar tags, per class, are forgotten past this many (a long-running process
#: reads many documents).
_RESOLVED_MAX = 100_000


#: Remembered tags, by the implicit resolvers they come from: the loader and the dumper
#: share them (a scalar read from a chart's output is resolved again to be written).
_REMEMBERED: dict[int, dict[tuple[str, bool, bool], str]] = {}


class _RememberedTags:
    """``resolve`` of a scalar remembered: without path resolvers (none in the safe
    classes) its tag depends only on the text, the two implicit flags and the class's
    implicit resolvers."""

    _resolved: dict[tuple[str, bool, bool], str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        resolvers = cls.yaml_implicit_resolvers  # type: ignore[attr-defined]
        cls._resolved = _REMEMBERED.setdefault(id(resolvers), {})

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not ScalarNode or self.yaml_path_resolvers:  # type: ignore[attr-defined]
            return super().resolve(kind, value, implicit)  # type: ignore[misc]
        key = (value, implicit[0], implicit[1])
        memo = self._resolved
        tag = memo.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)  # type: ignore[misc]
            if len(memo) >= _RESOLVED_MAX:
                memo.clear()
            memo[key] = tag
        return tag


class _FastConstructor:
    """``construct_document`` in one recursive pass for plain mappings (no merge key, scalar
    keys), sequences and strings; every other node goes to PyYAML's ``construct_object``,
    which shares the same memo of constructed nodes (so an alias is the same object, and
    a mapping is registered before its children, as PyYAML's generators do)."""

    constructed_objects: dict[Any, Any]
    recursive_objects: dict[Any, Any]
    state_generators: list[Any]

    def construct_document(self, node: Any) -> Any:
        try:
            data = self._build(node)
        except RecursionError:
            # Nested deeper than one Python frame per level allows: PyYAML's own way, with
            # whatever it says about it.
            self.constructed_objects = {}
            self.recursive_objects = {}
            self.state_generators = []
            return super().construct_document(node)  # type: ignore[misc]
        return super().construct_document(_Built(data))  # type: ignore[misc]

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        if type(node) is _Built:
            return node.data
        return super().construct_object(node, deep=deep)  # type: ignore[misc]

    def _build(self, node: Any) -> Any:
        kind = type(node)
        tag = node.tag
        if kind is ScalarNode:
            if tag == _STR:
                return node.value
            return self.construct_object(node)
        memo = self.constructed_objects
        if node in memo:
            return memo[node]
        build = self._build
        if kind is MappingNode and tag == _MAP:
            pairs = node.value
            for key_node, _value in pairs:
                if type(key_node) is not ScalarNode or key_node.tag == _MERGE:
                    return self.construct_object(node)
            mapping: dict[Any, Any] = {}
            memo[node] = mapping
            for key_node, value_node in pairs:
                mapping[build(key_node)] = build(value_node)
            return mapping
        if kind is SequenceNode and tag == _SEQ:
            sequence: list[Any] = []
            memo[node] = sequence
            sequence.extend([build(item) for item in node.value])
            return sequence
        return self.construct_object(node)


class _Built:
    """A document already built, handed to PyYAML's ``construct_document`` so it finishes
    what was handed to it (its deferred generators) and resets its state as usual."""

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data


class _FastRepresenter:
    """``represent`` in one recursive pass for dicts, lists, strings, ints, bools and None
    (the nodes PyYAML's ``SafeRepresenter`` makes of them, aliases of a dict or list seen
    twice included); every other object goes to PyYAML's ``represent_data``."""

    def represent(self, data: Any) -> None:
        node = self._node(data)
        self.serialize(node)  # type: ignore[attr-defined]
        self.represented_objects = {}
        self.object_keeper: list[Any] = []
        self.alias_key = None

    def _node(self, data: Any) -> Any:
        kind = type(data)
        style = self.default_style  # type: ignore[attr-defined]
        if kind is str:
            return ScalarNode(_STR, data, style=style)
        if kind is dict or kind is list:
            seen = self.represented_objects.get(id(data))
            if seen is not None:
                return seen
            self.object_keeper.append(data)
            value: list[Any] = []
            node: Any = MappingNode(_MAP, value) if kind is dict else SequenceNode(_SEQ, value)
            self.represented_objects[id(data)] = node
            best = True
            build = self._node
            if kind is dict:
                items = list(data.items())
                if self.sort_keys:  # type: ignore[attr-defined]
                    with suppress(TypeError):
                        items = sorted(items)
                for key, item in items:
                    key_node, item_node = build(key), build(item)
                    if best and (
                        type(key_node) is not ScalarNode
                        or key_node.style
                        or type(item_node) is not ScalarNode
                        or item_node.style
                    ):
                        best = False
                    value.append((key_node, item_node))
            else:
                for item in data:
                    item_node = build(item)
                    if best and (type(item_node) is not ScalarNode or item_node.style):
                        best = False
                    value.append(item_node)
            flow = self.default_flow_style  # type: ignore[attr-defined]
            node.flow_style = best if flow is None else flow
            return node
        if kind is bool:
            return ScalarNode(_BOOL, "true" if data else "false", style=style)
        if kind is int:
            return ScalarNode(_INT, str(data), style=style)
        if data is None:
            return ScalarNode(_NULL, "null", style=style)
        return self.represent_data(data)  # type: ignore[attr-defined]

    represented_objects: dict[int, Any]
    alias_key: Any


class FastLoader(_RememberedTags, _FastConstructor, SafeLoader):
    """``SafeLoader`` (libyaml's when present) with the fast construction (module docstring)."""


class FastDumper(_RememberedTags, _FastRepresenter, SafeDumper):
    """``SafeDumper`` (libyaml's when present) with the fast representation (module
    docstring)."""


def load(text: str | bytes, *, loader: Any = None) -> Any:
    """The first document of ``text`` (None when empty), safe tags only."""
    return yaml.load(text, Loader=loader or FastLoader)


def load_all(text: str | bytes, *, loader: Any = None) -> list[Any]:
    """Every document of ``text`` (None for an empty one), safe tags only."""
    return list(yaml.load_all(text, Loader=loader or FastLoader))


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
            Dumper=dumper or FastDumper,
            sort_keys=sort_keys,
            allow_unicode=allow_unicode,
            default_flow_style=False,
            width=WIDTH,
        )
    )
