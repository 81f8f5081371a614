"""Git and http apps (``sbkube.sources``): an app dir in the original's ``sbkube.yaml``
whose chart and manifests live in a git repository (``${repos.NAME}``) and whose manifest
is downloaded over http, deployed by the real ``sbkube`` against a served memory cluster
and checked with the real git, helm and kubectl (never by re-reading our record alone)."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Kube

pytestmark = pytest.mark.kube

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "values.yaml": "color: red\n",
    "templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-colors\n"
        "data:\n  color: {{ .Values.color | quote }}\n"
    ),
}


def _plain(value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  value: {value}\n"


class Repo:
    """A work tree and the bare repository (file://) it pushes to."""

    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        self.bare = root / "upstream.git"
        self.work.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(self.bare)],
            check=True,
            env=GIT_ENV,
        )

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.work), *args],
            capture_output=True,
            text=True,
            check=True,
            env=GIT_ENV,
        )
        return done.stdout.strip()

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", str(self.bare), "main")
        return self.git("rev-parse", "HEAD")


def _sbkube_yaml(kubeconfig: str, repo_url: str, branch: str = "main") -> str:
    return f"""apiVersion: sbkube/v1
settings:
  namespace: src
  kubeconfig: {kubeconfig}
  kubeconfig_context: memory
  git_repos:
    upstream:
      url: {repo_url}
      branch: {branch}
apps:
  source:
    type: git
    repo: upstream
    path: charts/web
  web:
    type: helm
    chart: ${{repos.source}}/charts/web
    depends_on: [source]
  plain:
    type: yaml
    files: ["${{repos.source}}/manifests/plain.yaml"]
    depends_on: [source]
"""


@pytest.fixture
def git_dir(tmp_path: Path) -> tuple[Path, Repo]:
    repo = Repo(tmp_path / "repo")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "sbkube.yaml").write_text(_sbkube_yaml("./cluster.kubeconfig", repo.url))
    return app_dir, repo


def _deploy(sbkube: Any, app_dir: Path, *extra: str) -> dict[str, Any]:
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json", *extra)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _source(sbkube: Any, dep_id: str, app: str) -> dict[str, Any]:
    record = sbkube.json("state", "show", dep_id)
    (found,) = [a for a in record["apps"] if a["name"] == app]
    return found["metadata"]["source"]  # type: ignore[no-any-return]


def _live(k: Kube) -> tuple[str, str]:
    color = k.kubectl("get", "configmap", "web-colors", "-n", "src")["data"]["color"]
    value = k.kubectl("get", "configmap", "plain", "-n", "src")["data"]["value"]
    return color, value


