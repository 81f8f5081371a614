"""Redaction that knows Kubernetes, checked against the schemas of every built-in kind.

The schemas come from ``kubernetes-validate`` (the OpenAPI schemas of Kubernetes 1.25
onwards, every API version): not a list kept by hand. For every built-in kind, a manifest
is built with a value in every string field the schema declares, at every depth (lists
with an item, maps with a key), and what the store keeps of it must hold each value as it
was: a rollback re-applies that record, so a name hidden there is an object broken on the
cluster. Only the schema's secret fields (a Secret's ``data``/``stringData``, a
``TokenReview``'s token) are hidden.
"""

from __future__ import annotations

from typing import Any

import kubernetes_schemas as ks
import kubernetes_validate  # noqa: F401  (a dev dependency: missing, the test fails)
import pytest

from sbkube import redaction as r

Path_ = tuple[str, ...]

#: Values a name or reference field really holds, several of them secret-sounding: the
#: key a ``secretKeyRef`` selects is often literally ``password``.
NAME_VALUES = ("kubernetes.io/hostname", "password", "db-password", "api-token", "tls.key")


@pytest.fixture(autouse=True)
def _fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """What other tests' redaction found (and the process remembers) is not hunted here."""
    monkeypatch.setattr(r, "_SEEN", {})


def _secret(kind_key: str, definition: str, field: str) -> bool:
    kind = kind_key.rsplit("/", 1)[-1]
    if kind == "Secret" and kind_key.startswith("v1/") and field in ("data", "stringData"):
        return True
    return ks.is_secret_field(definition, field)


def _put(tree: dict[str, Any], path: Path_, value: str) -> None:
    """Set ``value`` at ``path`` (``[]``: the list's one item, ``*``: the map's one key)."""
    node: Any = tree
    for i, step in enumerate(path):
        last = i == len(path) - 1
        if step == "[]":
            continue
        nxt = path[i + 1] if not last else None
        if isinstance(node, list):
            if not node:
                node.append({})
            node = node[0]
        if step == "*":
            step = "entry"
        if last:
            node[step] = value
        elif nxt == "[]":
            if i + 2 == len(path):
                node[step] = [value]
                return
            node = node.setdefault(step, [{}])
        else:
            node = node.setdefault(step, {})


def _get(tree: Any, path: Path_) -> Any:
    node = tree
    for step in path:
        if step == "[]":
            node = node[0]
        else:
            node = node.get("entry" if step == "*" else step)
            if node is None:
                return None
    return node


def _filled(kind_key: str, value_for: Any) -> tuple[dict[str, Any], list[tuple[Path_, bool]]]:
    definition = ks.kinds()[kind_key]
    api_version, kind = kind_key.rsplit("/", 1)
    manifest: dict[str, Any] = {}
    paths: list[tuple[Path_, bool]] = []
    for n, (path, d, field) in enumerate(ks.string_paths(definition)):
        secret = _secret(kind_key, d, field)
        if path[0] in ("apiVersion", "kind", "status") or path[:2] in (
            ("metadata", f) for f in r.VOLATILE_METADATA
        ):
            continue
        if path[:2] == ("metadata", "annotations"):
            continue  # a map of the user's: its key (here "entry") decides, tested below
        _put(manifest, path, f"secret-value-{n}" if secret else value_for(n, field))
        paths.append((path, secret))
    manifest["apiVersion"], manifest["kind"] = api_version, kind
    return manifest, paths


def test_the_table_is_what_the_schemas_say() -> None:
    assert ks.TABLE.read_text() == ks.render(), "run: python tests/unit/kubernetes_schemas.py"


@pytest.mark.parametrize("kind_key", list(ks.kinds()))
def test_no_field_of_a_built_in_kind_is_hidden_unless_the_schema_says_secret(
    kind_key: str,
) -> None:
    """Every string field, at every depth, holds a value in one manifest; the store form
    keeps each one (``password`` in a ``secretKeyRef.key`` included) but the schema's
    secret fields."""

    def value_for(n: int, field: str) -> str:
        if r.is_secret_key(field):
            return NAME_VALUES[n % len(NAME_VALUES)]
        return f"name-{n}.example"

    manifest, paths = _filled(kind_key, value_for)
    stored = r.store_form(manifest)
    assert paths or kind_key
    for path, secret in paths:
        was, now = _get(manifest, path), _get(stored, path)
        if secret:
            assert now != was and r.is_digest(now), path
        else:
            assert now == was, f"{kind_key}: {'.'.join(path)} hidden"


def test_every_secret_looking_schema_field_is_covered() -> None:
    """The table lists every field of a built-in kind whose name looks secret: the walk
    above would not notice a kind missing from ``kinds()``."""
    names = {f for k in ks.kinds().values() for _p, _d, f in ks.string_paths(k)}
    assert {"topologyKey", "key", "secretName", "token"} <= names
    assert {"key", "topologyKey"} <= {n for n in names if r.is_secret_key(n)}


