"""Health on the local API server: every state Argo CD names, through ``sbkube status``.

The server runs in this process with its controller's clock stopped (``tick_seconds=0``):
a test holds an object Progressing, makes it Degraded or releases it (``ApiServer.hold``,
``degrade``, ``release``), and the real ``sbkube`` script, kubectl and helm reach it through
a kubeconfig. What sbkube reports is checked against what kubectl reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbkube.apiserver import ApiServer

pytestmark = pytest.mark.kube

REPO_ROOT = Path(__file__).resolve().parents[2]
# A bound on a hang, never a speed check (a loaded 2-core CI machine is slow).
HANG = 300


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": "nginx:1.27-alpine"}]},
            },
        },
    }


def job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 1,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": name, "image": "busybox:1.36"}],
                }
            },
        },
    }


def config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}}


class Shop:
    """An app dir (``web``: a Deployment and a ConfigMap; ``migrate``: a Job) deployed by
    the real script to a server of this process."""

    def __init__(self, tmp_path: Path, server: ApiServer, exe: str, helm: str, kubectl: str):
        self.server = server
        self.dir = tmp_path / "shop"
        (self.dir / "manifests").mkdir(parents=True)
        self.kubeconfig = tmp_path / "kubeconfig"
        server.write_kubeconfig(self.kubeconfig)
        self.exe, self.kubectl_exe = exe, kubectl
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBKUBE_")}
        env.pop("KUBECONFIG", None)
        env.update(
            {
                "PYTHONPATH": str(REPO_ROOT),
                "SBKUBE_STATE_URL": str(tmp_path / "state.db"),
                "SBKUBE_HELM": helm,
                "SBKUBE_KUBECTL": kubectl,
                "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
                "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
                "HELM_DATA_HOME": str(tmp_path / "helm-data"),
            }
        )
        self.env = env
        self.manifests("web", [deployment("web"), config_map("web-config")])
        self.manifests("migrate", [job("migrate")])
        self.configure({"web": {}, "migrate": {}})

    def manifests(self, app: str, docs: list[dict[str, Any]]) -> None:
        (self.dir / "manifests" / f"{app}.yaml").write_text(yaml.safe_dump_all(docs))

    def configure(self, apps: dict[str, dict[str, Any]]) -> None:
        config = {
            "namespace": "shop",
            "apps": {
                name: {"type": "yaml", "manifests": [f"manifests/{name}.yaml"], **extra}
                for name, extra in apps.items()
            },
        }
        (self.dir / "config.yaml").write_text(yaml.safe_dump(config))

    def argv(self, command: str, *args: str) -> list[str]:
        # Global options (-v) go before the command.
        first = [a for a in args if a == "-v"]
        args = tuple(a for a in args if a != "-v")
        return [
            self.exe,
            *first,
            command,
            "--app-dir",
            str(self.dir),
            "--kubeconfig",
            str(self.kubeconfig),
            *args,
        ]

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, *args),
            capture_output=True,
            text=True,
            env=self.env,
            timeout=HANG,
            check=False,
        )

    def deploy(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run("deploy", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def status(self, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
        """``status -o json --exit-code``: its exit code and its apps by name."""
        done = self.run("status", "-o", "json", "--exit-code", *args)
        assert done.returncode in (0, 1), done.stderr
        return done.returncode, {a["name"]: a for a in json.loads(done.stdout)["apps"]}

    def kubectl_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl_exe, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=HANG,
            check=check,
        )

    def kubectl(self, *args: str) -> Any:
        """``kubectl ARGS -o json``, parsed."""
        return json.loads(self.kubectl_run(*args, "-o", "json").stdout)


def healths(app: dict[str, Any]) -> dict[str, str]:
    """``{Kind/name: health}`` of an app's objects (the namespace an app created aside)."""
    return {
        f"{o['kind']}/{o['name']}": o["health"] for o in app["objects"] if o["kind"] != "Namespace"
    }


