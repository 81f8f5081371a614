"""The every-field fixtures (``tests/fixtures/original/every-single``: ``sbkube.yaml``;
``every-pair``: ``config.yaml`` + ``sources.yaml``, deployed with ``--profile staging``),
which together hold every field of the original sbkube's app models, each go through a
whole life on a served memory cluster: deploy, redeploy unchanged (no new Helm revision),
change, roll back, uninstall. After each step the record is compared with what helm
(``list``, ``history``, ``get manifest``, ``get values``) and kubectl (``get -o json``)
report: never with the record alone."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import Kube

pytestmark = pytest.mark.kube

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "original"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}
FETCHED = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\n"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True, env=GIT_ENV)
    return done.stdout.strip()


def _upstream(root: Path) -> tuple[str, str]:
    """A file:// repository with manifests/ on main, tagged v1: its URL and commit."""
    work, bare = root / "work", root / "upstream.git"
    (work / "manifests").mkdir(parents=True)
    (work / "manifests" / "cm.yaml").write_text(FETCHED.replace("fetched", "from-git"))
    _git("init", "-q", "--bare", "-b", "main", str(bare))
    _git("-C", str(work), "init", "-q", "-b", "main")
    _git("-C", str(work), "add", "-A")
    _git("-C", str(work), "commit", "-q", "-m", "one")
    _git("-C", str(work), "tag", "v1")
    _git("-C", str(work), "push", "-q", "--tags", str(bare), "main")
    return bare.as_uri(), _git("-C", str(work), "rev-parse", "HEAD")


@pytest.fixture
def served_file(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server of one directory holding fetched.yaml; its URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "fetched.yaml").write_text(FETCHED)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _ready(app_dir: Path, chart_repo: Any, served_file: str, tmp_path: Path) -> Path:
    """The fixture with its servers' URLs (and the repository's commit) written in."""
    chart_repo.publish("0.1.0", app_dir.parent / "charts" / "store")
    repo_url, commit = _upstream(tmp_path / "git")
    for path in app_dir.glob("*.yaml"):
        path.write_text(
            path.read_text()
            .replace("CHART_REPO_URL", chart_repo.url)
            .replace("GIT_REPO_URL", repo_url)
            .replace("GIT_COMMIT", commit)
            .replace("HTTP_URL", served_file)
        )
    return app_dir


def _deploy(sbkube: Any, app_dir: Path, *extra: str) -> dict[str, Any]:
    proc = sbkube("deploy", "--app-dir", str(app_dir), "-o", "json", *extra)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads(proc.stdout)
    assert {a["status"] for a in result["apps"]} == {"success"}, result
    return result  # type: ignore[no-any-return]


def _manifest(k: Kube, release: str, namespace: str) -> set[tuple[str, str]]:
    argv = [k.helm_exe, "--kubeconfig", str(k.kubeconfig), "get", "manifest", release]
    text = k.run([*argv, "-n", namespace])
    return {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(text) if d}


def _agrees(sbkube: Any, k: Kube, dep_id: str, namespace: str) -> dict[str, Any]:
    """The deployment's record, checked against helm and kubectl: each Helm app's revision,
    values and objects are helm's; each other recorded object is live as kubectl reads it,
    labelled as its app's."""
    record = sbkube.json("state", "show", dep_id)
    for app in record["apps"]:
        live = [r for r in app["resources"] if r["action"] != "delete"]
        if app["type"] == "helm":
            (rel,) = app["helm_releases"]
            status = k.helm("status", rel["release_name"], "-n", namespace)
            assert rel["revision"] == status["version"]
            assert rel["values"] == k.helm("get", "values", rel["release_name"], "-n", namespace)
            recorded = {(r["kind"], r["name"]) for r in live if not r.get("hook")}
            assert recorded == _manifest(k, rel["release_name"], namespace)
            continue
        for res in live:
            args = ["get", res["kind"].lower(), res["name"]]
            obj = k.kubectl(*args, *(["-n", res["namespace"]] if res["namespace"] else []))
            if res["kind"] != "Namespace":
                assert obj["metadata"]["labels"]["sbkube.io/app"] == app["name"]
        for res in (r for r in app["resources"] if r["action"] == "delete"):
            names = k.kubectl("get", res["kind"].lower(), "-n", res["namespace"])["items"]
            assert res["name"] not in {i["metadata"]["name"] for i in names}
    return record  # type: ignore[no-any-return]


