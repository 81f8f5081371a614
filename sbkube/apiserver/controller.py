"""The readiness controller: the status a real cluster's controllers would eventually write.

No pods run here, so after every write of a workload the server sets, in the same write, the
status that ``helm --wait`` (kstatus) and ``kubectl rollout status`` read as ready or
complete: Deployments, StatefulSets, DaemonSets, ReplicaSets and ReplicationControllers have
all replicas updated, ready and available; Jobs have succeeded; PVCs are Bound; Pods run (or,
with restartPolicy Never/OnFailure, have succeeded); CRDs are Established.

Objects named in ``unready`` get a status that is observed but never ready, so a ``--wait``
on them times out the way it would on a cluster whose pods never start.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]


def _condition(kind: str, status: str, reason: str, now: str, message: str = "") -> Obj:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
        "lastUpdateTime": now,
    }


def _replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas", 1)
    return value if isinstance(value, int) else 1


def _revision(obj: Obj) -> str:
    template = (obj.get("spec") or {}).get("template") or {}
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
    return f"{obj['metadata']['name']}-{digest}"


def _deployment(obj: Obj, ready: bool, now: str) -> Obj:
    want = _replicas(obj)
    have = want if ready else 0
    progressing = (
        _condition("Progressing", "True", "NewReplicaSetAvailable", now)
        if ready
        else _condition("Progressing", "True", "ReplicaSetUpdated", now)
    )
    available = _condition(
        "Available",
        "True" if ready else "False",
        "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
        now,
    )
    status: Obj = {
        "observedGeneration": obj["metadata"].get("generation", 1),
        "replicas": want,
        "updatedReplicas": want,
        "readyReplicas": have,
        "availableReplicas": have,
        "conditions": [available, progressing],
    }
    if not ready:
        status["unavailableReplicas"] = want
    return status


def _replicaset(obj: Obj, ready: bool, now: str) -> Obj:
    want = _replicas(obj)
    have = want if ready else 0
    return {
        "observedGeneration": obj["metadata"].get("generation", 1),
        "replicas": want,
        "fullyLabeledReplicas": want,
        "readyReplicas": have,
        "availableReplicas": have,
    }


def _statefulset(obj: Obj, ready: bool, now: str) -> Obj:
    want = _replicas(obj)
    have = want if ready else 0
    revision = _revision(obj)
    return {
        "observedGeneration": obj["metadata"].get("generation", 1),
        "replicas": want,
        "readyReplicas": have,
        "availableReplicas": have,
        "currentReplicas": want,
        "updatedReplicas": want,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    }


def _daemonset(obj: Obj, ready: bool, now: str) -> Obj:
    have = 1 if ready else 0
    return {
        "observedGeneration": obj["metadata"].get("generation", 1),
        "desiredNumberScheduled": 1,
        "currentNumberScheduled": 1,
        "updatedNumberScheduled": 1,
        "numberReady": have,
        "numberAvailable": have,
        "numberMisscheduled": 0,
        **({} if ready else {"numberUnavailable": 1}),
    }


def _job(obj: Obj, ready: bool, now: str) -> Obj:
    if not ready:
        return {"startTime": now, "active": 1, "ready": 0}
    return {
        "startTime": now,
        "completionTime": now,
        "succeeded": 1,
        "ready": 0,
        "conditions": [
            _condition("SuccessCriteriaMet", "True", "CompletionsReached", now),
            _condition("Complete", "True", "CompletionsReached", now),
        ],
    }


def _pod(obj: Obj, ready: bool, now: str) -> Obj:
    restart = (obj.get("spec") or {}).get("restartPolicy", "Always")
    if not ready:
        return {"phase": "Pending", "conditions": [_condition("Ready", "False", "", now)]}
    if restart in ("Never", "OnFailure"):
        return {"phase": "Succeeded", "startTime": now}
    return {
        "phase": "Running",
        "startTime": now,
        "podIP": "10.244.0.10",
        "conditions": [
            _condition("Initialized", "True", "", now),
            _condition("Ready", "True", "", now),
            _condition("ContainersReady", "True", "", now),
            _condition("PodScheduled", "True", "", now),
        ],
    }


def _pvc(obj: Obj, ready: bool, now: str) -> Obj:
    if not ready:
        return {"phase": "Pending"}
    spec = obj.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    status: Obj = {"phase": "Bound", "accessModes": spec.get("accessModes") or []}
    if storage:
        status["capacity"] = {"storage": storage}
    return status


def _crd(obj: Obj, ready: bool, now: str) -> Obj:
    spec = obj.get("spec") or {}
    return {
        "acceptedNames": spec.get("names") or {},
        "storedVersions": [v["name"] for v in spec.get("versions") or () if v.get("storage")],
        "conditions": [
            _condition("NamesAccepted", "True", "NoConflicts", now),
            _condition("Established", "True", "InitialNamesAccepted", now),
        ],
    }


def _service(obj: Obj, ready: bool, now: str) -> Obj:
    status = dict(obj.get("status") or {})
    if (obj.get("spec") or {}).get("type") == "LoadBalancer":
        status["loadBalancer"] = {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}
    return status


_STATUS: dict[tuple[str, str], Callable[[Obj, bool, str], Obj]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("", "ReplicationController"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


class Controller:
    """Sets the eventual status of workloads; ``unready`` names objects held back."""

    def __init__(self, unready: set[str] | None = None) -> None:
        # Mutable on purpose: a test may release an object it held unready.
        self.unready: set[str] = set(unready or ())

    def reconcile(self, group: str, obj: Obj, now: str) -> None:
        """Replaces ``obj``'s status (in place) with the status its controller would set."""
        make = _STATUS.get((group, str(obj.get("kind") or "")))
        if make is None:
            return
        ready = obj["metadata"].get("name") not in self.unready
        obj["status"] = make(obj, ready, now)
