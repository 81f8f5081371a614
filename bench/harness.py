"""Timing, statistics, statement counting and the result table of the benchmark suite."""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import event

_TXN_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


@dataclass
class Result:
    """One row of the table: sbkube against a reference, or a count against a budget."""

    workload: str
    unit: str  # "ms", "stmts", "MB", "x"
    sbkube: list[float]
    reference: list[float] = field(default_factory=list)
    target: str = "report"
    #: "ratio" (sbkube median / reference median <= limit), "max" (sbkube median <= limit),
    #: "equal" (sbkube == reference), or None (report only).
    check: str | None = None
    limit: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def sb_median(self) -> float:
        return statistics.median(self.sbkube)

    @property
    def ref_median(self) -> float | None:
        return statistics.median(self.reference) if self.reference else None

    @property
    def ratio(self) -> float | None:
        ref = self.ref_median
        if ref is None or ref == 0 or self.unit == "stmts":
            return None
        return self.sb_median / ref

    @property
    def passed(self) -> bool | None:
        if self.check == "ratio":
            return self.ratio is not None and self.limit is not None and self.ratio <= self.limit
        if self.check == "max":
            return self.limit is not None and self.sb_median <= self.limit
        if self.check == "equal":
            return self.sb_median == self.ref_median
        return None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            sbkube_median=self.sb_median,
            reference_median=self.ref_median,
            ratio=self.ratio,
            passed=self.passed,
            sbkube_spread=spread(self.sbkube),
            reference_spread=spread(self.reference) if self.reference else None,
        )
        return out


def spread(values: list[float]) -> list[float]:
    return [min(values), max(values)]


def time_call(fn: Callable[[], Any], inner: int = 1) -> float:
    """Wall time of ``fn`` in ms, averaged over ``inner`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) * 1000.0 / inner


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "stmts":
        return f"{value:g}"
    if unit == "MB":
        return f"{value:.1f} MB"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def fmt_spread(values: list[float], unit: str) -> str:
    if not values:
        return "-"
    lo, hi = spread(values)
    if unit == "stmts":
        return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
    digits = 1 if unit == "MB" or hi >= 10 else 2
    return f"{lo:.{digits}f}-{hi:.{digits}f}"


def render_table(results: list[Result]) -> str:
    head = ("workload", "sbkube", "reference", "spread sb / ref", "ratio", "target", "result")
    rows = []
    for r in results:
        ratio = r.ratio
        spread_text = fmt_spread(r.sbkube, r.unit)
        if r.reference:
            spread_text += " / " + fmt_spread(r.reference, r.unit)
        verdict = {True: "PASS", False: "FAIL", None: "report"}[r.passed]
        rows.append(
            (
                r.workload,
                fmt_value(r.sb_median, r.unit),
                fmt_value(r.ref_median, r.unit),
                spread_text,
                f"{ratio:.2f}x" if ratio is not None else "-",
                r.target,
                verdict,
            )
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


@dataclass
class StatementLog:
    statements: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def queries(self) -> list[tuple[str, Any]]:
        return [s for s in self.statements if not _TXN_CONTROL.match(s[0])]

    @property
    def count(self) -> int:
        return len(self.queries)


@contextmanager
def count_statements(db: Any) -> Iterator[StatementLog]:
    """Every cursor execution on the store's engines (``db.engines``: on PostgreSQL single
    reads use their own autocommit pool); an executemany counts once, BEGIN/COMMIT don't."""
    log = StatementLog()

    def on_execute(_conn: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        log.statements.append((statement, params))

    engines = tuple(getattr(db, "engines", (db,)))
    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield log
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", on_execute)


def machine_description(pg_version: str | None) -> list[str]:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for ln in fh:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import sqlalchemy

    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores, load average {load}",
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"SQLAlchemy {sqlalchemy.__version__}, SQLite {sqlite3.sqlite_version}, "
        f"PostgreSQL {pg_version or 'not reachable'}",
        f"{platform.system()} {platform.release()}, git {commit or '?'}",
    ]
