"""The HTML of ``sbkube state report``: one self-contained file, nothing from the network.

The overview (timeline per target, per-app history, the table of deployments) is written
as HTML here, so it reads without JavaScript and prints. Each deployment's detail and diff
is data (:func:`sbkube.report.gather.detail`), packed in chunks of JSON compressed with
zlib and base64-encoded, and turned into HTML by the page's script when it is opened
(``DecompressionStream("deflate")`` reads zlib): a history of a thousand deployments stays
a few megabytes and opens at once.

Every value written into the page is HTML-escaped here, and the script builds its DOM with
``textContent`` only, so nothing recorded can inject markup.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from typing import Any

from sbkube import __version__
from sbkube.report.gather import Entry, History, detail

#: Deployments per compressed chunk: large enough that the repeated manifests and keys of
#: neighbouring deployments compress together, small enough that opening one is instant.
CHUNK = 50

#: A status is always written as text too; the mark helps a reader who scans in colour-
#: less print, and the colour (CSS) one who scans a screen.
MARKS = {
    "success": "✓",
    "failed": "✗",
    "partially_failed": "◐",
    "rolled_back": "↶",
    "interrupted": "‖",
    "in_progress": "…",
    "pending": "○",
    "skipped": "\u2013",  # en dash
}

STEP = 44  # px between two deployments on a timeline
ROW_H = 84  # px height of one target's timeline


def _e(value: Any) -> str:
    return escape("-" if value is None else str(value), quote=True)


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    secs = (end - start).total_seconds()
    return f"{secs:.1f}s" if secs < 60 else f"{int(secs // 60)}m{int(secs % 60):02d}s"


def _status(status: str) -> str:
    s = str(status)
    return f'<span class="st st-{_e(s)}">{MARKS.get(s, "?")} {_e(s)}</span>'


def _target(entry: Entry) -> str:
    return f"{entry.record.cluster}/{entry.record.namespace}"


def _search_text(entry: Entry) -> str:
    r = entry.record
    words = [r.deployment_id, str(r.command), str(r.status), r.operator or "", _target(entry)]
    words += [a.name for a in r.apps]
    words += [h.chart for a in r.apps for h in a.helm_releases]
    return " ".join(words).lower()


def _attrs(entry: Entry) -> str:
    return (
        f'data-status="{_e(entry.record.status)}" data-target="{_e(_target(entry))}" '
        f'data-search="{_e(_search_text(entry))}"'
    )


def _apps_ok(entry: Entry) -> str:
    apps = entry.record.apps
    ok = sum(1 for a in apps if a.status == "success")
    return f"{ok}/{len(apps)}"


def _command(entry: Entry) -> str:
    r = entry.record
    return str(r.command) + (" (dry-run)" if r.dry_run else "")


def _timeline(entries: Sequence[Entry]) -> str:
    """One SVG per target: a mark per deployment, rollbacks as arcs back to their target."""
    by_target: dict[str, list[Entry]] = {}
    for entry in entries:
        by_target.setdefault(_target(entry), []).append(entry)
    out = []
    for target, items in by_target.items():
        x_of = {e.record.deployment_id: 20 + i * STEP for i, e in enumerate(items)}
        width = 40 + STEP * max(len(items) - 1, 0)
        mid = ROW_H - 34
        parts = [
            f'<line class="axis" x1="10" y1="{mid}" x2="{width - 10}" y2="{mid}"></line>',
        ]
        for e in items:
            r = e.record
            x = x_of[r.deployment_id]
            if r.rollback_target_id:
                # Rollback arcs are drawn first so the marks sit on top of them.
                tx = x_of.get(r.rollback_target_id, 4)
                cy = max(2, mid - 12 - min(abs(x - tx), 600) // 5)
                parts.append(
                    f'<path class="rb" data-from="{_e(r.deployment_id)}" '
                    f'data-to="{_e(r.rollback_target_id)}" '
                    f'd="M{x} {mid - 11} Q{(x + tx) // 2} {cy} {tx} {mid - 13}" '
                    'marker-end="url(#arrow)"></path>'
                )
        previous_day = previous_minute = ""
        for e in items:
            r = e.record
            x = x_of[r.deployment_id]
            # Under a mark: the date when the day changes, else the time when the minute
            # does; a burst of deployments would otherwise print one time over and over.
            at = r.started_at.astimezone(UTC)
            day, minute = at.strftime("%m-%d"), at.strftime("%H:%M")
            tick = day if day != previous_day else minute if minute != previous_minute else ""
            previous_day, previous_minute = day, minute
            label = (
                f"{r.deployment_id} · {_command(e)} · {r.status} · {r.operator or '-'} · "
                f"{_duration(r.started_at, r.finished_at)}"
                + (f" · rollback to {r.rollback_target_id}" if r.rollback_target_id else "")
            )
            shape = (
                f'<rect x="{x - 10}" y="{mid - 10}" width="20" height="20" rx="3"></rect>'
                if r.command == "rollback"
                else f'<circle cx="{x}" cy="{mid}" r="10"></circle>'
            )
            parts.append(
                f'<a class="tl st-{_e(r.status)}" href="#{_e(r.deployment_id)}" '
                f'aria-label="{_e(label)}" {_attrs(e)}><title>{_e(label)}</title>{shape}'
                f'<text x="{x}" y="{mid + 4}" text-anchor="middle">'
                f"{MARKS.get(str(r.status), '?')}</text>"
                f'<text class="tick" x="{x}" y="{mid + 26}" text-anchor="middle">'
                f"{_e(tick)}</text></a>"
            )
        first, last = items[0].record.started_at, items[-1].record.started_at
        out.append(
            f'<figure class="timeline"><figcaption><strong>{_e(target)}</strong> — '
            f"{len(items)} deployment(s), {_e(_time(first))} to {_e(_time(last))}</figcaption>"
            f'<div class="scroll"><svg width="{width}" height="{ROW_H}" role="group" '
            f'aria-label="deployments to {_e(target)}">{"".join(parts)}</svg></div></figure>'
        )
    return "\n".join(out) or "<p>No deployments in this report.</p>"


def _app_history(entries: Sequence[Entry]) -> str:
    """One table per (app, target), newest first: revisions, charts, statuses, operators."""
    groups: dict[tuple[str, str], list[str]] = {}
    for entry in reversed(entries):
        r = entry.record
        for a in r.apps:
            h = a.helm_release
            chart = (
                "-" if h is None else f"{h.chart}-{h.chart_version}" if h.chart_version else h.chart
            )
            groups.setdefault((a.name, _target(entry)), []).append(
                f"<tr {_attrs(entry)}>"
                f'<td><a href="#{_e(r.deployment_id)}">{_e(r.deployment_id)}</a></td>'
                f"<td>{_e(_time(r.started_at))}</td><td>{_e(_command(entry))}</td>"
                f"<td>{_status(a.status)}</td><td>{_status(r.status)}</td>"
                f"<td>{_e(chart)}</td><td>{_e(h.revision if h else None)}</td>"
                f"<td>{len(a.resources)}</td><td>{_e(r.operator)}</td></tr>"
            )
    out = []
    for (name, target), rows in sorted(groups.items()):
        out.append(
            f'<section class="app" data-app="{_e(name)}"><h3>{_e(name)} '
            f'<small>on {_e(target)}</small></h3><div class="scroll"><table class="apps">'
            "<thead><tr><th>Deployment</th><th>Started</th><th>Command</th><th>App status</th>"
            "<th>Deployment status</th><th>Chart</th><th>Revision</th><th>Resources</th>"
            f"<th>Operator</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            "</section>"
        )
    return "\n".join(out) or "<p>No apps in this report.</p>"


def _deployments(entries: Sequence[Entry]) -> str:
    rows = []
    for i, entry in enumerate(reversed(entries)):
        r = entry.record
        chunk = (len(entries) - 1 - i) // CHUNK
        rb = (
            f'<a href="#{_e(r.rollback_target_id)}">{_e(r.rollback_target_id)}</a>'
            if r.rollback_target_id
            else "-"
        )
        rows.append(
            f'<tr class="dep" id="{_e(r.deployment_id)}" data-chunk="{chunk}" {_attrs(entry)}>'
            f'<td><button type="button" class="open" aria-expanded="false" '
            f'aria-label="details of {_e(r.deployment_id)}">▸</button> '
            f'<a href="#{_e(r.deployment_id)}">{_e(r.deployment_id)}</a></td>'
            f"<td>{_e(_time(r.started_at))}</td><td>{_e(_command(entry))}</td>"
            f"<td>{_status(r.status)}</td><td>{_e(_target(entry))}</td>"
            f"<td>{_apps_ok(entry)}</td><td>{_e(_duration(r.started_at, r.finished_at))}</td>"
            f"<td>{_e(r.operator)}</td><td>{rb}</td></tr>"
        )
    return "".join(rows)


def _chunks(entries: Sequence[Entry]) -> list[str]:
    out = []
    for start in range(0, len(entries), CHUNK):
        part = {e.record.deployment_id: detail(e) for e in entries[start : start + CHUNK]}
        raw = json.dumps(part, ensure_ascii=False, separators=(",", ":"), default=str)
        out.append(base64.b64encode(zlib.compress(raw.encode(), 6)).decode("ascii"))
    return out


def _options(values: Iterable[str]) -> str:
    return "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)


def render(history: History, *, generated_at: datetime) -> str:
    """The whole report as one HTML document."""
    entries = history.entries
    assets = files("sbkube.report")
    css = assets.joinpath("report.css").read_text(encoding="utf-8")
    js = assets.joinpath("report.js").read_text(encoding="utf-8")
    page = assets.joinpath("report.html").read_text(encoding="utf-8")
    data = json.dumps({"chunks": _chunks(entries)}, separators=(",", ":"))
    targets = sorted({_target(e) for e in entries})
    statuses = sorted({str(e.record.status) for e in entries})
    rollbacks = sum(1 for e in entries if e.record.command == "rollback")
    summary = (
        f"{len(entries)} deployment(s) ({rollbacks} rollback(s)) to {len(targets)} target(s); "
        f"scope: {history.scope.describe()}"
    )
    fills = {
        "CSS": css,
        "JS": js,
        "DATA": data.replace("</", "<\\/"),
        "SUMMARY": _e(summary),
        "GENERATED": _e(f"{_time(generated_at)} by sbkube {__version__}"),
        "TOTAL": str(len(entries)),
        "STATUS_OPTIONS": _options(statuses),
        "TARGET_OPTIONS": _options(targets),
        "TIMELINE": _timeline(entries),
        "APPS": _app_history(entries),
        "DEPLOYMENTS": _deployments(entries),
    }
    for key, value in fills.items():
        page = page.replace(f"<!--{key}-->", value)
    return page
