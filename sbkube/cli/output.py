r"""Rendering for every read command: ``-o table|json|yaml``.

JSON and YAML carry the records' ``to_dict()`` with stable snake_case keys; tables are
plain aligned text (no heavy terminal libraries on the read path). Also the text form of
a deployment diff (``render_diff``) and the per-app progress lines on stderr.

Colour goes through ``click.style``: ``click.echo`` drops it when the output is not a
terminal, and the root command sets the context's ``color`` to False for ``--no-color``
and ``NO_COLOR``, so piped output never carries escape codes.

Every name and message that comes from outside sbkube (config, the cluster, the store, an
import, the environment) goes through :func:`safe` before it reaches the terminal: control
characters and Unicode bidi controls are shown escaped (``\n``, ``\x1b``, ``\u202e``), so a
newline in a cluster name cannot start a fake table row, an ESC cannot redraw the screen
and a right-to-left override cannot reverse what is shown. Tables escape every cell,
:func:`error_lines` and :class:`Progress` every line (their own line breaks, a tool's detail
lines, are kept); the commands escape each outside value they put in a line of their own
(:func:`safe` around the value, never around a line that already holds colour). JSON
output carries the data itself, control and bidi characters as ``\uXXXX`` escapes (the
same data for a parser); YAML quotes and escapes control characters.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sbkube.engine.live_diff import LiveDiff
    from sbkube.engine.record_diff import DeploymentDiff

FORMATS = ("table", "json", "yaml")

# Words that get a colour wherever a table or a line shows them.
_COLOURS: dict[str, str] = {
    "success": "green",
    "in-sync": "green",
    "ok": "green",
    "create": "green",
    "added": "green",
    "failed": "red",
    "missing": "red",
    "delete": "red",
    "removed": "red",
    "drifted": "yellow",
    "partially_failed": "yellow",
    "interrupted": "yellow",
    "rolled_back": "cyan",
    "update": "yellow",
    "changed": "yellow",
    "skipped": "bright_black",
    "unchanged": "bright_black",
    "not-deployed": "bright_black",
    # Health, in Argo CD's words.
    "Healthy": "green",
    "Progressing": "cyan",
    "Suspended": "bright_black",
    "Missing": "red",
    "Degraded": "red",
    "Unknown": "yellow",
}
# Table columns whose cells are such words.
_COLOURED_COLUMNS = frozenset(
    {"STATUS", "ACTION", "STATE", "APP STATUS", "DEPLOYMENT STATUS", "DRIFT", "HEALTH"}
)


# C0 and C1 control characters (newline, carriage return, ESC, DEL, ...), the line and
# paragraph separators, and Unicode's bidi controls: marks (U+061C, U+200E, U+200F),
# embeddings and overrides (U+202A-U+202E) and isolates (U+2066-U+2069).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What JSON leaves raw of them (it escapes C0 controls itself): never part of its syntax.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def safe(value: Any) -> str:
    """``value`` as text that shows as itself on one terminal line: control characters and
    bidi controls escaped (see the module docstring). The one escaping function of the
    CLI's output."""
    return _UNSAFE.sub(_escape, str(value))


def safe_lines(text: str) -> str:
    """``text`` with each of its lines made :func:`safe`; its line breaks are kept (a
    message whose further lines detail the first)."""
    return "\n".join(safe(line) for line in str(text).split("\n"))


def paint(text: str, word: str | None = None, **style: Any) -> str:
    """``text`` styled for ``word``'s colour (or ``style``); plain when there is none."""
    colour = _COLOURS.get(word if word is not None else text.strip())
    if colour is None and not style:
        return text
    return click.style(text, fg=colour, **style)


def dump(value: Any, fmt: str) -> str:
    from sbkube.model import jsonable

    plain = jsonable(value)
    if fmt == "json":
        # json escapes control characters; the bidi controls (which JSON allows raw) are
        # escaped too, the same data for a parser, no reversed text on a terminal.
        text = json.dumps(plain, indent=2, ensure_ascii=False)
        return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
    from sbkube import yamlio

    return yamlio.dump(plain, sort_keys=False, allow_unicode=True).rstrip("\n")


