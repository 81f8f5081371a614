"""sbkube end to end on the local API server: the real ``sbkube`` script, helm and kubectl.

Each test runs the console script in a subprocess against a memory cluster, either in
process (``--memory-cluster FILE``) or served by ``sbkube memory-cluster serve FILE
--kubeconfig OUT`` and reached with ``--kubeconfig OUT``, as a user would, and checks what
the record says against what helm and kubectl report.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.kube

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS = REPO_ROOT / "tests" / "fixtures" / "apiserver" / "charts"
# The fields a server writes, which differ between two clusters given the same objects: a
# Service's address too (allocated when it is created, so it depends on what came before).
SERVER_FIELDS = frozenset(
    {"uid", "resourceVersion", "creationTimestamp", "managedFields", "clusterIP", "clusterIPs"}
    | {"lastTransitionTime", "lastUpdateTime", "startTime", "completionTime"}
)


class Spawned:
    """A running command whose stderr is collected line by line in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.err_lines: list[str] = []
        self._new_line = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._new_line:
                self.err_lines.append(line.rstrip("\n"))
                self._new_line.notify_all()

    def wait_for(self, text: str, timeout: float = 300) -> str:
        """Blocks until a stderr line contains ``text``; returns that line."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for line in self.err_lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"{text!r} not on stderr within {timeout}s; stderr so far:\n"
                        + "\n".join(self.err_lines)
                    )
                self._new_line.wait(min(left, 0.1))

    def finish(self, timeout: float = 60) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.finish()

    @property
    def stderr(self) -> str:
        return "\n".join(self.err_lines)


class Tools:
    """sbkube, helm and kubectl with one test's environment (state store, helm homes)."""

    def __init__(self, sbkube: str, helm: str, kubectl: str, tmp_path: Path) -> None:
        self.sbkube_exe, self.helm_exe, self.kubectl_exe = sbkube, helm, kubectl
        self.cwd = tmp_path
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SBKUBE_") and k not in ("KUBECONFIG", "PYTHONPATH")
        }
        env.update(
            {
                # The script imports the tree under test, not whatever is installed.
                "PYTHONPATH": str(REPO_ROOT),
                "SBKUBE_STATE_URL": str(tmp_path / "state.db"),
                "SBKUBE_HELM": helm,
                "SBKUBE_KUBECTL": kubectl,
                "PATH": os.pathsep.join([str(Path(helm).parent), env.get("PATH", "")]),
                "SBKUBE_OPERATOR": "e2e-tester",
                "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
                "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
                "HELM_DATA_HOME": str(tmp_path / "helm-data"),
            }
        )
        self.env = env
        self.spawned: list[Spawned] = []

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**self.env, **(extra or {})}

    def sbkube(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.sbkube_exe, *args],
            capture_output=True,
            text=True,
            env=self._env(env),
            cwd=self.cwd,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = self.sbkube(*args, env=env)
        assert done.returncode == 0, f"sbkube {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.ok(*args, "-o", "json", env=env))

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> Spawned:
        proc = subprocess.Popen(
            [self.sbkube_exe, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self._env(env),
            cwd=self.cwd,
            # A session of its own: the helm or kubectl it starts can be ended with it.
            start_new_session=True,
        )
        spawned = Spawned(proc)
        self.spawned.append(spawned)
        return spawned

    def serve(self, file: Path, kubeconfig: Path, env: dict[str, str] | None = None) -> Spawned:
        """``sbkube memory-cluster serve FILE --kubeconfig OUT``, once it is listening."""
        server = self.spawn(
            "memory-cluster", "serve", str(file), "--kubeconfig", str(kubeconfig), env=env
        )
        server.wait_for("serving ")
        return server

    def _run(self, argv: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, timeout=120, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} failed ({done.returncode}): {done.stderr}")
        return done

    def kubectl(self, kubeconfig: Path, *args: str) -> Any:
        """``kubectl ARGS -o json`` against ``kubeconfig``, parsed."""
        argv = [self.kubectl_exe, "--kubeconfig", str(kubeconfig), *args, "-o", "json"]
        return json.loads(self._run(argv, check=True).stdout)

    def helm(self, kubeconfig: Path, *args: str) -> str:
        return self._run([self.helm_exe, "--kubeconfig", str(kubeconfig), *args], True).stdout

    def close(self) -> None:
        for spawned in self.spawned:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(spawned.proc.pid, signal.SIGKILL)
            spawned.proc.wait(30)


@pytest.fixture
def tools(
    sbkube_exe: str, helm_binary: str, kubectl_binary: str, tmp_path: Path
) -> Iterator[Tools]:
    runner = Tools(sbkube_exe, helm_binary, kubectl_binary, tmp_path)
    yield runner
    runner.close()


def app_dir(
    tmp_path: Path, name: str, config: dict[str, Any], charts: tuple[str, ...] = ()
) -> Path:
    """A fresh app directory with ``config`` as config.yaml and copies of the named charts."""
    directory = tmp_path / name
    directory.mkdir()
    for chart in charts:
        shutil.copytree(CHARTS / chart, directory / "charts" / chart)
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    return directory


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def recorded(tools: Tools, deployment: str = "latest") -> dict[str, Any]:
    return dict(tools.json("state", "show", deployment))


def resources(app: dict[str, Any]) -> dict[str, str | None]:
    """``{Kind/name: hook}`` of one recorded app's resources."""
    return {f"{r['kind']}/{r['name']}": r["hook"] for r in app["resources"]}


# ---------------------------------------------------------------- the README walkthrough


def walkthrough(tools: Tools, demo: Path, target: list[str]) -> None:
    """examples/walkthrough.sh: deploy, change a value, a manifest, drop a file, deploy,
    diff, roll back."""
    tools.ok("deploy", "--app-dir", str(demo), *target)
    config = demo / "config.yaml"
    text = config.read_text().replace("replicaCount: 1", "replicaCount: 2")
    config.write_text(
        text.replace("[manifests/web.yaml, manifests/svc.yaml]", "[manifests/web.yaml]")
    )
    web = demo / "manifests" / "web.yaml"
    web.write_text(web.read_text().replace("nginx:1.27-alpine", "nginx:1.28-alpine"))
    second = tools.ok("deploy", "--app-dir", str(demo), *target)
    assert re.search(r"^redis\s+helm\s+demo\s+success\s+upgrade rev 1->2", second, re.M), second
    assert re.search(r"^web\s+delete\s+Service\s+demo\s+web$", second, re.M), second
    diff = tools.ok("state", "diff", "latest~1", "latest")
    assert "~ replicaCount: 1 -> 2" in diff
    assert "- Service/demo/web (v1)" in diff
    tools.ok("rollback", "--app-dir", str(demo), *target)


def normalised_record(record: dict[str, Any]) -> dict[str, Any]:
    """A deployment record without what differs between two runs: ids, times, pids, the
    command line (which names the cluster option) and the cluster's name and identity (a
    served cluster is shown by its context and address, like any cluster reached by
    kubeconfig; two cluster files are two clusters, each with its kube-system UID)."""
    drop = {
        "cluster",
        "cluster_id",
        "deployment_id",
        "started_at",
        "finished_at",
        "pid",
        "command_args",
        "rollback_target_id",
    }
    out = {k: v for k, v in record.items() if k not in drop}
    out["apps"] = []
    for app in record["apps"]:
        app = {
            k: v
            for k, v in app.items()
            if k not in ("app_id", "deployment_id", "started_at", "finished_at")
        }
        if app.get("rollback_info"):
            app["rollback_info"] = {
                k: v
                for k, v in app["rollback_info"].items()
                if k not in ("from_deployment", "to_deployment")
            }
        out["apps"].append(app)
    return out


def without_server_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_server_fields(v) for k, v in value.items() if k not in SERVER_FIELDS}
    if isinstance(value, list):
        return [without_server_fields(v) for v in value]
    return value