def _deployment(secret_key_ref: str = "password") -> dict[str, Any]:
    term = {
        "labelSelector": {"matchExpressions": [{"key": "api-key", "operator": "Exists"}]},
        "topologyKey": "kubernetes.io/hostname",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [term],
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {"weight": 1, "podAffinityTerm": term}
                            ],
                        }
                    },
                    "tolerations": [
                        {"key": "example.com/api-key", "operator": "Equal", "value": "true"}
                    ],
                    "securityContext": {"sysctls": [{"name": "kernel.keys.maxkeys", "value": "2"}]},
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx",
                            "env": [
                                {
                                    "name": "DB_PASSWORD",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "db", "key": secret_key_ref}
                                    },
                                },
                                {"name": "API_TOKEN", "value": "s3cr3t-t0ken-value"},
                            ],
                            "readinessProbe": {
                                "httpGet": {
                                    "path": "/",
                                    "port": 80,
                                    "httpHeaders": [{"name": "X-Api-Token", "value": "hdr-s3cr3t"}],
                                }
                            },
                        }
                    ],
                    "volumes": [
                        {
                            "name": "tls",
                            "secret": {
                                "secretName": "web-tls",
                                "items": [{"key": "tls.key", "path": "tls.key"}],
                            },
                        }
                    ],
                },
            },
        },
    }


def test_a_deployment_keeps_its_names_and_hides_its_secrets() -> None:
    manifest = _deployment()
    stored = r.store_form(manifest)
    pod = stored["spec"]["template"]["spec"]
    assert pod["affinity"] == manifest["spec"]["template"]["spec"]["affinity"]
    assert pod["tolerations"] == manifest["spec"]["template"]["spec"]["tolerations"]
    assert pod["securityContext"]["sysctls"][0]["value"] == "2"
    assert pod["volumes"] == manifest["spec"]["template"]["spec"]["volumes"]
    env = pod["containers"][0]["env"]
    assert env[0]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "password"}
    assert r.is_digest(env[1]["value"])
    header = pod["containers"][0]["readinessProbe"]["httpGet"]["httpHeaders"][0]
    assert r.is_digest(header["value"])
    text = repr(stored)
    assert "s3cr3t-t0ken-value" not in text and "hdr-s3cr3t" not in text


def test_free_maps_and_secrets_are_still_hidden() -> None:
    """A ConfigMap's keys, annotations, a Secret's payload and a TokenReview's token."""
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "annotations": {"example.com/api-token": "ann-s3cr3t"}},
        "data": {"password": "cm-s3cr3t-pw", "topologyKey": "x", "url": "plain"},
    }
    stored = r.store_form(cm)
    assert r.is_digest(stored["data"]["password"])
    assert r.is_digest(stored["metadata"]["annotations"]["example.com/api-token"])
    assert stored["data"]["url"] == "plain"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"user": "admin-user-name"},
        "data": {"password": "aHVudGVyMmh1bnRlcjI="},
    }
    stored = r.store_form(secret)
    assert all(r.is_digest(v) for v in (*stored["data"].values(), *stored["stringData"].values()))
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}
    review["spec"] = {"token": "eyJh-review-token"}  # type: ignore[assignment]
    assert r.is_digest(r.store_form(review)["spec"]["token"])


def test_chart_values_keep_kubernetes_names_and_hide_secrets() -> None:
    """Values hold Kubernetes snippets (affinity, extraEnv, tolerations): where the field
    holding an object says what it is, a secret-looking name is a name."""
    values = {
        "affinity": _deployment()["spec"]["template"]["spec"]["affinity"],
        "extraEnv": [
            {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "DB_PASSWORD", "value": "vals-s3cr3t"},
        ],
        "imagePullSecrets": [{"name": "regcred"}],
        "tls": {"key": "-----not a pem, still a secret-----", "secretName": "web-tls"},
        "auth": {"password": "pw-s3cr3t", "token": "tok-s3cr3t"},
    }
    stored = r.redact_values(values)
    assert stored["affinity"] == values["affinity"]
    assert stored["extraEnv"][0] == values["extraEnv"][0]
    assert r.is_digest(stored["extraEnv"][1]["value"])
    assert stored["imagePullSecrets"] == [{"name": "regcred"}]
    assert r.is_digest(stored["tls"]["key"]) and stored["tls"]["secretName"] == "web-tls"
    assert all(r.is_digest(v) for v in stored["auth"].values())


def test_a_custom_resource_embedding_a_pod_spec_keeps_its_names() -> None:
    """Unknown kinds fall back to the field that holds the object (``podAffinityTerm``,
    ``tolerations``)."""
    pod = _deployment()["spec"]["template"]["spec"]
    cr = {"apiVersion": "example.com/v1", "kind": "Rollout", "spec": {"template": {"spec": pod}}}
    stored = r.store_form(cr)["spec"]["template"]["spec"]
    assert stored["affinity"] == pod["affinity"]
    assert stored["tolerations"] == pod["tolerations"]
    assert r.is_digest(stored["containers"][0]["env"][1]["value"])
