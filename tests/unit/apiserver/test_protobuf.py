"""Protobuf body decoding: hand-encoded messages, bodies captured from the real kubectl and
helm (tests/fixtures/protobuf/), and the real binaries talking to a small recording server
that stores what :func:`decode` makes of their bodies and serves it back to them."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sbkube.apiserver.protobuf import MAGIC, decode, is_protobuf

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "protobuf"

# --- a tiny protobuf writer (the test side of the wire format) ---------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negatives as ten-byte two's complement, like Go's int64
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def f_int(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def f_bytes(number: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def f_map(number: int, mapping: dict[str, Any]) -> bytes:
    return b"".join(f_bytes(number, f_bytes(1, k) + f_bytes(2, v)) for k, v in mapping.items())


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    type_meta = f_bytes(1, api_version) + f_bytes(2, kind)
    unknown = f_bytes(1, type_meta) + f_bytes(2, raw) + f_bytes(3, encoding) + f_bytes(4, "")
    return MAGIC + unknown


def meta(**fields: bytes) -> bytes:
    """An ObjectMeta the way Go writes one: every non-pointer scalar, even when empty."""
    base = {1: b"", 2: b"", 3: b"", 4: b"", 5: b"", 6: b""}
    body = b"".join(f_bytes(n, v) for n, v in base.items())
    return body + f_int(7, 0) + f_bytes(8, b"") + b"".join(fields.values())


# --- hand-encoded messages --------------------------------------------------------------


def test_is_protobuf_ignores_parameters_and_case() -> None:
    assert is_protobuf("application/vnd.kubernetes.protobuf")
    assert is_protobuf("Application/VND.kubernetes.protobuf; charset=utf-8")
    assert not is_protobuf("application/vnd.kubernetes.protobuf;stream=watch".replace(";", "x"))
    assert not is_protobuf("application/json")


def test_object_meta_every_field() -> None:
    owner = (
        f_bytes(1, "Deployment")
        + f_bytes(3, "web")
        + f_bytes(4, "uid-1")
        + f_bytes(5, "apps/v1")
        + f_int(6, 1)
        + f_int(7, 0)
    )
    raw_meta = (
        f_bytes(1, "cfg")
        + f_bytes(2, "cfg-")
        + f_bytes(3, "team")
        + f_bytes(4, "/self")
        + f_bytes(5, "u-1")
        + f_bytes(6, "42")
        + f_int(7, 3)
        + f_bytes(8, f_int(1, 1_700_000_000) + f_int(2, 123))
        + f_bytes(9, f_int(1, 0))
        + f_int(10, 30)
        + f_map(11, {"app": "web", "tier": ""})
        + f_map(12, {"note": "x"})
        + f_bytes(13, owner)
        + f_bytes(14, "a/b")
        + f_bytes(14, "c/d")
        + f_bytes(17, b"\x0a\x03mgr")  # managedFields: skipped
    )
    obj = decode(envelope("v1", "ConfigMap", f_bytes(1, raw_meta)))
    assert obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cfg",
            "generateName": "cfg-",
            "namespace": "team",
            "selfLink": "/self",
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 3,
            # JSON times are whole seconds: the nanos are dropped, as the API does.
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "deletionTimestamp": "1970-01-01T00:00:00Z",
            "deletionGracePeriodSeconds": 30,
            "labels": {"app": "web", "tier": ""},
            "annotations": {"note": "x"},
            "ownerReferences": [
                {
                    "kind": "Deployment",
                    "name": "web",
                    "uid": "uid-1",
                    "apiVersion": "apps/v1",
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
            "finalizers": ["a/b", "c/d"],
        },
    }


def test_zero_values_are_omitted_like_go_json() -> None:
    obj = decode(envelope("v1", "Secret", f_bytes(1, meta(name=f_bytes(1, "s"))) + f_bytes(3, "")))
    assert obj == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}


def test_secret_fields() -> None:
    raw = (
        f_bytes(1, meta(name=f_bytes(1, "s")))
        + f_map(2, {"bin": b"\xff\x00", "empty": b""})
        + f_bytes(3, "Opaque")
        + f_map(4, {"plain": "text"})
        + f_int(5, 0)  # a pointer: an explicit false is kept
    )
    assert decode(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"bin": "/wA=", "empty": ""},
        "type": "Opaque",
        "stringData": {"plain": "text"},
        "immutable": False,
    }


def test_config_map_fields() -> None:
    raw = f_bytes(1, meta()) + f_map(2, {"k": "v"}) + f_map(3, {"b": b"\x01\x02"}) + f_int(4, 1)
    obj = decode(envelope("v1", "ConfigMap", raw))
    assert obj["data"] == {"k": "v"}
    assert obj["binaryData"] == {"b": "AQI="}
    assert obj["immutable"] is True
    assert obj["metadata"] == {}


def test_namespace_spec_and_status() -> None:
    raw = (
        f_bytes(1, meta()) + f_bytes(2, f_bytes(1, "kubernetes")) + f_bytes(3, f_bytes(1, "Active"))
    )
    obj = decode(envelope("v1", "Namespace", raw))
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    assert obj["status"] == {"phase": "Active"}


def test_service_account_fields() -> None:
    secret_ref = f_bytes(1, "Secret") + f_bytes(2, "") + f_bytes(3, "token") + f_bytes(5, "v1")
    raw = (
        f_bytes(1, meta())
        + f_bytes(2, secret_ref)
        + f_bytes(3, f_bytes(1, "registry"))
        + f_int(4, 0)
    )
    obj = decode(envelope("v1", "ServiceAccount", raw))
    assert obj["secrets"] == [{"kind": "Secret", "name": "token", "apiVersion": "v1"}]
    assert obj["imagePullSecrets"] == [{"name": "registry"}]
    assert obj["automountServiceAccountToken"] is False


def test_delete_options_in_any_group() -> None:
    raw = (
        f_int(1, 0)
        + f_bytes(2, f_bytes(1, "u-1"))
        + f_int(3, 0)
        + f_bytes(4, "Foreground")
        + f_bytes(5, "All")
    )
    assert decode(envelope("apps/v1", "DeleteOptions", raw)) == {
        "apiVersion": "apps/v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u-1"},
        "orphanDependents": False,
        "propagationPolicy": "Foreground",
        "dryRun": ["All"],
    }


def test_negative_int64_is_read_signed() -> None:
    obj = decode(envelope("v1", "DeleteOptions", f_int(1, -1)))
    assert obj["gracePeriodSeconds"] == -1


def test_unknown_fields_are_skipped() -> None:
    raw = f_bytes(1, meta(name=f_bytes(1, "s"))) + f_bytes(99, "future") + f_int(98, 7)
    assert decode(envelope("v1", "Secret", raw))["metadata"] == {"name": "s"}


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "Secret"}', "magic"),
        (envelope("apps/v1", "Deployment", b""), "kind Deployment not supported"),
        (envelope("apps/v1", "Secret", b""), "kind Secret not supported"),
        (envelope("v1", "Secret", b"", encoding="gzip"), "content encoding 'gzip'"),
        (MAGIC + b"\x0a\x05\x0a", "runs past the end"),
        (MAGIC + b"\x08\xff", "varint runs past the end"),
        (MAGIC + b"\x08" + b"\xff" * 10 + b"\x01", "longer than ten bytes"),
        (envelope("v1", "Secret", f_int(1, 5)), "'metadata' has wire type 0"),
        (envelope("v1", "Secret", f_bytes(3, b"\xff\xfe")), "'type' is not valid UTF-8"),
        (envelope("v1", "Secret", b"\x0b"), "wire type 3"),
        (MAGIC + b"\x00", "field number 0"),
    ],
)
def test_malformed_or_unsupported_bodies_raise_one_line(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        decode(body)
    assert "\n" not in str(info.value)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_value_error(noise: bytes) -> None:
    for body in (MAGIC + noise, envelope("v1", "Secret", noise)):
        with contextlib.suppress(ValueError):
            decode(body)


_keys = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@given(
    name=_keys,
    labels=st.dictionaries(_keys, _keys, max_size=4),
    data=st.dictionaries(_keys, st.binary(max_size=40), max_size=4),
)
def test_secret_round_trip(name: str, labels: dict[str, str], data: dict[str, bytes]) -> None:
    raw = f_bytes(1, meta(name=f_bytes(1, name), labels=f_map(11, labels))) + f_map(2, data)
    obj = decode(envelope("v1", "Secret", raw))
    expected_meta: dict[str, Any] = {}
    if name:
        expected_meta["name"] = name
    if labels:
        expected_meta["labels"] = labels
    assert obj["metadata"] == expected_meta
    assert {k: base64.b64decode(v) for k, v in obj.get("data", {}).items()} == data


# --- bodies captured from the real binaries (see tests/fixtures/protobuf/README.md) -----

CAPTURED = {
    "kubectl-create-secret.bin": {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": "Yg==", "empty": ""},
    },
    "kubectl-create-configmap.bin": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "data": {"k": "v"},
        "binaryData": {"bin": base64.b64encode(b"bin\xff\x00\x01").decode()},
    },
    "kubectl-create-namespace.bin": {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "ns1"},
        "spec": {},
        "status": {},
    },
    "kubectl-create-serviceaccount.bin": {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa1"},
    },
    "helm-uninstall-delete.bin": {"apiVersion": "v1", "kind": "DeleteOptions"},
}


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_captured_bodies(name: str) -> None:
    assert decode((FIXTURES / name).read_bytes()) == CAPTURED[name]


def helm_release(secret: dict[str, Any]) -> dict[str, Any]:
    """helm's stored release: base64 (the API's) of base64 (helm's) of gzipped JSON."""
    inner = base64.b64decode(secret["data"]["release"])
    return dict(json.loads(gzip.decompress(base64.b64decode(inner))))


@pytest.mark.parametrize(
    ("name", "status"),
    [("helm-install-create.bin", "pending-install"), ("helm-install-update.bin", "deployed")],
)
def test_captured_helm_release_secrets(name: str, status: str) -> None:
    secret = decode((FIXTURES / name).read_bytes())
    assert secret["kind"] == "Secret"
    assert secret["type"] == "helm.sh/release.v1"
    assert secret["metadata"]["name"] == "sh.helm.release.v1.rel.v1"
    labels = secret["metadata"]["labels"]
    assert {k: labels[k] for k in ("owner", "name", "status", "version")} == {
        "owner": "helm",
        "name": "rel",
        "status": status,
        "version": "1",
    }
    release = helm_release(secret)
    assert (release["name"], release["version"], release["info"]["status"]) == ("rel", 1, status)


# --- the real binaries against a recording server -------------------------------------

_RESOURCES = {
    "secrets": ("Secret", True),
    "configmaps": ("ConfigMap", True),
    "namespaces": ("Namespace", False),
    "serviceaccounts": ("ServiceAccount", True),
}


@dataclass
class Request:
    method: str
    path: str
    content_type: str
    body: bytes


@dataclass
class Recorder:
    """What the binaries sent, and the objects (as :func:`decode` read them) they stored."""

    requests: list[Request] = field(default_factory=list)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def reply(self, code: int, obj: dict[str, Any]) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size)
            content_type = self.headers.get("Content-Type") or ""
            with recorder.lock:
                recorder.requests.append(Request(self.command, self.path, content_type, body))
                self.reply(*self.route(content_type, body))

        def route(self, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
            path, _, query = self.path.partition("?")
            if path == "/version":
                return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"}
            if path == "/api":
                return 200, {"kind": "APIVersions", "versions": ["v1"]}
            if path == "/apis":
                return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
            if path == "/api/v1":
                resources = [
                    {
                        "name": plural,
                        "singularName": kind.lower(),
                        "namespaced": namespaced,
                        "kind": kind,
                        "verbs": ["create", "delete", "get", "list", "update", "watch"],
                    }
                    for plural, (kind, namespaced) in _RESOURCES.items()
                ]
                return 200, {
                    "kind": "APIResourceList",
                    "groupVersion": "v1",
                    "resources": resources,
                }
            parts = path.removeprefix("/api/v1/").split("/")
            namespace = parts[1] if parts[0] == "namespaces" and len(parts) > 2 else ""
            rest = parts[2:] if namespace else parts
            plural, name = rest[0], (rest[1] if len(rest) > 1 else "")
            if self.command in ("POST", "PUT"):
                obj = decode(body) if is_protobuf(content_type) else json.loads(body)
                meta = obj.setdefault("metadata", {})
                if namespace:
                    meta["namespace"] = namespace
                meta["resourceVersion"] = str(len(recorder.requests))
                recorder.objects[(plural, namespace, meta["name"])] = obj
                return (201 if self.command == "POST" else 200), obj
            if self.command == "GET" and not name:
                wanted = dict(p.split("=") for p in _label_selector(query).split(",") if p)
                items = [
                    obj
                    for (kind, ns, _), obj in recorder.objects.items()
                    if kind == plural
                    and ns == namespace
                    and wanted.items() <= obj["metadata"].get("labels", {}).items()
                ]
                kind = _RESOURCES[plural][0] + "List"
                return 200, {
                    "apiVersion": "v1",
                    "kind": kind,
                    "metadata": {"resourceVersion": "1"},
                    "items": items,
                }
            stored = recorder.objects.get((plural, namespace, name))
            if stored is None:
                status = {"kind": "Status", "status": "Failure", "reason": "NotFound"}
                return 404, {**status, "code": 404, "message": f"{plural} {name!r} not found"}
            if self.command == "DELETE":
                del recorder.objects[(plural, namespace, name)]
            return 200, stored

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

    return Handler


def _label_selector(query: str) -> str:
    from urllib.parse import parse_qs

    return parse_qs(query).get("labelSelector", [""])[0]


@dataclass
class Cluster:
    recorder: Recorder
    kubeconfig: Path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    recorder = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [
                    {"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}
                ],
                "current-context": "c",
            }
        )
    )
    yield Cluster(recorder, kubeconfig)
    server.shutdown()
    server.server_close()


