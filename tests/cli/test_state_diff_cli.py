"""``sbkube state diff`` through the real console script: the table, JSON with ``latest``
refs and ``--app``, id prefixes, YAML, and unknown ids or apps. The store is seeded by the
``seeded`` fixture (tests/cli/conftest.py)."""

from __future__ import annotations

import json

from cli_helpers import Run, assert_one_line_error

from sbkube.redaction import digest


def test_diff_table(run: Run, seeded: list[str]) -> None:
    proc = run("state", "diff", seeded[0], seeded[1])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for section in ("== Config snapshot ==", "== Helm releases ==", "== Resources =="):
        assert section in out
    assert "== Manifest diffs ==" in out
    assert "-    version: '1.0'" in out and "+    version: '1.1'" in out
    assert "chart:    bitnami/nginx-15.0.0 -> bitnami/nginx-15.1.0" in out
    assert "revision: 1 -> 2" in out
    assert '~ image.tag: "1.0" -> "1.1"' in out
    assert "~ auth.token: (secret) changed" in out
    assert "api: 1 added, 0 removed, 1 changed, 0 unchanged" in out
    assert "+  value: b" in out
    assert digest("t1") not in out and digest("t2") not in out


def test_diff_json_latest_refs_and_app_filter(run: Run, seeded: list[str]) -> None:
    proc = run("state", "diff", "latest~1", "latest", "--app", "web", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["a"]["deployment_id"] == seeded[1]
    assert data["b"]["deployment_id"] == seeded[2]
    assert data["apps"] == ["web"]
    assert [r["app"] for r in data["resources"]] == ["web"]
    (release,) = data["releases"]
    assert release["change"] == "changed"  # revision 2 -> 3, values the same
    assert release["values"] == []
    assert release["unchanged_secrets"] == ["auth.token"]


def test_diff_prefix_and_yaml(run: Run, seeded: list[str]) -> None:
    proc = run("state", "diff", seeded[0][:-2], seeded[0], "-o", "yaml")
    assert proc.returncode == 0, proc.stderr
    assert "config_changed: false" in proc.stdout


def test_diff_unknown_id(run: Run, seeded: list[str]) -> None:
    near = seeded[0][:-1] + ("0" if seeded[0][-1] != "0" else "1")
    proc = run("state", "diff", near, "latest")
    assert_one_line_error(proc, f"unknown deployment id '{near}'", "did you mean")


def test_diff_unknown_app(run: Run, seeded: list[str]) -> None:
    proc = run("state", "diff", "latest~1", "latest", "--app", "nope")
    assert_one_line_error(proc, "'nope' is in neither")
