"""``sbkube state diff|prune|export|import`` through the real console script.

Each test seeds a temporary SQLite store through the tracker/repository, then runs the
installed ``sbkube`` executable in a subprocess with ``SBKUBE_STATE_URL`` pointing at it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sbkube.redaction import digest
from sbkube.state import DeploymentDatabase, DeploymentRepository, ResourceInput


def sbkube_executable() -> str:
    beside = Path(sys.executable).parent / "sbkube"
    if beside.exists():
        return str(beside)
    found = shutil.which("sbkube")
    if found is None:
        pytest.fail("the sbkube console script is not installed (pip install -e .)")
    return found


SBKUBE = sbkube_executable()
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def run(state_path: Path, tmp_path: Path) -> Run:
    def _run(*args: str, state: str | None = None, input: str | None = None) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBKUBE_")}
        env["SBKUBE_STATE_URL"] = state or str(state_path)
        env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
        return subprocess.run(
            [SBKUBE, *args],
            capture_output=True,
            text=True,
            env=env,
            input=input,
            timeout=120,
            check=False,
        )

    return _run


def cm(name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "demo"},
        "data": {"value": value},
    }


@pytest.fixture
def seeded(state_path: Path) -> list[str]:
    """Three deployments of web (helm) + api (yaml), 100 days old, 99 days old and new.

    The repository is used directly (rather than the tracker) for ``started_at=``: prune
    judges deployments by their start time.
    """
    db = DeploymentDatabase(state_path)
    repo = DeploymentRepository(db)
    now = datetime.now(UTC)
    ids: list[str] = []
    try:
        for i, (age, tag, token, cm_value) in enumerate(
            [(100, "1.0", "t1", "a"), (99, "1.1", "t2", "b"), (0, "1.1", "t2", "b")]
        ):
            started = now - timedelta(days=age, seconds=10)
            dep = repo.create_deployment(
                cluster="k3s",
                namespace="demo",
                config_snapshot={"namespace": "demo", "apps": {"web": {"version": tag}}},
                started_at=started,
            )
            web = repo.start_app(dep.deployment_id, name="web", type="helm", namespace="demo")
            repo.add_helm_release(
                web.app_id,
                release_name="web",
                namespace="demo",
                chart="bitnami/nginx",
                chart_version=f"15.{i}.0",
                revision=i + 1,
                status="deployed",
                values={"image": {"tag": tag}, "auth": {"token": token}},
            )
            repo.finish_app(web.app_id, "success")
            api = repo.start_app(dep.deployment_id, name="api", type="yaml", namespace="demo")
            manifests = [cm("settings", cm_value)] + ([cm("extra", "x")] if i else [])
            repo.add_resources(
                api.app_id, [ResourceInput.from_manifest(m, "create") for m in manifests]
            )
            repo.finish_app(api.app_id, "success")
            repo.finish_deployment(
                dep.deployment_id, "success", finished_at=started + timedelta(seconds=5)
            )
            ids.append(dep.deployment_id)
    finally:
        db.close()
    return ids


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


# -- diff --------------------------------------------------------------------------------


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


# -- prune -------------------------------------------------------------------------------


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


# -- export / import -----------------------------------------------------------------------


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