@pytest.fixture
def shop(tmp_path: Path, sbkube_exe: str, helm_binary: str, kubectl_binary: str) -> Iterator[Shop]:
    with ApiServer(tmp_path / "cluster.json", tick_seconds=0) as server:
        yield Shop(tmp_path, server, sbkube_exe, helm_binary, kubectl_binary)


def test_healthy(shop: Shop) -> None:
    shop.deploy()

    code, apps = shop.status()

    assert code == 0
    assert apps["web"]["state"] == "in-sync" and apps["web"]["health"] == "Healthy"
    assert healths(apps["web"]) == {"Deployment/web": "Healthy", "ConfigMap/web-config": "Healthy"}
    assert healths(apps["migrate"]) == {"Job/migrate": "Healthy"}
    # What the cluster says: all replicas available, the Job complete.
    web = shop.kubectl("get", "deployment", "web", "-n", "shop")
    assert web["status"]["availableReplicas"] == web["spec"]["replicas"] == 2
    migrate = shop.kubectl("get", "job", "migrate", "-n", "shop")
    assert {c["type"] for c in migrate["status"]["conditions"]} >= {"Complete"}
    table = shop.run("status", "--app", "web")
    header, row = table.stdout.splitlines()[1:3]
    assert header.split()[:4] == ["APP", "TYPE", "STATE", "HEALTH"]
    assert row.split()[:4] == ["web", "yaml", "in-sync", "Healthy"]


def test_progressing_then_healthy(shop: Shop) -> None:
    shop.server.hold("web")
    shop.deploy()

    code, apps = shop.status()

    # Progressing is not a failure: the rollout may still finish.
    assert code == 0
    assert apps["web"]["health"] == "Progressing"
    [deploy] = [o for o in apps["web"]["objects"] if o["kind"] == "Deployment"]
    assert deploy["health"] == "Progressing"
    assert "0 of 2 updated replicas are available" in deploy["health_message"]
    live = shop.kubectl("get", "deployment", "web", "-n", "shop")
    assert live["status"].get("availableReplicas", 0) == 0

    shop.server.release("web")
    code, apps = shop.status()

    assert code == 0 and apps["web"]["health"] == "Healthy"
    assert (
        shop.kubectl("get", "deployment", "web", "-n", "shop")["status"]["availableReplicas"] == 2
    )


