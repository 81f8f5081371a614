"""The patch algorithms: RFC 6902 and 7386 (with properties), Kubernetes strategic merge
on the cases kubectl produces, and server-side apply ownership, conflicts and force."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sbkube.apiserver.patch import (
    Conflict,
    PatchError,
    fields_v1,
    json_patch,
    list_rule,
    merge_patch,
    paths_of,
    record_update,
    server_side_apply,
    strategic_merge_patch,
)

# --- JSON patch --------------------------------------------------------------------------


def test_json_patch_every_operation() -> None:
    doc = {"a": {"b": [1, 2]}, "c/d": 1, "e~f": 2}
    ops = [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "remove", "path": "/c~1d"},
        {"op": "replace", "path": "/e~0f", "value": 20},
        {"op": "copy", "from": "/a/b", "path": "/copied"},
        {"op": "move", "from": "/a/b/0", "path": "/moved"},
        {"op": "test", "path": "/copied", "value": [0, 1, 2, 3]},
    ]
    assert json_patch(doc, ops) == {
        "a": {"b": [1, 2, 3]},
        "e~f": 20,
        "copied": [0, 1, 2, 3],
        "moved": 0,
    }
    assert doc == {"a": {"b": [1, 2]}, "c/d": 1, "e~f": 2}, "the input is not changed"


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "remove", "path": "/missing"}], "does not exist"),
        ([{"op": "replace", "path": "/missing", "value": 1}], "does not exist"),
        ([{"op": "add", "path": "/a/5", "value": 1}], "out of range"),
        ([{"op": "add", "path": "/a/01", "value": 1}], "not a valid array index"),
        ([{"op": "test", "path": "/t", "value": 1}], "test failed"),
        ([{"op": "move", "from": "/o", "path": "/o/x"}], "into itself"),
        ([{"op": "frob", "path": "/a"}], "not supported"),
        ([{"op": "add", "path": "a", "value": 1}], "must start with"),
        ([{"op": "add", "path": "", "value": [1]}], "must leave an object"),
        ({"op": "add"}, "must be a list"),
    ],
)
def test_json_patch_refusals(ops: Any, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        json_patch({"a": [1], "t": True, "o": {}}, ops)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.sampled_from(["a", "b", "c/d", "e~f"]), json_values, max_size=4)


def escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_diff(a: Any, b: Any, path: str = "") -> list[dict[str, Any]]:
    """A (test-side) RFC 6902 diff: recursive for maps, replace for anything else."""
    if isinstance(a, dict) and isinstance(b, dict):
        ops: list[dict[str, Any]] = [
            {"op": "remove", "path": f"{path}/{escape(k)}"} for k in a if k not in b
        ]
        for k, v in b.items():
            if k not in a:
                ops.append({"op": "add", "path": f"{path}/{escape(k)}", "value": v})
            else:
                ops += json_diff(a[k], v, f"{path}/{escape(k)}")
        return ops
    same = type(a) is type(b) and a == b
    return [] if same else [{"op": "replace", "path": path, "value": b}]


@given(json_objects, json_objects)
def test_json_patch_of_a_diff_gives_the_target(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert json_patch(a, json_diff(a, b)) == b


@given(json_objects, st.sampled_from(["a", "b", "c/d", "e~f"]))
def test_json_patch_move_there_and_back(doc: dict[str, Any], key: str) -> None:
    if key not in doc:
        return
    there = json_patch(doc, [{"op": "move", "from": f"/{escape(key)}", "path": "/moved"}])
    assert "moved" in there and key not in there
    back = json_patch(there, [{"op": "move", "from": "/moved", "path": f"/{escape(key)}"}])
    assert back == doc | {}


def test_json_test_does_not_confuse_true_and_one() -> None:
    with pytest.raises(PatchError, match="test failed"):
        json_patch({"x": True}, [{"op": "test", "path": "/x", "value": 1}])


# --- JSON merge patch --------------------------------------------------------------------


def test_merge_patch_rfc_7386_examples() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }
    assert merge_patch({"a": "b"}, {"a": {"b": None, "c": 1}}) == {"a": {"c": 1}}
    with pytest.raises(PatchError):
        merge_patch({}, ["not", "an", "object"])


def merge_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """A (test-side) merge patch from a to b."""
    patch: dict[str, Any] = {k: None for k in a if k not in b}
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            inner = merge_diff(a[k], v)
            if inner:
                patch[k] = inner
        elif k not in a or a[k] != v or type(a[k]) is not type(v):
            patch[k] = v
    return patch


def no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: no_nulls(v) for k, v in value.items() if v is not None}
    return value


@given(json_objects, json_objects)
def test_merge_patch_of_a_diff_gives_the_target(a: dict[str, Any], b: dict[str, Any]) -> None:
    target = no_nulls(b)  # a merge patch cannot express a null value in a map
    assert merge_patch(a, merge_diff(a, target)) == target


# --- strategic merge patch ---------------------------------------------------------------


def deployment(*containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": list(containers)}}},
    }


WEB = {
    "name": "web",
    "image": "nginx:1",
    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
}
SIDECAR = {"name": "sidecar", "image": "busybox"}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"]["containers"])


def test_image_change_keeps_the_other_containers() -> None:
    # What `kubectl apply` sends when only web's image changed.
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{"name": "web", "image": "nginx:2"}],
                }
            }
        }
    }
    result = containers(strategic_merge_patch(deployment(WEB, SIDECAR), patch))
    assert result == [{**WEB, "image": "nginx:2"}, SIDECAR]


def test_env_removal_by_delete_directive_and_null() -> None:
    patch = {
        "metadata": {"labels": {"app": None}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "env": [{"name": "A", "$patch": "delete"}]},
                    ]
                }
            }
        },
    }
    result = strategic_merge_patch(deployment(WEB, SIDECAR), patch)
    assert containers(result)[0]["env"] == [{"name": "B", "value": "2"}]
    assert result["metadata"]["labels"] == {}


def test_container_delete_replace_and_new_item() -> None:
    base = deployment(WEB, SIDECAR)
    gone = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
    }
    assert containers(strategic_merge_patch(base, gone)) == [WEB]
    new = {"spec": {"template": {"spec": {"containers": [{"name": "log", "image": "x"}]}}}}
    assert [c["name"] for c in containers(strategic_merge_patch(base, new))] == [
        "web",
        "sidecar",
        "log",
    ]
    whole = {
        "spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only"}]}}}
    }
    assert containers(strategic_merge_patch(base, whole)) == [{"name": "only"}]


def test_set_element_order_reorders() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}
            }
        }
    }
    assert [
        c["name"] for c in containers(strategic_merge_patch(deployment(WEB, SIDECAR), patch))
    ] == ["sidecar", "web"]


def test_ports_merge_by_container_port_in_pods_and_port_in_services() -> None:
    pod_ports = deployment({"name": "web", "ports": [{"containerPort": 80, "name": "http"}]})
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "web", "ports": [{"containerPort": 443}]}]}
            }
        }
    }
    ports = containers(strategic_merge_patch(pod_ports, patch))[0]["ports"]
    assert ports == [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]
    service = {"kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
    merged = strategic_merge_patch(service, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert merged["spec"]["ports"] == [{"port": 80, "targetPort": 9090}]
    assert list_rule(["spec", "ports"]).merge_key == "port"  # type: ignore[union-attr]
    assert list_rule(["spec", "containers", "ports"]).merge_key == "containerPort"  # type: ignore[union-attr]


def test_atomic_lists_are_replaced_and_finalizers_merge_as_a_set() -> None:
    obj = {
        "metadata": {"finalizers": ["a", "b"]},
        "spec": {"args": ["x", "y"], "tolerations": [{"key": "k"}]},
    }
    patch = {
        "metadata": {"finalizers": ["c", "a"], "$deleteFromPrimitiveList/finalizers": ["b"]},
        "spec": {"args": ["z"], "tolerations": [{"key": "other"}]},
    }
    result = strategic_merge_patch(obj, patch)
    assert result == {
        "metadata": {"finalizers": ["a", "c"]},
        "spec": {"args": ["z"], "tolerations": [{"key": "other"}]},
    }


def test_map_directives_replace_delete_and_retain_keys() -> None:
    obj = {
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "selector": {"a": "1", "b": "2"},
        }
    }
    patch = {
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "selector": {"$patch": "replace", "c": "3"},
        }
    }
    assert strategic_merge_patch(obj, patch) == {
        "spec": {"strategy": {"type": "Recreate"}, "selector": {"c": "3"}}
    }
    assert strategic_merge_patch(obj, {"spec": {"strategy": {"$patch": "delete"}}}) == {
        "spec": {"selector": {"a": "1", "b": "2"}}
    }


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
            "lacks its merge key 'name'",
        ),
        ({"$patch": "frob"}, "unknown \\$patch directive"),
        ({"$frob": 1}, "unknown strategic merge directive"),
        ({"$patch": "delete"}, "cannot delete the whole object"),
    ],
)
def test_strategic_merge_refusals(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(PatchError, match=message):
        strategic_merge_patch(deployment(WEB), patch)


# --- server-side apply -------------------------------------------------------------------


def without_times(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in e.items() if k != "time"}
        for e in obj["metadata"].get("managedFields", [])
    ]


def test_first_apply_records_real_fields_v1() -> None:
    applied = deployment({"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]})
    result = server_side_apply(None, applied, manager="helm", force=False)
    assert without_times(result) == [
        {
            "manager": "helm",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:template": {
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"web"}': {
                                    ".": {},
                                    "f:image": {},
                                    "f:name": {},
                                    "f:ports": {
                                        'k:{"containerPort":80,"protocol":"TCP"}': {
                                            ".": {},
                                            "f:containerPort": {},
                                        }
                                    },
                                }
                            }
                        }
                    },
                },
            },
        }
    ]
    assert {k: v for k, v in result.items() if k != "metadata"} == {
        k: v for k, v in applied.items() if k != "metadata"
    }


def test_fields_v1_round_trips() -> None:
    result = server_side_apply(None, deployment(WEB, SIDECAR), manager="m", force=False)
    fields = result["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields_v1(paths_of(fields)) == fields


def test_reapply_without_a_field_removes_it() -> None:
    first = server_side_apply(None, deployment(WEB, SIDECAR), manager="helm", force=False)
    smaller = deployment({"name": "web", "image": "nginx:1"})
    del smaller["spec"]["replicas"]
    second = server_side_apply(first, smaller, manager="helm", force=False)
    assert "replicas" not in second["spec"]
    assert containers(second) == [{"name": "web", "image": "nginx:1"}], "env and sidecar went"


def test_fields_another_manager_also_owns_are_kept() -> None:
    first = server_side_apply(None, deployment(WEB), manager="helm", force=False)
    shared = server_side_apply(
        first,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 1},
        },
        manager="ops",
        force=False,
    )
    smaller = deployment(WEB)
    del smaller["spec"]["replicas"]
    after = server_side_apply(shared, smaller, manager="helm", force=False)
    assert after["spec"]["replicas"] == 1, "ops still owns it"


def test_two_managers_conflict_and_force_takes_over() -> None:
    first = server_side_apply(None, deployment(WEB), manager="helm", force=False)
    scaled = deployment(WEB)
    scaled["spec"]["replicas"] = 5
    with pytest.raises(Conflict) as info:
        server_side_apply(first, scaled, manager="kubectl", force=False)
    assert str(info.value) == 'Apply failed with 1 conflict: conflict with "helm": .spec.replicas'
    assert info.value.conflicts == [("helm", ".spec.replicas")]

    forced = server_side_apply(first, scaled, manager="kubectl", force=True)
    assert forced["spec"]["replicas"] == 5
    owners = {e["manager"]: paths_of(e["fieldsV1"]) for e in forced["metadata"]["managedFields"]}
    assert ("f:spec", "f:replicas") in owners["kubectl"]
    assert ("f:spec", "f:replicas") not in owners["helm"]
    # helm re-applying its old value now conflicts with kubectl.
    with pytest.raises(Conflict, match=r'conflict with "kubectl": \.spec\.replicas'):
        server_side_apply(forced, deployment(WEB), manager="helm", force=False)


def test_same_value_is_shared_not_a_conflict() -> None:
    first = server_side_apply(None, deployment(WEB), manager="helm", force=False)
    both = server_side_apply(first, deployment(WEB), manager="other", force=False)
    managers = [e["manager"] for e in both["metadata"]["managedFields"]]
    assert managers == ["helm", "other"]


def test_conflict_names_keyed_item_fields() -> None:
    first = server_side_apply(None, deployment(WEB), manager="helm", force=False)
    with pytest.raises(Conflict, match=r'\.spec\.template\.spec\.containers\[name="web"\]\.image'):
        server_side_apply(
            first, deployment({"name": "web", "image": "nginx:9"}), manager="k", force=False
        )


def test_client_side_update_then_server_side_apply_conflicts() -> None:
    """kubectl's client-side apply (an Update) changes the image; helm's next apply of its
    old image conflicts, as it would against a real server."""
    installed = server_side_apply(None, deployment(WEB), manager="helm", force=False)
    edited = copy.deepcopy(installed)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:edited"
    updated = record_update(installed, edited, "kubectl-client-side-apply")
    entries = {
        (e["manager"], e["operation"]): paths_of(e["fieldsV1"])
        for e in updated["metadata"]["managedFields"]
    }
    image = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image")
    assert entries[("kubectl-client-side-apply", "Update")] == {image}
    assert image not in entries[("helm", "Apply")]
    with pytest.raises(Conflict, match="kubectl-client-side-apply"):
        server_side_apply(updated, deployment(WEB), manager="helm", force=False)


def test_record_update_forgets_removed_fields() -> None:
    installed = server_side_apply(None, deployment(WEB), manager="helm", force=False)
    edited = copy.deepcopy(installed)
    del edited["metadata"]["labels"]
    updated = record_update(installed, edited, "editor")
    managers = [e["manager"] for e in updated["metadata"]["managedFields"]]
    assert managers == ["helm"], "a removal alone gives the editor nothing"
    assert ("f:metadata", "f:labels", "f:app") not in paths_of(
        updated["metadata"]["managedFields"][0]["fieldsV1"]
    )


def test_server_owned_metadata_is_never_owned_and_inputs_unchanged() -> None:
    live = deployment(WEB)
    live["metadata"] |= {"uid": "u", "resourceVersion": "7", "namespace": "ns"}
    snapshot = copy.deepcopy(live)
    result = server_side_apply(live, deployment(WEB), manager="helm", force=False)
    fields = result["metadata"]["managedFields"][0]["fieldsV1"]
    assert set(fields["f:metadata"]) == {"f:labels"}
    assert "f:apiVersion" not in fields and "f:kind" not in fields
    assert result["metadata"]["uid"] == "u"
    assert live == snapshot