def live_objects(tools: Tools, kubeconfig: Path) -> list[Any]:
    # Helm's release Secrets are left out: they carry the times of their revisions.
    listed = tools.kubectl(
        kubeconfig,
        "get",
        "deployments,services,configmaps,secrets",
        "-n",
        "demo",
        "-l",
        "owner!=helm",
    )
    return sorted(
        (without_server_fields(item) for item in listed["items"]),
        key=lambda o: (o["kind"], o["metadata"]["name"]),
    )


def helm_revisions(tools: Tools, kubeconfig: Path) -> list[tuple[Any, ...]]:
    history = json.loads(tools.helm(kubeconfig, "history", "redis", "-n", "demo", "-o", "json"))
    return [(h["revision"], h["status"], h["chart"], h["description"]) for h in history]


def test_walkthrough_served_and_in_process_give_the_same_records_and_objects(
    tools: Tools, tmp_path: Path
) -> None:
    served_file, served_config = tmp_path / "served.json", tmp_path / "served.kubeconfig"
    server = tools.serve(served_file, served_config)
    # One app directory for both runs: its path is in the ownership labels sbkube writes.
    demo = shutil.copytree(REPO_ROOT / "examples" / "demo", tmp_path / "demo")
    walkthrough(tools, demo, ["--kubeconfig", str(served_config)])
    served_records = [recorded(tools, d["deployment_id"]) for d in tools.json("state", "list")]

    tools.env["SBKUBE_STATE_URL"] = str(tmp_path / "in-process.db")
    own_file = tmp_path / "in-process.json"
    shutil.rmtree(demo)
    shutil.copytree(REPO_ROOT / "examples" / "demo", demo)
    walkthrough(tools, demo, ["--memory-cluster", str(own_file)])
    own_records = [recorded(tools, d["deployment_id"]) for d in tools.json("state", "list")]

    assert [r["command"] for r in served_records] == ["rollback", "deploy", "deploy"]
    assert all(re.fullmatch(r"memory@127\.0\.0\.1:\d+", r["cluster"]) for r in served_records)
    assert [r["cluster"] for r in own_records] == ["memory"] * 3
    assert [normalised_record(r) for r in served_records] == [
        normalised_record(r) for r in own_records
    ]
    # Both runs left the same objects and the same helm history on their clusters.
    own_config = tmp_path / "in-process.kubeconfig"
    own_server = tools.serve(own_file, own_config)
    served_live = live_objects(tools, served_config)
    assert {(o["kind"], o["metadata"]["name"]) for o in served_live} >= {
        ("Deployment", "redis"),
        ("Deployment", "web"),
        ("Service", "web"),
        ("Secret", "redis-auth"),
    }
    assert served_live == live_objects(tools, own_config)
    assert helm_revisions(tools, served_config) == helm_revisions(tools, own_config)
    assert [r[:2] for r in helm_revisions(tools, own_config)] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]
    assert server.stop() == 0
    assert own_server.stop() == 0


