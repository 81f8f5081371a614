"""Reading config files safely: size limits, YAML hardening, how paths are shown.

Every file sbkube reads from an app directory goes through ``read_file`` (size-checked,
regular files only) and ``parse_yaml``/``parse_yaml_documents``, which refuse duplicate
keys, recursive anchors and alias bombs, keep timestamps as strings (as helm and kubectl
do) and turn every YAML problem into a one-line ConfigError naming file, line and column.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from sbkube import yamlio
from sbkube.errors import ConfigError
from sbkube.messages import dotted, one_line

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_FILE_BYTES = 10 * 1024 * 1024
# Far above any real config or manifest, far below what an alias bomb expands to.
MAX_EXPANDED_NODES = 5_000_000
#: The deepest nesting of mappings and lists in a document, and of a dotted ``--set`` key.
#: Kubernetes objects and chart values nest a few dozen levels at most; merging, redacting
#: and recording walk the data recursively, and a thousand levels would exhaust Python's.
MAX_DEPTH = 200


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        return absolute.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        pass
    try:
        return absolute.relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return str(absolute)


_BaseLoader: type[yaml.SafeLoader] = yamlio.SafeLoader  # libyaml's when PyYAML has it


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader that leaves timestamps as strings, as Helm and kubectl do.

    (Go's YAML-to-JSON path never produces dates, and strings keep ``raw`` JSON-safe.)
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _check_duplicates(node: yaml.Node, shown: str) -> None:
    """Refuse duplicate mapping keys anywhere in ``node`` (PyYAML silently keeps the last)."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(node, ())]
    while stack:
        current, path = stack.pop()
        # Aliases share nodes; visiting each once also keeps "billion laughs" cheap.
        if id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in current.value:
                key: Any = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if key is not None and key != "<<":
                    line = key_node.start_mark.line + 1
                    if key in first_line:
                        what = "duplicate app name" if path == ("apps",) else "duplicate key"
                        raise ConfigError(
                            f"{shown}: {dotted((*path, str(key)))}: {what} "
                            f"(first at line {first_line[key]}, again at line {line})"
                        )
                    first_line[key] = line
                child = str(key) if key is not None else "?"
                stack.append((value_node, (*path, child)))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                stack.append((item, (*path, index)))


def _check_expansion(node: yaml.Node, shown: str) -> None:
    """Refuse recursive anchors and alias "bombs" before anything walks the data.

    Constructed YAML shares aliased objects, but JSON snapshots, deep merges and helm's
    values file all expand them; a few lines of aliases can expand to billions of nodes.
    """
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(current: yaml.Node) -> int:
        key = id(current)
        if key in memo:
            return memo[key]
        if key in active:
            raise ConfigError(
                f"{shown}: line {current.start_mark.line + 1}: recursive YAML anchor refused"
            )
        active.add(key)
        total = 1
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                total += size(key_node) + size(value_node)
        elif isinstance(current, yaml.SequenceNode):
            for item in current.value:
                total += size(item)
        active.discard(key)
        memo[key] = total
        if total > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{shown}: YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes; refused"
            )
        return total

    size(node)


def _yaml_error(shown: str, err: yaml.YAMLError) -> ConfigError:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = "; ".join(p for p in (err.context, err.problem) if p)
        return ConfigError(f"{shown}: {where}invalid YAML: {one_line(problem or str(err))}")
    return ConfigError(f"{shown}: invalid YAML: {one_line(str(err))}")


def _decode(data: bytes, shown: str) -> str:
    if b"\x00" in data:
        raise ConfigError(f"{shown}: binary file, expected YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{shown}: not valid UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})"
        ) from None


def _unrecordable(value: Any) -> str | None:
    """Why a scalar cannot be recorded, or None: JSON has no NaN nor infinity, and
    PostgreSQL refuses U+0000 in text and JSONB. Helm would take them; the record of the
    deployment would not, after the cluster had changed."""
    if isinstance(value, float):
        if value != value:
            return "NaN (.nan) cannot be recorded"
        if value in (float("inf"), float("-inf")):
            return "infinity (.inf) cannot be recorded"
    elif isinstance(value, str) and "\x00" in value:
        return "a NUL character (\\0) cannot be recorded"
    return None


def check_recordable(document: Any, shown: str, where: tuple[str | int, ...] = ()) -> None:
    """ConfigError naming the file and the key path of the first value (or key) that JSON
    or PostgreSQL cannot hold, or of a nesting deeper than MAX_DEPTH. Iterative: a deep
    document must be refused, not crash the walk that refuses it."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, where)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict | list):
            if len(path) - len(where) >= MAX_DEPTH:
                raise ConfigError(
                    f"{shown}: {dotted(path[: len(where) + 3])}...: nested more than "
                    f"{MAX_DEPTH} levels deep; refused"
                )
            children: list[tuple[Any, tuple[str | int, ...]]] = []
            if isinstance(value, dict):
                for key, item in value.items():
                    problem = _unrecordable(key)
                    if problem is not None:
                        raise ConfigError(
                            f"{shown}: {dotted((*path, repr(key)))}: "
                            f"{problem.replace(' cannot', ' in a key cannot')}; refused"
                        )
                    children.append((item, (*path, key if isinstance(key, str) else str(key))))
            else:
                children = [(item, (*path, i)) for i, item in enumerate(value)]
            stack.extend(reversed(children))  # the first problem in file order is named
            continue
        problem = _unrecordable(value)
        if problem is not None:
            raise ConfigError(f"{shown}: {dotted(path) or 'document'}: {problem}; refused")


def parse_yaml_documents(data: bytes, shown: str) -> list[Any]:
    """Every document of a YAML stream (None for empty ones), refusing duplicate keys."""
    text = _decode(data, shown)
    loader = _Loader(text)
    docs: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            _check_duplicates(node, shown)
            _check_expansion(node, shown)
            document = loader.construct_document(node)
            check_recordable(document, f"{shown}: document {len(docs) + 1}" if docs else shown)
            docs.append(document)
    except yaml.YAMLError as err:
        raise _yaml_error(shown, err) from None
    except RecursionError:
        raise ConfigError(f"{shown}: invalid YAML: nested too deeply") from None
    except ValueError as err:
        # A scalar Python cannot build: an integer of more than 4300 digits.
        raise ConfigError(f"{shown}: invalid YAML: {one_line(str(err)).split(';')[0]}") from None
    finally:
        loader.dispose()
    return docs


def parse_yaml(data: bytes, shown: str) -> Any:
    """The single document of a YAML file (None when empty), refusing duplicate keys."""
    docs = parse_yaml_documents(data, shown)
    if len(docs) > 1:
        raise ConfigError(f"{shown}: expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None


def read_file(path: Path, shown: str, what: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; ConfigError otherwise."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{shown}: {what} not found") from None
    except OSError as err:
        raise ConfigError(f"{shown}: cannot read {what}: {err.strerror or err}") from None
    if not path.is_file():
        raise ConfigError(f"{shown}: {what} is not a regular file")
    if stat.st_size > MAX_FILE_BYTES:
        raise ConfigError(
            f"{shown}: {what} is {stat.st_size / (1024 * 1024):.1f} MB; "
            f"files over {MAX_FILE_BYTES // (1024 * 1024)} MB are refused"
        )
    try:
        with path.open("rb") as handle:
            # Read one byte past the limit so a file that grew since stat() is still refused.
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{shown}: cannot read {what}: {err.strerror or err}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{shown}: {what} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; refused"
        )
    return data
