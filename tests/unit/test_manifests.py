"""Manifest facts: List expansion, scope from CRDs and discovery, the offline fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sbkube.cluster import helm as h
from sbkube.config import load_config, load_manifests
from sbkube.errors import ConfigError
from sbkube.manifests import CLUSTER_SCOPED_KINDS, Scope, crd_scopes, expand_lists, is_list


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def test_lists_expand_recursively_in_order() -> None:
    docs = [
        cm("a"),
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": [cm("b"), {"kind": "List", "items": [cm("c")]}],
        },
        {"apiVersion": "v1", "kind": "List"},  # no items: nothing
        cm("d"),
    ]
    assert [d["metadata"]["name"] for d in expand_lists(docs)] == ["a", "b", "c", "d"]


def test_typed_list_items_get_the_lists_kind_and_version() -> None:
    typed = {
        "apiVersion": "apps/v1",
        "kind": "DeploymentList",
        "items": [{"metadata": {"name": "web"}}, {"apiVersion": "v1", "kind": "Service"}],
    }
    first, second = expand_lists([typed])
    assert (first["apiVersion"], first["kind"]) == ("apps/v1", "Deployment")
    assert (second["apiVersion"], second["kind"]) == ("v1", "Service")  # its own kind kept


def test_a_kind_ending_in_list_without_items_is_an_object() -> None:
    allow = {"apiVersion": "example.com/v1", "kind": "AllowList", "spec": {"ips": []}}
    assert not is_list(allow)
    assert list(expand_lists([allow])) == [allow]


def test_scope_prefers_the_apps_crd_then_discovery_then_the_offline_list() -> None:
    definition = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Tenant"}},
    }
    assert crd_scopes([definition]) == {("example.com", "Tenant"): False}
    asked: list[tuple[str, str]] = []

    def discovery(api_version: str, kind: str) -> bool | None:
        asked.append((api_version, kind))
        return {"ClusterSecretStore": False, "Role": True}.get(kind)

    scope = Scope.of([definition], discovery)
    assert scope.namespaced("example.com/v1", "Tenant") is False
    assert asked == []  # the app's own CRD decides without asking the cluster
    assert scope.namespaced("external-secrets.io/v1", "ClusterSecretStore") is False
    assert scope.namespaced("rbac.authorization.k8s.io/v1", "Role") is True
    assert scope.namespaced("v1", "Namespace") is False  # unknown to discovery: the list
    assert scope.namespaced("example.com/v1", "Widget") is True
    # A CRD of another group does not decide for a kind of the same name.
    assert Scope.of([definition], None).namespaced("other.io/v1", "Tenant") is True


def test_place_sets_or_drops_the_namespace() -> None:
    scope = Scope()
    namespaced = scope.place(cm("a"), "demo")
    assert namespaced["metadata"]["namespace"] == "demo"
    explicit = scope.place({**cm("b"), "metadata": {"name": "b", "namespace": "x"}}, "demo")
    assert explicit["metadata"]["namespace"] == "x"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole"}
    dropped = scope.place({**role, "metadata": {"name": "r", "namespace": "x"}}, "demo")
    assert "namespace" not in dropped["metadata"]


def test_offline_list_knows_every_cluster_scoped_kind_the_local_api_server_serves() -> None:
    # The offline fallback (template) must agree with a current cluster's discovery.
    from sbkube.apiserver.discovery import builtin_types

    served = {t.kind for t in builtin_types() if not t.namespaced}
    assert served <= CLUSTER_SCOPED_KINDS
    assert not {t.kind for t in builtin_types() if t.namespaced} & CLUSTER_SCOPED_KINDS


def test_helm_output_lists_and_chart_crds_are_placed() -> None:
    text = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: realms.example.org}
spec: {group: example.org, scope: Cluster, names: {kind: Realm, plural: realms}}
---
apiVersion: example.org/v1
kind: Realm
metadata: {name: north}
---
apiVersion: v1
kind: ConfigMapList
items:
  - metadata: {name: typed}
"""
    _crd, realm, typed = h.parse_manifests(text, namespace="data")
    assert "namespace" not in realm["metadata"]
    assert (typed["kind"], typed["metadata"]["namespace"]) == ("ConfigMap", "data")


def _app(tmp_path: Path, manifest: str) -> Path:
    (tmp_path / "m.yaml").write_text(manifest)
    (tmp_path / "config.yaml").write_text(
        "namespace: demo\napps:\n  web:\n    type: yaml\n    manifests: [m.yaml]\n"
    )
    return tmp_path


def test_loader_expands_lists_and_uses_the_discovery_given(tmp_path: Path) -> None:
    app = _app(
        tmp_path,
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
        "  - {apiVersion: external-secrets.io/v1, kind: Vault, metadata: {name: v}}\n",
    )
    loaded = load_config(app)
    offline = load_manifests(loaded, "web")
    assert [(m["kind"], m["metadata"].get("namespace")) for m in offline] == [
        ("ConfigMap", "demo"),
        ("Vault", "demo"),
    ]
    live = load_manifests(loaded, "web", lambda _v, kind: False if kind == "Vault" else None)
    assert [m["metadata"].get("namespace") for m in live] == ["demo", None]


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            "apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: ConfigMap}\n",
            "document 1 item 1: metadata.name missing",
        ),
        ("apiVersion: v1\nkind: List\nitems: [just-a-string]\n", "document 1 item 1: expected"),
        ("apiVersion: v1\nkind: List\nitems: []\n", "no Kubernetes objects"),
        (
            "apiVersion: v1\nkind: List\nitems:\n"
            "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            "document 2: duplicate object ConfigMap demo/a (also ",
        ),
    ],
)
def test_loader_names_the_list_item_at_fault(tmp_path: Path, manifest: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"m\.yaml") as err:
        load_manifests(load_config(_app(tmp_path, manifest)), "web")
    assert expected in str(err.value)
