"""The real kubectl against the local API server: apply (client- and server-side), dry runs,
the protobuf create commands, selectors, namespaces."""

from __future__ import annotations

import base64

import pytest

pytestmark = pytest.mark.kube

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
  labels: {{app: web, tier: front}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{{containerPort: 80}}]
          env: [{{name: COLOUR, value: {colour}}}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {namespace}
spec:
  selector: {{app: web}}
  ports: [{{port: 80}}]
"""


def manifest(colour: str = "blue", namespace: str = "default") -> str:
    return DEPLOYMENT.format(colour=colour, namespace=namespace)


def test_apply_creates_then_is_unchanged_then_configures(kube) -> None:
    first = kube.kubectl("apply", "-f", "-", stdin=manifest())
    assert "deployment.apps/web created" in first.stdout
    created = kube.get("deployment", "web")
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["uid"]
    assert created["metadata"]["creationTimestamp"].endswith("Z")
    # Server defaults, so that the next apply finds nothing to change.
    assert created["spec"]["revisionHistoryLimit"] == 10
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["ports"][0]["protocol"] == "TCP"
    service = kube.get("service", "web")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["clusterIP"].startswith("10.")
    assert service["spec"]["ports"][0]["targetPort"] == 80

    again = kube.kubectl("apply", "-f", "-", stdin=manifest())
    assert "deployment.apps/web unchanged" in again.stdout
    assert "service/web unchanged" in again.stdout
    same = kube.get("deployment", "web")
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    changed = kube.kubectl("apply", "-f", "-", stdin=manifest("green"))
    assert "deployment.apps/web configured" in changed.stdout
    after = kube.get("deployment", "web")
    assert after["metadata"]["generation"] == 2
    env = after["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "COLOUR", "value": "green"}]
    assert after["status"]["observedGeneration"] == 2
    rollout = kube.kubectl("rollout", "status", "deployment/web", "--timeout=10s")
    assert "successfully rolled out" in rollout.stdout


def test_delete_removes_the_object(kube) -> None:
    kube.kubectl("apply", "-f", "-", stdin=manifest())
    kube.kubectl("delete", "deployment", "web")
    missing = kube.kubectl("get", "deployment", "web", check=False)
    assert missing.returncode == 1
    assert 'deployments.apps "web" not found' in missing.stderr


def test_server_side_apply_and_a_conflict_between_managers(kube) -> None:
    applied = kube.kubectl(
        "apply", "--server-side", "--field-manager=alice", "-f", "-", stdin=manifest()
    )
    assert "serverside-applied" in applied.stdout
    shown = kube.get("deployment", "web", "--show-managed-fields")
    managers = {entry["manager"] for entry in shown["metadata"]["managedFields"]}
    assert "alice" in managers

    clash = kube.kubectl(
        "apply",
        "--server-side",
        "--field-manager=bob",
        "-f",
        "-",
        stdin=manifest("red"),
        check=False,
    )
    assert clash.returncode != 0
    assert "conflict" in clash.stderr.lower()
    assert "alice" in clash.stderr
    env = kube.get("deployment", "web")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["value"] == "blue"

    kube.kubectl(
        "apply",
        "--server-side",
        "--field-manager=bob",
        "--force-conflicts",
        "-f",
        "-",
        stdin=manifest("red"),
    )
    env = kube.get("deployment", "web")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["value"] == "red"


def test_dry_run_server_changes_nothing(kube) -> None:
    dry = kube.kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifest())
    assert "created (server dry run)" in dry.stdout
    assert kube.kubectl("get", "deployment", "web", check=False).returncode == 1

    kube.kubectl("apply", "-f", "-", stdin=manifest())
    before = kube.get("deployment", "web")
    dry = kube.kubectl("apply", "--dry-run=server", "-f", "-", "-o", "json", stdin=manifest("red"))
    assert '"value": "red"' in dry.stdout  # the answer is the object as it would be
    after = kube.get("deployment", "web")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "blue"

    kube.kubectl("delete", "deployment", "web", "--dry-run=server")
    assert kube.get("deployment", "web")["metadata"]["uid"] == before["metadata"]["uid"]


def test_create_commands_send_protobuf_bodies(kube) -> None:
    kube.kubectl("create", "namespace", "team")
    kube.kubectl("create", "secret", "generic", "creds", "-n", "team", "--from-literal=token=s3")
    kube.kubectl("create", "configmap", "settings", "-n", "team", "--from-literal=mode=fast")
    assert kube.get("namespace", "team")["status"]["phase"] == "Active"
    secret = kube.get("secret", "creds", "-n", "team")
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["token"]) == b"s3"
    assert kube.get("configmap", "settings", "-n", "team")["data"] == {"mode": "fast"}


def test_secret_string_data_is_folded_into_data(kube) -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: pw}\n"
    kube.kubectl("apply", "-f", "-", stdin=secret)
    stored = kube.get("secret", "s")
    assert "stringData" not in stored
    assert base64.b64decode(stored["data"]["password"]) == b"pw"


def test_label_selectors(kube) -> None:
    for name, labels in [("a", "app=web,tier=front"), ("b", "app=db"), ("c", "tier=back")]:
        kube.kubectl("create", "configmap", name)
        kube.kubectl("label", "configmap", name, *labels.split(","))

    def names(selector: str) -> list[str]:
        items = kube.get("configmaps", "-l", selector)["items"]
        return sorted(item["metadata"]["name"] for item in items)

    assert names("app=web") == ["a"]
    assert names("app!=web") == ["b", "c"]
    assert names("app in (web,db)") == ["a", "b"]
    assert names("app notin (web)") == ["b", "c"]
    assert names("tier") == ["a", "c"]
    assert names("!tier") == ["b"]
    assert names("app=web,tier=front") == ["a"]
    by_name = kube.get("configmaps", "--field-selector", "metadata.name=b")["items"]
    assert [item["metadata"]["name"] for item in by_name] == ["b"]


def test_deleting_a_namespace_deletes_its_contents(kube) -> None:
    kube.kubectl("create", "namespace", "shop")
    kube.kubectl("apply", "-f", "-", stdin=manifest(namespace="shop"))
    kube.kubectl("create", "configmap", "keep")
    kube.kubectl("delete", "namespace", "shop")
    assert kube.get("deployments", "-n", "shop")["items"] == []
    assert kube.get("services", "-n", "shop")["items"] == []
    assert kube.kubectl("get", "namespace", "shop", check=False).returncode == 1
    assert kube.get("configmap", "keep")["metadata"]["name"] == "keep"


def test_an_object_in_a_missing_namespace_is_refused(kube) -> None:
    refused = kube.kubectl("apply", "-f", "-", stdin=manifest(namespace="nowhere"), check=False)
    assert refused.returncode == 1
    assert 'namespaces "nowhere" not found' in refused.stderr
    refused = kube.kubectl(
        "apply", "--server-side", "-f", "-", stdin=manifest(namespace="nowhere"), check=False
    )
    assert 'namespaces "nowhere" not found' in refused.stderr


def test_kubectl_scale_sets_the_replicas_through_the_scale_subresource(kube) -> None:
    kube.kubectl("apply", "-f", "-", stdin=manifest())
    scaled = kube.kubectl("scale", "deployment", "web", "--replicas=5")
    assert "deployment.apps/web scaled" in scaled.stdout
    deployment = kube.get("deployment", "web")
    assert deployment["spec"]["replicas"] == 5
    assert deployment["metadata"]["generation"] == 2
    # The readiness controller follows the new count.
    assert deployment["status"]["readyReplicas"] == 5

    # --current-replicas reads the Scale first and writes it back with its resourceVersion.
    kube.kubectl("scale", "deployment", "web", "--current-replicas=5", "--replicas=1")
    assert kube.get("deployment", "web")["spec"]["replicas"] == 1
    refused = kube.kubectl(
        "scale", "deployment", "web", "--current-replicas=5", "--replicas=2", check=False
    )
    assert refused.returncode == 1
    assert kube.get("deployment", "web")["spec"]["replicas"] == 1


def test_the_scale_subresource_answers_a_scale(kube) -> None:
    kube.kubectl("apply", "-f", "-", stdin=manifest())
    path = "/apis/apps/v1/namespaces/default/deployments/web/scale"
    code, answer = kube.http("GET", path)
    assert code == 200
    assert answer["kind"] == "Scale"
    assert answer["apiVersion"] == "autoscaling/v1"
    assert answer["spec"] == {"replicas": 2}
    assert answer["status"] == {"replicas": 2, "selector": "app=web"}

    answer["spec"]["replicas"] = 3
    code, answer = kube.http("PUT", path, answer)
    assert (code, answer["spec"]["replicas"]) == (200, 3)
    # The resourceVersion it was read at is stale now.
    stale = {**answer, "metadata": {**answer["metadata"], "resourceVersion": "1"}}
    code, refused = kube.http("PUT", path, stale)
    assert (code, refused["reason"]) == (409, "Conflict")

    code, refused = kube.http(
        "PATCH", path, {"spec": {"replicas": -1}}, "application/merge-patch+json"
    )
    assert (code, refused["reason"]) == (422, "Invalid")
    assert "spec.replicas: Invalid value: -1" in refused["message"]
    assert kube.get("deployment", "web")["spec"]["replicas"] == 3

    code, missing = kube.http("GET", "/apis/apps/v1/namespaces/default/deployments/nope/scale")
    assert (code, missing["reason"]) == (404, "NotFound")


SCALABLE_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: pools.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: pools, singular: pool, kind: Pool}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
      subresources:
        status: {}
        scale:
          specReplicasPath: .spec.size
          statusReplicasPath: .status.size
          labelSelectorPath: .status.selector
"""


def test_kubectl_scale_a_custom_resource_at_the_paths_its_crd_names(kube) -> None:
    kube.kubectl("apply", "-f", "-", stdin=SCALABLE_CRD)
    pool = "apiVersion: example.com/v1\nkind: Pool\nmetadata: {name: p}\nspec: {size: 1}\n"
    kube.kubectl("apply", "-f", "-", stdin=pool)
    kube.kubectl("scale", "pool", "p", "--replicas=4")
    assert kube.get("pool", "p")["spec"] == {"size": 4}


FULL = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels: {app: shop, tier: front}
  annotations: {team: blue}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
        - name: shop
          image: nginx:1.27
          ports: [{containerPort: 80}, {containerPort: 443}]
          env: [{name: MODE, value: fast}, {name: DEBUG, value: "1"}]
        - name: sidecar
          image: busybox:1.36
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop}
data: {mode: fast, debug: "1"}
"""

# The same objects without the tier label, the annotation, the second port, DEBUG, the
# sidecar and the debug key.
TRIMMED = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels: {app: shop}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
        - name: shop
          image: nginx:1.27
          ports: [{containerPort: 80}]
          env: [{name: MODE, value: fast}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop}
data: {mode: fast}
"""


