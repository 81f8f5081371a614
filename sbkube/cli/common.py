"""Helpers shared by the command modules: lazy command groups, opening the store, times."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from sbkube.errors import UsageError

if TYPE_CHECKING:
    from sbkube.state import DeploymentDatabase


class LazyCommand(NamedTuple):
    """Where a subcommand lives (module and attribute) and its one-line help."""

    module: str
    attr: str
    help: str


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, from one table.

    ``sbkube --help`` and ``sbkube state list`` then import only what they run; the help
    listing comes from the table, so it imports nothing.
    """

    def __init__(self, *args: Any, table: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table = dict(table)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.table)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.table.get(cmd_name)
        if entry is None:
            return None
        cmd: click.Command = getattr(importlib.import_module(entry.module), entry.attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.table[name].help) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


_RELATIVE = re.compile(r"^(\d+)\s*(s|m|h|d|w)\Z")
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
        try:
            return datetime.now(UTC) - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        except OverflowError:
            raise UsageError(
                f"{option}: {value!r} reaches back before the year 1 (use a smaller number)"
            ) from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option}: invalid time {value!r} (use e.g. 7d, 12h, 30m, 2026-11-01 "
            "or 2026-11-01T08:00:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def open_recovered(ctx: click.Context) -> DeploymentDatabase:
    """Open the store, first closing deployments whose process died mid-way.

    A deployment still ``in_progress`` whose target has no live lock holder belongs to a
    process that is gone; showing it as running would mislead, so it is marked
    ``interrupted`` here (and the user told on stderr).
    """
    from sbkube.cli.output import safe
    from sbkube.engine.recovery import recover_orphans

    db = open_db(ctx)
    quiet = bool((ctx.find_root().obj or {}).get("quiet"))
    if db.notice and not quiet:
        click.echo(f"note: {safe(db.notice)}", err=True)
    recover_orphans(
        db, notify=None if quiet else lambda msg: click.echo(f"note: {safe(msg)}", err=True)
    )
    return db
