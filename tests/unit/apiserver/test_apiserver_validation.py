"""Schema validation: the local API server refuses what a kube-apiserver refuses, in its words.

Built-in kinds against Kubernetes' own schemas (from kubernetes-validate), custom resources
against their CRD's openAPIV3Schema; the real helm and kubectl print the answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sbkube.apiserver import validation

pytestmark = pytest.mark.kube

REPLICAS_TWO = (
    'Deployment.apps "bad-web" is invalid: spec.replicas: Invalid value: "string": '
    'spec.replicas in body must be of type integer: "string"'
)


def test_helm_install_with_replicas_two_fails_with_the_servers_message(kube, charts: Path) -> None:
    failed = kube.helm("install", "bad", str(charts / "web"), "--set", "replicas=two", check=False)
    assert failed.returncode == 1
    assert REPLICAS_TWO in failed.stderr, failed.stderr
    # Nothing invalid was stored; helm recorded its failed revision as on a real cluster.
    assert kube.kubectl("get", "deployment", "bad-web", check=False).returncode == 1
    history = json.loads(kube.helm("history", "bad", "-o", "json").stdout)
    assert [entry["status"] for entry in history] == ["failed"]

    kube.helm("upgrade", "bad", str(charts / "web"), "--set", "replicas=3", "--wait")
    assert kube.get("deployment", "bad-web")["spec"]["replicas"] == 3


def test_helm_install_of_a_custom_resource_against_its_crds_schema(kube, charts: Path) -> None:
    gizmo = str(charts / "gizmo")
    failed = kube.helm("install", "g", gizmo, "--set", "size=big", check=False)
    assert failed.returncode == 1
    assert (
        'Gizmo.example.com "g-gizmo" is invalid: spec.size: Invalid value: "string": '
        'spec.size in body must be of type integer: "string"'
    ) in failed.stderr, failed.stderr

    failed = kube.helm("upgrade", "--install", "g", gizmo, "--set", "colour=pink", check=False)
    assert failed.returncode == 1
    assert (
        'spec.colour: Unsupported value: "pink": supported values: "red", "green", "blue"'
        in failed.stderr
    ), failed.stderr
    assert kube.get("gizmos")["items"] == []

    kube.helm("upgrade", "--install", "g", gizmo, "--reset-values", "--wait")
    assert kube.get("gizmo", "g-gizmo")["spec"] == {"size": 3, "colour": "red"}


def gizmo(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Gizmo",
        "metadata": {"name": "x"},
        "spec": spec,
    }


GIZMOS = "/apis/example.com/v1/namespaces/default/gizmos"


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        ({}, ["spec.size: Required value"]),
        (
            {"size": 0},
            ["spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"],
        ),
        (
            {"size": 11},
            ["spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"],
        ),
        (
            {"size": 1, "label": "Big"},
            ["spec.label: Invalid value: \"Big\": spec.label in body should match '^[a-z]+$'"],
        ),
        (
            {"size": 1, "label": "abcdefghij"},
            ["spec.label: Too long: may not be more than 8 bytes"],
        ),
        (
            {"size": 1, "colour": None},
            [
                'spec.colour: Invalid value: "null": spec.colour in body must be of type '
                'string: "null"'
            ],
        ),
        (
            {"size": 1, "port": True},
            [
                'spec.port: Invalid value: "boolean": spec.port in body must be of type '
                'integer-or-string: "boolean"'
            ],
        ),
        (
            {"size": 1, "tags": ["a", "b", "c"]},
            ["spec.tags: Too many: 3: must have at most 2 items"],
        ),
        (
            {"size": "1", "tags": [1]},
            [
                'spec.size: Invalid value: "string": spec.size in body must be of type '
                'integer: "string"',
                'spec.tags[0]: Invalid value: "integer": spec.tags[0] in body must be of type '
                'string: "integer"',
            ],
        ),
    ],
)
def test_a_custom_resource_is_checked_against_its_crd(
    kube, charts: Path, spec: dict[str, Any], problems: list[str]
) -> None:
    kube.kubectl("apply", "-f", str(charts / "gizmo" / "crds" / "gizmos.yaml"))
    code, answer = kube.http("POST", GIZMOS, gizmo(**spec))
    assert (code, answer["reason"]) == (422, "Invalid")
    listed = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    assert answer["message"] == f'Gizmo.example.com "x" is invalid: {listed}'
    assert [f"{c['field']}: {c['message']}" for c in answer["details"]["causes"]] == problems
    assert answer["details"]["kind"] == "Gizmo"


def test_what_a_crd_allows_is_stored(kube, charts: Path) -> None:
    kube.kubectl("apply", "-f", str(charts / "gizmo" / "crds" / "gizmos.yaml"))
    body = gizmo(size=10, colour="blue", label="ok", note=None, port="http", tags=["a"])
    code, answer = kube.http("POST", GIZMOS, body)
    assert code == 201, answer
    second = {**gizmo(size=1, port=8080), "metadata": {"name": "y"}}
    code, answer = kube.http("POST", GIZMOS, second)
    assert code == 201, answer
    # The status subresource is not the main resource's business.
    code, _ = kube.http(
        "PATCH", f"{GIZMOS}/x/status", {"status": {"anything": 1}}, "application/merge-patch+json"
    )
    assert code == 200


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def deployment(**spec: Any) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template, **spec},
    }


def test_every_write_verb_is_checked_and_nothing_invalid_is_stored(kube) -> None:
    code, _ = kube.http("POST", DEPLOYMENTS, deployment(replicas=2))
    assert code == 201
    invalid = 'spec.replicas: Invalid value: "string"'
    merge = "application/merge-patch+json"
    for method, path, body, content_type in [
        ("PUT", f"{DEPLOYMENTS}/web", deployment(replicas="2"), "application/json"),
        ("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"replicas": "x"}}, merge),
        ("PATCH", f"{DEPLOYMENTS}/web?dryRun=All", {"spec": {"replicas": "x"}}, merge),
        (
            "PATCH",
            f"{DEPLOYMENTS}/web?fieldManager=t&force=true",
            json.dumps(deployment(replicas="x")).encode(),
            "application/apply-patch+yaml",
        ),
    ]:
        code, answer = kube.http(method, path, body, content_type)
        assert (code, answer["reason"]) == (422, "Invalid"), (method, path, answer)
        assert invalid in answer["message"]
    assert kube.get("deployment", "web")["spec"]["replicas"] == 2
    assert kube.get("deployment", "web")["metadata"]["generation"] == 1


def test_required_fields_and_types_nested_in_lists_and_maps(kube) -> None:
    broken = deployment()
    del broken["spec"]["selector"]
    container = broken["spec"]["template"]["spec"]["containers"][0]
    del container["name"]
    container["ports"] = [{"containerPort": "80"}]
    container["resources"] = {"limits": {"cpu": True}}
    code, answer = kube.http("POST", DEPLOYMENTS, broken)
    assert code == 422
    containers = "spec.template.spec.containers[0]"
    assert [c["field"] for c in answer["details"]["causes"]] == [
        "spec.selector",
        f"{containers}.name",
        f"{containers}.ports[0].containerPort",
        f"{containers}.resources.limits[cpu]",
    ]
    assert answer["message"].startswith(
        'Deployment.apps "web" is invalid: [spec.selector: Required value, '
    )
    assert (
        f'{containers}.resources.limits[cpu]: Invalid value: "boolean": {containers}.resources.'
        f'limits[cpu] in body must be of type string or number: "boolean"'
    ) in answer["message"]


def test_kubectl_prints_the_servers_message(kube) -> None:
    manifest = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
        "spec: {ports: [{name: http}], selector: {app: web}}\n"
    )
    failed = kube.kubectl("apply", "-f", "-", stdin=manifest, check=False)
    assert failed.returncode == 1
    assert 'The Service "s" is invalid: spec.ports[0].port: Required value' in failed.stderr


def test_core_kinds_are_named_without_a_group_and_unknown_kinds_pass() -> None:
    problems = validation.check_builtin("", "v1", "ConfigMap", {"data": {"a": 1}})
    assert validation.message("ConfigMap", "", "c", problems) == (
        'ConfigMap "c" is invalid: data[a]: Invalid value: "integer": data[a] in body must be of '
        'type string: "integer"'
    )
    assert validation.check_builtin("example.com", "v1", "Nothing", {"spec": 1}) == []
    # Nulls are what a client sends for "unset": the built-in schemas allow them.
    assert validation.check_builtin("apps", "v1", "Deployment", deployment(replicas=None)) == []