def _history(k: Kube, namespace: str) -> int:
    return len(k.helm("history", "every-store", "-n", namespace))


def _web(k: Kube, namespace: str) -> dict[str, str]:
    return k.kubectl("get", "configmap", "web", "-n", namespace)["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("fixture", "namespace", "extra"),
    [("every-single", "every-a", ()), ("every-pair", "every-b", ("--profile", "staging"))],
)
def test_every_field_fixture_lives_a_whole_life(
    sbkube, dirs, kube, chart_repo, served_file, tmp_path, fixture, namespace, extra
):
    app_dir = _ready(dirs / fixture, chart_repo, served_file, tmp_path)
    k = kube(app_dir)
    k.kubectl_text("create", "namespace", namespace)
    k.kubectl_text("apply", "-n", namespace, "-f", str(app_dir / "manifests" / "stale.yaml"))

    first = _deploy(sbkube, app_dir, *extra)
    if extra:
        assert first["cluster"] == "every-b-staging"
    record = _agrees(sbkube, k, first["deployment_id"], namespace)
    assert {a["name"] for a in record["apps"]} >= {"marker", "store", "web", "steps", "check"}
    assert "later" not in {a["name"] for a in record["apps"]}  # enabled: false
    steps = next(a for a in record["apps"] if a["name"] == "steps")["metadata"]["steps"]
    # The action's steps in order, then its post_deploy hook.
    assert [s.get("action") or s["phase"] for s in steps] == ["apply", "delete", "post_deploy"]
    assert steps[1]["objects"] == [
        {"kind": "ConfigMap", "namespace": namespace, "name": "stale", "result": "delete"}
    ]
    assert "configmap/step" in (app_dir / "hooks.log").read_text()
    assert (app_dir / "downloads" / "fetched.yaml").read_text() == FETCHED
    assert _history(k, namespace) == 1

    # Unchanged: no new Helm revision, nothing applied.
    again = _deploy(sbkube, app_dir, *extra)
    _agrees(sbkube, k, again["deployment_id"], namespace)
    assert _history(k, namespace) == 1
    store = next(a for a in again["apps"] if a["name"] == "store")
    assert store["release"]["action"] == "unchanged"
    for app in again["apps"]:
        assert {c["action"] for c in app["changes"]} <= {"unchanged"}, app

    # Changed: a value of the chart and a manifest.
    config = next(p for p in (app_dir / "sbkube.yaml", app_dir / "config.yaml") if p.exists())
    config.write_text(config.read_text().replace("greeting: hi", "greeting: changed"))
    config.write_text(config.read_text().replace('"greeting=hey"', '"greeting=changed"'))
    web = app_dir / "manifests" / "web.yaml"
    web.write_text(web.read_text().replace("mode: v1", "mode: v2"))
    changed = _deploy(sbkube, app_dir, *extra)
    _agrees(sbkube, k, changed["deployment_id"], namespace)
    assert _history(k, namespace) == 2
    assert k.helm("get", "values", "every-store", "-n", namespace)["greeting"] == "changed"
    assert _web(k, namespace) == {"mode": "v2"}

    # Rolled back to the first deployment.
    back = sbkube("rollback", "--to", first["deployment_id"], "--app-dir", str(app_dir), "-y")
    assert back.returncode == 0, back.stderr + back.stdout
    assert k.helm("get", "values", "every-store", "-n", namespace)["greeting"] != "changed"
    assert _history(k, namespace) == 3
    assert _web(k, namespace) == {"mode": "v1"}

    # Uninstalled: helm keeps its history, kubectl finds none of the apps' objects.
    gone = sbkube("uninstall", "--app-dir", str(app_dir), "-y", *extra)
    assert gone.returncode == 0, gone.stderr + gone.stdout
    assert {r["status"] for r in k.helm("list", "-n", namespace)} == {"uninstalled"}
    left = k.kubectl(
        "get", "configmap", "-n", namespace, "-l", "app.kubernetes.io/managed-by=sbkube"
    )
    assert left["items"] == []


