"""The config loader and the cluster port agree on which kinds have no namespace."""

from __future__ import annotations

from pathlib import Path

from sbkube.config import load_config, load_manifests
from sbkube.manifests import object_key


def test_no_namespace_is_defaulted_onto_any_cluster_scoped_kind(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\n"
        "---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"
    )
    (tmp_path / "config.yaml").write_text(
        "namespace: demo\napps:\n  web:\n    type: yaml\n    manifests: [m.yaml]\n"
    )
    ingress_class, config_map = load_manifests(load_config(tmp_path), "web")
    assert "namespace" not in ingress_class["metadata"]
    assert config_map["metadata"]["namespace"] == "demo"
    assert object_key(ingress_class)[2] == ""
