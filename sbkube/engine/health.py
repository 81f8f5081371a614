"""Health: whether a live object works, in Argo CD's words (gitops-engine ``pkg/health``).

Pure functions over live objects (the dicts the cluster port returns); nothing here asks the
cluster. :func:`object_health` gives one object's :class:`HealthStatus`:

* no object (``None``): ``Missing``;
* an object being deleted (``metadata.deletionTimestamp``): ``Progressing``;
* a kind with a rule below: that rule, written after Argo CD's per-kind checks (rollout
  and availability for Deployment, StatefulSet, DaemonSet and ReplicaSet; Job complete or
  failed; Pod phase and container states; PVC Bound; a LoadBalancer Service with an
  ingress address; Ingress likewise; CRD Established; APIService Available; HPA
  conditions); a field of the wrong type is ``Unknown``, with the reason;
* any other kind: ``Healthy`` (it exists, and nothing more can be known of it).

:func:`worst` folds many into one (an app's health), in Argo CD's order: Healthy <
Suspended < Progressing < Missing < Degraded < Unknown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sbkube.manifests import api_group
from sbkube.model import Record

Obj = Mapping[str, Any]


class Health(StrEnum):
    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    @property
    def failing(self) -> bool:
        """Degraded or Missing: what ``status --exit-code`` fails on."""
        return self in (Health.DEGRADED, Health.MISSING)


# Most healthy first (gitops-engine's healthOrder).
_ORDER = tuple(Health)


@dataclass(frozen=True, slots=True)
class HealthStatus(Record):
    status: Health
    message: str = ""


def worst(statuses: Iterable[Health]) -> Health:
    """The least healthy of ``statuses``; Healthy when there are none."""
    return max(statuses, key=_ORDER.index, default=Health.HEALTHY)


class _Bad(Exception):
    """A status field that is not what the kind's API says it is."""


def _map(obj: Obj, *path: str) -> Mapping[str, Any]:
    value: Any = obj
    for i, part in enumerate(path):
        if not isinstance(value, Mapping):
            raise _Bad(f"{'.'.join(path[:i])} is not an object")
        value = value.get(part)
        if value is None:
            return {}
    if not isinstance(value, Mapping):
        raise _Bad(f"{'.'.join(path)} is not an object")
    return value


def _int(obj: Obj, *path: str) -> int | None:
    """The integer at ``path`` (None when absent), as Go's typed fields read it."""
    *parents, last = path
    value = _map(obj, *parents).get(last)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{'.'.join(path)} is not an integer: {value!r}")
    return value


def _n(obj: Obj, *path: str) -> int:
    return _int(obj, *path) or 0


def _list(obj: Obj, *path: str) -> list[Any]:
    *parents, last = path
    value = _map(obj, *parents).get(last)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{'.'.join(path)} is not a list")
    return value


def _conditions(obj: Obj) -> list[Mapping[str, Any]]:
    return [c for c in _list(obj, "status", "conditions") if isinstance(c, Mapping)]


def _condition(obj: Obj, kind: str) -> Mapping[str, Any] | None:
    return next((c for c in _conditions(obj) if c.get("type") == kind), None)


def _status(status: Health, message: str = "") -> HealthStatus:
    return HealthStatus(status, message)


def _name(obj: Obj) -> str:
    return str(_map(obj, "metadata").get("name") or "")


def _generation_observed(obj: Obj) -> bool:
    return _n(obj, "metadata", "generation") <= _n(obj, "status", "observedGeneration")