def _seen(k: Kube, namespace: str) -> dict[tuple[str, str], Any]:
    """What kubectl reads of each object in ``namespace``, but sbkube's ownership labels and
    annotations (they name the app dir) and what the server or helm stamps."""
    seen = {}
    for kind in ("configmap", "deployment", "secret", "service"):
        for item in k.kubectl("get", kind, "-n", namespace)["items"]:
            meta = item["metadata"]
            if item.get("type") == "helm.sh/release.v1" or meta["name"] == "kube-root-ca.crt":
                continue
            labels = {
                key: value
                for key, value in (meta.get("labels") or {}).items()
                if not key.startswith("sbkube.io/")
                and not (key == "app.kubernetes.io/managed-by" and value == "sbkube")
            }
            annotations = {
                key: value
                for key, value in (meta.get("annotations") or {}).items()
                if not key.startswith(
                    ("sbkube.io/", "meta.helm.sh/", "deployment.kubernetes.io/", "kubectl.")
                )
            }
            body = item.get("data") or (item.get("spec") or {}).get("template")
            seen[(item["kind"], meta["name"])] = (labels, annotations, body)
    return seen


@pytest.mark.parametrize(
    ("fixture", "namespace"), [("every-single", "every-a"), ("every-pair", "every-b")]
)
def test_converted_config_deploys_the_same_objects_elsewhere(
    sbkube,
    dirs,
    kube,
    chart_repo,
    served_file,
    tmp_path,
    kubectl_binary,
    helm_binary,
    fixture,
    namespace,
):
    app_dir = _ready(dirs / fixture, chart_repo, served_file, tmp_path)
    converted = sbkube("config", "convert", str(app_dir))
    assert converted.returncode == 0, converted.stderr
    header = [line for line in converted.stdout.splitlines() if line.startswith("#   ")]
    listed = {line[4:].split(": ", 1)[0] for line in header}
    ours = yaml.safe_load(converted.stdout)
    # Every field our format says differently is listed, with what became of it.
    original = yaml.safe_load(
        (app_dir / ("sbkube.yaml" if fixture == "every-single" else "config.yaml")).read_text()
    )
    for name, app in original["apps"].items():
        for key, value in app.items():
            if ours["apps"][name].get(key) != value:
                assert f"apps.{name}.{key}" in listed or any(
                    f.startswith(f"apps.{name}.{key}.") for f in listed
                ), f"apps.{name}.{key} is said differently and not listed"
    settings = original.get("settings") or yaml.safe_load((app_dir / "sources.yaml").read_text())
    prefix = "settings." if fixture == "every-single" else ""
    for key, value in settings.items():
        if ours.get(key) != value:
            assert f"{prefix}{key}" in listed, f"{prefix}{key} is said differently, not listed"

    # The original file, deployed to one cluster.
    k = kube(app_dir)
    _deploy(sbkube, app_dir)
    first = _seen(k, namespace)
    assert ("ConfigMap", "web") in first and ("ConfigMap", "hook-made") in first

    # Ours, deployed from a copy of the dir without the original files, to another.
    mine = dirs / f"{fixture}-ours"
    shutil.copytree(app_dir, mine, ignore=shutil.ignore_patterns("*.kubeconfig", "*.log"))
    for name in ("sbkube.yaml", "config.yaml", "sources.yaml", "sources-staging.yaml"):
        (mine / name).unlink(missing_ok=True)
    (mine / "config.yaml").write_text(converted.stdout)
    other = tmp_path / "other.kubeconfig"
    server = sbkube.spawn(
        "memory-cluster", "serve", str(tmp_path / "other.json"), "--kubeconfig", str(other)
    )
    server.wait_for("serving")
    second = _deploy(sbkube, mine, "--kubeconfig", str(other), "--context", "memory")
    assert second["cluster"] == ours["cluster"]
    k2 = Kube(other, helm_binary, kubectl_binary, sbkube.env)
    assert _seen(k2, namespace) == first
