"""``sbkube state import --from-sbkube-db``: the original sbkube's history, carried over.

``tests/fixtures/legacy/sbkube-0.4.7.db`` was written by the original tool's own code
(PyPI ``sbkube`` 0.4.7, its ``DeploymentTracker``; ``make_sbkube_047_db.py`` beside it
regenerates it). Every expectation below is read from that file with ``sqlite3``, never
written down by hand, so a regenerated fixture is checked just the same. The rollback runs
the real sbkube, helm and kubectl against a served local API server and asks helm and
kubectl what the cluster holds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error

from sbkube.model import thaw

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "sbkube-0.4.7.db"
CHART = Path(__file__).resolve().parents[1] / "fixtures" / "charts" / "demo-redis"
# The secret values the generating script recorded (test data, see the script).
SECRETS = ("legacy-redis-pw-1", "legacy-redis-pw-2", "legacy-api-token-42", "legacy-db-pw-7",
           "legacy-cli-token-9")  # fmt: skip


def original_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return {
            table: [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
            for table in ("deployments", "app_deployments", "deployed_resources", "helm_releases")
        }
    finally:
        conn.close()


def ours(original_id: str) -> str:
    # dep-YYYYMMDDHHMMSS-xxxxxxxx -> dep-YYYYMMDD-HHMMSS-xxxxxxxx
    return f"{original_id[:12]}-{original_id[12:]}"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def store_bytes(state_db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(state_db.parent.glob(state_db.name + "*")))


@pytest.fixture
def legacy_db(tmp_path: Path) -> Path:
    copy = tmp_path / "deployments.db"
    shutil.copyfile(FIXTURE, copy)
    return copy


def test_import_maps_every_field_and_a_second_import_adds_nothing(
    sbkube: Any, store: Any, state_db: Path, legacy_db: Path
) -> None:
    before = hashlib.sha256(legacy_db.read_bytes()).hexdigest()
    rows = original_rows(legacy_db)
    assert len(rows["deployments"]) == 3  # the script's three runs
    # The original's own schema (its SQLAlchemy models, 0.4 to 0.9): its four tables, with
    # the constraint that keeps one row per Helm release.
    conn = sqlite3.connect(f"file:{legacy_db}?mode=ro", uri=True)
    try:
        master = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE type='table'"))
        ddl = " ".join(
            r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE sql NOTNULL")
        )
    finally:
        conn.close()
    assert set(master) == {"deployments", "app_deployments", "deployed_resources", "helm_releases"}
    assert "CONSTRAINT uq_helm_release UNIQUE (release_name, namespace)" in ddl

    first = sbkube.json("state", "import", "--from-sbkube-db", str(legacy_db))
    assert first["imported"] == 3 and first["skipped"] == 0
    assert first["imported_ids"] == [ours(d["deployment_id"]) for d in rows["deployments"]]

    repo = store()
    for dep in rows["deployments"]:
        rec = repo.get(ours(dep["deployment_id"]))
        assert rec.command_args[:2] == ("--from-sbkube-db", dep["deployment_id"])
        assert rec.started_at == utc(dep["timestamp"])
        assert (rec.cluster, rec.namespace) == (dep["cluster"], dep["namespace"])
        assert rec.app_dir == dep["app_config_dir"]
        assert rec.config_file == dep["config_file_path"]
        assert rec.command == dep["command"]
        assert rec.status == dep["status"]
        assert rec.error_message == dep["error_message"]
        assert rec.operator == dep["operator"]
        assert rec.sbkube_version == dep["sbkube_version"] == "0.4.7"
        assert rec.dry_run is bool(dep["dry_run"])
        # The original's command line, after the marker and its id; secrets hidden.
        args = loads(dep["command_args"]) or {}
        assert [a.split("=", 1)[0] for a in rec.command_args[2:]] == [f"--{k}" for k in args]
        for arg, (key, value) in zip(rec.command_args[2:], args.items(), strict=True):
            assert (str(value) not in arg) if key == "token" else arg == f"--{key}={value}"
        # The original kept no end time, and no profile in these runs.
        assert rec.finished_at is None and rec.profile is None
        assert rec.sources_snapshot == loads(dep["sources_snapshot"])
        snapshot = loads(dep["config_snapshot"])
        assert rec.config_snapshot["namespace"] == snapshot["namespace"]
        assert (
            rec.config_snapshot["cache_values"]["replicaCount"]
            == (snapshot["cache_values"]["replicaCount"])
        )
        assert rec.config_snapshot["database"]["password"] != snapshot["database"]["password"]
        assert [a["name"] for a in rec.config_snapshot["apps"]] == [
            a["name"] for a in snapshot["apps"]
        ]
        apps = [a for a in rows["app_deployments"] if a["deployment_id"] == dep["id"]]
        assert [a.name for a in rec.apps] == [a["app_name"] for a in apps]
        for app, original in zip(rec.apps, apps, strict=True):
            assert app.type == ("helm" if "helm" in original["app_type"] else "yaml")
            assert app.namespace == original["namespace"]
            assert app.status == original["status"]
            assert app.error_message == original["error_message"]
            assert thaw(app.config) == loads(original["app_config"])
            assert app.metadata["imported"]["type"] == original["app_type"]
            assert app.metadata["imported"]["id"] == original["id"]
            assert app.metadata["imported"]["status"] == original["status"]
            metadata = {
                k: v for k, v in thaw(app.metadata).items() if k not in ("imported", "chart_ref")
            }
            assert metadata == (loads(original["deployment_metadata"]) or {})
            rollback_info = thaw(app.rollback_info) if app.rollback_info is not None else None
            assert rollback_info == loads(original["rollback_info"])
            assert app.started_at == rec.started_at
            releases = [
                h for h in rows["helm_releases"] if h["app_deployment_id"] == original["id"]
            ]
            assert len(app.helm_releases) == len(releases)
            for rel, orig in zip(app.helm_releases, releases, strict=True):
                assert app.metadata["chart_ref"] == orig["chart"]
                assert rel.chart == Path(orig["chart"]).name
                assert (rel.release_name, rel.namespace, rel.chart_version, rel.revision) == (
                    orig["release_name"], orig["namespace"], orig["chart_version"],
                    orig["revision"],
                )  # fmt: skip
                assert rel.status == orig["status"]
                values = loads(orig["values"])
                assert rel.values["replicaCount"] == values["replicaCount"]
                assert rel.values["auth"]["password"] != values["auth"]["password"]
                assert rel.sealed is not None
            resources = [
                r for r in rows["deployed_resources"] if r["app_deployment_id"] == original["id"]
            ]
            assert [(r.api_version, r.kind, r.name, r.namespace, r.source_file)
                    for r in app.resources] == [
                (r["api_version"], r["kind"], r["name"], r["namespace"], r["source_file"])
                for r in resources
            ]  # fmt: skip
            for res, orig in zip(app.resources, resources, strict=True):
                expected = "update" if orig["action"] == "apply" else orig["action"]
                assert res.action == expected
                current = loads(orig["current_state"])
                if current["kind"] == "ConfigMap":
                    assert thaw(res.current_state["data"]) == current["data"]
                    previous = loads(orig["previous_state"])
                    if previous is not None:
                        assert thaw(res.previous_state["data"]) == previous["data"]
                else:  # the Secret: sealed, not stored
                    assert res.sealed is not None

    data = store_bytes(state_db)
    for text in SECRETS:
        for form in (text, base64.b64encode(text.encode()).decode()):
            assert form.encode() not in data, f"{form} in the store"

    again = sbkube.json("state", "import", "--from-sbkube-db", str(legacy_db))
    assert again["imported"] == 0 and again["skipped"] == 3
    assert store().count() == 3
    assert hashlib.sha256(legacy_db.read_bytes()).hexdigest() == before

    # The read commands take them like any deployment.
    newest, middle, oldest = (ours(d["deployment_id"]) for d in reversed(rows["deployments"]))
    listed = sbkube.json("state", "list")
    assert [d["deployment_id"] for d in listed] == [newest, middle, oldest]
    shown = sbkube("state", "show", middle)
    assert shown.returncode == 0, shown.stderr
    assert f"its id {rows['deployments'][1]['deployment_id']}" in shown.stdout
    history = sbkube.json("state", "history", "settings")
    assert [h["deployment_id"] for h in history] == [middle, oldest]
    diff = sbkube("state", "diff", oldest, middle)
    assert diff.returncode == 0, diff.stderr
    assert "-  greeting: hello" in diff.stdout and "+  greeting: hi" in diff.stdout


@pytest.mark.parametrize("kind", ["text", "our-own-store", "empty-sqlite", "missing", "dir"])
def test_a_file_that_is_not_the_originals_database_is_refused(
    sbkube: Any, store: Any, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "input.db"
    if kind == "text":
        path.write_text("deployments\n")
    elif kind == "our-own-store":
        other = tmp_path / "other.db"
        sbkube.json("state", "import", "--from-sbkube-db", str(FIXTURE),
                    env={"SBKUBE_STATE_URL": str(other)})  # fmt: skip
        path = other
    elif kind == "empty-sqlite":
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    elif kind == "dir":
        path.mkdir()

    proc = sbkube("state", "import", "--from-sbkube-db", str(path))

    assert_one_line_error(proc, str(path))
    assert store().count() == 0


class Tools:
    """The real kubectl and helm against the served cluster."""

    def __init__(self, env: dict[str, str], kubectl: str, helm: str, kubeconfig: Path) -> None:
        self.env, self.kubectl, self.helm = env, kubectl, helm
        self.kubeconfig = str(kubeconfig)

    def __call__(self, tool: str, *argv: str, stdin: str | None = None) -> str:
        exe = self.helm if tool == "helm" else self.kubectl
        proc = subprocess.run(
            [exe, "--kubeconfig", self.kubeconfig, *argv],
            capture_output=True, text=True, env=self.env, input=stdin, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


@pytest.mark.helm
@pytest.mark.kube
def test_rollback_to_an_imported_deployment(
    sbkube: Any,
    served: Any,
    kubectl_binary: str,
    helm_binary: str,
    legacy_db: Path,
    state_db: Path,
    tmp_path: Path,
) -> None:
    rows = original_rows(legacy_db)
    first, second, failed = (ours(d["deployment_id"]) for d in rows["deployments"])
    release = rows["helm_releases"][0]
    v1 = loads(release["values"])
    v2 = loads(rows["deployments"][1]["config_snapshot"])["cache_values"]
    settings = {
        loads(r["current_state"])["kind"]: loads(r["current_state"])
        for r in rows["deployed_resources"]
        if r["app_deployment_id"] == rows["app_deployments"][1]["id"]
    }
    _server, kubeconfig = served()
    tools = Tools(sbkube.env, kubectl_binary, helm_binary, kubeconfig)
    ns = release["namespace"]

    # The cluster as the original left it after its second run: the release upgraded to
    # v2 values, the ConfigMap changed, the Secret's token changed by hand since.
    tools("kubectl", "create", "namespace", ns)
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    (tmp_path / "v2.json").write_text(json.dumps(v2))
    tools("helm", "install", release["release_name"], str(CHART), "-n", ns,
          "-f", str(tmp_path / "v1.json"))  # fmt: skip
    tools("helm", "upgrade", release["release_name"], str(CHART), "-n", ns,
          "-f", str(tmp_path / "v2.json"))  # fmt: skip
    cm = {**settings["ConfigMap"], "data": {"greeting": "changed"}}
    secret = {**settings["Secret"], "stringData": {"token": "changed-live-token"}}
    tools("kubectl", "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                          "items": [cm, secret]}))  # fmt: skip

    sbkube.json("state", "import", "--from-sbkube-db", str(legacy_db))
    # The user's converted app dir names the cluster the original recorded.
    app_dir = tmp_path / "app"
    (app_dir / "manifests").mkdir(parents=True)
    shutil.copytree(CHART, app_dir / "charts" / "demo-redis")
    (app_dir / "manifests" / "settings.yaml").write_text(json.dumps(cm))
    (app_dir / "config.yaml").write_text(
        f"cluster: {rows['deployments'][0]['cluster']}\nnamespace: {ns}\napps:\n"
        "  cache:\n    type: helm\n    chart: ./charts/demo-redis\n"
        "  settings:\n    type: yaml\n    manifests: [manifests/settings.yaml]\n"
    )
    base = ("rollback", "--app-dir", str(app_dir), "--kubeconfig", str(kubeconfig), "--yes")

    # What the original did not record enough of is refused, in one line, changing nothing.
    history_before = tools("helm", "history", "cache", "-n", ns, "-o", "json")
    refused = sbkube(*base, "--to", second)
    assert_one_line_error(refused, "cache", second, "no Helm revision")
    refused = sbkube(*base, "--to", failed, "--force")
    assert_one_line_error(refused, "migrate", "exec")
    assert tools("helm", "history", "cache", "-n", ns, "-o", "json") == history_before

    done = sbkube.json(*base, "--to", first)
    assert done["status"] == "success", done

    history = json.loads(tools("helm", "history", "cache", "-n", ns, "-o", "json"))
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[-1]["description"] == f"Rollback to {release['revision']}"
    values = json.loads(tools("helm", "get", "values", "cache", "-n", ns, "-o", "json"))
    assert values == v1
    live_cm = json.loads(tools("kubectl", "get", "configmap", "settings", "-n", ns, "-o", "json"))
    assert live_cm["data"] == settings["ConfigMap"]["data"]
    live_secret = json.loads(
        tools("kubectl", "get", "secret", "settings-token", "-n", ns, "-o", "json")
    )
    token = base64.b64decode(live_secret["data"]["token"]).decode()
    assert token == settings["Secret"]["stringData"]["token"]
    listed = sbkube.json("state", "list")
    assert listed[0]["command"] == "rollback"
    assert listed[0]["rollback_target_id"] == first
    data = store_bytes(state_db)
    for text in SECRETS:
        assert text.encode() not in data