# ---------------------------------------------------------------- what helm installed


def deploy_hooks_chart_twice(tools: Tools, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """Serves a cluster, deploys the hooks chart twice (install, upgrade) through it and
    returns the kubeconfig and the two recorded apps, each checked against helm's manifest
    of its revision."""
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    tools.serve(file, kubeconfig)
    config = {"namespace": "jobs", "apps": {"h": {"type": "helm", "chart": "./charts/hooks"}}}
    demo = app_dir(tmp_path, "hooks", config, charts=("hooks",))
    apps = []
    for revision in (1, 2):
        # Nothing changed for the second: only --force-upgrade makes helm upgrade.
        force = ["--force-upgrade"] if revision == 2 else []
        tools.ok("deploy", "--app-dir", str(demo), "--kubeconfig", str(kubeconfig), *force)
        [app] = recorded(tools)["apps"]
        assert app["helm_releases"][0]["revision"] == revision
        manifest = tools.helm(kubeconfig, "get", "manifest", "h", "-n", "jobs")
        installed = {
            f"{o['kind']}/{o['metadata']['name']}" for o in yaml.safe_load_all(manifest) if o
        }
        assert installed == {"ConfigMap/h-main"}
        # The release's objects are recorded as helm installed them, hooks apart.
        assert {k for k, hook in resources(app).items() if hook is None} == installed
        apps.append(app)
    return kubeconfig, apps


def test_hooks_are_recorded_with_their_hook_and_test_pods_never(
    tools: Tools, tmp_path: Path
) -> None:
    kubeconfig, (installed, upgraded) = deploy_hooks_chart_twice(tools, tmp_path)
    assert resources(installed)["Job/h-pre-install"] == "pre-install"
    assert resources(upgraded)["Job/h-post-upgrade"] == "post-upgrade"
    assert "Pod/h-test" not in resources(installed) | resources(upgraded)
    live = tools.kubectl(kubeconfig, "get", "jobs,pods,configmaps", "-n", "jobs")["items"]
    live_names = {f"{o['kind']}/{o['metadata']['name']}" for o in live}
    assert live_names == {"ConfigMap/h-main", "Job/h-pre-install", "Job/h-post-upgrade"}


def test_only_the_hooks_that_ran_in_a_revision_are_recorded(tools: Tools, tmp_path: Path) -> None:
    _, (installed, upgraded) = deploy_hooks_chart_twice(tools, tmp_path)
    hooks = [
        {k: v for k, v in resources(app).items() if v is not None} for app in (installed, upgraded)
    ]
    # The post-upgrade Job does not exist after the install: recording it as created
    # would make the record say what the cluster does not hold.
    assert hooks == [{"Job/h-pre-install": "pre-install"}, {"Job/h-post-upgrade": "post-upgrade"}]


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def test_a_crd_and_its_custom_resource_in_one_app_and_in_a_chart(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    gadget = {
        "apiVersion": "example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1"},
        "spec": {"size": 1},
    }
    demo = app_dir(
        tmp_path,
        "crd",
        {
            "namespace": "kit",
            "apps": {
                "gadgets": {"type": "yaml", "manifests": ["gadgets.yaml"]},
                "widgets": {"type": "helm", "chart": "./charts/crd", "depends_on": ["gadgets"]},
            },
        },
        charts=("crd",),
    )
    (demo / "gadgets.yaml").write_text(yaml.safe_dump_all([WIDGET_CRD, gadget]))
    target = ["--app-dir", str(demo), "--kubeconfig", str(kubeconfig)]

    first = tools.json("deploy", *target)
    assert first["status"] == "success", first
    apps = {a["name"]: a for a in recorded(tools)["apps"]}
    # The target namespace did not exist: the YAML app created it, and says so.
    assert resources(apps["gadgets"]) == {
        "Namespace/kit": None,
        "CustomResourceDefinition/gadgets.example.com": None,
        "Gadget/g1": None,
    }
    assert {r["action"] for r in apps["gadgets"]["resources"]} == {"create"}
    assert "Widget/widgets-widget" in resources(apps["widgets"])
    live = tools.kubectl(kubeconfig, "get", "gadgets,widgets", "-n", "kit")["items"]
    assert {(o["kind"], o["metadata"]["name"]) for o in live} == {
        ("Gadget", "g1"),
        ("Widget", "widgets-widget"),
    }
    # helm installed the chart's crds/ before its templates.
    crds = tools.kubectl(kubeconfig, "get", "customresourcedefinitions")["items"]
    assert {o["metadata"]["name"] for o in crds} == {"gadgets.example.com", "widgets.example.com"}

    again = tools.json("deploy", *target)
    assert again["status"] == "success", again
    yaml_app = next(a for a in again["apps"] if a["name"] == "gadgets")
    assert {c["action"] for c in yaml_app["changes"]} == {"unchanged"}
    assert server.stop() == 0


# ---------------------------------------------------------------- failures


def test_kill_9_during_helm_upgrade_leaves_a_pending_release_the_next_deploy_recovers(
    tools: Tools, tmp_path: Path
) -> None:
    file = tmp_path / "cluster.json"
    demo = shutil.copytree(REPO_ROOT / "examples" / "demo", tmp_path / "demo")
    target = ["--app-dir", str(demo), "--memory-cluster", str(file)]
    tools.ok("deploy", *target)
    config = demo / "config.yaml"
    config.write_text(config.read_text().replace("replicaCount: 1", "replicaCount: 3"))

    # The cluster runs inside the deploy, so the hook goes in the deploy's environment.
    deploy = tools.spawn("deploy", *target, env={"SBKUBE_MEMORY_BLOCK_ON": "redis"})
    deploy.wait_for("BLOCKED redis")
    os.kill(deploy.proc.pid, signal.SIGKILL)
    assert deploy.finish() == -signal.SIGKILL
    # The helm it started waits on a server that is gone: it goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(deploy.proc.pid, signal.SIGKILL)

    kubeconfig = tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    history = json.loads(tools.helm(kubeconfig, "history", "redis", "-n", "demo", "-o", "json"))
    assert [(h["revision"], h["status"]) for h in history] == [
        (1, "deployed"),
        (2, "pending-upgrade"),
    ]
    assert server.stop() == 0

    recovered = tools.sbkube("deploy", *target)
    assert recovered.returncode == 0, recovered.stderr
    assert re.search(r"marked deployment dep-\S+ as interrupted", recovered.stderr)
    assert (
        "release demo/redis was left pending-upgrade at revision 2 by an interrupted run; "
        "rolled back to revision 1" in recovered.stderr
    )
    record = recorded(tools)
    assert record["status"] == "success"
    redis = next(a for a in record["apps"] if a["name"] == "redis")
    assert redis["helm_releases"][0]["revision"] == 4
    assert redis["helm_releases"][0]["values"]["replicaCount"] == 3
    statuses = [d["status"] for d in tools.json("state", "list")]
    assert statuses == ["success", "interrupted", "success"]


def test_wait_on_a_deployment_held_unready_fails_with_helms_message(
    tools: Tools, tmp_path: Path
) -> None:
    demo = app_dir(
        tmp_path,
        "slow",
        {
            "namespace": "slow",
            "apps": {
                "shop": {"type": "helm", "chart": "./charts/web", "wait": True, "timeout": "3s"}
            },
        },
        charts=("web",),
    )
    done = tools.sbkube(
        "deploy",
        "--app-dir",
        str(demo),
        "--memory-cluster",
        str(tmp_path / "cluster.json"),
        env={"SBKUBE_MEMORY_UNREADY": "shop-web"},
    )
    assert done.returncode == 1, done.stderr
    record = recorded(tools)
    [app] = record["apps"]
    assert (record["status"], app["status"]) == ("failed", "failed")
    message = app["error_message"]
    assert message.startswith("helm upgrade --install shop failed: "), message
    assert "Deployment/slow/shop-web not ready" in message, message
    # helm recorded the failed revision too, with the same words.
    kubeconfig = tmp_path / "kubeconfig"
    server = tools.serve(tmp_path / "cluster.json", kubeconfig)
    [revision] = json.loads(tools.helm(kubeconfig, "history", "shop", "-n", "slow", "-o", "json"))
    assert revision["status"] == "failed"
    assert "shop-web not ready" in revision["description"]
    assert server.stop() == 0


def test_two_deploys_to_one_target_the_lock_holds(tools: Tools, tmp_path: Path) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig, env={"SBKUBE_MEMORY_BLOCK_ON": "web"})
    demo = shutil.copytree(REPO_ROOT / "examples" / "demo", tmp_path / "demo")
    target = ["--app-dir", str(demo), "--kubeconfig", str(kubeconfig)]
    first = tools.spawn("deploy", *target)
    server.wait_for("BLOCKED web")

    second = tools.sbkube("deploy", *target)

    assert second.returncode == 1, second.stderr
    line = one_error_line(second.stderr)
    assert re.match(r"error: target memory@127\.0\.0\.1:\d+/demo is locked: deploy \(dep-", line), (
        line
    )
    assert f"pid {first.proc.pid} " in line, line
    assert first.proc.poll() is None
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.finish()
    # A write still hangs in the server, by design; SIGTERM stops it all the same.
    assert server.stop() == 0


