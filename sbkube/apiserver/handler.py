"""HTTP for the local API server: routing, query parameters, bodies, JSON answers, watches.

One ``Handler`` per connection (HTTP/1.1 keep-alive, so a client's thousands of requests
reuse one socket). Paths follow the real server: ``/api/v1/...`` and ``/apis/G/V/...``,
optionally ``/namespaces/NS/``, then the plural, the name and a subresource; the legacy
``/watch/`` prefix is accepted too. Every answer is JSON; errors are Status objects. Set
``SBKUBE_APISERVER_LOG=1`` to log each request (method, path, content type, code) to stderr.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sbkube.apiserver import openapi
from sbkube.apiserver.discovery import ResourceType
from sbkube.apiserver.resources import ApiError, bad_request, parse_body
from sbkube.apiserver.selectors import (
    SelectorError,
    equality_value,
    field_selector,
    label_selector,
)
from sbkube.apiserver.store import Event, Watcher

if TYPE_CHECKING:
    from sbkube.apiserver import ApiServer

LOG_ENV_VAR = "SBKUBE_APISERVER_LOG"
VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-sbkube",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
DEFAULT_WATCH_SECONDS = 1800
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

_TYPE_META = ("apiVersion", "kind")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _verb(method: str, name: str | None, watch: bool, headers: Any) -> str:
    """The request's verb as the real server's metrics name it (an apply PATCH: ``apply``)."""
    if method in ("GET", "HEAD"):
        return "watch" if watch else "get" if name else "list"
    if method == "PATCH":
        return "apply" if "apply-patch" in headers.get("Content-Type", "") else "patch"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update"}.get(method, method.lower())


class Server(ThreadingHTTPServer):
    """The listening socket; ``app`` is the ApiServer whose requests it serves."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: ApiServer) -> None:
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away between two requests of a kept-alive connection (a
        # kubectl or helm stopped by SIGTERM) is no server fault: socketserver would print
        # a traceback, on the stderr of the sbkube that serves --memory-cluster in-process.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    # Plumbing ------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle's algorithm the second waits for
        # the client's delayed ACK, which costs every request 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get(LOG_ENV_VAR):
            sys.stderr.write(f"apiserver: {format % args}\n")

    def _log_request_detail(self) -> None:
        if os.environ.get(LOG_ENV_VAR):
            sys.stderr.write(
                f"apiserver: {time.time():.3f} {self.command} {self.path} "
                f"ct={self.headers.get('Content-Type')} accept={self.headers.get('Accept')}\n"
            )

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        # One write for head and body: half the system calls of send_header/end_headers,
        # and most of a request's time was spent in them.
        self.log_request(code)
        reason = self.responses.get(code, ("",))[0]
        head = (
            f"HTTP/1.1 {code} {reason}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-cache, private\r\n"
            f"Date: {self.date_time_string()}\r\n\r\n"
        ).encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + body)

    def _json(self, code: int, value: Any) -> None:
        self._send(code, _dumps(value))

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        self._log_request_detail()
        app = self.server.app
        if app.faults.latency_ms > 0:
            time.sleep(app.faults.latency_ms / 1000.0)
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        # Read the body first, so an error answer never leaves it unread on a kept-alive socket.
        self.raw = self._body() if self.command in ("POST", "PUT", "PATCH", "DELETE") else b""
        app.faults.hang(f"{self.command} {self.path}")
        self.counted = "other"
        try:
            self._route([s for s in url.path.split("/") if s])
        except ApiError as err:
            self._json(err.code, err.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # an answer, not a dropped connection, for a server bug
            traceback.print_exc(file=sys.stderr)
            failure = ApiError(500, "InternalError", f"internal error: {err}")
            try:
                self._json(500, failure.status())
            except OSError:
                self.close_connection = True
        finally:
            app.count_request(self.counted)

    # Routing -------------------------------------------------------------------------------

    def _route(self, segments: list[str]) -> None:
        app = self.server.app
        registry = app.registry
        head = segments[0] if segments else ""
        if not segments:
            self._json(200, {"paths": ["/api", "/api/v1", "/apis", "/openapi/v2", "/openapi/v3",
                                       "/version", "/healthz", "/readyz", "/livez"]})  # fmt: skip
        elif head in ("healthz", "readyz", "livez"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
        elif segments == ["version"]:
            self._json(200, VERSION)
        elif head == "openapi":
            self._openapi(segments[1:])
        elif segments == ["api"]:
            host = f"127.0.0.1:{app.port}"
            self._json(200, registry.core_versions(host))
        elif segments == ["apis"]:
            self._json(200, registry.group_list())
        elif head == "api" and len(segments) >= 2:
            self._group_version("", segments[1], segments[2:])
        elif head == "apis" and len(segments) == 2:
            self._found(registry.group(segments[1]))
        elif head == "apis" and len(segments) >= 3:
            self._group_version(segments[1], segments[2], segments[3:])
        else:
            self._found(None)

    def _found(self, document: Any) -> None:
        if document is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self._json(200, document)

    def _openapi(self, rest: list[str]) -> None:
        registry = self.server.app.registry
        if rest == ["v2"] and "protobuf" in (self.headers.get("Accept") or ""):
            self._send(200, openapi.v2_protobuf(), openapi.V2_PROTOBUF)
        elif rest == ["v2"]:
            self._json(200, openapi.v2_document(registry))
        elif rest == ["v3"]:
            self._json(200, openapi.v3_index(registry))
        elif len(rest) >= 3 and rest[0] == "v3":
            self._found(openapi.v3_document(registry, "/".join(rest[2:])))
        else:
            self._found(None)

    def _group_version(self, group: str, version: str, rest: list[str]) -> None:
        registry = self.server.app.registry
        group_version = f"{group}/{version}" if group else version
        if not rest:
            self._found(registry.resource_list(group_version))
            return
        watch = rest[0] == "watch"
        if watch:
            rest = rest[1:]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = registry.resource(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest:
            self._found(None)
        rtype = registry.resource(group, version, rest[0])
        if rtype is None or len(rest) > 3:
            self._found(None)
        assert rtype is not None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if (namespace is not None) != rtype.namespaced and name is not None:
            self._found(None)
        if rtype.namespaced and namespace is None and self.command in ("POST", "PUT", "PATCH"):
            raise bad_request("a namespaced resource needs a namespace in the URL")
        if sub is not None and sub not in rtype.subresources:
            self._found(None)
        watch = watch or self.query.get("watch") in ("true", "1")
        self._resource(rtype, namespace, name, sub, watch)

    # Resources -----------------------------------------------------------------------------

    def _served(self, rtype: ResourceType, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """The stored object as served at the requested version (no conversion)."""
        if obj.get("apiVersion") == rtype.api_version:
            return obj
        return {**obj, "apiVersion": rtype.api_version}

    def _resource(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str | None,
        sub: str | None,
        watch: bool,
    ) -> None:
        api = self.server.app.api
        method = self.command
        dry_run = self.query.get("dryRun") == "All"
        status_only = sub == "status"
        ns = namespace or ""
        self.counted = f"{_verb(method, name, watch, self.headers)} {rtype.plural}"
        if sub == "scale" and name is not None:
            self._scale(rtype, ns, name, dry_run)
        elif method in ("GET", "HEAD") and name is None:
            if watch:
                self._watch(rtype, namespace)
            else:
                self._list(rtype, namespace)
        elif method in ("GET", "HEAD"):
            assert name is not None
            obj = api.get(rtype, ns, name)
            self._object(rtype, 200, obj, single=True)
        elif method == "POST" and name is None:
            body = parse_body(self.raw, self.headers.get("Content-Type", ""))
            made = api.create(rtype, ns, body, dry_run=dry_run, manager=self._manager())
            self._object(rtype, 201, made)
        elif method == "PUT" and name is not None:
            body = parse_body(self.raw, self.headers.get("Content-Type", ""))
            updated = api.update(rtype, ns, name, body, dry_run=dry_run,
                                 status_only=status_only, manager=self._manager())  # fmt: skip
            self._object(rtype, 200, updated)
        elif method == "PATCH" and name is not None:
            content_type = self.headers.get("Content-Type", "")
            applying = "apply-patch" in content_type
            # Apply patches need an explicit manager; other writes default to the client's.
            manager = self.query.get("fieldManager") or (None if applying else self._manager())
            patched, created = api.patch(
                rtype,
                ns,
                name,
                content_type,
                self.raw,
                dry_run=dry_run,
                status_only=status_only,
                field_manager=manager,
                force=self.query.get("force") in ("true", "1"),
            )
            self._object(rtype, 201 if created else 200, patched)
        elif method == "DELETE":
            options = parse_body(self.raw, self.headers.get("Content-Type", "")) if self.raw else {}
            dry_run = dry_run or "All" in (options.get("dryRun") or ())
            if name is None:
                predicate = self._predicate()
                items, version = api.delete_collection(rtype, namespace, predicate,
                                                       dry_run=dry_run)  # fmt: skip
                self._list_answer(rtype, items, version)
            else:
                final = api.delete(rtype, ns, name, dry_run=dry_run)
                if rtype.kind == "Namespace" and not rtype.group:
                    self._object(rtype, 200, final)
                else:
                    self._json(200, {
                        "kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Success",
                        "details": {**self._details(rtype, name),
                                    "uid": final["metadata"].get("uid")},
                    })  # fmt: skip
        else:
            message = "the server does not allow this method on the requested resource"
            raise ApiError(405, "MethodNotAllowed", message)

    def _scale(self, rtype: ResourceType, namespace: str, name: str, dry_run: bool) -> None:
        api = self.server.app.api
        if self.command in ("GET", "HEAD"):
            self._json(200, api.get_scale(rtype, namespace, name))
        elif self.command == "PUT":
            body = parse_body(self.raw, self.headers.get("Content-Type", ""))
            self._json(200, api.write_scale(rtype, namespace, name, lambda _: body,
                                            dry_run=dry_run, manager=self._manager()))  # fmt: skip
        elif self.command == "PATCH":
            content_type = self.headers.get("Content-Type", "")
            scaled = api.patch_scale(rtype, namespace, name, content_type, self.raw,
                                     dry_run=dry_run, manager=self._manager())  # fmt: skip
            self._json(200, scaled)
        else:
            message = "the server does not allow this method on the requested resource"
            raise ApiError(405, "MethodNotAllowed", message)

    def _manager(self) -> str:
        """The field manager of a write: the parameter, else the client's name, as the real
        server derives it from the User-Agent (``kubectl``, ``helm``)."""
        given = self.query.get("fieldManager")
        if given:
            return given
        agent = self.headers.get("User-Agent") or "unknown"
        return agent.split("/", 1)[0].strip() or "unknown"

    @staticmethod
    def _details(rtype: ResourceType, name: str) -> dict[str, Any]:
        details: dict[str, Any] = {"name": name, "kind": rtype.plural}
        if rtype.group:
            details["group"] = rtype.group
        return details

    def _object(self, rtype: ResourceType, code: int, obj: Mapping[str, Any],
                single: bool = False) -> None:  # fmt: skip
        if single and self._wants_table():
            self._table(rtype, [obj], self.server.app.store.resource_version)
            return
        self._json(code, self._served(rtype, obj))

    def _predicate(self) -> Any:
        try:
            labels = label_selector(self.query.get("labelSelector"))
            fields = field_selector(self.query.get("fieldSelector"))
        except SelectorError as err:
            raise bad_request(str(err)) from None
        if labels is None:
            return fields
        if fields is None:
            return labels
        return lambda obj: labels(obj) and fields(obj)

    def _list(self, rtype: ResourceType, namespace: str | None) -> None:
        predicate = self._predicate()
        name = equality_value(self.query.get("fieldSelector"), "metadata.name")
        items, version = self.server.app.api.list_objects(rtype, namespace, predicate, name)
        if self._wants_table():
            self._table(rtype, items, version)
        else:
            self._list_answer(rtype, items, version)

    def _list_answer(self, rtype: ResourceType, items: list[Any], version: int) -> None:
        # As Kubernetes answers: the items of a built-in kind's list carry no apiVersion or
        # kind (the list's say them); a custom resource's items keep theirs.
        served = [self._served(rtype, obj) for obj in items]
        if not rtype.custom:
            served = [{k: v for k, v in obj.items() if k not in _TYPE_META} for obj in served]
        self._json(200, {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.api_version,
            "metadata": {"resourceVersion": str(version)},
            "items": served,
        })  # fmt: skip

    def _wants_table(self) -> bool:
        return "as=Table" in (self.headers.get("Accept") or "")

    def _table(self, rtype: ResourceType, items: list[Any], version: int) -> None:
        include = self.query.get("includeObject") or "Metadata"
        columns = [
            {"name": "Name", "type": "string", "format": "name", "description": "Name",
             "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0},
        ]  # fmt: skip
        rows = []
        for obj in items:
            metadata = obj.get("metadata") or {}
            row: dict[str, Any] = {"cells": [metadata.get("name"),
                                             _age(metadata.get("creationTimestamp"))]}  # fmt: skip
            if include == "Object":
                row["object"] = self._served(rtype, obj)
            elif include == "Metadata":
                row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": metadata}  # fmt: skip
            rows.append(row)
        self._json(200, {
            "kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(version)},
            "columnDefinitions": columns, "rows": rows,
        })  # fmt: skip

    # Watches -------------------------------------------------------------------------------

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, rtype: ResourceType, kind: str, obj: Mapping[str, Any]) -> None:
        self._chunk(_dumps({"type": kind, "object": self._served(rtype, obj)}) + b"\n")

    def _watch(self, rtype: ResourceType, namespace: str | None) -> None:
        app = self.server.app
        predicate = self._predicate()
        try:
            timeout = float(self.query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        except ValueError:
            raise bad_request("timeoutSeconds must be a number") from None
        version_param = self.query.get("resourceVersion") or ""
        send_initial = self.query.get("sendInitialEvents") == "true"
        watcher = Watcher(rtype.key, namespace, predicate)
        initial: list[Any] = []
        with app.store.lock:
            # Listing and subscribing under one lock: no event falls between the two.
            if send_initial or version_param in ("", "0"):
                initial, current = app.api.list_objects(rtype, namespace, predicate)
                replay: list[Event] | None = []
                app.store.subscribe(watcher, None)
            else:
                try:
                    since = int(version_param)
                except ValueError:
                    raise bad_request(f"invalid resourceVersion {version_param!r}") from None
                replay = app.store.subscribe(watcher, since)
                current = app.store.resource_version
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            if replay is None:
                expired = ApiError(410, "Expired", f"too old resource version: {version_param}")
                self._chunk(_dumps({"type": "ERROR", "object": expired.status()}) + b"\n")
                self._chunk(b"")
                return
            for obj in initial:
                self._event(rtype, "ADDED", obj)
            if send_initial:
                bookmark = {
                    "kind": rtype.kind,
                    "apiVersion": rtype.api_version,
                    "metadata": {
                        "resourceVersion": str(current),
                        "annotations": {INITIAL_EVENTS_END: "true"},
                    },
                }
                self._chunk(_dumps({"type": "BOOKMARK", "object": bookmark}) + b"\n")
            for event in replay:
                self._event(rtype, event.type, event.obj)
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    next_event = watcher.queue.get(timeout=remaining)
                except queue.Empty:  # the watch's time is up
                    break
                if next_event is None:  # Watcher.CLOSED: the server stops
                    break
                self._event(rtype, next_event.type, next_event.obj)
            self._chunk(b"")
        finally:
            app.store.unsubscribe(watcher)