def test_degraded_fails_exit_code_though_in_sync(shop: Shop) -> None:
    shop.server.degrade("web")
    shop.deploy()

    code, apps = shop.status()

    assert code == 1
    assert apps["web"]["state"] == "in-sync"  # nothing drifted: it just does not work
    assert apps["web"]["health"] == "Degraded"
    assert healths(apps["web"])["Deployment/web"] == "Degraded"
    assert apps["migrate"]["health"] == "Healthy"
    live = shop.kubectl("get", "deployment", "web", "-n", "shop")
    progressing = next(c for c in live["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    # The table names it, and -v lists every object with its health.
    table = shop.run("status", "-v", "--exit-code")
    assert table.returncode == 1
    assert "web: Deployment/shop/web Degraded: Deployment 'web' exceeded its progress" in (
        table.stdout
    )
    assert any(
        line.split()[:6] == ["web", "Deployment", "shop", "web", "in-sync", "Degraded"]
        for line in table.stdout.splitlines()
    ), table.stdout


def test_failed_job_is_degraded(shop: Shop) -> None:
    shop.server.degrade("migrate")
    shop.deploy()

    code, apps = shop.status("--app", "migrate")

    assert code == 1
    assert apps["migrate"]["health"] == "Degraded"
    [migrate] = [o for o in apps["migrate"]["objects"] if o["kind"] == "Job"]
    assert migrate["health"] == "Degraded"
    assert migrate["health_message"] == "Job has reached the specified backoff limit"
    live = shop.kubectl("get", "job", "migrate", "-n", "shop")
    failed = next(c for c in live["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"


def test_missing_after_kubectl_delete(shop: Shop) -> None:
    shop.deploy()
    shop.kubectl_run("delete", "deployment", "web", "-n", "shop")

    code, apps = shop.status()

    assert code == 1
    assert apps["web"]["health"] == "Missing"
    assert healths(apps["web"]) == {"Deployment/web": "Missing", "ConfigMap/web-config": "Healthy"}
    assert apps["migrate"]["health"] == "Healthy"
    gone = shop.kubectl_run("get", "deployment", "web", "-n", "shop", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


# ------------------------------------------------------------ deploy with wait: true


def spawn(shop: Shop, command: str, *args: str) -> Spawned:
    proc = subprocess.Popen(
        shop.argv(command, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=shop.env,
    )
    return Spawned(proc)


class Spawned:
    """A running command; its stderr read line by line in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.out = ""
        self._new = threading.Condition()
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._out = threading.Thread(target=self._read_out, daemon=True)
        self._err.start()
        self._out.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._new:
                self.lines.append(line.rstrip("\n"))
                self._new.notify_all()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self.out = self.proc.stdout.read()

    def wait_for(self, text: str) -> str:
        """The first stderr line holding ``text``, once it is printed (the event, no clock)."""
        with self._new:
            while True:
                found = next((line for line in self.lines if text in line), None)
                if found is not None:
                    return found
                if self.proc.poll() is not None and not self._err.is_alive():
                    raise AssertionError(f"{text!r} never printed:\n" + "\n".join(self.lines))
                self._new.wait(0.1)

    def finish(self) -> int:
        rc = self.proc.wait(HANG)
        self._err.join(HANG)
        self._out.join(HANG)
        return rc


def recorded_apps(shop: Shop) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [shop.exe, "state", "show", "latest", "-o", "json"],
        capture_output=True,
        text=True,
        env=shop.env,
        timeout=HANG,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {a["name"]: a for a in json.loads(done.stdout)["apps"]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_deploy_waits_while_progressing_then_records_time_to_healthy(shop: Shop) -> None:
    shop.deploy()
    shop.configure({"web": {"wait": True, "timeout": "5m"}, "migrate": {}})
    changed = deployment("web")
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28-alpine"
    shop.manifests("web", [changed, config_map("web-config")])
    shop.server.hold("web")  # Progressing until released

    deploy = spawn(shop, "deploy", "-v")
    line = deploy.wait_for("web: waiting for health: ")
    assert "Deployment/shop/web Progressing" in line
    # The live Deployment is ahead of the last successful record (drift), and Progressing.
    _, apps = shop.status("--app", "web")
    assert apps["web"]["health"] == "Progressing"
    assert deploy.proc.poll() is None  # still waiting
    released = datetime.now(UTC)
    shop.server.release("web")

    assert deploy.finish() == 0, "\n".join(deploy.lines)
    web = recorded_apps(shop)["web"]
    assert web["status"] == "success"
    assert web["metadata"]["healthy_seconds"] > 0
    assert at(web["metadata"]["healthy_at"]) >= released
    live = shop.kubectl("get", "deployment", "web", "-n", "shop")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28-alpine"
    assert live["status"]["availableReplicas"] == 2
    code, apps = shop.status("--app", "web")
    assert code == 0 and apps["web"]["health"] == "Healthy"


def test_deploy_wait_times_out_naming_the_unhealthy_objects(shop: Shop) -> None:
    # The timeout also bounds each kubectl call of the app: long enough for a loaded machine.
    shop.configure({"web": {"wait": True, "timeout": "60s"}, "migrate": {}})
    shop.server.hold("web")

    done = shop.run("deploy")

    assert done.returncode == 1
    [failed] = [line for line in done.stderr.splitlines() if "web (yaml) FAILED" in line]
    assert "not healthy within 60s: Deployment/shop/web Progressing (Waiting for rollout" in failed
    apps = recorded_apps(shop)
    assert apps["web"]["status"] == "failed"
    assert apps["web"]["error_message"].startswith("not healthy within 60s: Deployment/shop/web")
    assert "healthy_seconds" not in apps["web"]["metadata"]
    assert apps["migrate"]["status"] == "success"
    # What was applied is recorded as applied, and is live.
    assert {r["name"]: r["action"] for r in apps["web"]["resources"]}["web"] == "create"
    assert (
        shop.kubectl("get", "deployment", "web", "-n", "shop")["status"].get("availableReplicas", 0)
        == 0
    )


def test_deploy_wait_fails_on_degraded_and_on_a_failed_job(shop: Shop) -> None:
    shop.configure({"web": {"wait": True}, "migrate": {"wait": True}})
    shop.server.degrade("web")
    shop.server.degrade("migrate")

    done = shop.run("deploy")

    assert done.returncode == 1
    apps = recorded_apps(shop)
    assert apps["web"]["status"] == apps["migrate"]["status"] == "failed"
    assert (
        "Deployment/shop/web Degraded (Deployment 'web' exceeded its progress deadline)"
        in (apps["web"]["error_message"])
    )
    assert apps["migrate"]["error_message"].endswith(
        "Job/shop/migrate Degraded (Job has reached the specified backoff limit)"
    )
    live = shop.kubectl("get", "job", "migrate", "-n", "shop")
    assert any(c["type"] == "Failed" for c in live["status"]["conditions"])


def test_deploy_wait_brings_back_a_missing_object(shop: Shop) -> None:
    shop.configure({"web": {"wait": True}, "migrate": {}})
    shop.deploy()
    shop.kubectl_run("delete", "deployment", "web", "-n", "shop")
    code, apps = shop.status("--app", "web")
    assert code == 1 and apps["web"]["health"] == "Missing"

    shop.deploy()

    web = recorded_apps(shop)["web"]
    assert web["status"] == "success" and web["metadata"]["healthy_seconds"] >= 0
    assert {r["name"]: r["action"] for r in web["resources"]}["web"] == "create"
    assert (
        shop.kubectl("get", "deployment", "web", "-n", "shop")["status"]["availableReplicas"] == 2
    )
    code, apps = shop.status("--app", "web")
    assert code == 0 and apps["web"]["health"] == "Healthy"


def test_depends_on_starts_after_the_dependency_is_healthy(shop: Shop) -> None:
    shop.manifests("api", [deployment("api", replicas=1)])
    shop.configure({"web": {"wait": True}, "migrate": {}, "api": {"depends_on": ["web"]}})
    shop.server.hold("web")

    deploy = spawn(shop, "deploy", "-v")
    deploy.wait_for("web: waiting for health: ")
    released = datetime.now(UTC)
    shop.server.release("web")

    assert deploy.finish() == 0, "\n".join(deploy.lines)
    assert any("web (yaml) ok in" in line and "; healthy after" in line for line in deploy.lines)
    apps = recorded_apps(shop)
    healthy = at(apps["web"]["metadata"]["healthy_at"])
    # The recorded start times: api started after web was healthy, which was after the
    # release; migrate (no dependency) did not wait for it.
    assert at(apps["api"]["started_at"]) >= healthy >= released
    assert at(apps["migrate"]["started_at"]) < released
    assert (
        shop.kubectl("get", "deployment", "api", "-n", "shop")["status"]["availableReplicas"] == 1
    )


# ------------------------------------------------- every kind with a rule, as the server plays it


def every_kind() -> list[dict[str, Any]]:
    labels = {"app": "all"}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27-alpine"}]},
    }
    workload = {"selector": {"matchLabels": labels}, "template": template}
    meta = {"name": "all"}
    return [
        deployment("all"),
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
         "spec": {**workload, "serviceName": "all", "replicas": 2}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta, "spec": workload},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
         "spec": {**workload, "replicas": 2}},
        job("all"),
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"type": "LoadBalancer", "selector": labels, "ports": [{"port": 80}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
         "spec": {"defaultBackend": {"service": {"name": "all", "port": {"number": 80}}}}},
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
         "metadata": {"name": "widgets.example.com"},
         "spec": {"group": "example.com", "scope": "Namespaced",
                  "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                  "versions": [{"name": "v1", "served": True, "storage": True,
                                "schema": {"openAPIV3Schema": {"type": "object"}}}]}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1.all.example.com"},
         "spec": {"group": "all.example.com", "version": "v1", "groupPriorityMinimum": 100,
                  "versionPriority": 10,
                  "service": {"name": "all", "namespace": "shop", "port": 443}}},
        config_map("all"),
    ]  # fmt: skip


def test_every_kind_healthy_then_progressing_while_held(shop: Shop) -> None:
    shop.manifests("all", every_kind())
    shop.configure({"all": {"wait": True}})

    shop.deploy()

    code, apps = shop.status()
    assert code == 0
    kinds = healths(apps["all"])
    assert set(kinds.values()) == {"Healthy"}, kinds
    assert len(kinds) == len(every_kind())
    ingress = shop.kubectl("get", "ingress", "all", "-n", "shop")
    assert ingress["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]

    for name in ("all", "widgets.example.com", "v1.all.example.com"):
        shop.server.hold(name)
    code, apps = shop.status()

    assert code == 0
    held = healths(apps["all"])
    # What has a status to wait for is Progressing; a ConfigMap has none, and the server
    # keeps a load balancer's address and a CRD Established whatever the hold.
    assert held == {
        **{kind: "Progressing" for kind in kinds},
        "ConfigMap/all": "Healthy",
        "Service/all": "Healthy",
        "CustomResourceDefinition/widgets.example.com": "Healthy",
    }, held
    assert apps["all"]["health"] == "Progressing"


def test_dry_run_does_not_wait(shop: Shop) -> None:
    shop.configure({"web": {"wait": True}, "migrate": {}})
    shop.server.hold("web")  # a real run would wait for it, and time out

    done = shop.run("deploy", "--dry-run")

    assert done.returncode == 0, done.stderr
    assert shop.kubectl_run("get", "deployment", "web", "-n", "shop", check=False).returncode


def test_rollback_of_a_wait_app_waits_for_health(shop: Shop) -> None:
    shop.configure({"web": {"wait": True}, "migrate": {}})
    shop.deploy()
    first = recorded_apps(shop)["web"]["deployment_id"]
    changed = deployment("web")
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28-alpine"
    shop.manifests("web", [changed, config_map("web-config")])
    shop.deploy()
    shop.server.hold("web")

    rollback = spawn(shop, "rollback", "--to", first, "--app", "web", "-y", "-v")
    rollback.wait_for("web: waiting for health: ")
    released = datetime.now(UTC)
    shop.server.release("web")

    assert rollback.finish() == 0, "\n".join(rollback.lines)
    web = recorded_apps(shop)["web"]
    assert web["status"] == "success" and at(web["metadata"]["healthy_at"]) >= released
    live = shop.kubectl("get", "deployment", "web", "-n", "shop")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27-alpine"
    assert live["status"]["availableReplicas"] == 2


def test_sigterm_while_waiting_records_the_app_interrupted(shop: Shop) -> None:
    shop.configure({"web": {"wait": True}, "migrate": {}})
    shop.server.hold("web")
    deploy = spawn(shop, "deploy", "-v")
    deploy.wait_for("web: waiting for health: ")

    deploy.proc.send_signal(signal.SIGTERM)

    assert deploy.finish() == 143, "\n".join(deploy.lines)
    apps = recorded_apps(shop)
    assert apps["web"]["status"] == "interrupted"
    # What it applied before the wait is recorded, and live.
    assert {r["name"]: r["action"] for r in apps["web"]["resources"]}["web"] == "create"
    assert shop.kubectl("get", "deployment", "web", "-n", "shop")["metadata"]["name"] == "web"