# ---------------------------------------------------------------- serve itself


def test_serve_writes_a_private_kubeconfig_refuses_other_users_and_saves_on_sigterm(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    pid = server.proc.pid

    second = tools.sbkube(
        "memory-cluster", "serve", str(file), "--kubeconfig", str(tmp_path / "other")
    )
    assert second.returncode == 1
    line = one_error_line(second.stderr)
    assert line.startswith(f"error: {file} is served by pid {pid} at http://127.0.0.1:"), line
    assert not (tmp_path / "other").exists()

    demo = shutil.copytree(REPO_ROOT / "examples" / "demo", tmp_path / "demo")
    refused = tools.sbkube("deploy", "--app-dir", str(demo), "--memory-cluster", str(file))
    assert refused.returncode == 1
    line = one_error_line(refused.stderr)
    assert line.startswith(f"error: {file} is served by pid {pid} "), line
    assert line.endswith("point --kubeconfig at its kubeconfig instead"), line

    subprocess.run(
        [
            tools.kubectl_exe,
            "--kubeconfig",
            str(kubeconfig),
            "create",
            "configmap",
            "kept",
            "--from-literal=k=v",
        ],
        check=True,
        capture_output=True,
    )
    assert server.stop(signal.SIGTERM) == 0
    saved = json.loads(file.read_text())
    assert any(
        o["kind"] == "ConfigMap" and o["metadata"]["name"] == "kept" for o in saved["objects"]
    )
    # Saved and unlocked: the file opens again, with the object in it.
    again = tools.serve(file, kubeconfig)
    assert tools.kubectl(kubeconfig, "get", "configmap", "kept")["data"] == {"k": "v"}
    assert again.stop(signal.SIGINT) == 0


# ---------------------------------------------------------------- unchanged releases, live diffs


def random_app(tmp_path: Path) -> Path:
    """A Helm app whose chart renders a randomly named Secret, a post-install Job and a
    test Pod, next to a YAML app."""
    demo = app_dir(
        tmp_path,
        "random",
        {
            "namespace": "rnd",
            "apps": {
                "r": {"type": "helm", "chart": "./charts/random"},
                "cfg": {"type": "yaml", "manifests": ["cfg.yaml"]},
            },
        },
        charts=("random",),
    )
    (demo / "cfg.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}})
        + "data: {mode: fast}\n"
    )
    return demo


def test_an_unchanged_redeploy_keeps_the_revision_and_records_every_resource_unchanged(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    target = ["--app-dir", str(random_app(tmp_path)), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)
    manifest = tools.helm(kubeconfig, "get", "manifest", "r", "-n", "rnd")
    installed = {f"{o['kind']}/{o['metadata']['name']}" for o in yaml.safe_load_all(manifest) if o}
    [secret] = [name for name in installed if name.startswith("Secret/")]

    plan = tools.json("deploy", "--dry-run", *target)
    again = tools.json("deploy", *target)

    for result in (plan, again):
        [release] = [a["release"] for a in result["apps"] if a["name"] == "r"]
        assert (release["action"], release["from_revision"], release["to_revision"]) == (
            "unchanged",
            1,
            1,
        )
    history = json.loads(tools.helm(kubeconfig, "history", "r", "-n", "rnd", "-o", "json"))
    assert [h["revision"] for h in history] == [1]
    app = next(a for a in recorded(tools)["apps"] if a["name"] == "r")
    assert app["helm_releases"][0]["revision"] == 1
    # Exactly helm's release objects, each unchanged: the random Secret kept its name.
    assert {f"{r['kind']}/{r['name']}": r["action"] for r in app["resources"]} == {
        name: "unchanged" for name in installed
    }
    assert secret in installed
    live = tools.kubectl(kubeconfig, "get", "secrets", "-n", "rnd", "-l", "owner!=helm")
    assert [f"Secret/{o['metadata']['name']}" for o in live["items"]] == [secret]
    assert "Pod/r-test" not in {f"{r['kind']}/{r['name']}" for r in app["resources"]}

    forced = tools.json("deploy", "--force-upgrade", *target)
    [release] = [a["release"] for a in forced["apps"] if a["name"] == "r"]
    assert (release["action"], release["to_revision"]) == ("upgrade", 2)
    assert server.stop() == 0


def test_diff_names_a_patched_field_and_is_clean_after_a_redeploy(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    target = ["--app-dir", str(random_app(tmp_path)), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)
    clean = tools.sbkube("diff", "--exit-code", *target)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No differences." in clean.stdout

    patch = ["-n", "rnd", "--type", "merge", "-p"]
    tools.kubectl(kubeconfig, "patch", "deployment", "r-app", *patch, '{"spec":{"replicas":4}}')
    tools.kubectl(kubeconfig, "patch", "configmap", "cfg", *patch, '{"data":{"mode":"slow"}}')

    drifted = tools.sbkube("diff", "--exit-code", *target)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "~ update Deployment/rnd/r-app: spec.replicas" in drifted.stdout
    assert "-  replicas: 4\n+  replicas: 1\n" in drifted.stdout
    assert "~ update ConfigMap/rnd/cfg: data.mode" in drifted.stdout
    as_json = json.loads(tools.sbkube("diff", "-o", "json", *target).stdout)
    assert as_json["changed"] is True
    assert {(o["kind"], tuple(o["fields"])) for a in as_json["apps"] for o in a["objects"]} == {
        ("Deployment", ("spec.replicas",)),
        ("ConfigMap", ("data.mode",)),
    }
    # Without --exit-code a diff is a report: exit 0 whatever it shows.
    assert tools.sbkube("diff", *target).returncode == 0

    tools.ok("deploy", *target)
    after = tools.sbkube("diff", "--exit-code", *target)
    assert after.returncode == 0, after.stdout + after.stderr
    assert (
        tools.kubectl(kubeconfig, "get", "deployment", "r-app", "-n", "rnd")["spec"]["replicas"]
        == 1
    )
    assert server.stop() == 0


def test_with_the_cluster_stopped_a_plan_or_diff_is_one_error_naming_it(
    tools: Tools, tmp_path: Path
) -> None:
    file, kubeconfig = tmp_path / "cluster.json", tmp_path / "kubeconfig"
    server = tools.serve(file, kubeconfig)
    target = ["--app-dir", str(random_app(tmp_path)), "--kubeconfig", str(kubeconfig)]
    tools.ok("deploy", *target)
    url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    assert server.stop() == 0

    for command in (["deploy", "--dry-run"], ["diff", "--exit-code"]):
        done = tools.sbkube(*command, *target)
        assert done.returncode == 1, done.stderr
        line = one_error_line(done.stderr)
        assert line.startswith(f"error: cluster memory ({url}) is unreachable: "), line
        assert done.stdout == ""
    # A plan is never recorded, and neither is anything else.
    assert [d["command"] for d in tools.json("state", "list")] == ["deploy"]


def test_template_shows_a_charts_crds(tools: Tools, tmp_path: Path) -> None:
    demo = app_dir(
        tmp_path,
        "crds",
        {"namespace": "kit", "apps": {"w": {"type": "helm", "chart": "./charts/crd"}}},
        charts=("crd",),
    )
    shown = [d for d in yaml.safe_load_all(tools.ok("template", "--app-dir", str(demo))) if d]
    assert {(d["kind"], d["metadata"]["name"]) for d in shown} == {
        ("CustomResourceDefinition", "widgets.example.com"),
        ("Widget", "w-widget"),
    }
