"""The readiness controller: the status a real cluster's controllers would eventually write.

No pods run here, so after every write of a workload the server sets, in the same write, the
status that ``helm --wait`` (kstatus) and ``kubectl rollout status`` read as ready or
complete: Deployments, StatefulSets, DaemonSets, ReplicaSets and ReplicationControllers have
all replicas updated, ready and available; Jobs have succeeded; PVCs are Bound; Pods run (or,
with restartPolicy Never/OnFailure, have succeeded); CRDs are Established; Ingresses and
LoadBalancer Services have the address ``127.0.0.1``; APIServices are Available. (An HPA
keeps whatever status is written to it: nothing here computes metrics.)

Tests can hold objects (by ``metadata.name``) in other states, as Argo CD's health model
names them:

* ``unready``: observed but never ready (a rollout whose pods never start), until the name
  is released;
* ``progressing``: the same, for a number of controller ticks counted from the object's
  first write (or, with None, until released); a rollout that takes N ticks;
* ``degraded``: failed: a Deployment past its progress deadline (``Progressing=False``,
  reason ``ProgressDeadlineExceeded``), a Job past its backoff limit (``Failed=True``,
  reason ``BackoffLimitExceeded``), a Pod ``Failed``, a PVC ``Lost``; other kinds unready.

The server ticks the controller every ``tick_seconds`` (or a test calls ``tick()``) and
rewrites the status of the objects a tick or a release changes, as a watch sees it.
"""

from __future__ import annotations

import hashlib
import json
import threading
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


def _ingress(obj: Obj, ready: bool, now: str) -> Obj:
    # k3s's bundled load balancer gives an Ingress the node's address, as it does a
    # LoadBalancer Service.
    if not ready:
        return {"loadBalancer": {}}
    return {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}


def _apiservice(obj: Obj, ready: bool, now: str) -> Obj:
    if ready:
        available = _condition("Available", "True", "Passed", now, "all checks passed")
    else:
        available = _condition("Available", "False", "MissingEndpoints", now,
                               "endpoints for service are not ready")  # fmt: skip
    return {"conditions": [available]}


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
    ("networking.k8s.io", "Ingress"): _ingress,
    ("apiregistration.k8s.io", "APIService"): _apiservice,
}


def _deployment_degraded(obj: Obj, now: str) -> Obj:
    status = _deployment(obj, False, now)
    name = obj["metadata"]["name"]
    status["conditions"] = [
        _condition("Available", "False", "MinimumReplicasUnavailable", now,
                   "Deployment does not have minimum availability."),
        _condition("Progressing", "False", "ProgressDeadlineExceeded", now,
                   f'ReplicaSet "{name}" has timed out progressing.'),
    ]  # fmt: skip
    return status


def _job_failed(obj: Obj, now: str) -> Obj:
    limit = (obj.get("spec") or {}).get("backoffLimit", 6)
    attempts = (limit if isinstance(limit, int) else 6) + 1
    message = "Job has reached the specified backoff limit"
    return {
        "startTime": now,
        "failed": attempts,
        "active": 0,
        "ready": 0,
        "conditions": [
            _condition("FailureTarget", "True", "BackoffLimitExceeded", now, message),
            _condition("Failed", "True", "BackoffLimitExceeded", now, message),
        ],
    }


def _pod_failed(obj: Obj, now: str) -> Obj:
    return {
        "phase": "Failed",
        "startTime": now,
        "conditions": [_condition("Ready", "False", "PodFailed", now)],
    }


def _pvc_lost(obj: Obj, now: str) -> Obj:
    return {"phase": "Lost"}


_DEGRADED: dict[tuple[str, str], Callable[[Obj, str], Obj]] = {
    ("apps", "Deployment"): _deployment_degraded,
    ("batch", "Job"): _job_failed,
    ("", "Pod"): _pod_failed,
    ("", "PersistentVolumeClaim"): _pvc_lost,
}

WORKLOADS = frozenset(_STATUS)


class Controller:
    """Sets the eventual status of workloads; the sets and the map name objects held back.

    All three are mutable on purpose: a test may hold or release an object live (through
    ``ApiServer.hold``/``degrade``/``release``, which also rewrite the stored status).
    """

    def __init__(
        self,
        unready: set[str] | None = None,
        progressing: dict[str, int | None] | None = None,
        degraded: set[str] | None = None,
    ) -> None:
        self.unready: set[str] = set(unready or ())
        self.progressing: dict[str, int | None] = dict(progressing or {})
        self.degraded: set[str] = set(degraded or ())
        # The held names whose objects have been written: their ticks count.
        self._started: set[str] = set()
        self._lock = threading.Lock()

    def state(self, name: str) -> str:
        """``degraded``, ``progressing`` or ``ready``: what the object called ``name`` shows."""
        if name in self.degraded:
            return "degraded"
        if name in self.unready or name in self.progressing:
            return "progressing"
        return "ready"

    def reconcile(self, group: str, obj: Obj, now: str) -> None:
        """Replaces ``obj``'s status (in place) with the status its controller would set."""
        kind = (group, str(obj.get("kind") or ""))
        make = _STATUS.get(kind)
        if make is None:
            return
        name = str(obj["metadata"].get("name"))
        state = self.state(name)
        if name in self.progressing:
            with self._lock:
                self._started.add(name)
        degraded = _DEGRADED.get(kind)
        if state == "degraded" and degraded is not None:
            obj["status"] = degraded(obj, now)
        else:
            obj["status"] = make(obj, state == "ready", now)

    def tick(self) -> set[str]:
        """One tick: counts down the written objects held for a number of ticks. Returns the
        names whose hold ended (their status is now out of date)."""
        ended = set()
        with self._lock:
            for name in list(self._started):
                left = self.progressing.get(name)
                if name not in self.progressing:
                    self._started.discard(name)
                elif left is not None:
                    if left <= 1:
                        del self.progressing[name]
                        self._started.discard(name)
                        ended.add(name)
                    else:
                        self.progressing[name] = left - 1
        return ended

    def hold(self, name: str, ticks: int | None = None) -> None:
        """Progressing: for ``ticks`` ticks from its next write, or (None) until released."""
        with self._lock:
            self.progressing[name] = ticks
            self._started.discard(name)

    def release(self, name: str) -> None:
        """Ready from now on, whatever held it."""
        with self._lock:
            self.unready.discard(name)
            self.degraded.discard(name)
            self.progressing.pop(name, None)
            self._started.discard(name)
