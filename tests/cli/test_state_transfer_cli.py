"""``sbkube state export`` and ``state import`` through the real console script: a round
trip between stores (SQLite and PostgreSQL), ``--since``, stdin, and a bad line that
imports nothing. The store is seeded by the ``seeded`` fixture (tests/cli/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import Run, assert_one_line_error


def test_export_import_round_trip(run: Run, seeded: list[str], tmp_path: Path) -> None:
    proc = run("state", "export")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [json.loads(x)["deployment_id"] for x in lines] == seeded
    assert "exported 3 deployment(s)" in proc.stderr
    history = tmp_path / "history.jsonl"
    history.write_text(proc.stdout, encoding="utf-8")

    other = str(tmp_path / "other.db")
    proc = run("state", "import", str(history), state=other)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Imported 3 deployment(s), skipped 0 already present."
    again = run("state", "import", str(history), "-o", "json", state=other)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert (data["imported"], data["skipped"]) == (0, 3)
    assert data["file"] == str(history)

    assert run("state", "export", state=other).stdout == history.read_text(encoding="utf-8")


def test_export_since(run: Run, seeded: list[str]) -> None:
    proc = run("state", "export", "--since", "30d")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["deployment_id"] for x in proc.stdout.splitlines()] == [seeded[2]]
    bad = run("state", "export", "--since", "last tuesday")
    assert_one_line_error(bad, "--since: invalid time")


def test_import_from_stdin(run: Run, seeded: list[str], tmp_path: Path) -> None:
    exported = run("state", "export").stdout
    proc = run("state", "import", "-", "-o", "json", state=str(tmp_path / "o.db"), input=exported)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["imported"] == 3


def test_import_bad_line_imports_nothing(run: Run, seeded: list[str], tmp_path: Path) -> None:
    lines = run("state", "export").stdout.splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], lines[1], "{oops", lines[2]]) + "\n", encoding="utf-8")
    other = str(tmp_path / "other.db")
    proc = run("state", "import", str(bad), state=other)
    assert_one_line_error(proc, f"{bad}:3:", "invalid JSON")
    assert json.loads(run("state", "list", "-o", "json", state=other).stdout) == []


def test_import_missing_file(run: Run, tmp_path: Path) -> None:
    proc = run("state", "import", str(tmp_path / "nope.jsonl"))
    assert_one_line_error(proc, "cannot read", "nope.jsonl")


@pytest.mark.postgres
def test_import_into_postgres_and_back(
    run: Run, seeded: list[str], tmp_path: Path, pg_schema_url: str
) -> None:
    exported = run("state", "export").stdout
    history = tmp_path / "h.jsonl"
    history.write_text(exported, encoding="utf-8")
    proc = run("state", "import", str(history), state=pg_schema_url)
    assert proc.returncode == 0, proc.stderr
    assert run("state", "export", state=pg_schema_url).stdout == exported