def _deployment(obj: Obj) -> HealthStatus:
    if _map(obj, "spec").get("paused") is True:
        return _status(Health.SUSPENDED, "Deployment is paused")
    if not _generation_observed(obj):
        return _status(
            Health.PROGRESSING,
            "Waiting for rollout to finish: observed deployment generation less than desired",
        )
    progressing = _condition(obj, "Progressing")
    replicas = _int(obj, "spec", "replicas")
    updated = _n(obj, "status", "updatedReplicas")
    total = _n(obj, "status", "replicas")
    available = _n(obj, "status", "availableReplicas")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return _status(Health.DEGRADED, f"Deployment {_name(obj)!r} exceeded its progress deadline")
    if replicas is not None and updated < replicas:
        return _status(
            Health.PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {replicas} new replicas "
            "have been updated",
        )
    if total > updated:
        return _status(
            Health.PROGRESSING,
            f"Waiting for rollout to finish: {total - updated} old replicas are pending "
            "termination",
        )
    if available < updated:
        return _status(
            Health.PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas "
            "are available",
        )
    return _status(Health.HEALTHY)


def _statefulset(obj: Obj) -> HealthStatus:
    observed = _n(obj, "status", "observedGeneration")
    if observed == 0 or _n(obj, "metadata", "generation") > observed:
        return _status(Health.PROGRESSING, "Waiting for statefulset spec update to be observed")
    replicas = _int(obj, "spec", "replicas")
    ready = _n(obj, "status", "readyReplicas")
    updated = _n(obj, "status", "updatedReplicas")
    if replicas is not None and ready < replicas:
        return _status(Health.PROGRESSING, f"Waiting for {replicas - ready} pods to be ready")
    strategy = _map(obj, "spec", "updateStrategy")
    kind = strategy.get("type") or "RollingUpdate"
    if kind == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
        partition = _int(obj, "spec", "updateStrategy", "rollingUpdate", "partition")
        if replicas is not None and partition is not None and updated < replicas - partition:
            return _status(
                Health.PROGRESSING,
                f"Waiting for partitioned roll out to finish: {updated} out of "
                f"{replicas - partition} new pods have been updated",
            )
        return _status(
            Health.HEALTHY, f"partitioned roll out complete: {updated} new pods have been updated"
        )
    if kind == "OnDelete":
        return _status(Health.HEALTHY, f"statefulset has {ready} ready pods")
    status = _map(obj, "status")
    if status.get("updateRevision") != status.get("currentRevision"):
        return _status(
            Health.PROGRESSING,
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{status.get('updateRevision')}",
        )
    return _status(
        Health.HEALTHY,
        f"statefulset rolling update complete {_n(obj, 'status', 'currentReplicas')} pods at "
        f"revision {status.get('currentRevision')}",
    )


def _daemonset(obj: Obj) -> HealthStatus:
    if not _generation_observed(obj):
        return _status(
            Health.PROGRESSING,
            "Waiting for rollout to finish: observed daemon set generation less than desired",
        )
    desired = _n(obj, "status", "desiredNumberScheduled")
    updated = _n(obj, "status", "updatedNumberScheduled")
    if _map(obj, "spec", "updateStrategy").get("type") == "OnDelete":
        return _status(
            Health.HEALTHY, f"daemon set {updated} out of {desired} new pods have been updated"
        )
    if updated < desired:
        return _status(
            Health.PROGRESSING,
            f"Waiting for daemon set {_name(obj)!r} rollout to finish: {updated} out of "
            f"{desired} new pods have been updated",
        )
    available = _n(obj, "status", "numberAvailable")
    if available < desired:
        return _status(
            Health.PROGRESSING,
            f"Waiting for daemon set {_name(obj)!r} rollout to finish: {available} of "
            f"{desired} updated pods are available",
        )
    return _status(Health.HEALTHY)


def _replicaset(obj: Obj) -> HealthStatus:
    if not _generation_observed(obj):
        return _status(
            Health.PROGRESSING,
            "Waiting for rollout to finish: observed replica set generation less than desired",
        )
    failure = _condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return _status(Health.DEGRADED, str(failure.get("message") or ""))
    replicas = _int(obj, "spec", "replicas")
    available = _n(obj, "status", "availableReplicas")
    if replicas is not None and available < replicas:
        return _status(
            Health.PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {replicas} new replicas "
            "are available",
        )
    return _status(Health.HEALTHY)