def error_lines(message: str, prefix: str = "error: ") -> str:
    """``prefix`` + the message's first line, its further lines (a tool's details) indented
    below, so a multi-line error from helm reads as one error, every line kept; each line
    :func:`safe` (``prefix`` is the caller's, made of safe parts)."""
    first, *rest = safe_lines(message).split("\n")
    return "\n".join([f"{prefix}{first}", *(f"  {line}" for line in rest)])


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
        [("-" if (v := get(r)) is None or v == "" else safe(v)) for _, get in columns] for r in rows
    ]
    if not data:
        return empty
    headers = [h for h, _ in columns]
    widths = [max(len(h), *(len(row[i]) for row in data)) for i, h in enumerate(headers)]
    coloured = [h in _COLOURED_COLUMNS for h in headers]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    # Widths come from the plain text; colour wraps the padded cell, so columns still align.
    lines += [
        "  ".join(
            paint(c.ljust(w), c) if colour else c.ljust(w)
            for c, w, colour in zip(row, widths, coloured, strict=True)
        ).rstrip()
        for row in data
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
    """Per-app progress lines with timing, on stderr.

    Each line is printed when an app ends (the runner reports them in the order apps end).
    While apps run (the runner calls :meth:`app_started` and :meth:`app_ended`), a terminal
    shows one status line below the printed ones, with every running app and its elapsed
    time, rewritten in place every second (cut to the terminal's width); off a terminal
    (a pipe, a log) no status line is drawn: a line is printed every ``every`` seconds
    (``SBKUBE_PROGRESS_EVERY``, default 10) for each app that still runs, so a log shows
    that a slow deploy is alive.
    """

    def __init__(
        self,
        enabled: bool,
        *,
        tty: bool | None = None,
        every: float | None = None,
        color: bool | None = None,
    ) -> None:
        self.enabled = enabled
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = every if every is not None else _env_seconds("SBKUBE_PROGRESS_EVERY", 10.0)
        # The ticker thread has no click context: it is told the colour choice explicitly.
        self.color = color
        self._lock = threading.Lock()
        # The running apps: label -> (started, when its next "still running" line is due).
        self._running: dict[str, list[float]] = {}
        self._drawn = False
        self._thread: threading.Thread | None = None

    def _stamp(self) -> str:
        return f"{time.monotonic() - self.start:6.1f}s"

    def _echo(self, text: str, *, nl: bool = True) -> None:
        click.echo(text, err=True, nl=nl, color=self.color)

    def _erase(self) -> None:
        # Written as is: click strips escape sequences without colour (--no-color), which
        # would leave the end of a longer status line behind a shorter one.
        sys.stderr.write("\r\x1b[2K")

    def _clear(self) -> None:
        if self._drawn:
            self._erase()
            self._drawn = False

    def status_line(self) -> str:
        """The live status line (plain text): every running app with its elapsed time."""
        now = time.monotonic()
        apps = ", ".join(
            f"{safe(label)} {now - since:.0f}s" for label, (since, _) in self._running.items()
        )
        return f"{self._stamp()}  running: {apps}"

    def _draw(self) -> None:
        if self.tty and self._running:
            import shutil

            width = shutil.get_terminal_size((80, 24)).columns
            line = self.status_line()
            if len(line) > width - 1:
                line = line[: max(width - 4, 10)] + "..."
            self._erase()
            self._echo(paint(line, "update"), nl=False)
            self._drawn = True

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        from sbkube.redaction import mask_text  # here: most commands print no progress

        with self._lock:
            self._clear()
            self._echo(f"{self._stamp()}  {safe_lines(mask_text(line))}")
            self._draw()

    def app_started(self, label: str) -> None:
        """An app started (``label``: its name and type, as its lines show it)."""
        if not self.enabled:
            return
        with self._lock:
            now = time.monotonic()
            self._running[label] = [now, now + self.every]
            self._clear()
            self._draw()
            if self._thread is None:
                self._thread = threading.Thread(target=self._tick, daemon=True)
                self._thread.start()

    def app_ended(self, label: str) -> None:
        """The app of ``label`` ended (its line follows)."""
        if not self.enabled:
            return
        with self._lock:
            self._running.pop(label, None)
            self._clear()
            self._draw()

    def _tick(self) -> None:
        while True:
            time.sleep(1.0 if self.tty else min(1.0, self.every))
            with self._lock:
                if not self._running:
                    continue
                if self.tty:
                    self._clear()
                    self._draw()
                    continue
                now = time.monotonic()
                for label, due in self._running.items():
                    if now >= due[1]:
                        self._echo(
                            f"{self._stamp()}  {safe(label)} still running ({now - due[0]:.0f}s)"
                        )
                        due[1] += self.every


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    return value if value > 0 else default


def colour_diff(text: str) -> str:
    """A diff's lines coloured: additions green, removals red, hunks and headers marked."""
    out = []
    for line in text.split("\n"):
        bare = line.lstrip()
        if line.startswith(("+++", "---")) or line.startswith("=="):
            out.append(click.style(line, bold=True))
        elif line.startswith("@@"):
            out.append(click.style(line, fg="cyan"))
        elif bare.startswith("+"):
            out.append(click.style(line, fg="green"))
        elif bare.startswith("-"):
            out.append(click.style(line, fg="red"))
        elif bare.startswith("~"):
            out.append(click.style(line, fg="yellow"))
        else:
            out.append(line)
    return "\n".join(out)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


_MARK = {"added": "+", "removed": "-", "changed": "~"}


def render_diff(diff: DeploymentDiff) -> str:
    """``sbkube state diff -o table``: readable sections, one per kind of change."""
    from sbkube.engine.record_diff import SECRET

    out: list[str] = []
    a, b = diff.a, diff.b
    out.append(f"--- {a.deployment_id}  {a.command} {a.status}  {a.cluster}/{a.namespace}")
    out.append(f"+++ {b.deployment_id}  {b.command} {b.status}  {b.cluster}/{b.namespace}")
    if diff.apps is not None:
        out.append(f"apps: {', '.join(diff.apps)}")

    out += ["", "== Config snapshot =="]
    out += diff.config_diff.rstrip("\n").split("\n") if diff.config_changed else ["(unchanged)"]

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

    if diff.sources:
        out += ["", "== Sources (git, http) =="]
    for s in diff.sources:
        out.append(f"{s.app}: {s.kind} source {s.change}")
        for f in s.fields:
            out.append(
                f"  ~ {f.field}: {_short(f.old) if f.old is not None else '-'} -> "
                f"{_short(f.new) if f.new is not None else '-'}"
            )

    changed = [c for app in diff.resources for c in app.changed]
    out += ["", "== Manifest diffs =="]
    if not changed:
        out.append("(no changed manifests)")
    for c in changed:
        out += c.diff.rstrip("\n").split("\n")
    # One entry per line: a name that holds a newline is escaped, not a new line.
    return "\n".join(safe(line) for line in out)


def render_live_diff(result: LiveDiff) -> str:
    """``sbkube diff -o table``: per app, each object to create, change or delete, with the
    fields that differ and a unified YAML diff (live, then desired); plain text, coloured
    by :func:`colour_diff`."""
    marks = {"create": "+", "update": "~", "delete": "-"}
    out = [f"Diff against {result.cluster}/{result.namespace} (live -> what deploy would apply)"]
    for app in result.apps:
        release = f": release {app.release}" if app.release else ""
        state = "" if app.changed else " (no differences)"
        phase = f"phase {app.phase}: " if app.phase else ""
        out += ["", f"== {phase}{app.name} ({app.type}){release}{state}"]
        for obj in app.objects:
            fields = f": {', '.join(obj.fields)}" if obj.fields else ""
            out.append(f"{marks.get(obj.action, '?')} {obj.action} {obj.ref}{fields}")
            out += obj.diff.rstrip("\n").split("\n")
    count = sum(len(a.objects) for a in result.apps)
    apps = sum(1 for a in result.apps if a.changed)
    out.append("")
    out.append(
        f"{count} object(s) differ in {apps} app(s)" if result.changed else "No differences."
    )
    # One entry per line: a name that holds a newline is escaped, not a new line.
    return "\n".join(safe(line) for line in out)
