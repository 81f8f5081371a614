"""Health rules per kind, as a table: each row a live object and the health Argo CD gives it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sbkube.engine.health import Health, object_health, worst

H, P, D, S, U, M = (
    Health.HEALTHY,
    Health.PROGRESSING,
    Health.DEGRADED,
    Health.SUSPENDED,
    Health.UNKNOWN,
    Health.MISSING,
)


def obj(api: str, kind: str, spec: Any = None, status: Any = None, **meta: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": "x", "generation": 1, **meta},
    }
    if spec is not None:
        out["spec"] = spec
    if status is not None:
        out["status"] = status
    return out


def cond(kind: str, status: str = "True", reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def deploy(spec: Any = None, status: Any = None, **meta: Any) -> dict[str, Any]:
    return obj("apps/v1", "Deployment", {"replicas": 2, **(spec or {})}, status, **meta)


DONE = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}

DEPLOYMENTS = [
    ("rolled out", deploy(status=DONE), H),
    ("paused", deploy({"paused": True}, DONE), S),
    ("generation not observed", deploy(status={**DONE, "observedGeneration": 0}, generation=2), P),
    ("no status yet", deploy(), P),
    ("new replicas not all updated", deploy(status={**DONE, "updatedReplicas": 1}), P),
    ("old replicas terminating", deploy(status={**DONE, "replicas": 3}), P),
    ("not all available", deploy(status={**DONE, "availableReplicas": 1}), P),
    (
        "progress deadline exceeded",
        deploy(
            status={
                **DONE,
                "availableReplicas": 0,
                "conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded")],
            }
        ),
        D,
    ),
    ("no spec.replicas", obj("apps/v1", "Deployment", {}, {**DONE}), H),
    ("replicas of the wrong type", deploy({"replicas": "two"}, DONE), U),
]


def sts(spec: Any = None, status: Any = None, **meta: Any) -> dict[str, Any]:
    return obj("apps/v1", "StatefulSet", {"replicas": 2, **(spec or {})}, status, **meta)


STS_DONE = {
    "observedGeneration": 1,
    "readyReplicas": 2,
    "updatedReplicas": 2,
    "currentReplicas": 2,
    "currentRevision": "r1",
    "updateRevision": "r1",
}
ON_DELETE = {"updateStrategy": {"type": "OnDelete"}}
PARTITION = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}

STATEFULSETS = [
    ("rolled out", sts(status=STS_DONE), H),
    ("never observed", sts(status={**STS_DONE, "observedGeneration": 0}), P),
    ("pods not ready", sts(status={**STS_DONE, "readyReplicas": 1}), P),
    ("revision rolling", sts(status={**STS_DONE, "updateRevision": "r2"}), P),
    ("partition done", sts(PARTITION, {**STS_DONE, "updatedReplicas": 1}), H),
    ("partition rolling", sts(PARTITION, {**STS_DONE, "updatedReplicas": 0}), P),
    ("on delete", sts(ON_DELETE, {**STS_DONE, "updateRevision": "r2"}), H),
]  # fmt: skip


def ds(spec: Any = None, status: Any = None, **meta: Any) -> dict[str, Any]:
    return obj("apps/v1", "DaemonSet", spec or {}, status, **meta)


DS_DONE = {
    "observedGeneration": 1,
    "desiredNumberScheduled": 3,
    "updatedNumberScheduled": 3,
    "numberAvailable": 3,
}

DAEMONSETS = [
    ("rolled out", ds(status=DS_DONE), H),
    ("generation not observed", ds(status=DS_DONE, generation=2), P),
    ("pods not updated", ds(status={**DS_DONE, "updatedNumberScheduled": 2}), P),
    ("pods not available", ds(status={**DS_DONE, "numberAvailable": 2}), P),
    ("on delete", ds(ON_DELETE, {**DS_DONE, "numberAvailable": 0}), H),
]  # fmt: skip


def rs(status: Any = None, **meta: Any) -> dict[str, Any]:
    return obj("apps/v1", "ReplicaSet", {"replicas": 2}, status, **meta)


REPLICASETS = [
    ("available", rs({"observedGeneration": 1, "availableReplicas": 2}), H),
    ("generation not observed", rs({"observedGeneration": 1}, generation=3), P),
    ("not available", rs({"observedGeneration": 1, "availableReplicas": 1}), P),
    (
        "replica failure",
        rs({"observedGeneration": 1, "conditions": [cond("ReplicaFailure", message="quota")]}),
        D,
    ),
]


def job(*conditions: dict[str, str], **spec: Any) -> dict[str, Any]:
    return obj("batch/v1", "Job", spec, {"conditions": list(conditions)})


JOBS = [
    ("running", job(), P),
    ("complete", job(cond("Complete")), H),
    ("failed", job(cond("Failed", reason="BackoffLimitExceeded", message="backoff")), D),
    ("suspended", job(cond("Suspended")), S),
]


def pod(phase: str | None, restart: str = "Always", **status: Any) -> dict[str, Any]:
    return obj("v1", "Pod", {"restartPolicy": restart}, {"phase": phase, **status})


def waiting(reason: str) -> dict[str, Any]:
    return {"name": "c", "state": {"waiting": {"reason": reason, "message": reason}}}


PODS = [
    ("pending", pod("Pending"), P),
    ("succeeded", pod("Succeeded", "Never"), H),
    ("failed", pod("Failed", "Never"), D),
    ("running and ready", pod("Running", conditions=[cond("Ready")]), H),
    ("running, not ready", pod("Running", conditions=[cond("Ready", "False")]), P),
    (
        "running, not ready after a crash",
        pod("Running", containerStatuses=[{"name": "c", "lastState": {"terminated": {}}}]),
        D,
    ),
    ("running job pod", pod("Running", "Never", conditions=[cond("Ready")]), P),
    ("image pull backoff", pod("Pending", containerStatuses=[waiting("ImagePullBackOff")]), D),
    ("crash loop", pod("Running", containerStatuses=[waiting("CrashLoopBackOff")]), D),
    ("job pod backoff", pod("Pending", "Never", containerStatuses=[waiting("ErrImagePull")]), P),
    ("no phase", pod(None), U),
]  # fmt: skip


def pvc(phase: str) -> dict[str, Any]:
    return obj("v1", "PersistentVolumeClaim", {}, {"phase": phase})


PVCS = [("bound", pvc("Bound"), H), ("pending", pvc("Pending"), P), ("lost", pvc("Lost"), D)]

LB = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
SERVICES = [
    ("cluster ip", obj("v1", "Service", {"type": "ClusterIP"}, {}), H),
    ("load balancer with address", obj("v1", "Service", {"type": "LoadBalancer"}, LB), H),
    ("load balancer waiting", obj("v1", "Service", {"type": "LoadBalancer"}, {}), P),
]
INGRESSES = [
    ("with address", obj("networking.k8s.io/v1", "Ingress", {}, LB), H),
    ("waiting for address", obj("networking.k8s.io/v1", "Ingress", {}, {}), P),
]


def crd(*conditions: dict[str, str]) -> dict[str, Any]:
    return obj(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", {}, {"conditions": list(conditions)}
    )


CRDS = [
    ("established", crd(cond("NamesAccepted"), cond("Established")), H),
    ("no conditions", crd(), P),
    ("not established", crd(cond("Established", "False")), D),
    ("names refused", crd(cond("NamesAccepted", "False"), cond("Established")), D),
    ("terminating", crd(cond("Established"), cond("Terminating")), P),
    ("non-structural", crd(cond("Established"), cond("NonStructuralSchema")), D),
]


def apiservice(*conditions: dict[str, str]) -> dict[str, Any]:
    return obj("apiregistration.k8s.io/v1", "APIService", {}, {"conditions": list(conditions)})


APISERVICES = [
    ("available", apiservice(cond("Available")), H),
    ("unavailable", apiservice(cond("Available", "False", "MissingEndpoints")), P),
    ("not processed", apiservice(), P),
]


def hpa(*conditions: dict[str, str]) -> dict[str, Any]:
    return obj("autoscaling/v2", "HorizontalPodAutoscaler", {}, {"conditions": list(conditions)})


def hpa_v1(conditions: Any) -> dict[str, Any]:
    annotations = {"autoscaling.alpha.kubernetes.io/conditions": json.dumps(conditions)}
    return obj("autoscaling/v1", "HorizontalPodAutoscaler", {}, {}, annotations=annotations)


HPAS = [
    ("rescaled", hpa(cond("AbleToScale", reason="SucceededRescale")), H),
    ("within range", hpa(cond("ScalingLimited", reason="DesiredWithinRange")), H),
    ("cannot get metrics", hpa(cond("ScalingActive", "False", "FailedGetResourceMetric")), D),
    ("no conditions", hpa(), P),
    ("v1 healthy", hpa_v1([{"type": "AbleToScale", "reason": "SucceededRescale"}]), H),
    ("v1 without conditions", hpa_v1([]), P),
    ("v1 degraded", hpa_v1([{"type": "AbleToScale", "reason": "FailedGetScale"}]), D),
]

OTHERS = [
    ("a ConfigMap exists", obj("v1", "ConfigMap"), H),
    ("a custom resource exists", obj("example.com/v1", "Widget", {}, {"phase": "Broken"}), H),
    ("being deleted", obj("v1", "ConfigMap", deletionTimestamp="2026-12-07T00:00:00Z"), P),
    ("status of the wrong type", obj("apps/v1", "Deployment", {}, "ready"), U),
]

TABLE = [
    pytest.param(row, health, id=f"{table}: {name}")
    for table, rows in [
        ("Deployment", DEPLOYMENTS),
        ("StatefulSet", STATEFULSETS),
        ("DaemonSet", DAEMONSETS),
        ("ReplicaSet", REPLICASETS),
        ("Job", JOBS),
        ("Pod", PODS),
        ("PVC", PVCS),
        ("Service", SERVICES),
        ("Ingress", INGRESSES),
        ("CRD", CRDS),
        ("APIService", APISERVICES),
        ("HPA", HPAS),
        ("other", OTHERS),
    ]
    for name, row, health in rows
]


@pytest.mark.parametrize(("live", "expected"), TABLE)
def test_health_per_kind(live: dict[str, Any], expected: Health) -> None:
    assert object_health(live).status == expected


def test_missing_object_is_missing() -> None:
    assert object_health(None).status == Health.MISSING


def test_messages_say_why() -> None:
    degraded = deploy(
        status={**DONE, "conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded")]}
    )
    assert "exceeded its progress deadline" in object_health(degraded).message
    failed = job(cond("Failed", message="Job has reached the specified backoff limit"))
    assert object_health(failed).message == "Job has reached the specified backoff limit"
    assert "replicas is not an integer" in object_health(deploy({"replicas": "two"}, DONE)).message


def test_worst_follows_argo_order() -> None:
    assert worst([]) == H
    assert worst([H, S]) == S
    assert worst([H, P, S]) == P
    assert worst([P, M]) == M
    assert worst([M, D, H]) == D
    assert worst([D, U]) == U
    assert [h for h in Health if h.failing] == [M, D]