def _job(obj: Obj) -> HealthStatus:
    failed = complete = suspended = False
    message = fail_message = ""
    for condition in _conditions(obj):
        kind = condition.get("type")
        if kind == "Failed":
            failed = complete = True
            fail_message = str(condition.get("message") or "")
        elif kind == "Complete":
            complete = True
            message = str(condition.get("message") or "")
        elif kind == "Suspended":
            complete = True
            message = str(condition.get("message") or "")
            suspended = condition.get("status") == "True"
    if not complete:
        return _status(Health.PROGRESSING, message)
    if failed:
        return _status(Health.DEGRADED, fail_message)
    if suspended:
        return _status(Health.SUSPENDED, message)
    return _status(Health.HEALTHY, message)


def _container_statuses(obj: Obj, field: str) -> list[Mapping[str, Any]]:
    return [c for c in _list(obj, "status", field) if isinstance(c, Mapping)]


def _fail_message(container: Mapping[str, Any]) -> str:
    terminated = _map(container, "state", "terminated")
    if terminated:
        if terminated.get("message"):
            return str(terminated["message"])
        if terminated.get("reason") == "OOMKilled":
            return "OOMKilled"
        if terminated.get("exitCode"):
            return f"container {container.get('name')!r} failed with exit code " + str(
                terminated["exitCode"]
            )
    return ""


def _pod(obj: Obj) -> HealthStatus:
    restart = _map(obj, "spec").get("restartPolicy") or "Always"
    message = str(_map(obj, "status").get("message") or "")
    containers = _container_statuses(obj, "containerStatuses")
    if restart == "Always":
        # A container that cannot start (an image that cannot be pulled, a crash loop).
        stuck = [
            str(waiting.get("message") or waiting.get("reason"))
            for waiting in (_map(c, "state", "waiting") for c in containers)
            if waiting
            and (
                str(waiting.get("reason") or "").startswith("Err")
                or str(waiting.get("reason") or "").endswith(("Error", "BackOff"))
            )
        ]
        if stuck:
            return _status(Health.DEGRADED, ", ".join(stuck))
    phase = _map(obj, "status").get("phase")
    if phase == "Pending":
        return _status(Health.PROGRESSING, message)
    if phase == "Succeeded":
        return _status(Health.HEALTHY, message)
    if phase == "Failed":
        if message:
            return _status(Health.DEGRADED, message)
        for container in (*_container_statuses(obj, "initContainerStatuses"), *containers):
            reason = _fail_message(container)
            if reason:
                return _status(Health.DEGRADED, reason)
        return _status(Health.DEGRADED)
    if phase == "Running":
        if restart != "Always":
            # A pod with a finite life (a hook, a job's pod) is done when it succeeds.
            return _status(Health.PROGRESSING, message)
        ready = _condition(obj, "Ready")
        if ready is not None and ready.get("status") == "True":
            return _status(Health.HEALTHY, message)
        if any(_map(c, "lastState").get("terminated") is not None for c in containers):
            return _status(Health.DEGRADED, message)
        return _status(Health.PROGRESSING, message)
    return _status(Health.UNKNOWN, message)


def _pvc(obj: Obj) -> HealthStatus:
    phase = _map(obj, "status").get("phase")
    return _status(
        {"Lost": Health.DEGRADED, "Pending": Health.PROGRESSING, "Bound": Health.HEALTHY}.get(
            str(phase), Health.UNKNOWN
        ),
        f"phase {phase}" if phase not in (None, "Bound") else "",
    )


def _load_balanced(obj: Obj) -> bool:
    return bool(_list(obj, "status", "loadBalancer", "ingress"))


def _service(obj: Obj) -> HealthStatus:
    if _map(obj, "spec").get("type") == "LoadBalancer" and not _load_balanced(obj):
        return _status(Health.PROGRESSING, "Waiting for a load balancer address")
    return _status(Health.HEALTHY)


def _ingress(obj: Obj) -> HealthStatus:
    if not _load_balanced(obj):
        return _status(Health.PROGRESSING, "Waiting for a load balancer address")
    return _status(Health.HEALTHY)


