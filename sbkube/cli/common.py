"""Helpers shared by the command modules: opening the store, parsing ids and times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from sbkube.errors import UsageError

if TYPE_CHECKING:
    from sbkube.state import DeploymentDatabase

_RELATIVE = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def open_db(ctx: click.Context) -> DeploymentDatabase:
    from sbkube.state import DeploymentDatabase

    root = ctx.find_root()
    url = (root.obj or {}).get("state_url")
    return DeploymentDatabase(url)


def parse_since(value: str | None, *, option: str = "--since") -> datetime | None:
    """``7d``, ``12h``, ``30m``, ``2w``, or an ISO date/time (UTC when no zone is given)."""
    if value is None:
        return None
    text = value.strip()
    m = _RELATIVE.match(text)
    if m:
        return datetime.now(UTC) - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option}: invalid time {value!r} (use e.g. 7d, 12h, 30m, 2026-11-01 "
            "or 2026-11-01T08:00:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
