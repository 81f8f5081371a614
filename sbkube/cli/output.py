"""Rendering for every read command: ``-o table|json|yaml``.

JSON and YAML carry the records' ``to_dict()`` with stable snake_case keys; tables are
plain aligned text (no heavy terminal libraries on the read path). Also the text form of
a deployment diff (``render_diff``) and the per-app progress lines on stderr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sbkube.engine.diff import DeploymentDiff
    from sbkube.engine.planner import LiveDiff

FORMATS = ("table", "json", "yaml")


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


class Progress:
    """Per-app progress lines with timing, on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.monotonic()

    def __call__(self, line: str) -> None:
        if self.enabled:
            click.echo(f"{time.monotonic() - self.start:6.1f}s  {line}", err=True)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


_MARK = {"added": "+", "removed": "-", "changed": "~"}


def render_diff(diff: DeploymentDiff) -> str:
    """``sbkube state diff -o table``: readable sections, one per kind of change."""
    from sbkube.engine.diff import SECRET

    out: list[str] = []
    a, b = diff.a, diff.b
    out.append(f"--- {a.deployment_id}  {a.command} {a.status}  {a.cluster}/{a.namespace}")
    out.append(f"+++ {b.deployment_id}  {b.command} {b.status}  {b.cluster}/{b.namespace}")
    if diff.apps is not None:
        out.append(f"apps: {', '.join(diff.apps)}")

    out += ["", "== Config snapshot =="]
    out.append(diff.config_diff.rstrip("\n") if diff.config_changed else "(unchanged)")

    out += ["", "== Helm releases =="]
    if not diff.releases:
        out.append("(no Helm releases)")
    for r in diff.releases:
        out.append(f"{r.app}: release {r.release_name} (namespace {r.namespace}) {r.change}")
        if r.chart_changed:
            va = f"{r.chart_a}-{r.chart_version_a}" if r.chart_version_a else r.chart_a
            vb = f"{r.chart_b}-{r.chart_version_b}" if r.chart_version_b else r.chart_b
            out.append(f"  chart:    {va or '-'} -> {vb or '-'}")
        if r.revision_changed:
            out.append(f"  revision: {r.revision_a or '-'} -> {r.revision_b or '-'}")
        for v in r.values:
            if v.secret:
                out.append(f"  {_MARK[v.change]} {v.path}: {SECRET} {v.change}")
            elif v.change == "added":
                out.append(f"  + {v.path}: {_short(v.new)}")
            elif v.change == "removed":
                out.append(f"  - {v.path}: {_short(v.old)}")
            else:
                out.append(f"  ~ {v.path}: {_short(v.old)} -> {_short(v.new)}")
        for path in r.unchanged_secrets:
            out.append(f"  = {path}: {SECRET} unchanged")

    out += ["", "== Resources =="]
    if not diff.resources:
        out.append("(no apps)")
    for app in diff.resources:
        counts = (
            f"{len(app.added)} added, {len(app.removed)} removed, "
            f"{len(app.changed)} changed, {app.unchanged} unchanged"
        )
        suffix = f" (app {app.change})" if app.change in ("added", "removed") else ""
        out.append(f"{app.app}: {counts}{suffix}")
        out += [f"  + {r.label}" for r in app.added]
        out += [f"  - {r.label}" for r in app.removed]
        out += [f"  ~ {c.resource.label}" for c in app.changed]

    changed = [c for app in diff.resources for c in app.changed]
    out += ["", "== Manifest diffs =="]
    if not changed:
        out.append("(no changed manifests)")
    for c in changed:
        out.append(c.diff.rstrip("\n"))
    return "\n".join(out)


# Longest prefix first: a "+++" header is bold, not an added line.
_DIFF_STYLES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("+++", {"bold": True}),
    ("---", {"bold": True}),
    ("@@", {"fg": "cyan"}),
    ("+", {"fg": "green"}),
    ("-", {"fg": "red"}),
)


def style_diff_line(line: str) -> str:
    """A unified diff line in colour (click.echo drops the colour when not on a terminal)."""
    for prefix, style in _DIFF_STYLES:
        if line.startswith(prefix):
            return click.style(line, **style)
    return line


def render_live_diff(result: LiveDiff) -> str:
    """``sbkube diff -o table``: per app, each object to create, change or delete, with the
    fields that differ and a unified YAML diff (live, then desired)."""
    marks = {"create": "+", "update": "~", "delete": "-"}
    out = [f"Diff against {result.cluster}/{result.namespace} (live -> what deploy would apply)"]
    for app in result.apps:
        release = f": release {app.release}" if app.release else ""
        state = "" if app.changed else " (no differences)"
        out.append("")
        out.append(click.style(f"== {app.name} ({app.type}){release}{state}", bold=True))
        for obj in app.objects:
            fields = f": {', '.join(obj.fields)}" if obj.fields else ""
            out.append(f"{marks.get(obj.action, '?')} {obj.action} {obj.ref}{fields}")
            out += [style_diff_line(line) for line in obj.diff.rstrip("\n").splitlines()]
    count = sum(len(a.objects) for a in result.apps)
    apps = sum(1 for a in result.apps if a.changed)
    out.append("")
    out.append(
        f"{count} object(s) differ in {apps} app(s)" if result.changed else "No differences."
    )
    return "\n".join(out)