def _crd(obj: Obj) -> HealthStatus:
    conditions = _conditions(obj)
    if not conditions:
        return _status(Health.PROGRESSING, "Status conditions not found")
    established = terminating = names_refused = violations = False
    message = ""
    for condition in conditions:
        kind, value = condition.get("type"), condition.get("status")
        text = str(condition.get("message") or "")
        if kind == "Terminating" and value == "True":
            terminating, message = True, text
        elif kind == "NamesAccepted" and value == "False":
            names_refused, message = True, text
        elif kind == "Established":
            if value == "True":
                established = True
            else:
                message = text
        elif kind == "NonStructuralSchema" and value == "True":
            violations, message = True, text
    if terminating:
        return _status(Health.PROGRESSING, f"CRD is being terminated: {message}")
    if names_refused:
        return _status(Health.DEGRADED, f"CRD names have not been accepted: {message}")
    if not established:
        return _status(Health.DEGRADED, f"CRD is not established: {message}")
    if violations:
        return _status(Health.DEGRADED, f"Schema violations found: {message}")
    return _status(Health.HEALTHY, "CRD is healthy")


def _apiservice(obj: Obj) -> HealthStatus:
    available = _condition(obj, "Available")
    if available is None:
        return _status(Health.PROGRESSING, "Waiting to be processed")
    message = f"{available.get('reason') or ''}: {available.get('message') or ''}"
    ok = available.get("status") == "True"
    return _status(Health.HEALTHY if ok else Health.PROGRESSING, message)


# HPA conditions (type, reason) that settle its health; the first one met decides.
_HPA_DEGRADED = frozenset(
    {
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    }
)
_HPA_V1_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
_HPA_HEALTHY = frozenset(
    {
        ("AbleToScale", "SucceededRescale"),
        ("ScalingLimited", "DesiredWithinRange"),
        ("ScalingLimited", "TooFewReplicas"),
        ("ScalingLimited", "TooManyReplicas"),
    }
)


def _hpa(obj: Obj) -> HealthStatus:
    waiting = _status(Health.PROGRESSING, "Waiting to Autoscale")
    if obj.get("apiVersion") == "autoscaling/v1":
        # v1 keeps its conditions in an annotation.
        text = _map(obj, "metadata", "annotations").get(_HPA_V1_CONDITIONS)
        if text is None:
            return waiting
        try:
            conditions = json.loads(str(text))
        except ValueError as err:
            raise _Bad(f"conditions annotation is not JSON: {err}") from err
        if not isinstance(conditions, list):
            raise _Bad("conditions annotation is not a list")
    else:
        conditions = _conditions(obj)
    for condition in conditions:
        if not isinstance(condition, Mapping):
            continue
        pair = (condition.get("type"), condition.get("reason"))
        if pair in _HPA_DEGRADED:
            return _status(Health.DEGRADED, str(condition.get("message") or ""))
        if pair in _HPA_HEALTHY:
            return _status(Health.HEALTHY, str(condition.get("message") or ""))
    return waiting


_RULES: dict[tuple[str, str], Callable[[Obj], HealthStatus]] = {
    ("apps", "Deployment"): _deployment,
    ("extensions", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("extensions", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("extensions", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("extensions", "Ingress"): _ingress,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("apiregistration.k8s.io", "APIService"): _apiservice,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
}


def object_health(obj: Obj | None) -> HealthStatus:
    """The health of one live object (None: it does not exist); see the module docstring."""
    if obj is None:
        return _status(Health.MISSING, "not found on the cluster")
    if isinstance(obj.get("metadata"), Mapping) and obj["metadata"].get("deletionTimestamp"):
        return _status(Health.PROGRESSING, "Pending deletion")
    rule = _RULES.get((api_group(str(obj.get("apiVersion") or "")), str(obj.get("kind") or "")))
    if rule is None:
        return _status(Health.HEALTHY)
    try:
        return rule(obj)
    except _Bad as err:
        return _status(Health.UNKNOWN, str(err))
