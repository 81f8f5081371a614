"""`sbkube state list|show|history` through the real console script: tables, JSON, YAML,
filters, paging, id resolution and refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import deploy_args

from sbkube.state import DeploymentDatabase, DeploymentRepository, ResourceInput

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, list[str]]:
    """Four deployments on cluster k3s, oldest first (indexes used by the tests):
    0 demo, 3 days ago, redis rev 1; 1 shop, 5 h ago, web failed; 2 demo, 2 h ago, redis
    rev 2; 3 demo, 5 min ago, redis rev 3 + web failed (partially_failed)."""
    path = tmp_path / "state.db"
    db = DeploymentDatabase(path)
    repo = DeploymentRepository(db)
    plan: list[dict[str, Any]] = [
        {"ns": "demo", "ago": timedelta(days=3), "status": "success", "rev": 1, "apps": ["redis"]},
        {"ns": "shop", "ago": timedelta(hours=5), "status": "failed", "rev": None, "apps": ["web"]},
        {"ns": "demo", "ago": timedelta(hours=2), "status": "success", "rev": 2, "apps": ["redis"]},
        {
            "ns": "demo",
            "ago": timedelta(minutes=5),
            "status": "partially_failed",
            "rev": 3,
            "apps": ["redis", "web"],
        },
    ]
    ids = []
    for item in plan:
        dep = repo.create_deployment(
            cluster="k3s", namespace=item["ns"], started_at=NOW - item["ago"], operator="alice"
        )
        for name in item["apps"]:
            app = repo.start_app(
                dep.deployment_id, name=name, type="helm" if name == "redis" else "yaml"
            )
            if name == "redis" and item["rev"]:
                repo.add_helm_release(
                    app.app_id,
                    release_name="redis",
                    namespace=item["ns"],
                    chart="redis",
                    chart_version=f"0.{item['rev']}.0",
                    revision=item["rev"],
                    status="deployed",
                    values={"replicaCount": item["rev"]},
                )
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{name}-cfg", "namespace": item["ns"]},
                "data": {"rev": str(item["rev"])},
            }
            repo.add_resources(app.app_id, [ResourceInput.from_manifest(manifest, "create")])
            failed = name == "web" and item["status"] != "success"
            repo.finish_app(
                app.app_id,
                "failed" if failed else "success",
                error_message="boom" if failed else None,
            )
        repo.finish_deployment(dep.deployment_id, item["status"])
        ids.append(dep.deployment_id)
    db.close()
    return path, ids


class Cli:
    """The real console script against one store."""

    def __init__(self, exe: str, store_path: Path) -> None:
        self.exe, self.env = exe, {**os.environ, "SBKUBE_STATE_URL": str(store_path)}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.exe, *args], capture_output=True, text=True, env=self.env, check=False
        )

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def refused(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert "Traceback" not in proc.stderr
        return lines[0]


@pytest.fixture
def cli(sbkube_exe: str, store: tuple[Path, list[str]]) -> Cli:
    return Cli(sbkube_exe, store[0])


def test_list_table_newest_first(cli: Cli, store: tuple[Path, list[str]]) -> None:
    _, ids = store
    out = cli.ok("state", "list").splitlines()
    assert out[0].split()[:3] == ["ID", "COMMAND", "STATUS"]
    assert [line.split()[0] for line in out[1:]] == ids[::-1]
    assert "partially_failed" in out[1] and "1/2 (1 failed)" in out[1]


def test_list_json_and_yaml_agree(cli: Cli, store: tuple[Path, list[str]]) -> None:
    _, ids = store
    as_json = json.loads(cli.ok("state", "list", "-o", "json"))
    as_yaml = yaml.safe_load(cli.ok("state", "list", "-o", "yaml"))
    assert as_json == as_yaml
    assert [d["deployment_id"] for d in as_json] == ids[::-1]
    assert set(as_json[0]) >= {
        "deployment_id",
        "cluster",
        "namespace",
        "command",
        "status",
        "started_at",
        "finished_at",
        "operator",
        "app_counts",
    }
    assert as_json[0]["app_counts"] == {"failed": 1, "success": 1}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-n", "shop"], [1]),
        (["--app", "web"], [3, 1]),
        (["--status", "success"], [2, 0]),
        (["--status", "failed", "--status", "partially_failed"], [3, 1]),
        (["--since", "6h"], [3, 2, 1]),
        (["--since", (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")], [3, 2]),
        (["--limit", "2"], [3, 2]),
        (["--limit", "2", "--page", "2"], [1, 0]),
        (["--cluster", "elsewhere"], []),
    ],
)
def test_list_filters_and_paging(
    cli: Cli, store: tuple[Path, list[str]], args: list[str], expected: list[int]
) -> None:
    _, ids = store
    rows = json.loads(cli.ok("state", "list", *args, "-o", "json"))
    assert [r["deployment_id"] for r in rows] == [ids[i] for i in expected]


def test_show_table_and_latest_n(cli: Cli, store: tuple[Path, list[str]]) -> None:
    _, ids = store
    out = cli.ok("state", "show", "latest")
    assert f"Deployment: {ids[3]}" in out
    assert "partially_failed" in out and "boom" in out
    assert "RELEASE" in out and "0.3.0" in out and "ConfigMap" in out
    shown = json.loads(cli.ok("state", "show", "latest~1", "-o", "json"))
    assert shown["deployment_id"] == ids[2]
    assert shown["apps"][0]["helm_releases"][0]["revision"] == 2
    prefix = json.loads(cli.ok("state", "show", ids[0][:-2], "-o", "json"))
    assert prefix["deployment_id"] == ids[0]


def test_history_table_and_json(cli: Cli, store: tuple[Path, list[str]]) -> None:
    _, ids = store
    rows = json.loads(cli.ok("state", "history", "redis", "-o", "json"))
    assert [(r["deployment_id"], r["revision"], r["chart_version"]) for r in rows] == [
        (ids[3], 3, "0.3.0"),
        (ids[2], 2, "0.2.0"),
        (ids[0], 1, "0.1.0"),
    ]
    table = cli.ok("state", "history", "redis", "-n", "demo").splitlines()
    assert table[0].split()[0] == "DEPLOYMENT" and len(table) == 4
    assert "redis-0.3.0" in table[1] and "alice" in table[1]
    assert "No deployment of app 'nope'" in cli.ok("state", "history", "nope")


def test_refusals_are_one_line(cli: Cli, store: tuple[Path, list[str]]) -> None:
    _, ids = store
    near = ids[0][:-1] + ("0" if ids[0][-1] != "0" else "1")
    assert "did you mean" in cli.refused("state", "show", near)
    assert "only 4 deployment(s)" in cli.refused("state", "show", "latest~999")
    assert "--since" in cli.refused("state", "list", "--since", "yesterday")
    assert "--status" in cli.refused("state", "list", "--status", "sucess")


# -- history of deployed apps (real helm) ---------------------------------------------------


@pytest.mark.helm
def test_history_shows_and_filters_the_target(sbkube, app_dir, cluster_file):
    assert sbkube(*deploy_args(app_dir, cluster_file)).returncode == 0
    assert sbkube(*deploy_args(app_dir, cluster_file), "-n", "staging").returncode == 0

    table = sbkube("state", "history", "web")
    only = sbkube.json("state", "history", "web", "-n", "staging", "--cluster", "memory")
    none = sbkube("state", "history", "web", "--cluster", "elsewhere")

    header = table.stdout.splitlines()[0].split()
    assert header[:4] == ["DEPLOYMENT", "STARTED", "CLUSTER", "NAMESPACE"]
    assert re.search(r"memory\s+staging\s+deploy", table.stdout)
    assert re.search(r"memory\s+shop\s+deploy", table.stdout)
    assert [(r["cluster"], r["namespace"]) for r in only] == [("memory", "staging")]
    assert "No deployment of app 'web' recorded." in none.stdout
