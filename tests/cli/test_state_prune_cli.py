"""``sbkube state prune`` through the real console script: a dry run, then for real, what
it keeps, and the options it needs. The store is seeded by the ``seeded`` fixture
(tests/cli/conftest.py)."""

from __future__ import annotations

import json

from cli_helpers import Run


def test_prune_dry_run_then_for_real(run: Run, seeded: list[str]) -> None:
    proc = run("state", "prune", "--keep-last", "1", "--older-than", "30", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert seeded[0] in proc.stdout and seeded[1] in proc.stdout
    assert "Would delete 2 deployment(s); kept 1 of 3" in proc.stdout
    listed = json.loads(run("state", "list", "-o", "json").stdout)
    assert len(listed) == 3

    proc = run("state", "prune", "--keep-last", "1", "--older-than", "30", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["dry_run"] is False and data["deleted"] == 2
    assert sorted(data["deleted_ids"]) == sorted(seeded[:2])
    assert [c["deployment_id"] for c in data["delete"]] == seeded[:2]
    assert data["kept"] == 1 and data["total"] == 3
    listed = json.loads(run("state", "list", "-o", "json").stdout)
    assert [d["deployment_id"] for d in listed] == [seeded[2]]


def test_prune_json_dry_run_keeps_recent(run: Run, seeded: list[str]) -> None:
    proc = run(
        "state", "prune", "--keep-last", "0", "--older-than", "99.5", "--dry-run", "-o", "json"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["dry_run"] is True and data["deleted"] == 0 and data["deleted_ids"] == []
    assert [c["deployment_id"] for c in data["delete"]] == [seeded[0]]


def test_prune_needs_its_options(run: Run, seeded: list[str]) -> None:
    proc = run("state", "prune", "--keep-last", "1")
    assert proc.returncode == 2
    assert "--older-than" in proc.stderr and "Traceback" not in proc.stderr
