"""The shared vocabulary of sbkube: statuses, the records' base, frozen JSON data, time.

The ground floor: state, engine and cli all speak these words, and this module imports
nothing of sbkube, so no layer reaches into another for them.

* Statuses and actions are ``StrEnum`` members, so ``record.status == "success"`` holds.
* :class:`Record` is the mixin of every frozen result type (``to_dict()``);
  :class:`FrozenDict`, :func:`freeze` and :func:`thaw` hold JSON data in a record that
  cannot be edited in place; :func:`jsonable` is the one JSON converter.
* Times are timezone-aware UTC (:func:`utcnow`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class DeploymentStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially_failed"
    ROLLED_BACK = "rolled_back"
    INTERRUPTED = "interrupted"


class AppStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


class Command(StrEnum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    UNINSTALL = "uninstall"


class AppType(StrEnum):
    HELM = "helm"
    YAML = "yaml"
    NOOP = "noop"
    KUSTOMIZE = "kustomize"
    EXEC = "exec"
    GIT = "git"
    HTTP = "http"
    ACTION = "action"
    HOOK = "hook"


class ResourceAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    DELETE = "delete"


class FrozenDict(dict[str, Any]):
    """A dict that refuses mutation, hashes by content and pickles as itself.

    Chosen over ``MappingProxyType`` because records must pickle, and over plain dicts
    because a frozen record whose JSON fields can be edited in place is not frozen.
    ``json.dumps`` accepts it unchanged; :func:`thaw` gives back plain containers.
    """

    __slots__ = ()

    def _immutable(self, *_: Any, **__: Any) -> Any:
        raise TypeError("FrozenDict is immutable")

    __setitem__ = _immutable
    __delitem__ = _immutable
    clear = _immutable
    pop = _immutable
    popitem = _immutable
    setdefault = _immutable
    update = _immutable
    __ior__ = _immutable

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """Deep-freeze JSON-like data: dicts -> FrozenDict, lists -> tuples."""
    if type(value) in _SCALARS:  # the common case, checked without isinstance() chains
        return value
    if type(value) is dict:
        # Leaves inline (no call each): this runs for every node of every record returned.
        return FrozenDict(
            {
                k if type(k) is str else str(k): v if type(v) in _SCALARS else freeze(v)
                for k, v in value.items()
            }
        )
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict((str(k), freeze(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists, ready for YAML or editing."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    # dataclasses.fields() filters the class's fields again on every call; a report turns
    # thousands of records into JSON.
    # A field marked ``jsonable: False`` (sealed secrets) stays out of every JSON form.
    return tuple(f.name for f in fields(cls) if f.metadata.get("jsonable", True))


def jsonable(value: Any) -> Any:
    """Plain JSON-ready data from records, results, enums and datetimes.

    Datetimes are ISO 8601 with microseconds always written, so the same instant always
    gives the same text (``state export`` lines must compare byte for byte); dataclasses
    become dicts of their fields (so ``to_dict()`` is this, one level down).
    """
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {
            name: jsonable(getattr(value, name))
            for name in _field_names(value if isinstance(value, type) else type(value))
        }
    return value


class Record:
    """Mixin for every frozen result type of sbkube (records, plans, diffs, outcomes)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict with stable snake_case keys (datetimes as ISO 8601)."""
        out: dict[str, Any] = jsonable(self)
        return out


#: The most apps run at once: each is a thread and a helm or kubectl process. The CLI's
#: ``--concurrency`` and a library caller's ``concurrency=`` share this bound.
MAX_CONCURRENCY = 256

#: Statuses of a deployment that has not finished: its process runs, or died (recovery).
UNFINISHED = (str(DeploymentStatus.PENDING), str(DeploymentStatus.IN_PROGRESS))


def utcnow() -> datetime:
    return datetime.now(UTC)
