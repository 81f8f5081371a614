"""Every call to the cluster has a timeout: a request the API server never answers fails the
app that made it within the app's ``timeout``, the other apps end as they would, and the
run's lock is released (a second deploy takes it).

The cluster is ``sbkube memory-cluster serve`` with its ``SBKUBE_MEMORY_HANG_ON`` fault: it
reads the matching request and never answers. The tests wait on the server's ``HUNG`` line
and bound each command by the generous ``HANG_TIMEOUT`` (a bound on a hang, not a speed
check); without a timeout on the call, the deploy would never end. The apps' timeout is
short next to that bound but long enough (30s) for every call that is answered to end
within it on a loaded machine: only the call the server never answers may time out.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.helm, pytest.mark.kube]

APP_TIMEOUT = "30s"


def set_timeout(app_dir: Path, app: str, timeout: str) -> None:
    config_file = app_dir / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["apps"][app]["timeout"] = timeout
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))


def kubectl_get(kubectl: str, kubeconfig: Path, kind: str, name: str) -> dict[str, Any] | None:
    proc = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "get", kind, name, "-n", "shop", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        assert "NotFound" in proc.stderr, proc.stderr
        return None
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def helm_status(helm: str, kubeconfig: Path, release: str) -> str | None:
    proc = subprocess.run(
        [helm, "--kubeconfig", str(kubeconfig), "status", release, "-n", "shop", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        assert "not found" in proc.stderr, proc.stderr
        return None
    return str(json.loads(proc.stdout)["info"]["status"])


def app_states(shown: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {a["name"]: (a["status"], a["error_message"]) for a in shown["apps"]}


def stop(server: Any) -> None:
    server.proc.send_signal(signal.SIGTERM)
    assert server.finish(timeout=300) == 0, server.stderr


def deploy_again_takes_the_lock(sbkube: Any, served: Any, app_dir: Path) -> None:
    """The lock is free: a second deploy, against the same cluster file served without the
    fault, takes it and deploys every app."""
    assert sbkube.json("state", "locks") == []
    server, kubeconfig = served()
    again = sbkube("deploy", "--app-dir", str(app_dir), "--kubeconfig", str(kubeconfig))
    assert again.returncode == 0, again.stderr
    assert "is locked" not in again.stderr
    assert set(app_states(sbkube.json("state", "show", "latest")).values()) == {("success", None)}
    stop(server)


def test_a_yaml_app_whose_apply_is_never_answered_fails_alone_and_frees_the_lock(
    sbkube: Any, app_dir: Path, served: Any, kubectl_binary: str, helm_binary: str
) -> None:
    set_timeout(app_dir, "worker", APP_TIMEOUT)
    server, kubeconfig = served(
        env={"SBKUBE_MEMORY_HANG_ON": r"^PATCH /api/v1/namespaces/shop/configmaps/worker-config"}
    )

    proc = sbkube("deploy", "--app-dir", str(app_dir), "--kubeconfig", str(kubeconfig))

    assert "HUNG PATCH /api/v1/namespaces/shop/configmaps/worker-config" in server.stderr
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    shown = sbkube.json("state", "show", "latest")
    assert shown["status"] == "partially_failed"
    states = app_states(shown)
    assert states["cache"] == ("success", None)
    assert states["web"] == ("success", None)
    status, error = states["worker"]
    assert status == "failed"
    assert error is not None and "kubectl apply" in error, error
    assert "worker (yaml) FAILED" in proc.stderr
    # The record is what the cluster holds: the other apps are live, the hung one is not.
    assert helm_status(helm_binary, kubeconfig, "cache") == "deployed"
    assert kubectl_get(kubectl_binary, kubeconfig, "configmap", "web-config") is not None
    assert kubectl_get(kubectl_binary, kubeconfig, "secret", "worker-token") is not None
    assert kubectl_get(kubectl_binary, kubeconfig, "configmap", "worker-config") is None
    stop(server)

    deploy_again_takes_the_lock(sbkube, served, app_dir)


def test_a_helm_app_whose_install_is_never_answered_fails_within_its_timeout(
    sbkube: Any, app_dir: Path, served: Any, kubectl_binary: str, helm_binary: str
) -> None:
    set_timeout(app_dir, "cache", APP_TIMEOUT)
    # helm's write of the chart's Secret (not of its own release records).
    hang = r"^(POST|PATCH|PUT) /api/v1/namespaces/shop/secrets/?.*cache-auth"
    server, kubeconfig = served(env={"SBKUBE_MEMORY_HANG_ON": hang})

    proc = sbkube("deploy", "--app-dir", str(app_dir), "--kubeconfig", str(kubeconfig))

    assert "HUNG " in server.stderr and "cache-auth" in server.stderr
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    shown = sbkube.json("state", "show", "latest")
    states = app_states(shown)
    status, error = states["cache"]
    assert status == "failed"
    assert error is not None and "helm upgrade --install cache" in error, error
    assert f"no answer within {APP_TIMEOUT} (the app's timeout)" in error, error
    # web depends on cache: skipped; worker does not: deployed.
    assert states["web"][0] == "skipped"
    assert states["worker"] == ("success", None)
    assert kubectl_get(kubectl_binary, kubeconfig, "configmap", "worker-config") is not None
    assert kubectl_get(kubectl_binary, kubeconfig, "configmap", "web-config") is None
    # helm was stopped, not left running: its revision is not deployed.
    assert helm_status(helm_binary, kubeconfig, "cache") != "deployed"
    stop(server)

    deploy_again_takes_the_lock(sbkube, served, app_dir)
