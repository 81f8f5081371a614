"""One apply per YAML app (issue 14 item 2): real kubectl against the local API server.

The kubectl that sbkube runs is a wrapper that logs each argv and execs the real binary, so
the tests count processes; the server counts its requests by verb and resource. The records
are compared with what kubectl reports live: create, update, unchanged, prune, a Secret.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbkube.apiserver import ApiServer
from sbkube.cluster.helm import HelmClient
from sbkube.cluster.kube import KubeCluster
from sbkube.cluster.kubectl import KubectlClient
from sbkube.cluster.port import strip_volatile
from sbkube.engine import deploy
from sbkube.engine.compare import matches
from sbkube.engine.work import app_dir_label
from sbkube.model import AppStatus, DeploymentStatus, ResourceAction
from sbkube.redaction import redact_manifest
from sbkube.state import DeploymentDatabase, DeploymentRepository, ResourceRecord

pytestmark = pytest.mark.kube

NS = "bulk"

_WRAPPER = """#!{python}
import json, os, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


@dataclass
class Kube:
    server: ApiServer
    kubeconfig: Path
    cluster: KubeCluster
    kubectl_binary: str
    log: Path

    def kubectl(self, *args: str) -> Any:
        """The real kubectl, not logged: what a user sees live (JSON; None for nothing)."""
        done = subprocess.run(
            [self.kubectl_binary, "--kubeconfig", str(self.kubeconfig), *args, "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(done.stdout) if done.stdout.strip() else None

    def live(self, kind: str, name: str, namespace: str | None = NS) -> dict[str, Any] | None:
        scope = ["-n", namespace] if namespace else []
        found: dict[str, Any] | None = self.kubectl("get", kind, name, *scope, "--ignore-not-found")
        return found

    def runs(self) -> list[list[str]]:
        """The kubectl argvs sbkube ran since the last call (subcommand first), without the
        kubeconfig flag."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        self.log.write_text("")
        runs = []
        for line in lines:
            argv = json.loads(line)
            at = argv.index("--kubeconfig")
            runs.append(argv[:at] + argv[at + 2 :])
        return runs


@pytest.fixture
def kube(tmp_path: Path, helm_binary: str, kubectl_binary: str) -> Iterator[Kube]:
    log = tmp_path / "kubectl.log"
    wrapper = tmp_path / "kubectl"
    wrapper.write_text(_WRAPPER.format(python=sys.executable, log=str(log), real=kubectl_binary))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    server = ApiServer(None, fail_on=set()).start()
    kubeconfig = tmp_path / "kubeconfig"
    server.write_kubeconfig(kubeconfig)
    cluster = KubeCluster(
        kubeconfig=str(kubeconfig),
        helm=HelmClient(helm_binary, str(kubeconfig)),
        kubectl=KubectlClient(str(wrapper), str(kubeconfig)),
    )
    yield Kube(server, kubeconfig, cluster, kubectl_binary, log)
    server.stop()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[DeploymentDatabase]:
    db = DeploymentDatabase(tmp_path / "state.db")
    yield db
    db.close()


def config_map(i: int, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:02d}"},
        "data": data or {"index": str(i)},
    }


def service(i: int, port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{i:02d}"},
        "spec": {"selector": {"app": f"svc-{i:02d}"}, "ports": [{"port": port}]},
    }


def secret(password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"password": password},
    }


def write_app(root: Path, docs: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = {"namespace": NS, "apps": {"objs": {"type": "yaml", "manifests": ["objs.yaml"]}}}
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "objs.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return root


def thirty() -> list[dict[str, Any]]:
    return [config_map(i) for i in range(20)] + [service(i) for i in range(10)]


def records(db: DeploymentDatabase, deployment_id: str | None) -> dict[tuple[str, str], Any]:
    assert deployment_id is not None
    app = DeploymentRepository(db).get(deployment_id).app("objs")
    assert app is not None
    return {(r.kind, r.name): r for r in app.resources}


def verbs(runs: list[list[str]]) -> list[str]:
    return [run[0] for run in runs]


def deployed(kube: Kube, db: DeploymentDatabase, app: Path, **kwargs: Any) -> Any:
    result = deploy(app, cluster=kube.cluster, db=db, **kwargs)
    assert result.status == DeploymentStatus.SUCCESS, [a.error for a in result.apps]
    return result


# --------------------------------------------------------------------------- counts


def test_thirty_objects_deploy_with_one_list_one_apply_and_prune_with_one_delete(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "app", thirty())
    kube.runs()
    kube.server.requests.clear()

    first = deployed(kube, database, app)

    runs = kube.runs()
    # Once per command: the cluster's name (config view), its identity (kube-system's
    # UID) and discovery (api-resources).
    setup = [
        run
        for run in runs
        if run[0] in ("config", "api-resources") or run[:3] == ["get", "Namespace", "kube-system"]
    ]
    assert sorted(verbs(setup)) == ["api-resources", "config", "get"], runs
    # The app itself: one get (the live state), one apply.
    runs = [run for run in runs if run not in setup]
    assert verbs(runs) == ["get", "apply"], runs
    get, apply = runs
    assert get[1] == "ConfigMap,Namespace,Service" and get[2:4] == ["--namespace", NS]
    assert "--server-side" in apply and "--field-manager=sbkube" in apply
    counts = kube.server.requests
    # One LIST per kind and namespace, never a GET per object; one apply PATCH per object.
    assert counts["list configmaps"] == counts["list services"] == 1
    assert counts["get configmaps"] == counts["get services"] == 0
    assert counts["apply configmaps"] == 20 and counts["apply services"] == 10
    assert counts["apply namespaces"] == 1  # the missing namespace joins the one apply
    assert len(first.apps[0].changes) == 31

    # The same app again: the deploy's snapshot reads the live state and the prune
    # candidates (one LIST per kind each); nothing applied (every object unchanged), no prune.
    again = deployed(kube, database, app)
    runs = kube.runs()
    assert verbs(runs) == ["get", "get"], runs  # the live state, the prune candidates
    # Read at once: either may start first.
    (prune_get,) = [run for run in runs if "--all-namespaces" in run]
    # The kinds recorded before (the namespace the app created among them).
    assert prune_get[1] == "ConfigMap,Namespace,Service" and "--all-namespaces" in prune_get
    # The app dir's label: every app of the dir at once (each app keeps its own).
    dir_label = app_dir_label(str(app))
    assert prune_get[prune_get.index("--selector") + 1] == f"sbkube.io/app-dir={dir_label}"
    assert {c.action for c in again.apps[0].changes} == {ResourceAction.UNCHANGED}

    # One object removed: the snapshot shows a change, so the app reads afresh (its own
    # labels) and prunes with one delete call.
    write_app(app, thirty()[:-1])
    kube.server.requests.clear()
    third = deployed(kube, database, app)
    runs = kube.runs()
    assert verbs(runs) == ["get", "get", "get", "get", "delete"], runs
    assert f"sbkube.io/app=objs,sbkube.io/app-dir={dir_label},sbkube.io/namespace=bulk" in (runs[3])
    assert runs[4][1:3] == ["--filename", "-"]
    assert kube.server.requests["delete services"] == 1
    # The snapshot's two reads (live state, candidates) and the app's own two.
    assert kube.server.requests["list services"] == 4
    assert records(database, third.deployment_id)[("Service", "svc-09")].action == (
        ResourceAction.DELETE
    )
    assert kube.live("service", "svc-09") is None


# --------------------------------------------------------------------------- records


def assert_matches_live(rec: ResourceRecord, live: dict[str, Any] | None) -> None:
    """A recorded object is what kubectl reports: every field it holds is live (Secrets
    compared redacted: the record never holds their plain text)."""
    assert live is not None, rec.name
    assert rec.current_state is not None
    assert matches(redact_manifest(dict(rec.current_state)), redact_manifest(live)), rec.name


def test_records_match_what_kubectl_reports_for_each_action(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    docs = [config_map(1), config_map(2), service(1), secret("hunter2")]
    app = write_app(tmp_path / "app", docs)

    first = deployed(kube, database, app)
    rec = records(database, first.deployment_id)
    assert {k: r.action for k, r in rec.items()} == {
        ("Namespace", NS): ResourceAction.CREATE,
        ("ConfigMap", "cm-01"): ResourceAction.CREATE,
        ("ConfigMap", "cm-02"): ResourceAction.CREATE,
        ("Service", "svc-01"): ResourceAction.CREATE,
        ("Secret", "creds"): ResourceAction.CREATE,
    }
    for (kind, name), r in rec.items():
        assert_matches_live(r, kube.live(kind.lower(), name, None if kind == "Namespace" else NS))
    assert "hunter2" not in json.dumps(rec[("Secret", "creds")].current_state, default=str)
    # Server-side applied, by sbkube: no client-side last-applied annotation.
    cm = kube.kubectl("get", "configmap", "cm-01", "-n", NS, "--show-managed-fields")
    assert [m["manager"] for m in cm["metadata"]["managedFields"]] == ["sbkube"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (
        cm["metadata"].get("annotations") or {}
    )

    # cm-01 changes a field, svc-01's port changes, cm-02 stays, the Secret's value changes,
    # and a ConfigMap cm-03 (made earlier) goes.
    before = {
        "cm-01": kube.live("configmap", "cm-01"),
        "svc-01": kube.live("service", "svc-01"),
        "creds": kube.live("secret", "creds"),
    }
    docs = [config_map(1, index="changed"), config_map(2), service(1, 8080), secret("s3cret")]
    write_app(app, docs)
    second = deployed(kube, database, app)
    rec = records(database, second.deployment_id)
    assert {k: r.action for k, r in rec.items()} == {
        ("Namespace", NS): ResourceAction.UNCHANGED,
        ("ConfigMap", "cm-01"): ResourceAction.UPDATE,
        ("ConfigMap", "cm-02"): ResourceAction.UNCHANGED,
        ("Service", "svc-01"): ResourceAction.UPDATE,
        ("Secret", "creds"): ResourceAction.UPDATE,
    }
    for (kind, name), r in rec.items():
        if kind != "Namespace":
            assert_matches_live(r, kube.live(kind.lower(), name))
    assert kube.live("configmap", "cm-01")["data"] == {"index": "changed"}  # type: ignore[index]
    assert kube.live("service", "svc-01")["spec"]["ports"][0]["port"] == 8080  # type: ignore[index]
    # The previous state is the live object before the apply (as stored: without the
    # fields the server maintains, the Secret redacted).
    for kind, name in (("ConfigMap", "cm-01"), ("Service", "svc-01"), ("Secret", "creds")):
        previous = rec[(kind, name)].previous_state
        assert previous is not None
        assert matches(redact_manifest(dict(previous)), redact_manifest(before[name]))
        assert matches(redact_manifest(strip_volatile(before[name])), redact_manifest(previous))
    assert rec[("ConfigMap", "cm-01")].previous_state["data"] == {"index": "1"}  # type: ignore[index]
    secret_json = json.dumps(
        [rec[("Secret", "creds")].current_state, rec[("Secret", "creds")].previous_state],
        default=str,
    )
    assert "hunter2" not in secret_json and "s3cret" not in secret_json

    # Pruning: cm-02 and the Secret leave the app; recorded deleted with their live state.
    before = {"cm-02": kube.live("configmap", "cm-02"), "creds": kube.live("secret", "creds")}
    write_app(app, [config_map(1, index="changed"), service(1, 8080)])
    third = deployed(kube, database, app)
    rec = records(database, third.deployment_id)
    for kind, name in (("ConfigMap", "cm-02"), ("Secret", "creds")):
        r = rec[(kind, name)]
        assert r.action == ResourceAction.DELETE and r.current_state is None
        assert r.source_file == "objs.yaml"
        assert r.previous_state is not None
        assert matches(redact_manifest(dict(r.previous_state)), redact_manifest(before[name]))
        assert kube.live(kind.lower(), name) is None
    assert "s3cret" not in json.dumps(rec[("Secret", "creds")].previous_state, default=str)
    assert rec[("ConfigMap", "cm-01")].action == ResourceAction.UNCHANGED


def test_pruning_spares_an_object_that_lost_the_apps_labels(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "app", [config_map(1), config_map(2)])
    deployed(kube, database, app)
    # Someone takes cm-02 over: it no longer carries this app's label.
    subprocess.run(
        [kube.kubectl_binary, "--kubeconfig", str(kube.kubeconfig), "label", "configmap",
         "cm-02", "-n", NS, "sbkube.io/app=other", "--overwrite"],
        check=True, capture_output=True,
    )  # fmt: skip
    write_app(app, [config_map(1)])
    second = deployed(kube, database, app)
    assert ("ConfigMap", "cm-02") not in records(database, second.deployment_id)
    assert kube.live("configmap", "cm-02") is not None


# --------------------------------------------------------------------------- failures


def test_a_failure_part_way_names_the_object_and_records_what_was_applied(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "app", thirty())
    kube.server.faults.fail_on.add("cm-07")
    result = deploy(app, cluster=kube.cluster, db=database)

    assert result.status == DeploymentStatus.FAILED
    [outcome] = result.apps
    assert outcome.status == AppStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith("kubectl apply (31 objects) failed:")
    assert "cm-07" in outcome.error
    # kubectl went on past the failing object: what it applied is recorded, the app failed.
    partial = records(database, result.deployment_id)
    assert ("ConfigMap", "cm-07") not in partial
    assert partial[("ConfigMap", "cm-08")].action == ResourceAction.CREATE
    assert len(partial) == 30, sorted(partial)  # the namespace and 29 of the 30 objects
    assert kube.cluster.get(("v1", "ConfigMap", "bulk", "cm-08")) is not None
    kube.server.faults.fail_on.clear()
    again = deployed(kube, database, app)
    rec = records(database, again.deployment_id)
    assert rec[("ConfigMap", "cm-07")].action == ResourceAction.CREATE
    assert rec[("ConfigMap", "cm-08")].action == ResourceAction.UNCHANGED


# --------------------------------------------------------------------------- dry run


def test_a_dry_run_plans_with_one_server_side_dry_run_and_changes_nothing(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "app", thirty())
    deployed(kube, database, app)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "side"}}
    elsewhere = {**config_map(99), "metadata": {"name": "cm-99", "namespace": "side"}}
    changed = [config_map(i, index="new") for i in range(5)]
    write_app(app, [*changed, *thirty()[5:-1], namespace, elsewhere])
    kube.runs()

    plan = deploy(app, cluster=kube.cluster, db=database, dry_run=True)

    assert plan.status == DeploymentStatus.SUCCESS, [a.error for a in plan.apps]
    actions = {(c.kind, c.name): c.action for c in plan.apps[0].changes}
    assert [k for k, a in actions.items() if a == ResourceAction.UPDATE] == [
        ("ConfigMap", f"cm-{i:02d}") for i in range(5)
    ]
    assert actions[("Namespace", "side")] == ResourceAction.CREATE
    assert actions[("ConfigMap", "cm-99")] == ResourceAction.CREATE
    assert actions[("Service", "svc-09")] == ResourceAction.DELETE
    runs = kube.runs()
    applies = [run for run in runs if run[0] == "apply"]
    # The new namespace first; then the changed objects in one server-side dry run (cm-99,
    # in a namespace that exists only in the plan, is planned without asking the server).
    assert len(applies) == 2 and all("--dry-run=server" in run for run in applies)
    [delete] = [run for run in runs if run[0] == "delete"]
    assert "--dry-run=server" in delete
    # Nothing changed.
    assert kube.live("configmap", "cm-00")["data"] == {"index": "0"}  # type: ignore[index]
    assert kube.live("service", "svc-09") is not None
    assert kube.live("namespace", "side", None) is None
    assert len(DeploymentRepository(database).list()) == 1


def test_a_custom_resource_and_its_crd_in_one_app(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    # The custom resource first in the file: the CRD is still applied before it.
    app = write_app(tmp_path / "app", [{**widget, "spec": {"size": 1}}, crd, config_map(1)])
    kube.runs()
    first = deployed(kube, database, app)
    applies = [run for run in kube.runs() if run[0] == "apply"]
    assert len(applies) == 2  # what the cluster serves, then the kind its CRD brought
    assert records(database, first.deployment_id)[("Widget", "w")].action == (ResourceAction.CREATE)
    write_app(app, [crd, config_map(1)])
    second = deployed(kube, database, app)
    assert records(database, second.deployment_id)[("Widget", "w")].action == (
        ResourceAction.DELETE
    )
    assert kube.kubectl("get", "widgets", "-n", NS)["items"] == []


# --------------------------------------------------------------------------- the client


def test_a_list_with_a_kind_not_served_lists_the_others_and_deletes_report_what_went(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    deployed(kube, database, write_app(tmp_path / "app", [config_map(1), service(1)]))
    client = kube.cluster.kubectl
    kinds = [("v1", "ConfigMap"), ("example.com/v1", "Widget"), ("v1", "Service")]
    listed = client.list_kinds(kinds, NS)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in listed) == [
        ("ConfigMap", "cm-01"),
        ("Service", "svc-01"),
    ]
    gone = ("v1", "ConfigMap", NS, "never-was")
    keys = [gone, ("v1", "Service", NS, "svc-01"), ("v1", "ConfigMap", NS, "cm-01")]
    assert client.delete_many(keys) == keys[1:]
    assert kube.live("configmap", "cm-01") is None and kube.live("service", "svc-01") is None
