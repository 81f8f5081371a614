"""Defaults the real API server fills in, so that clients comparing live objects see no drift.

Only the fields clients and charts commonly compare are defaulted (Service type and
clusterIP, port protocols and targetPorts, workload strategies and history limits, pod and
container fields). Every function mutates the fresh object it is given (never a stored
one) and keeps a value the writer set.
"""

from __future__ import annotations

import itertools
import threading
import zlib
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]


def _set(mapping: Obj, key: str, value: Any) -> None:
    if mapping.get(key) is None:
        mapping[key] = value


def _dict(mapping: Obj, key: str) -> Obj:
    value = mapping.get(key)
    if not isinstance(value, dict):
        value = {}
        mapping[key] = value
    return value


def _image_pull_policy(image: str) -> str:
    # The server's rule: no tag or ":latest" (and no digest) means Always.
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _container(container: Obj) -> None:
    _set(container, "imagePullPolicy", _image_pull_policy(str(container.get("image") or "")))
    _set(container, "terminationMessagePath", "/dev/termination-log")
    _set(container, "terminationMessagePolicy", "File")
    _set(container, "resources", {})
    for port in container.get("ports") or ():
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_key)
        if isinstance(probe, dict):
            _set(probe, "timeoutSeconds", 1)
            _set(probe, "periodSeconds", 10)
            _set(probe, "successThreshold", 1)
            _set(probe, "failureThreshold", 3)


def pod_spec(spec: Obj) -> None:
    _set(spec, "restartPolicy", "Always")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "securityContext", {})
    _set(spec, "schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or ():
            if isinstance(container, dict):
                _container(container)


def _template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec(_dict(template, "spec"))


def _deployment(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    _set(spec, "replicas", 1)
    strategy = _dict(spec, "strategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        _set(rolling, "maxUnavailable", "25%")
        _set(rolling, "maxSurge", "25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    _template(spec)


def _statefulset(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    _set(spec, "replicas", 1)
    _set(spec, "podManagementPolicy", "OrderedReady")
    strategy = _dict(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(_dict(strategy, "rollingUpdate"), "partition", 0)
    _set(spec, "revisionHistoryLimit", 10)
    retention = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    _set(retention, "whenDeleted", "Retain")
    _set(retention, "whenScaled", "Retain")
    for claim in spec.get("volumeClaimTemplates") or ():
        if isinstance(claim, dict):
            _set(_dict(claim, "spec"), "volumeMode", "Filesystem")
    _template(spec)


def _daemonset(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    strategy = _dict(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        _set(rolling, "maxUnavailable", 1)
        _set(rolling, "maxSurge", 0)
    _set(spec, "revisionHistoryLimit", 10)
    _template(spec)


def _replicaset(obj: Obj) -> None:
    _set(_dict(obj, "spec"), "replicas", 1)
    _template(obj["spec"])


def _job_spec(spec: Obj) -> None:
    _set(spec, "parallelism", 1)
    _set(spec, "completions", 1)
    _set(spec, "backoffLimit", 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(spec, "manualSelector", False)
    _set(spec, "podReplacementPolicy", "TerminatingOrFailed")
    _template(spec)


def _job(obj: Obj) -> None:
    _job_spec(_dict(obj, "spec"))


def _cronjob(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    _set(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)
    job_template = _dict(spec, "jobTemplate")
    _job_spec(_dict(job_template, "spec"))


def _pod(obj: Obj) -> None:
    pod_spec(_dict(obj, "spec"))


def _secret(obj: Obj) -> None:
    _set(obj, "type", "Opaque")


def _namespace(obj: Obj) -> None:
    name = (obj.get("metadata") or {}).get("name")
    labels = _dict(_dict(obj, "metadata"), "labels")
    if name:
        labels["kubernetes.io/metadata.name"] = name
    _set(_dict(obj, "spec"), "finalizers", ["kubernetes"])
    _dict(obj, "status")["phase"] = "Active"


def _pvc(obj: Obj) -> None:
    _set(_dict(obj, "spec"), "volumeMode", "Filesystem")


def _pv(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    _set(spec, "persistentVolumeReclaimPolicy", "Retain")
    _set(spec, "volumeMode", "Filesystem")


class ClusterIPs:
    """Hands out Service clusterIPs from 10.96.0.0/12, skipping ones already in use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count(10)
        self._used: set[str] = set()

    def mark_used(self, address: str) -> None:
        with self._lock:
            self._used.add(address)

    def allocate(self) -> str:
        with self._lock:
            while True:
                n = next(self._counter)
                address = f"10.{96 + (n >> 16) % 16}.{(n >> 8) & 255}.{n & 255}"
                if address not in self._used:
                    self._used.add(address)
                    return address


def _service(obj: Obj, live: Obj | None, ips: ClusterIPs) -> None:
    spec = _dict(obj, "spec")
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    live_spec = (live or {}).get("spec") or {}
    if spec["type"] != "ExternalName":
        # An allocated clusterIP is immutable: an update that leaves it out keeps it.
        if not spec.get("clusterIP") and live_spec.get("clusterIP"):
            spec["clusterIP"] = live_spec["clusterIP"]
        if not spec.get("clusterIP"):
            spec["clusterIP"] = ips.allocate()
        _set(spec, "clusterIPs", [spec["clusterIP"]])
        _set(spec, "ipFamilies", ["IPv4"])
        _set(spec, "ipFamilyPolicy", "SingleStack")
        _set(spec, "internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    live_ports = {p.get("port"): p for p in live_spec.get("ports") or () if isinstance(p, dict)}
    for index, port in enumerate(spec.get("ports") or ()):
        if not isinstance(port, dict):
            continue
        _set(port, "protocol", "TCP")
        _set(port, "targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
            previous = live_ports.get(port.get("port"), {}).get("nodePort")
            seed = f"{obj['metadata'].get('name')}/{index}".encode()
            port["nodePort"] = previous or 30000 + zlib.crc32(seed) % 2767
    _set(obj, "status", {"loadBalancer": {}})


_BY_KIND: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("", "Pod"): _pod,
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
}


def apply_defaults(group: str, obj: Obj, live: Obj | None, ips: ClusterIPs) -> None:
    """Fills the server defaults of a built-in kind into ``obj`` (in place)."""
    kind = str(obj.get("kind") or "")
    if (group, kind) == ("", "Service"):
        _service(obj, live, ips)
        return
    fill = _BY_KIND.get((group, kind))
    if fill is not None:
        fill(obj)
