"""The verbs of the Kubernetes API on the store: what create, update, patch, delete mean.

Every write goes through ``_write``: the object is normalised (apiVersion, kind, namespace,
Secret stringData folded into data), defaulted, given its server fields (uid,
creationTimestamp, generation bumped only when something outside metadata and status
changed), its status kept or set by the readiness controller, checked against the fault
hooks, and (unless a dry run) stored under the next resourceVersion. A write that changes
nothing stores nothing and keeps the resourceVersion, as the real server does.

Errors are ``ApiError``: the HTTP layer answers them as a Status object with the reason and
code helm and kubectl look for.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sbkube.apiserver import defaults, scale, validation
from sbkube.apiserver.controller import Controller
from sbkube.apiserver.discovery import CRD_GROUP, CRD_PLURAL, Registry, ResourceType
from sbkube.apiserver.faults import Faults
from sbkube.apiserver.selectors import Predicate
from sbkube.apiserver.store import Key, Store, clone, without_nulls

Obj = dict[str, Any]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
NAMESPACES: Key = ("", "namespaces")

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"


class ApiError(Exception):
    """An error answered as a Kubernetes Status object."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


class Blocked(Exception):
    """A write the block_on hook holds forever (raised out of the store lock, then held)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _typed(rtype: ResourceType, body: Obj) -> Obj:
    """A copy of a written object as the server decodes it: a built-in kind's nulls dropped
    (a typed field sent as null is never set; a real server stores a null entry of a string
    map as ``""``, this one drops it too). A custom resource keeps them for its schema to
    judge (``nullable``)."""
    return clone(body) if rtype.custom else without_nulls(body)


def _details(rtype: ResourceType, name: str) -> Obj:
    details: Obj = {"name": name, "kind": rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.qualified} "{name}" not found',
                    _details(rtype, name))  # fmt: skip


def _conflict(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rtype.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        _details(rtype, name),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(rtype: ResourceType, name: str, message: str) -> ApiError:
    details = {**_details(rtype, name), "kind": rtype.kind}
    qualified = f"{rtype.kind}.{rtype.group}" if rtype.group else rtype.kind
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {message}', details)


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_VOLATILE_STATUS = ("lastTransitionTime", "lastUpdateTime", "startTime", "completionTime")


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in _VOLATILE_STATUS}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _content(obj: Mapping[str, Any]) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _without_field_times(obj: Mapping[str, Any]) -> Any:
    managed = (obj.get("metadata") or {}).get("managedFields")
    if not managed:
        return obj
    entries = [{k: v for k, v in e.items() if k != "time"} for e in managed]
    return {**obj, "metadata": {**obj["metadata"], "managedFields": entries}}


def _unchanged(obj: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """True when a write changes nothing but the times of its field ownership."""
    return obj == live or _without_field_times(obj) == _without_field_times(live)


def _fold_string_data(obj: Obj) -> None:
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        current = obj.get("data")
        data: Obj = dict(current) if isinstance(current, dict) else {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
        obj["data"] = data


def parse_body(raw: bytes, content_type: str) -> Obj:
    """A request body as an object: JSON, YAML (apply patches) or a protobuf envelope."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/vnd.kubernetes.protobuf" or raw[:4] == b"k8s\x00":
        from sbkube.apiserver import protobuf

        try:
            return protobuf.decode(raw)
        except ValueError as err:
            raise ApiError(
                415, "UnsupportedMediaType", f"cannot decode protobuf body: {err}"
            ) from None
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        if media != APPLY_PATCH:
            raise bad_request("the request body is not valid JSON") from None
        value = _yaml(raw)
    if not isinstance(value, dict):
        raise bad_request("the request body must be an object")
    return value


def _yaml(raw: bytes) -> Any:
    from sbkube import yamlio

    try:
        return yamlio.load(raw)
    except yamlio.YAMLError as err:
        raise bad_request(f"the apply patch is not valid YAML: {err}") from None


