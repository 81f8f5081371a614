"""The one comparison (``engine.compare``), as a table: what a live object must hold to match
a desired manifest, by the API server's rules, plain and digest-aware (stored forms)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from sbkube.engine.compare import differences, matches
from sbkube.redaction import digest, redact_manifest


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "shop"},
        **fields,
    }


PLAIN: list[Any] = [
    # (id, desired, live, differing paths)
    ("equal", {"a": 1}, {"a": 1}, []),
    ("scalar changed", {"a": 1}, {"a": 2}, ["a"]),
    ("whole value", 1, 2, ["."]),
    ("null vs absent", {"spec": {"x": None}}, {"spec": {}}, []),
    ("null vs live value", {"spec": {"x": None}}, {"spec": {"x": 3}}, []),
    ("value vs live null", {"spec": {"x": 3}}, {"spec": {"x": None}}, ["spec.x"]),
    ("value vs absent", {"spec": {"x": 3}}, {"spec": {}}, ["spec.x"]),
    ("empty map vs absent", {"spec": {"resources": {}}}, {"spec": {}}, []),
    ("empty list vs absent", {"spec": {"args": []}}, {"spec": {}}, []),
    ("empty list vs items", {"spec": {"args": []}}, {"spec": {"args": ["a"]}}, ["spec.args"]),
    ("true vs 1", {"spec": {"paused": True}}, {"spec": {"paused": 1}}, ["spec.paused"]),
    ("1 vs true", {"a": 1}, {"a": True}, ["a"]),
    ("false vs 0", {"a": False}, {"a": 0}, ["a"]),
    ("true vs true", {"a": True}, {"a": True}, []),
    ("int vs whole float", {"a": 1}, {"a": 1.0}, []),
    ("int vs other float", {"a": 1}, {"a": 1.5}, ["a"]),
    ("string vs int", {"a": "1"}, {"a": 1}, ["a"]),
    ("list order", {"a": [1, 2]}, {"a": [2, 1]}, ["a[0]", "a[1]"]),
    ("list shorter live", {"a": [1, 2]}, {"a": [1]}, ["a"]),
    ("list longer live", {"a": [1]}, {"a": [1, 2]}, ["a"]),
    ("list vs scalar", {"a": [1]}, {"a": "x"}, ["a"]),
    ("map vs scalar", {"a": {"b": 1}}, {"a": "x"}, ["a"]),
    ("scalar vs map", {"a": "x"}, {"a": {"b": 1}}, ["a"]),
    (
        "nested maps",
        {"spec": {"template": {"spec": {"hostNetwork": False, "dnsPolicy": "Default"}}}},
        {"spec": {"template": {"spec": {"hostNetwork": True, "dnsPolicy": "Default"}}}},
        ["spec.template.spec.hostNetwork"],
    ),
    (
        "list of maps, by position",
        {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}},
        {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}},
        ["spec.containers[0].image"],
    ),
    (
        "defaults the server adds",
        {"spec": {"replicas": 1, "containers": [{"name": "web", "image": "n:1"}]}},
        {
            "spec": {
                "replicas": 1,
                "strategy": {"type": "RollingUpdate"},
                "containers": [{"name": "web", "image": "n:1", "imagePullPolicy": "IfNotPresent"}],
            },
            "status": {"replicas": 1},
        },
        [],
    ),
    (
        "keys that are not identifiers are quoted",
        {"metadata": {"annotations": {"helm.sh/hook": "post-install"}}},
        {"metadata": {"annotations": {"helm.sh/hook": "pre-install"}}},
        ["metadata.annotations['helm.sh/hook']"],
    ),
    (
        "manifest: server-written fields and the namespace are not compared",
        {
            "apiVersion": "x/v1",
            "kind": "Thing",
            "metadata": {"name": "t", "namespace": "shop", "resourceVersion": "1"},
            "status": {"ready": False},
        },
        {"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "t", "uid": "u"}},
        [],
    ),
    (
        "manifest: stringData folds into data",
        secret(stringData={"password": "pw"}),
        secret(data={"password": b64("pw")}, type="Opaque"),
        [],
    ),
    (
        "manifest: stringData that differs is named by its data path",
        secret(stringData={"password": "pw"}),
        secret(data={"password": b64("other")}),
        ["data.password"],
    ),
    (
        "a digest is plain text unless digest-aware",
        {"v": digest("s3cret")},
        {"v": "s3cret"},
        ["v"],
    ),
]


LEGACY = "sha256:" + hashlib.sha256(b"s3cret").hexdigest()
URL = "postgres://app:{}@db:5432/shop"

DIGESTS: list[Any] = [
    # (id, stored desired, plain live, differing paths)
    ("digest of the live value", {"v": digest("s3cret")}, {"v": "s3cret"}, []),
    ("digest of another value", {"v": digest("s3cret")}, {"v": "other"}, ["v"]),
    ("digest vs the same digest", {"v": digest("s3cret")}, {"v": digest("s3cret")}, []),
    ("digest vs a bool", {"v": digest("s3cret")}, {"v": True}, ["v"]),
    ("digest of a number", {"v": digest(1234)}, {"v": 1234}, []),
    ("legacy digest", {"v": LEGACY}, {"v": "s3cret"}, []),
    ("legacy digest of another value", {"v": LEGACY}, {"v": "other"}, ["v"]),
    ("digest of a base64 reappearance", {"v": digest("hunter22")}, {"v": b64("hunter22")}, []),
    ("digest inside text", {"url": URL.format(digest("pw"))}, {"url": URL.format("pw")}, []),
    (
        "digest inside text, secret changed",
        {"url": URL.format(digest("pw"))},
        {"url": URL.format("other")},
        ["url"],
    ),
    (
        "digest inside text, text around it changed",
        {"url": URL.format(digest("pw"))},
        {"url": URL.format("pw").replace("shop", "shop2")},
        ["url"],
    ),
    (
        "an image digest is compared, not skipped",
        {"image": "nginx@" + "sha256:" + "a" * 64},
        {"image": "nginx@" + "sha256:" + "b" * 64},
        ["image"],
    ),
    (
        "Secret data digest (of the base64 text)",
        secret(data={"password": digest(b64("pw"))}),
        secret(data={"password": b64("pw")}),
        [],
    ),
    (
        "Secret data digest, value changed",
        secret(data={"password": digest(b64("pw"))}),
        secret(data={"password": b64("other")}),
        ["data.password"],
    ),
    (
        "Secret stringData digest (of the plain text) vs live data",
        secret(stringData={"password": digest("pw")}),
        secret(data={"password": b64("pw")}),
        [],
    ),
    (
        "Secret stringData digest vs live data that changed",
        secret(stringData={"password": digest("pw")}),
        secret(data={"password": b64("other")}),
        ["data.password"],
    ),
    ("plain rules still hold: null vs absent", {"a": None}, {}, []),
    ("plain rules still hold: true vs 1", {"a": True}, {"a": 1}, ["a"]),
]


@pytest.mark.parametrize(
    ("desired", "live", "paths"),
    [pytest.param(d, v, p, id=i) for i, d, v, p in PLAIN],
)
def test_plain(desired: Any, live: Any, paths: list[str]) -> None:
    assert differences(desired, live) == paths
    assert matches(desired, live) is (not paths)


@pytest.mark.parametrize(
    ("desired", "live", "paths"),
    [pytest.param(d, v, p, id=i) for i, d, v, p in DIGESTS],
)
def test_digest_aware(desired: Any, live: Any, paths: list[str]) -> None:
    assert differences(desired, live, digests=True) == paths
    assert matches(desired, live, digests=True) is (not paths)


def test_a_recorded_secret_matches_its_live_object() -> None:
    # What the store keeps of a Secret matches the live object digest-aware, and stops
    # matching once the value changes.
    live_secret = secret(data={"password": b64("hunter2-long")}, type="Opaque")
    stored = redact_manifest(secret(stringData={"password": "hunter2-long"}))
    assert matches(stored, live_secret, digests=True)
    changed = secret(data={"password": b64("hunter3-long")}, type="Opaque")
    assert differences(stored, changed, digests=True) == ["data.password"]


# --------------------------------------------------------------------------- removals

WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "tier": "front"}},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx",
                        "ports": [{"containerPort": 80}, {"containerPort": 443}],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    }
                ]
            }
        }
    },
}


def _applied(manifest: dict[str, Any]) -> dict[str, Any]:
    """``WEB`` as the local API server keeps it after sbkube applied it, and another
    manager added an env var and a label (managedFields as a real server writes them)."""
    from sbkube.apiserver.patch import server_side_apply

    live = server_side_apply(None, manifest, manager="sbkube", force=True)
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "ops"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "X", "value": "x"}]}
        ]}}},
    }  # fmt: skip
    return server_side_apply(live, other, manager="other", force=False)


def test_removed_names_what_sbkube_applied_and_the_manifest_dropped_and_nothing_else() -> None:
    import copy

    from sbkube.engine.compare import owned_fields, project, removed

    live = _applied(WEB)
    assert removed(WEB, live) == []
    trimmed = copy.deepcopy(WEB)
    del trimmed["metadata"]["labels"]["tier"]
    container = trimmed["spec"]["template"]["spec"]["containers"][0]
    container["ports"].pop()
    container["env"].pop()

    found = removed(trimmed, live)

    base = "spec.template.spec.containers[name=web]"
    assert [r.path for r in found] == [
        "metadata.labels.tier",
        f"{base}.env[name=B]",
        f"{base}.ports[containerPort=443,protocol=TCP]",
    ]
    # The live env var and label of the other manager are no removals, and not shown.
    shown = project(live, trimmed, found)
    assert shown["metadata"]["labels"] == {"app": "web", "tier": "front"}
    shown_container = shown["spec"]["template"]["spec"]["containers"][0]
    assert shown_container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert [p["containerPort"] for p in shown_container["ports"]] == [80, 443]
    # A live object read without managedFields: the record is the reference.
    bare = {**live, "metadata": {k: v for k, v in live["metadata"].items() if k != "managedFields"}}
    assert owned_fields(bare) is None
    assert removed(trimmed, bare) == []
    assert [r.path for r in removed(trimmed, bare, WEB)] == [
        "metadata.labels.tier",
        "spec.template.spec.containers[0].ports",
        "spec.template.spec.containers[0].env",
    ]
