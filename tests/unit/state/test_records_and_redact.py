"""Frozen records and redaction (pure functions), and id resolution (real databases)."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sbkube.errors import NotFoundError, UsageError
from sbkube.model import FrozenDict, freeze, thaw
from sbkube.redaction import (
    digest,
    is_digest,
    is_secret_key,
    manifest_checksum,
    redact_manifest,
    redact_values,
)
from sbkube.state import DeploymentDatabase, DeploymentRepository

# -- FrozenDict ----------------------------------------------------------------------------


def test_frozen_dict_refuses_every_mutation() -> None:
    fd = FrozenDict({"a": 1, "b": 2})
    mutations = {
        "setitem": lambda d: d.__setitem__("c", 3),
        "delitem": lambda d: d.__delitem__("a"),
        "clear": lambda d: d.clear(),
        "pop": lambda d: d.pop("a"),
        "popitem": lambda d: d.popitem(),
        "setdefault": lambda d: d.setdefault("c", 3),
        "update": lambda d: d.update({"c": 3}),
        "ior": lambda d: d.__ior__({"c": 3}),
    }
    for name, mutate in mutations.items():
        with pytest.raises(TypeError, match="immutable"):
            mutate(fd)
        assert fd == {"a": 1, "b": 2}, f"{name} changed the dict"
    with pytest.raises(TypeError):
        fd["a"] = 5
    with pytest.raises(TypeError):
        del fd["a"]
    with pytest.raises(TypeError):
        fd |= {"z": 1}
    with pytest.raises(AttributeError):
        fd.extra = 1  # type: ignore[attr-defined]
    assert fd == {"a": 1, "b": 2}


def test_frozen_dict_value_semantics() -> None:
    a = FrozenDict({"x": 1, "y": (1, 2)})
    b = FrozenDict({"y": (1, 2), "x": 1})
    assert a == b and hash(a) == hash(b)
    assert a == {"x": 1, "y": (1, 2)}
    assert a != FrozenDict({"x": 2, "y": (1, 2)})
    assert len({a, b, FrozenDict({"x": 2})}) == 2
    assert {a: "usable as a key"}[b] == "usable as a key"
    assert json.loads(json.dumps(a)) == {"x": 1, "y": [1, 2]}
    assert repr(a).startswith("FrozenDict(")
    clone = pickle.loads(pickle.dumps(a))
    assert type(clone) is FrozenDict and clone == a
    with pytest.raises(TypeError):
        clone["x"] = 0
    # copies are plain, editable dicts; the original is untouched
    edited = a | {"x": 9}
    assert edited["x"] == 9 and a["x"] == 1
    deep = copy.deepcopy(FrozenDict({"n": FrozenDict({"m": 1})}))
    assert deep == {"n": {"m": 1}}
    assert hash(FrozenDict()) == hash(FrozenDict())


def test_freeze_thaw_round_trip() -> None:
    data: dict[str, Any] = {
        "apps": {"redis": {"values": ["a.yaml", "b.yaml"], "set": {"replicas": 2}}},
        "list": [{"k": [1, 2, {"deep": None}]}, True, 1.5, "s"],
        "empty": {},
        "none": None,
    }
    frozen = freeze(data)
    assert isinstance(frozen, FrozenDict)
    assert isinstance(frozen["apps"]["redis"], FrozenDict)
    assert frozen["list"] == ({"k": (1, 2, {"deep": None})}, True, 1.5, "s")
    assert isinstance(frozen["list"][0]["k"][2], FrozenDict)
    hash(frozen)
    assert freeze(frozen) is frozen
    thawed = thaw(frozen)
    assert thawed == data
    assert type(thawed) is dict and type(thawed["list"]) is list
    assert type(thawed["list"][0]["k"]) is list and type(thawed["list"][0]["k"][2]) is dict
    thawed["apps"]["redis"]["set"]["replicas"] = 3  # thawed data is editable again
    assert frozen["apps"]["redis"]["set"]["replicas"] == 2
    assert freeze({1: "int key"}) == {"1": "int key"}
    assert freeze("scalar") == "scalar" and thaw(5) == 5


# -- secret keys and values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("redisPassword", True),
        ("password", True),
        ("apiKey", True),
        ("api_key", True),
        ("API_KEY", True),
        ("tls.key", True),
        ("existingSecret", True),
        ("authToken", True),
        ("credentials", True),
        ("privateKey", True),
        ("keycloak", False),
        ("monkey", False),
        ("replicaCount", False),
        ("image", False),
        ("passwordless", False),
        ("tokenizer", False),
        ("", False),
    ],
)
def test_is_secret_key(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_is_secret_key_custom_patterns() -> None:
    assert is_secret_key("licenseCode", ["license"]) is True
    assert is_secret_key("password", ["license"]) is False


def test_redact_values() -> None:
    values: dict[str, Any] = {
        "replicaCount": 3,
        "image": {"repository": "redis", "tag": "7.2"},
        "auth": {"enabled": True, "password": "hunter2", "existingSecret": None},
        "redisPassword": "s3cret",
        "apiKey": 12345,
        "credentials": {"user": "u", "pass": "p", "list": ["a", "b"]},
        "extraEnv": [{"name": "X", "token": "t0k"}],
        "keycloak": {"url": "https://kc"},
    }
    before = copy.deepcopy(values)
    out = redact_values(values)
    assert values == before, "redact_values must not modify its input"
    assert out["replicaCount"] == 3
    assert out["image"] == {"repository": "redis", "tag": "7.2"}
    assert out["keycloak"] == {"url": "https://kc"}
    assert out["auth"]["enabled"] is True
    assert out["auth"]["existingSecret"] is None  # nothing to hide
    assert out["auth"]["password"] == digest("hunter2") and is_digest(out["auth"]["password"])
    assert out["redisPassword"] == digest("s3cret")
    assert is_digest(out["apiKey"])
    # every scalar under a secret key is hidden, however deep
    assert all(is_digest(v) for v in (out["credentials"]["user"], out["credentials"]["pass"]))
    assert all(is_digest(v) for v in out["credentials"]["list"])
    assert out["extraEnv"] == [{"name": "X", "token": digest("t0k")}]
    dumped = json.dumps(out)
    for plain in ("hunter2", "s3cret", "12345", "t0k"):
        assert plain not in dumped
    # idempotent, and a changed secret still shows up as a change
    assert redact_values(out) == out
    assert redact_values({"password": "other"}) != redact_values({"password": "hunter2"})
    assert redact_values(freeze(values)) == out


# -- manifests -------------------------------------------------------------------------------


def _live_deployment(**overrides: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "apps",
            "labels": {"app": "web"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"spec":{"replicas":2}}',
                "deployment.kubernetes.io/revision": "4",
                "team": "platform",
            },
            "uid": "7c0c5d5e-1111-2222-3333-444455556666",
            "resourceVersion": "123456",
            "generation": 7,
            "creationTimestamp": "2026-11-26T08:00:00Z",
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "web:1"}]}}},
        "status": {"readyReplicas": 2, "observedGeneration": 7},
    }
    for path, value in overrides.items():
        target = m
        *parents, leaf = path.split(".")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return m


def test_redact_manifest_drops_volatile_fields() -> None:
    live = _live_deployment()
    before = copy.deepcopy(live)
    out = redact_manifest(live)
    assert live == before, "redact_manifest must not modify its input"
    meta = out["metadata"]
    for dropped in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
        assert dropped not in meta, dropped
    assert "status" not in out
    assert meta["annotations"] == {"team": "platform"}
    assert meta["labels"] == {"app": "web"} and meta["name"] == "web"
    assert out["spec"] == live["spec"]
    only_volatile = _live_deployment()
    only_volatile["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{}"
    }
    assert "annotations" not in redact_manifest(only_volatile)["metadata"]


def test_redact_manifest_digests_secret_payloads() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "apps"},
        "type": "Opaque",
        "data": {"password": "aHVudGVyMg=="},
        "stringData": {"url": "postgres://u:hunter2@db"},
    }
    out = redact_manifest(secret)
    assert set(out["data"]) == {"password"} and set(out["stringData"]) == {"url"}
    assert out["data"]["password"] == digest("aHVudGVyMg==")
    assert is_digest(out["stringData"]["url"])
    assert "hunter2" not in json.dumps(out) and "aHVudGVyMg==" not in json.dumps(out)
    assert redact_manifest(out) == out  # already-redacted digests are kept as they are
    # A ConfigMap is configuration, but a password in it is still a password; its other
    # keys stay readable.
    cm = {**secret, "kind": "ConfigMap", "data": {"password": "hidden", "mode": "visible"}}
    cm.pop("stringData")
    cm.pop("type")
    assert redact_manifest(cm)["data"] == {"password": digest("hidden"), "mode": "visible"}


def test_checksum_ignores_volatile_fields() -> None:
    base = manifest_checksum(redact_manifest(_live_deployment()))
    noise = _live_deployment(
        **{
            "metadata.uid": "another-uid",
            "metadata.resourceVersion": "999999",
            "metadata.generation": 8,
            "metadata.managedFields": [],
            "metadata.creationTimestamp": "2027-01-01T00:00:00Z",
            "status": {"readyReplicas": 0},
        }
    )
    noise["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    noise["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "5"
    assert manifest_checksum(redact_manifest(noise)) == base
    # key order does not matter either
    reordered = dict(reversed(list(_live_deployment().items())))
    assert manifest_checksum(redact_manifest(reordered)) == base
    assert base.startswith("sha256:") and is_digest(base)


@pytest.mark.parametrize(
    "change",
    [
        {"spec.replicas": 3},
        {"metadata.labels": {"app": "web", "tier": "front"}},
        {"metadata.annotations": {"team": "other"}},
        {"metadata.name": "web2"},
    ],
)
def test_checksum_changes_with_user_data(change: dict[str, Any]) -> None:
    base = manifest_checksum(redact_manifest(_live_deployment()))
    assert manifest_checksum(redact_manifest(_live_deployment(**change))) != base


def test_checksum_changes_when_secret_data_changes() -> None:
    def secret(value: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "uid": value},
            "data": {"k": value},
        }

    assert manifest_checksum(redact_manifest(secret("YQ=="))) != manifest_checksum(
        redact_manifest(secret("Yg=="))
    )


# -- resolve ----------------------------------------------------------------------------------


T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture
def seeded(db: DeploymentDatabase) -> tuple[DeploymentRepository, list[str]]:
    repo = DeploymentRepository(db)
    ids = []
    for i in range(4):
        dep = repo.create_deployment(
            cluster="k3s",
            namespace="apps" if i != 2 else "other",
            started_at=T0 + timedelta(minutes=i),
            status="success",
        )
        repo.start_app(dep.deployment_id, name="redis" if i != 1 else "web", type="helm")
        ids.append(dep.deployment_id)
    # A later dry run: never what "latest" means.
    repo.create_deployment(
        cluster="k3s", namespace="apps", dry_run=True, started_at=T0 + timedelta(hours=1)
    )
    return repo, ids


def test_resolve_latest(seeded: tuple[DeploymentRepository, list[str]]) -> None:
    repo, ids = seeded
    assert repo.resolve("latest") == ids[3]
    assert repo.resolve("latest~0") == ids[3]
    assert repo.resolve("latest~1") == ids[2]
    assert repo.resolve("latest~3") == ids[0]
    assert repo.resolve("latest", namespace="apps") == ids[3]
    assert repo.resolve("latest~1", namespace="apps") == ids[1]
    assert repo.resolve("latest", app="web") == ids[1]
    assert repo.resolve(ids[1]) == ids[1]


def test_resolve_out_of_range(seeded: tuple[DeploymentRepository, list[str]]) -> None:
    repo, _ = seeded
    with pytest.raises(NotFoundError, match=r"'latest~999': only 4 deployment\(s\) recorded"):
        repo.resolve("latest~999")
    with pytest.raises(NotFoundError, match=r"only 0 deployment.*app 'nginx'") as info:
        repo.resolve("latest", app="nginx")
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


def test_resolve_unique_prefix(seeded: tuple[DeploymentRepository, list[str]]) -> None:
    repo, ids = seeded
    for dep_id in ids:
        # "dep-20261126-0800NN-" is unique per minute; the random tail is not needed.
        assert repo.resolve(dep_id[: len("dep-20261126-0800")]) in ids
        assert repo.resolve(dep_id[:-3]) == dep_id
    with pytest.raises(NotFoundError, match="ambiguous"):
        repo.resolve("dep-20261126-")
    with pytest.raises(NotFoundError):
        repo.resolve("dep-")  # too short to be taken as a prefix


def test_resolve_prefix_with_like_wildcards_is_literal(db: DeploymentDatabase) -> None:
    repo = DeploymentRepository(db)
    repo.create_deployment(cluster="c", namespace="n", deployment_id="dep-aaaa_bbbb-1")
    with pytest.raises(NotFoundError):
        repo.resolve("dep-aaaa%")
    with pytest.raises(NotFoundError):
        repo.resolve("dep-aaaaXbbbb")
    assert repo.resolve("dep-aaaa_bbbb") == "dep-aaaa_bbbb-1"


def test_resolve_unknown_id_suggests_near_ids(
    seeded: tuple[DeploymentRepository, list[str]],
) -> None:
    repo, ids = seeded
    typo = ids[2][:-1] + ("0" if ids[2][-1] != "0" else "1")
    typo = typo[:5] + "X" + typo[6:]  # not a prefix of anything any more
    with pytest.raises(NotFoundError) as info:
        repo.resolve(typo)
    msg = str(info.value)
    assert f"unknown deployment id '{typo}'" in msg
    assert "did you mean" in msg and f"'{ids[2]}'" in msg
    with pytest.raises(NotFoundError, match="did you mean") as via_get:
        repo.get(typo)
    assert f"'{ids[2]}'" in str(via_get.value)
    with pytest.raises(NotFoundError) as far:
        repo.resolve("something-else-entirely")
    assert "did you mean" not in str(far.value)


def test_unknown_id_in_empty_store(db: DeploymentDatabase) -> None:
    repo = DeploymentRepository(db)
    with pytest.raises(NotFoundError, match="no deployments yet"):
        repo.resolve("dep-20260101-000000-abcdef")
    with pytest.raises(NotFoundError, match="only 0 deployment"):
        repo.resolve("latest")
