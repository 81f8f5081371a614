"""The comparisons behind "unchanged" and ``sbkube diff``: fields a manifest sets against a
live object, values as Helm stores them, and whether a chart is the one a revision used."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sbkube.cluster.port import ChartRef, ReleaseInfo
from sbkube.engine.compare import comparable, differences, project, without_nulls
from sbkube.engine.live import chart_name_of, chart_reason, normalised_values
from sbkube.state import HelmReleaseRecord

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {
        "replicas": 1,
        "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}},
    },
}
LIVE = {
    **DEPLOYMENT,
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "labels": {"app": "web", "added-by": "someone"},
        "uid": "u-1",
        "resourceVersion": "7",
    },
    "spec": {
        "replicas": 1,
        "strategy": {"type": "RollingUpdate"},
        "template": {
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"}
                ],
                "restartPolicy": "Always",
            }
        },
    },
    "status": {"replicas": 1},
}


def test_server_defaults_and_extra_labels_are_no_difference() -> None:
    assert differences(comparable(DEPLOYMENT), LIVE) == []


def test_a_changed_field_is_named_by_its_path() -> None:
    live = {**LIVE, "spec": {**LIVE["spec"], "replicas": 3}}
    assert differences(comparable(DEPLOYMENT), live) == ["spec.replicas"]
    image = {
        **LIVE,
        "spec": {
            **LIVE["spec"],
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}},
        },
    }
    assert differences(comparable(DEPLOYMENT), image) == ["spec.template.spec.containers[0].image"]


def test_keys_that_are_not_identifiers_are_quoted_in_paths() -> None:
    desired = {"metadata": {"annotations": {"helm.sh/hook": "post-install"}}}
    live = {"metadata": {"annotations": {"helm.sh/hook": "pre-install"}}}
    assert differences(desired, live) == ["metadata.annotations['helm.sh/hook']"]


def test_null_and_empty_ask_for_nothing() -> None:
    desired = {"metadata": {"annotations": None}, "spec": {"resources": {}, "args": []}}
    assert differences(desired, {"metadata": {}, "spec": {}}) == []
    assert differences({"spec": {"args": ["a"]}}, {"spec": {}}) == ["spec.args"]


def test_lists_of_another_length_differ_as_a_whole() -> None:
    assert differences({"a": [1, 2]}, {"a": [1]}) == ["a"]
    assert differences({"a": [1]}, {"a": "x"}) == ["a"]


def test_true_is_not_one() -> None:
    assert differences({"a": True}, {"a": 1}) == ["a"]
    assert differences({"a": 1}, {"a": 1.0}) == []


def test_a_secret_compares_as_the_server_stores_it() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "shop"},
        "stringData": {"password": "pw"},
    }
    live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "shop"},
        "data": {"password": base64.b64encode(b"pw").decode()},
        "type": "Opaque",
    }
    assert differences(comparable(secret), live) == []
    other = {**live, "data": {"password": base64.b64encode(b"other").decode()}}
    assert differences(comparable(secret), other) == ["data.password"]


def test_the_namespace_a_manifest_was_given_is_not_compared() -> None:
    # A kind the offline list does not know to be cluster-scoped gets a namespace defaulted
    # that the server drops: the key matched the object already.
    desired = {"apiVersion": "x/v1", "kind": "ClusterThing", "metadata": {"name": "t"}}
    desired["metadata"]["namespace"] = "shop"
    live = {"apiVersion": "x/v1", "kind": "ClusterThing", "metadata": {"name": "t"}}
    assert differences(comparable(desired), live) == []


def test_project_keeps_only_what_the_manifest_sets() -> None:
    desired = comparable(DEPLOYMENT)
    projected = project(LIVE, desired)
    assert projected["metadata"] == {"name": "web", "labels": {"app": "web"}}
    assert projected["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "image": "nginx:1.27"}
    ]
    assert "status" not in projected and "strategy" not in projected["spec"]
    assert project({"spec": {}}, {"spec": {"args": []}}) == {"spec": {"args": []}}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@given(json_values)
def test_a_value_projected_on_itself_differs_nowhere(value: Any) -> None:
    desired = without_nulls(value)
    assert differences(desired, value) == []
    assert differences(desired, project(value, desired)) == []


def test_values_normalise_whole_floats_and_key_order() -> None:
    assert normalised_values({"b": 1.0, "a": {"y": [2.0, 2.5]}}) == normalised_values(
        {"a": {"y": [2, 2.5]}, "b": 1}
    )
    assert normalised_values({"a": 1}) != normalised_values({"a": "1"})


def release(chart: str = "cache", version: str = "0.1.0") -> ReleaseInfo:
    return ReleaseInfo("cache", "shop", 2, "deployed", chart, version, None)


def record(digest: str | None) -> HelmReleaseRecord:
    from sbkube.model import freeze

    return HelmReleaseRecord(
        "cache", "shop", "cache", "0.1.0", None, 2, freeze({}), "deployed", chart_digest=digest
    )


@pytest.mark.parametrize(
    ("chart", "digest", "recorded", "expected"),
    [
        (ChartRef("/c"), "sha256:a", "sha256:a", None),
        (ChartRef("/c"), "sha256:b", "sha256:a", "chart files changed"),
        (ChartRef("/c"), "sha256:a", None, "revision 2 has no recorded chart digest"),
        (ChartRef("repo/cache", "0.1.0"), None, None, None),
        (ChartRef("oci://r.io/charts/cache", "v0.1.0"), None, None, None),
        (ChartRef("repo/cache", "0.2.0"), None, None, "chart version 0.1.0 -> 0.2.0"),
        (ChartRef("repo/other", "0.1.0"), None, None, "chart cache -> other"),
        (ChartRef("repo/cache"), None, None, "chart version not pinned"),
    ],
)
def test_chart_reason(
    chart: ChartRef, digest: str | None, recorded: str | None, expected: str | None
) -> None:
    assert chart_reason(chart, digest, release(), record(recorded)) == expected


def test_chart_name_of_a_ref() -> None:
    assert chart_name_of("bitnami/redis") == "redis"
    assert chart_name_of("oci://registry.io/charts/redis") == "redis"
    assert chart_name_of("redis") == "redis"
