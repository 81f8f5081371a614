"""Rendering for every read command: ``-o table|json|yaml``.

JSON and YAML carry the records' ``to_dict()`` with stable snake_case keys; tables are
plain aligned text (no heavy terminal libraries on the read path).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

FORMATS = ("table", "json", "yaml")

output_option = click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)


def dump(value: Any, fmt: str) -> str:
    from sbkube.model import jsonable

    plain = jsonable(value)
    if fmt == "json":
        return json.dumps(plain, indent=2, ensure_ascii=False)
    import yaml

    return str(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)).rstrip("\n")


def emit(value: Any, fmt: str) -> None:
    click.echo(dump(value, fmt))


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def fmt_duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    secs = (end - start).total_seconds()
    if secs < 60:
        return f"{secs:.1f}s"
    return f"{int(secs // 60)}m{int(secs % 60):02d}s"


def table(
    rows: Iterable[Any],
    columns: Sequence[tuple[str, Callable[[Any], Any]]],
    *,
    empty: str = "(nothing)",
) -> str:
    data = [
        [("-" if (v := get(r)) is None or v == "" else str(v)) for _, get in columns] for r in rows
    ]
    if not data:
        return empty
    headers = [h for h, _ in columns]
    widths = [max(len(h), *(len(row[i]) for row in data)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in data
    ]
    return "\n".join(lines)


def echo_table(
    rows: Iterable[Any], columns: Sequence[tuple[str, Callable[[Any], Any]]], **kw: Any
) -> None:
    click.echo(table(rows, columns, **kw))


def echo_changes(apps: Iterable[Any]) -> None:
    """The resources an apply or a plan changes (create/update/delete), one per row."""
    changed = [(a, c) for a in apps for c in a.changes if c.action != "unchanged"]
    if not changed:
        return
    click.echo("")
    echo_table(
        changed,
        [
            ("APP", lambda p: p[0].name),
            ("ACTION", lambda p: p[1].action),
            ("KIND", lambda p: p[1].kind),
            ("NAMESPACE", lambda p: p[1].namespace),
            ("NAME", lambda p: p[1].name),
        ],
    )
