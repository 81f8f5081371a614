"""The local API server over raw HTTP: what the binaries rely on but do not show directly
(watch streams, Status reasons, optimistic concurrency, status subresources, dry runs)."""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any

import pytest

from sbkube.apiserver import ApiServer

pytestmark = pytest.mark.kube

CM = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }


def deployment(name: str, image: str = "nginx:1.27") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


def watch_lines(server: ApiServer, path: str) -> list[dict[str, Any]]:
    """Every event of one watch request, read until the server ends the stream."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    assert response.status == 200
    events = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    connection.close()
    return events


def test_discovery_and_version(kube) -> None:
    code, version = kube.http("GET", "/version")
    assert (code, version["major"]) == (200, "1")
    _, core = kube.http("GET", "/api/v1")
    assert core["groupVersion"] == "v1"
    names = {r["name"]: r for r in core["resources"]}
    assert names["configmaps"]["shortNames"] == ["cm"]
    assert names["namespaces"]["namespaced"] is False
    assert "services/status" in names
    _, groups = kube.http("GET", "/apis")
    assert {"apps", "batch", "apiextensions.k8s.io", "rbac.authorization.k8s.io"} <= {
        g["name"] for g in groups["groups"]
    }
    _, autoscaling = kube.http("GET", "/apis/autoscaling")
    assert autoscaling["preferredVersion"]["version"] == "v2"


def test_status_reasons(kube) -> None:
    assert kube.http("POST", CM, configmap("a"))[0] == 201
    code, status = kube.http("POST", CM, configmap("a"))
    assert (code, status["kind"], status["reason"]) == (409, "Status", "AlreadyExists")
    code, status = kube.http("GET", f"{CM}/missing")
    assert (code, status["reason"], status["message"]) == (
        404,
        "NotFound",
        'configmaps "missing" not found',
    )
    code, status = kube.http("POST", CM, b"{not json")
    assert (code, status["reason"]) == (400, "BadRequest")
    code, status = kube.http("POST", CM, b"k8s\x00garbage", "application/vnd.kubernetes.protobuf")
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    code, status = kube.http(
        "PATCH",
        f"{CM}/a",
        [{"op": "test", "path": "/data/k", "value": "x"}],
        "application/json-patch+json",
    )
    assert (code, status["reason"]) == (422, "Invalid")
    code, status = kube.http("POST", "/api/v1/namespaces/nowhere/configmaps", configmap("b"))
    assert (code, status["message"]) == (404, 'namespaces "nowhere" not found')


def test_update_with_a_stale_resource_version_conflicts(kube) -> None:
    _, created = kube.http("POST", CM, configmap("a"))
    first = dict(created, data={"k": "1"})
    code, updated = kube.http("PUT", f"{CM}/a", first)
    assert code == 200
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = dict(created, data={"k": "2"})
    code, status = kube.http("PUT", f"{CM}/a", stale)
    assert (code, status["reason"]) == (409, "Conflict")
    assert kube.http("GET", f"{CM}/a")[1]["data"] == {"k": "1"}


def test_generation_moves_with_the_spec_only(kube) -> None:
    _, created = kube.http("POST", DEPLOYMENTS, deployment("d"))
    assert created["metadata"]["generation"] == 1
    labelled = kube.http(
        "PATCH",
        f"{DEPLOYMENTS}/d",
        {"metadata": {"labels": {"x": "y"}}},
        "application/merge-patch+json",
    )[1]
    assert labelled["metadata"]["generation"] == 1
    changed = kube.http(
        "PATCH",
        f"{DEPLOYMENTS}/d",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.28"}]}}}},
        "application/strategic-merge-patch+json",
    )[1]
    assert changed["metadata"]["generation"] == 2
    assert changed["status"]["observedGeneration"] == 2


def test_status_subresource_writes_status_only(kube) -> None:
    _, created = kube.http("POST", DEPLOYMENTS, deployment("d"))
    patch = {"status": {"replicas": 7}, "spec": {"replicas": 9}}
    code, patched = kube.http(
        "PATCH", f"{DEPLOYMENTS}/d/status", patch, "application/merge-patch+json"
    )
    assert code == 200
    assert patched["status"]["replicas"] == 7
    assert patched["spec"]["replicas"] == 1
    assert patched["metadata"]["generation"] == created["metadata"]["generation"]
    # The main resource ignores status (an HPA: no readiness controller rewrites it).
    hpas = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h"},
        "status": {"currentReplicas": 5},
        "spec": {"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "d"}},
    }
    _, created_hpa = kube.http("POST", hpas, hpa)
    assert "status" not in created_hpa
    kube.http("PUT", f"{hpas}/h/status", dict(created_hpa, status={"currentReplicas": 2}))
    _, live = kube.http("GET", f"{hpas}/h")
    _, updated = kube.http("PUT", f"{hpas}/h", dict(live, status={"currentReplicas": 100}))
    assert updated["status"] == {"currentReplicas": 2}


def test_dry_run_create_stores_nothing(kube) -> None:
    code, answer = kube.http("POST", f"{CM}?dryRun=All", configmap("ghost"))
    assert code == 201
    assert answer["metadata"]["name"] == "ghost"
    assert kube.http("GET", f"{CM}/ghost")[0] == 404
    apply = "application/apply-patch+yaml"
    code, _ = kube.http("PATCH", f"{CM}/ghost?dryRun=All&fieldManager=t", configmap("ghost"), apply)
    assert code == 201
    assert kube.http("GET", f"{CM}/ghost")[0] == 404


def test_watch_sends_initial_events_a_bookmark_then_changes(kube, server: ApiServer) -> None:
    kube.http("POST", CM, configmap("before", app="x"))
    kube.http("POST", CM, configmap("other", app="y"))
    path = (
        f"{CM}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&labelSelector=app%3Dx&timeoutSeconds=2"
    )
    events: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: events.extend(watch_lines(server, path)))
    reader.start()
    # The stream ends at timeoutSeconds; the writes below land well within it.
    while not server.store._watchers:
        threading.Event().wait(0.01)
    kube.http("POST", CM, configmap("after", app="x"))
    kube.http("DELETE", f"{CM}/before")
    reader.join()
    kinds = [(e["type"], e["object"]["metadata"].get("name")) for e in events]
    assert kinds == [
        ("ADDED", "before"),
        ("BOOKMARK", None),
        ("ADDED", "after"),
        ("DELETED", "before"),
    ]
    bookmark = events[1]["object"]["metadata"]
    assert bookmark["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_watch_from_a_resource_version_replays_what_followed(kube, server: ApiServer) -> None:
    _, first = kube.http("POST", CM, configmap("one"))
    kube.http("POST", CM, configmap("two"))
    since = first["metadata"]["resourceVersion"]
    events = watch_lines(server, f"{CM}?watch=1&resourceVersion={since}&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "two")]


def test_delete_collection_by_label(kube) -> None:
    for name, app in [("a", "x"), ("b", "x"), ("c", "y")]:
        kube.http("POST", CM, configmap(name, app=app))
    code, deleted = kube.http("DELETE", f"{CM}?labelSelector=app%3Dx")
    assert code == 200
    assert sorted(i["metadata"]["name"] for i in deleted["items"]) == ["a", "b"]
    _, left = kube.http("GET", CM)
    assert [i["metadata"]["name"] for i in left["items"]] == ["c"]


@pytest.mark.parametrize("error", [ConnectionResetError(104, "reset"), BrokenPipeError(32, "pipe")])
def test_a_client_gone_between_requests_is_no_server_error(
    server: ApiServer, capfd: pytest.CaptureFixture[str], error: OSError
) -> None:
    """A kubectl stopped between two requests of a kept-alive connection resets it while
    the server reads the next one. Inside ``sbkube deploy --memory-cluster`` the server's
    stderr is the user's: no traceback there. A real fault of the server is still shown."""
    httpd = server._httpd
    try:
        raise error
    except OSError:
        httpd.handle_error(None, ("127.0.0.1", 40000))
    assert capfd.readouterr().err == ""
    try:
        raise ValueError("a bug")
    except ValueError:
        httpd.handle_error(None, ("127.0.0.1", 40000))
    shown = capfd.readouterr().err
    assert "Traceback" in shown and "ValueError: a bug" in shown