def test_a_server_side_apply_removes_what_its_manager_no_longer_sends_and_keeps_the_rest(
    kube,
) -> None:
    ssa = ("apply", "--server-side", "--field-manager=sbkube", "--force-conflicts", "-f", "-")
    kube.kubectl(*ssa, stdin=FULL)
    # Other managers: an Update (label), an Apply (annotation and env var), the scale
    # subresource (replicas, which the manifest leaves to others).
    kube.kubectl("label", "deployment", "shop", "owner=ops", "--field-manager=other")
    kube.kubectl(
        "apply", "--server-side", "--field-manager=other", "-f", "-",
        stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop, annotations: {note: kept}}\n"
        "data: {extra: kept}\n",
    )  # fmt: skip
    kube.kubectl("scale", "deployment", "shop", "--replicas=3")

    kube.kubectl(*ssa, stdin=TRIMMED)

    deployment = kube.get("deployment", "shop", "--show-managed-fields")
    assert deployment["metadata"]["labels"] == {"app": "shop", "owner": "ops"}
    assert "team" not in (deployment["metadata"].get("annotations") or {})
    assert deployment["spec"]["replicas"] == 3
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "shop"
    assert container["env"] == [{"name": "MODE", "value": "fast"}]
    assert [p["containerPort"] for p in container["ports"]] == [80]
    mine = next(m for m in deployment["metadata"]["managedFields"] if m["manager"] == "sbkube")
    assert "f:tier" not in mine["fieldsV1"]["f:metadata"]["f:labels"]
    configmap = kube.get("configmap", "shop")
    assert configmap["data"] == {"mode": "fast", "extra": "kept"}
    assert configmap["metadata"]["annotations"] == {"note": "kept"}