def run(binary: str, cluster: Cluster, *args: str, cwd: Path | None = None) -> None:
    argv = [binary, "--kubeconfig", str(cluster.kubeconfig), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr


def test_kubectl_create_bodies_match_the_fixtures(
    kubectl_binary: str, cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "bin.dat").write_bytes(b"bin\xff\x00\x01")
    run(kubectl_binary, cluster, "create", "secret", "generic", "s", "--from-literal=a=b",
        "--from-literal=empty=")  # fmt: skip
    run(kubectl_binary, cluster, "create", "configmap", "cm", "--from-literal=k=v",
        "--from-file=bin=bin.dat", cwd=tmp_path)  # fmt: skip
    run(kubectl_binary, cluster, "create", "namespace", "ns1")
    run(kubectl_binary, cluster, "create", "serviceaccount", "sa1")
    posts = [r for r in cluster.recorder.requests if r.method == "POST"]
    assert all(is_protobuf(r.content_type) for r in posts)
    # kubectl's bodies are deterministic: the fixtures are what this kubectl sends today.
    names = [
        "kubectl-create-secret.bin",
        "kubectl-create-configmap.bin",
        "kubectl-create-namespace.bin",
        "kubectl-create-serviceaccount.bin",
    ]
    assert [r.body for r in posts] == [(FIXTURES / n).read_bytes() for n in names]
    stored = cluster.recorder.objects
    assert stored[("secrets", "default", "s")]["data"] == {"a": "Yg==", "empty": ""}
    assert ("namespaces", "", "ns1") in stored


def test_helm_install_and_uninstall_round_trip_through_decode(
    helm_binary: str, cluster: Cluster, tmp_path: Path
) -> None:
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "templates" / "NOTES.txt").write_text("tiny notes\n")
    run(helm_binary, cluster, "install", "rel", str(chart), "--namespace", "default")
    writes = [r for r in cluster.recorder.requests if r.method in ("POST", "PUT")]
    assert [r.method for r in writes] == ["POST", "PUT"]
    assert all(is_protobuf(r.content_type) for r in writes)
    secret = cluster.recorder.objects[("secrets", "default", "sh.helm.release.v1.rel.v1")]
    assert secret["metadata"]["labels"]["status"] == "deployed"
    assert helm_release(secret)["chart"]["metadata"]["name"] == "tiny"

    # helm reads its release back from the decoded JSON: list and uninstall work only if
    # decode gave the shape the API serves.
    listing = subprocess.run(
        [helm_binary, "--kubeconfig", str(cluster.kubeconfig), "list", "-n", "default", "-o",
         "json"], capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert [(r["name"], r["status"]) for r in json.loads(listing.stdout)] == [("rel", "deployed")]
    run(helm_binary, cluster, "uninstall", "rel", "--namespace", "default")
    assert ("secrets", "default", "sh.helm.release.v1.rel.v1") not in cluster.recorder.objects
    # helm deletes its release Secret with protobuf DeleteOptions (all defaults).
    deletes = [r for r in cluster.recorder.requests if r.method == "DELETE"]
    assert [r.path.rsplit("/", 1)[1] for r in deletes] == ["sh.helm.release.v1.rel.v1"]
    assert is_protobuf(deletes[0].content_type)
    assert decode(deletes[0].body) == {"apiVersion": "v1", "kind": "DeleteOptions"}