def test_a_moving_branch_is_recorded_by_commit_and_rolled_back_to_the_first(
    sbkube, git_dir, kube, tmp_path
):
    app_dir, repo = git_dir
    k = kube(app_dir)
    first_sha = repo.commit(
        {**{f"charts/web/{n}": t for n, t in CHART.items()}, "manifests/plain.yaml": _plain("one")},
        "one",
    )
    first = _deploy(sbkube, app_dir)
    assert {a["name"]: a["status"] for a in first["apps"]} == dict.fromkeys(
        ("source", "web", "plain"), "success"
    )
    assert _live(k) == ("red", "one")
    source = _source(sbkube, first["deployment_id"], "source")
    assert source == {
        "kind": "git",
        "repo": repo.url,
        "ref": "branch main",
        "commit": first_sha,
        "path": "charts/web",
    }
    table = sbkube("state", "show", first["deployment_id"]).stdout
    assert any(
        line.split()[:4] == ["source", repo.url, "branch", "main"] and first_sha in line
        for line in table.splitlines()
    ), table
    # The chart came from the checkout of that commit, in sbkube's cache.
    assert k.helm("status", "web", "-n", "src")["version"] == 1

    second_sha = repo.commit(
        {"charts/web/values.yaml": "color: blue\n", "manifests/plain.yaml": _plain("two")}, "two"
    )
    assert second_sha != first_sha
    second = _deploy(sbkube, app_dir)
    assert _live(k) == ("blue", "two")
    assert _source(sbkube, second["deployment_id"], "source")["commit"] == second_sha
    assert k.helm("status", "web", "-n", "src")["version"] == 2

    status = sbkube.json("status", "--app-dir", str(app_dir))
    assert {a["name"]: a["state"] for a in status["apps"]} == dict.fromkeys(
        ("source", "web", "plain"), "in-sync"
    )

    # state diff names the commit that moved.
    diff = sbkube.json("state", "diff", first["deployment_id"], second["deployment_id"])
    (moved,) = diff["sources"]
    assert moved["app"] == "source" and moved["change"] == "changed"
    assert moved["fields"] == [{"field": "commit", "old": first_sha, "new": second_sha}]
    text = sbkube("state", "diff", first["deployment_id"], second["deployment_id"])
    assert f'~ commit: "{first_sha}" -> "{second_sha}"' in text.stdout

    # Rolled back to the first deployment: the first commit's objects, as kubectl and
    # helm see them (the branch still points at the second).
    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    assert _live(k) == ("red", "one")
    history = k.helm("history", "web", "-n", "src")
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert "Rollback to 1" in history[-1]["description"]
    rolled = sbkube.json("state", "show", "latest")
    (src_app,) = [a for a in rolled["apps"] if a["name"] == "source"]
    assert src_app["metadata"]["source"]["commit"] == first_sha

    # Uninstalled: the objects that came from the repository are gone.
    gone = sbkube("uninstall", "--app-dir", str(app_dir), "-y")
    assert gone.returncode == 0, gone.stderr + gone.stdout
    names = {i["metadata"]["name"] for i in k.kubectl("get", "configmap", "-n", "src")["items"]}
    assert not names & {"plain", "web-colors"}
    assert all(r["status"] == "uninstalled" for r in k.helm("list", "-n", "src"))


def test_a_dry_run_clones_nothing_and_says_what_it_would_fetch(
    sbkube, git_dir, kube, state_db, tmp_path
):
    app_dir, repo = git_dir
    kube(app_dir)
    repo.commit(
        {**{f"charts/web/{n}": t for n, t in CHART.items()}, "manifests/plain.yaml": _plain("one")},
        "one",
    )
    cache = tmp_path / "cache"
    proc = sbkube("deploy", "--app-dir", str(app_dir), "--dry-run")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert f"app source would clone {repo.url} (branch main) into the cache" in proc.stderr
    assert "app web is not planned: it reads ${repos.source}, not fetched yet" in proc.stderr
    assert not cache.exists()


@pytest.mark.parametrize(
    ("field", "change", "code", "needle"),
    [
        ("branch", ("branch: main", "branch: nope"), 2, "apps.source.branch: "),
        ("repo", ("upstream.git", "missing.git"), 1, "apps.source.repo: "),
    ],
)
def test_a_bad_ref_or_url_is_one_line_naming_the_field_and_applies_nothing(
    sbkube, git_dir, kube, state_db, field, change, code, needle
):
    app_dir, repo = git_dir
    k = kube(app_dir)
    repo.commit(
        {**{f"charts/web/{n}": t for n, t in CHART.items()}, "manifests/plain.yaml": _plain("one")},
        "one",
    )
    config = app_dir / "sbkube.yaml"
    config.write_text(config.read_text().replace(*change))
    proc = sbkube("deploy", "--app-dir", str(app_dir))
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert k.helm("list", "-n", "src") == []
    assert not state_db.exists() or sbkube.json("state", "list") == []