class Api:
    """The API verbs over one store; the HTTP layer calls these and serialises the answers."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        controller: Controller,
        faults: Faults,
        flush: Callable[[], None],
    ) -> None:
        self.store = store
        self.registry = registry
        self.controller = controller
        self.faults = faults
        self._flush = flush
        self.ips = defaults.ClusterIPs()

    # Setup ---------------------------------------------------------------------------------

    def bootstrap(self) -> None:
        """The namespaces every cluster has; registers stored CRDs; notes used clusterIPs."""
        for _, obj in self.store.all():
            if obj.get("kind") == "CustomResourceDefinition":
                self.registry.set_crd(obj["metadata"]["name"], obj)
            if obj.get("kind") == "Service":
                address = (obj.get("spec") or {}).get("clusterIP")
                if address and address != "None":
                    self.ips.mark_used(address)
        rtype = self._rtype(NAMESPACES)
        for name in SYSTEM_NAMESPACES:
            if self.store.get(NAMESPACES, "", name) is None:
                body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                self.create(rtype, "", body)

    def _rtype(self, key: Key) -> ResourceType:
        rtype = self.registry.for_key(key)
        assert rtype is not None, key
        return rtype

    def storage_key(self, obj: Mapping[str, Any]) -> Key | None:
        """Where a loaded object belongs, from its apiVersion and kind."""
        rtype = self.registry.for_kind(str(obj.get("apiVersion") or ""), str(obj.get("kind")))
        return rtype.key if rtype else None

    # Reads ---------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rtype.key, namespace, name)
        if obj is None:
            raise not_found(rtype, name)
        return obj

    def list_objects(
        self,
        rtype: ResourceType,
        namespace: str | None,
        predicate: Predicate | None,
        name: str | None = None,
    ) -> tuple[list[Obj], int]:
        """The matching objects and the resourceVersion the list is consistent with."""
        with self.store.lock:
            if name is not None and namespace is not None:
                one = self.store.get(rtype.key, namespace, name)
                items = [one] if one is not None else []
            else:
                items = self.store.select(rtype.key, namespace)
            if predicate is not None:
                items = [obj for obj in items if predicate(obj)]
            return items, self.store.resource_version

    # Writes --------------------------------------------------------------------------------

    def _check_namespace(self, rtype: ResourceType, namespace: str) -> None:
        if rtype.namespaced and self.store.get(NAMESPACES, "", namespace) is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           {"name": namespace, "kind": "namespaces"})  # fmt: skip

    def _identify(self, rtype: ResourceType, namespace: str, body: Obj, name: str | None) -> Obj:
        """``body`` with the apiVersion, kind and namespace of the request (a fresh dict)."""
        obj = dict(body)
        metadata = dict(obj.get("metadata") or {})
        obj["metadata"] = metadata
        if body.get("kind") and body["kind"] != rtype.kind:
            raise bad_request(
                f"the kind of the object ({body['kind']}) does not match the URL ({rtype.kind})"
            )
        obj["apiVersion"] = rtype.api_version
        obj["kind"] = rtype.kind
        if rtype.namespaced:
            if metadata.get("namespace") and metadata["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request"
                )
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if name is not None:
            if metadata.get("name") and metadata["name"] != name:
                raise bad_request(
                    f"the name of the object ({metadata['name']}) does not match the name "
                    f"on the URL ({name})"
                )
            metadata["name"] = name
        return obj

    def _write(
        self,
        rtype: ResourceType,
        obj: Obj,
        live: Obj | None,
        *,
        dry_run: bool,
        status_only: bool = False,
        manager: str | None = None,
    ) -> tuple[Obj, bool]:
        """Completes and stores ``obj`` (a fresh dict the caller owns). Returns (obj, created).

        ``manager`` (for creates, updates and non-apply patches) is recorded as the owner of
        the fields the write changed; apply patches record their own ownership.

        Caller holds the store lock.
        """
        metadata = obj["metadata"]
        name = str(metadata.get("name") or "")
        if status_only:
            assert live is not None
            status = obj.get("status")
            obj = {**live, "metadata": dict(live["metadata"])}
            if status is not None:
                obj["status"] = status
            metadata = obj["metadata"]
        else:
            if not name:
                raise invalid(rtype, name, "metadata.name: Required value: name or generateName "
                                           "is required")  # fmt: skip
            if rtype.kind == "Secret" and rtype.group == "":
                _fold_string_data(obj)
            # Checked as written, before defaults (which expect the types the schema says).
            self._validate(rtype, name, obj)
            if not rtype.custom:
                defaults.apply_defaults(rtype.group, obj, live, self.ips)
            if "status" in rtype.subresources and rtype.kind != "Namespace":
                # The main resource ignores status: only the status subresource writes it.
                if live is not None and "status" in live:
                    obj["status"] = live["status"]
                elif live is None:
                    obj.pop("status", None)
        now = now_text()
        for field in ("resourceVersion", "selfLink", "deletionTimestamp"):
            metadata.pop(field, None)
        if live is None:
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = now
            metadata["generation"] = 1
        else:
            live_meta = live["metadata"]
            metadata["uid"] = live_meta["uid"]
            metadata["creationTimestamp"] = live_meta["creationTimestamp"]
            generation = live_meta.get("generation", 1)
            if not status_only and _content(obj) != _content(live):
                generation += 1
            metadata["generation"] = generation
            if "managedFields" not in metadata and "managedFields" in live_meta:
                metadata["managedFields"] = live_meta["managedFields"]
        if not status_only and not rtype.custom:
            self.controller.reconcile(rtype.group, obj, now)
            # Same status but for timestamps: keep the stored one (no spurious change).
            if (
                live is not None
                and "status" in live
                and "status" in obj
                and _without_times(obj["status"]) == _without_times(live["status"])
            ):
                obj["status"] = live["status"]
        if manager is not None and not status_only:
            from sbkube.apiserver import patch as patching

            # Later applies must see who changed what, or they could not conflict with it.
            obj = patching.record_update(live, obj, manager)
            metadata = obj["metadata"]
        if live is not None:
            metadata["resourceVersion"] = live["metadata"]["resourceVersion"]
            if _unchanged(obj, live):
                return live, False
        if not dry_run:
            verdict = self.faults.verdict(obj)
            if verdict is not None:
                kind, message = verdict
                if kind == "block":
                    raise Blocked(message)
                raise ApiError(500, "InternalError", message)
        if live is None and not dry_run:
            self._check_namespace(rtype, str(metadata.get("namespace") or ""))
        if dry_run:
            if live is None:
                metadata.pop("resourceVersion", None)
            return obj, live is None
        metadata["resourceVersion"] = str(self.store.next_version())
        self.store.put(rtype.key, obj, "ADDED" if live is None else "MODIFIED")
        if rtype.key == (CRD_GROUP, CRD_PLURAL):
            self.registry.set_crd(name, obj)
        return obj, live is None

    def _validate(self, rtype: ResourceType, name: str, obj: Obj) -> None:
        """Raises 422 Invalid, as the real server words it, for an object its schema refuses."""
        if rtype.custom:
            schema = ((self.registry.crd_version(rtype) or {}).get("schema") or {}).get(
                "openAPIV3Schema"
            )
            problems = validation.check_custom(schema, obj)
        else:
            problems = validation.check_builtin(rtype.group, rtype.version, rtype.kind, obj)
        if problems:
            details = {
                **_details(rtype, name),
                "kind": rtype.kind,
                "causes": validation.causes(problems),
            }
            message = validation.message(rtype.kind, rtype.group, name, problems)
            raise ApiError(422, "Invalid", message, details)

    def _guarded(self, action: Callable[[], tuple[Obj, bool]]) -> tuple[Obj, bool]:
        """Runs a write under the store lock; a blocked write waits forever outside it."""
        try:
            with self.store.lock:
                return action()
        except Blocked as blocked:
            self.faults.hold(blocked.name, self._flush)
            raise AssertionError("unreachable") from None

    def create(
        self,
        rtype: ResourceType,
        namespace: str,
        body: Obj,
        *,
        dry_run: bool = False,
        manager: str | None = None,
    ) -> Obj:
        obj = self._identify(rtype, namespace, _typed(rtype, body), None)
        metadata = obj["metadata"]
        if not metadata.get("name") and metadata.get("generateName"):
            alphabet = string.ascii_lowercase + string.digits
            suffix = "".join(secrets.choice(alphabet) for _ in range(5))
            metadata["name"] = f"{metadata['generateName']}{suffix}"
        name = str(metadata.get("name") or "")

        def action() -> tuple[Obj, bool]:
            self._check_namespace(rtype, namespace)
            if self.store.get(rtype.key, namespace, name) is not None:
                raise ApiError(409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists',
                               _details(rtype, name))  # fmt: skip
            return self._write(rtype, obj, None, dry_run=dry_run, manager=manager)

        return self._guarded(action)[0]

    def update(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: Obj,
        *,
        dry_run: bool = False,
        status_only: bool = False,
        manager: str | None = None,
    ) -> Obj:
        obj = self._identify(rtype, namespace, _typed(rtype, body), name)
        wanted_version = obj["metadata"].get("resourceVersion")

        def action() -> tuple[Obj, bool]:
            live = self.store.get(rtype.key, namespace, name)
            if live is None:
                raise not_found(rtype, name)
            if wanted_version and wanted_version != live["metadata"]["resourceVersion"]:
                raise _conflict(rtype, name)
            return self._write(
                rtype, obj, live, dry_run=dry_run, status_only=status_only, manager=manager
            )

        return self._guarded(action)[0]

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        *,
        dry_run: bool = False,
        status_only: bool = False,
        field_manager: str | None = None,
        force: bool = False,
    ) -> tuple[Obj, bool]:
        """Applies a patch; returns (object, created). Apply patches create missing objects."""
        from sbkube.apiserver import patch as patching

        media = content_type.split(";", 1)[0].strip().lower()
        if media == APPLY_PATCH_CBOR:
            raise ApiError(415, "UnsupportedMediaType", "apply patches must be YAML or JSON")
        if media == STRATEGIC_PATCH and rtype.custom:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "strategic merge patch is not supported for custom resources; use "
                f"{MERGE_PATCH}, {JSON_PATCH} or {APPLY_PATCH}",
            )
        if media not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {media!r}")
        if media == APPLY_PATCH and not field_manager:
            raise bad_request("PATCH with an apply patch requires the fieldManager parameter")
        try:
            document: Any = json.loads(raw) if media != APPLY_PATCH else parse_body(raw, media)
        except ValueError:
            raise bad_request("the patch is not valid JSON") from None

        def action() -> tuple[Obj, bool]:
            live = self.store.get(rtype.key, namespace, name)
            if live is None and (media != APPLY_PATCH or status_only):
                raise not_found(rtype, name)
            try:
                if media == APPLY_PATCH:
                    applied = self._identify(rtype, namespace, document, name)
                    if live is None:
                        self._check_namespace(rtype, namespace)
                    patched = patching.server_side_apply(
                        clone(live) if live is not None else None,
                        applied,
                        manager=str(field_manager),
                        force=force,
                    )
                elif media == JSON_PATCH:
                    if not isinstance(document, list):
                        raise bad_request("a JSON patch must be a list of operations")
                    patched = patching.json_patch(clone(live), document)
                elif not isinstance(document, dict):
                    raise bad_request("a merge patch must be an object")
                elif media == MERGE_PATCH:
                    patched = patching.merge_patch(clone(live), document)
                else:
                    patched = patching.strategic_merge_patch(clone(live), document)
            except patching.Conflict as err:
                raise ApiError(409, "Conflict", str(err), _details(rtype, name)) from None
            except patching.PatchError as err:
                raise ApiError(422, "Invalid", str(err), _details(rtype, name)) from None
            if not isinstance(patched, dict):
                raise invalid(rtype, name, "the patched object is not an object")
            obj = self._identify(rtype, namespace, patched, name)
            updater = None if media == APPLY_PATCH else field_manager
            return self._write(
                rtype, obj, live, dry_run=dry_run, status_only=status_only, manager=updater
            )

        return self._guarded(action)

    # The readiness controller's rewrites ---------------------------------------------------

    def refresh(self, names: set[str]) -> int:
        """Sets again the status of the workloads called ``names`` (after a tick or a hold
        changed what the controller says of them); returns how many objects changed."""
        if not names:
            return 0
        from sbkube.apiserver.controller import WORKLOADS

        changed = 0
        with self.store.lock:
            for key, live in self.store.all():
                metadata = live["metadata"]
                if metadata.get("name") not in names:
                    continue
                rtype = self.registry.for_key(key)
                if rtype is None or (rtype.group, rtype.kind) not in WORKLOADS:
                    continue
                obj = {**live, "metadata": dict(metadata)}
                self.controller.reconcile(rtype.group, obj, now_text())
                before = live.get("status")
                if before is not None and _without_times(obj["status"]) == _without_times(before):
                    continue
                obj["metadata"]["resourceVersion"] = str(self.store.next_version())
                self.store.put(key, obj, "MODIFIED")
                changed += 1
        return changed

    # The scale subresource ------------------------------------------------------------------

    def _scale_paths(self, rtype: ResourceType, name: str) -> scale.ScalePaths:
        if not rtype.custom:
            return scale.BUILTIN
        paths = scale.crd_paths(self.registry.crd_version(rtype))
        if paths is None:
            raise not_found(rtype, name)
        return paths

    def get_scale(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        """The object's Scale (autoscaling/v1)."""
        return scale.view(self.get(rtype, namespace, name), self._scale_paths(rtype, name))

    def write_scale(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        change: Callable[[Obj], Any],
        *,
        dry_run: bool = False,
        manager: str | None = None,
    ) -> Obj:
        """Sets the replicas of the Scale that ``change`` makes of the current one (a PUT's
        body, or the current Scale patched); returns the new Scale."""
        paths = self._scale_paths(rtype, name)

        def action() -> tuple[Obj, bool]:
            live = self.store.get(rtype.key, namespace, name)
            if live is None:
                raise not_found(rtype, name)
            wanted = change(scale.view(live, paths))
            if not isinstance(wanted, dict):
                raise bad_request("a Scale must be an object")
            if wanted.get("kind") not in (None, "Scale"):
                raise bad_request(f"the object is a {wanted['kind']}, not a Scale")
            version = (wanted.get("metadata") or {}).get("resourceVersion")
            if version and version != live["metadata"]["resourceVersion"]:
                raise _conflict(rtype, name)
            replicas = (wanted.get("spec") or {}).get("replicas", 0)
            if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
                raise ApiError(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                    f"{json.dumps(replicas)}: must be greater than or equal to 0",
                    {"name": name, "group": "autoscaling", "kind": "Scale"},
                )
            obj = scale.write(clone(live), paths.spec_replicas, replicas)
            return self._write(rtype, obj, live, dry_run=dry_run, manager=manager)

        return scale.view(self._guarded(action)[0], paths)

    def patch_scale(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        *,
        dry_run: bool = False,
        manager: str | None = None,
    ) -> Obj:
        """A patch of the Scale (kubectl scale sends a merge patch of spec.replicas)."""
        from sbkube.apiserver import patch as patching

        media = content_type.split(";", 1)[0].strip().lower()
        if media not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {media!r}")
        try:
            document: Any = json.loads(raw) if media != APPLY_PATCH else parse_body(raw, media)
        except ValueError:
            raise bad_request("the patch is not valid JSON") from None

        def change(current: Obj) -> Any:
            try:
                if media == JSON_PATCH:
                    if not isinstance(document, list):
                        raise bad_request("a JSON patch must be a list of operations")
                    return patching.json_patch(current, document)
                if not isinstance(document, dict):
                    raise bad_request("a merge patch must be an object")
                # A Scale has no lists: merge, strategic and apply patches all merge.
                return patching.merge_patch(current, document)
            except patching.PatchError as err:
                raise ApiError(422, "Invalid", str(err), _details(rtype, name)) from None

        return self.write_scale(rtype, namespace, name, change, dry_run=dry_run, manager=manager)

    def delete(
        self, rtype: ResourceType, namespace: str, name: str, *, dry_run: bool = False
    ) -> Obj:
        """Deletes at once (no finalizers, no graceful period); returns the final object."""
        with self.store.lock:
            live = self.store.get(rtype.key, namespace, name)
            if live is None:
                raise not_found(rtype, name)
            if rtype.key == NAMESPACES and name in PROTECTED_NAMESPACES:
                raise ApiError(403, "Forbidden",
                               f'namespaces "{name}" is forbidden: this namespace may not be '
                               "deleted", _details(rtype, name))  # fmt: skip
            if dry_run:
                return live
            return self._remove(rtype.key, live)

    def _remove(self, key: Key, live: Obj) -> Obj:
        """Removes one object and what it owns (a namespace's contents, a CRD's objects)."""
        name = live["metadata"]["name"]
        if key == NAMESPACES:
            for inner_key, obj in list(self.store.namespaced_in(name)):
                self._remove(inner_key, obj)
        elif key == (CRD_GROUP, CRD_PLURAL):
            names = (live.get("spec") or {}).get("names") or {}
            custom_key = (str((live.get("spec") or {}).get("group")), str(names.get("plural")))
            for obj in self.store.select(custom_key, None):
                self._remove(custom_key, obj)
            self.registry.set_crd(name, None)
        final = {**live, "metadata": dict(live["metadata"])}
        final["metadata"]["resourceVersion"] = str(self.store.next_version())
        if key == NAMESPACES:
            final["status"] = {"phase": "Terminating"}
        self.store.remove(key, final)
        return final

    def delete_collection(
        self,
        rtype: ResourceType,
        namespace: str | None,
        predicate: Predicate | None,
        *,
        dry_run: bool = False,
    ) -> tuple[list[Obj], int]:
        with self.store.lock:
            items, _ = self.list_objects(rtype, namespace, predicate)
            if rtype.key == NAMESPACES:
                items = [o for o in items if o["metadata"]["name"] not in PROTECTED_NAMESPACES]
            if not dry_run:
                items = [self._remove(rtype.key, obj) for obj in items]
            return items, self.store.resource_version