class Served:
    """A loopback HTTP server (port 0) serving one file whose body a test changes; it
    counts the requests it got."""

    def __init__(self) -> None:
        self.body = b""
        self.requests: list[str] = []
        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.requests.append(self.path)
                if self.path != "/crd.yaml":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()
                self.wfile.write(served.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def web_server() -> Iterator[Served]:
    served = Served()
    yield served
    served.close()


def _http_dir(tmp_path: Path, url: str) -> Path:
    app_dir = tmp_path / "dl"
    app_dir.mkdir()
    (app_dir / "sbkube.yaml").write_text(
        f"""apiVersion: sbkube/v1
settings:
  namespace: dl
  kubeconfig: ./cluster.kubeconfig
apps:
  fetch:
    type: http
    url: {url}/crd.yaml
    dest: downloaded/plain.yaml
    headers: {{X-Team: s3cr3t-header-value}}
  plain:
    type: yaml
    files: [downloaded/plain.yaml]
    depends_on: [fetch]
"""
    )
    return app_dir


def test_a_changed_download_changes_the_recorded_digest_and_state_diff_shows_it(
    sbkube, kube, web_server, tmp_path, state_db
):
    app_dir = _http_dir(tmp_path, web_server.url)
    k = kube(app_dir)
    web_server.body = _plain("one").encode()
    first = _deploy(sbkube, app_dir)
    assert first["status"] == "success", first
    assert k.kubectl("get", "configmap", "plain", "-n", "dl")["data"]["value"] == "one"
    first_source = _source(sbkube, first["deployment_id"], "fetch")
    assert first_source == {
        "kind": "http",
        "url": f"{web_server.url}/crd.yaml",
        "dest": "downloaded/plain.yaml",
        "sha256": "sha256:" + hashlib.sha256(web_server.body).hexdigest(),
        "bytes": len(web_server.body),
    }
    assert (app_dir / "downloaded" / "plain.yaml").read_bytes() == web_server.body
    assert web_server.requests == ["/crd.yaml"]

    # The server's file changes: a dry run asks the server nothing and plans with the
    # file on disk; the next deploy downloads it again.
    web_server.body = _plain("two").encode()
    plan = sbkube("deploy", "--app-dir", str(app_dir), "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert f"app fetch would download {web_server.url}/crd.yaml to downloaded/plain.yaml" in (
        plan.stderr
    )
    assert web_server.requests == ["/crd.yaml"]
    second = _deploy(sbkube, app_dir)
    assert k.kubectl("get", "configmap", "plain", "-n", "dl")["data"]["value"] == "two"
    second_source = _source(sbkube, second["deployment_id"], "fetch")
    assert second_source["sha256"] == "sha256:" + hashlib.sha256(web_server.body).hexdigest()
    assert second_source["sha256"] != first_source["sha256"]

    diff = sbkube.json("state", "diff", first["deployment_id"], second["deployment_id"])
    (changed,) = diff["sources"]
    assert (changed["app"], changed["kind"], changed["change"]) == ("fetch", "http", "changed")
    assert {f["field"] for f in changed["fields"]} == {"sha256"}
    text = sbkube("state", "diff", first["deployment_id"], second["deployment_id"]).stdout
    assert f'~ sha256: "{first_source["sha256"]}" -> "{second_source["sha256"]}"' in text

    # Rolled back to the first: its objects come from the record, nothing is downloaded.
    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    assert k.kubectl("get", "configmap", "plain", "-n", "dl")["data"]["value"] == "one"
    assert len(web_server.requests) == 2

    # The header's value went to the server only: not in the record, not in the output.
    dump = sbkube("state", "show", second["deployment_id"], "-o", "json").stdout
    assert "s3cr3t-header-value" not in dump + plan.stdout + plan.stderr


def test_a_download_that_fails_is_one_line_and_applies_nothing(
    sbkube, kube, web_server, tmp_path, state_db
):
    app_dir = _http_dir(tmp_path, web_server.url)
    config = app_dir / "sbkube.yaml"
    config.write_text(config.read_text().replace("/crd.yaml", "/missing.yaml"))
    k = kube(app_dir)
    proc = sbkube("deploy", "--app-dir", str(app_dir))
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "apps.fetch.url: GET " in lines[0] and "404" in lines[0]
    assert k.kubectl("get", "configmap", "-n", "dl")["items"] == []
    assert not (app_dir / "downloaded").exists()
