"""The record matches the cluster (issue 11): real helm and kubectl against the local API
server. Lists expanded, scope from discovery and from the app's CRDs, namespaces created,
clusters told apart by their API server, helm's whole error kept."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbkube.apiserver import ApiServer
from sbkube.cluster.helm import HelmClient
from sbkube.cluster.kube import KubeCluster
from sbkube.cluster.kubectl import KubectlClient
from sbkube.engine import deploy
from sbkube.errors import LockError
from sbkube.model import AppStatus, DeploymentStatus, ResourceAction
from sbkube.state import DeployLocks, DeploymentDatabase, DeploymentRepository

pytestmark = pytest.mark.kube

CHARTS = Path(__file__).resolve().parents[2] / "fixtures" / "charts"


@dataclass
class Kube:
    """One local API server, a kubeconfig for it, and a KubeCluster through that file."""

    server: ApiServer
    kubeconfig: Path
    cluster: KubeCluster
    kubectl_binary: str

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl_binary, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def live(self, api_version: str, kind: str, namespace: str | None, name: str) -> Any:
        return self.server.get(api_version, kind, namespace, name)


@pytest.fixture
def start_kube(
    tmp_path: Path, helm_binary: str, kubectl_binary: str
) -> Iterator[Callable[..., Kube]]:
    servers: list[ApiServer] = []
    helm_env = {
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }

    def start(context: str = "default", **faults: Any) -> Kube:
        server = ApiServer(None, **faults).start()
        servers.append(server)
        kubeconfig = tmp_path / f"kubeconfig-{len(servers)}"
        server.write_kubeconfig(kubeconfig, context=context)
        cluster = KubeCluster(
            kubeconfig=str(kubeconfig),
            helm=HelmClient(helm_binary, str(kubeconfig), env=helm_env),
            kubectl=KubectlClient(kubectl_binary, str(kubeconfig)),
        )
        return Kube(server, kubeconfig, cluster, kubectl_binary)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def kube(start_kube: Callable[..., Kube]) -> Kube:
    return start_kube()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[DeploymentDatabase]:
    db = DeploymentDatabase(tmp_path / "state.db")
    yield db
    db.close()


def write_app(root: Path, config: dict[str, Any], files: dict[str, Any]) -> Path:
    """An app dir: config.yaml and manifest files (a list of documents each)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for name, docs in files.items():
        (root / name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return root


def yaml_app(manifests: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "yaml", "manifests": manifests, **extra}


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def crd(group: str, kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
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


def recorded(db: DeploymentDatabase, deployment_id: str | None, app: str) -> dict[Any, Any]:
    """``{(kind, namespace, name): action}`` of one app of a recorded deployment."""
    assert deployment_id is not None
    rec = DeploymentRepository(db).get(deployment_id).app(app)
    assert rec is not None
    return {(r.kind, r.namespace, r.name): r.action for r in rec.resources}


# --------------------------------------------------------------------------- kind: List


def test_list_documents_deploy_prune_and_redact_as_their_items(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"password": "hunter2"},
    }
    typed = {  # how the API server prints a list: items without kind and apiVersion
        "apiVersion": "v1",
        "kind": "ConfigMapList",
        "items": [{"metadata": {"name": "typed"}, "data": {"a": "1"}}],
    }
    listed = {"apiVersion": "v1", "kind": "List", "items": [config_map("one", k="v"), secret]}
    app = write_app(
        tmp_path / "app",
        {"namespace": "lists", "apps": {"objs": yaml_app(["objs.yaml"])}},
        {"objs.yaml": [listed, typed]},
    )

    first = deploy(app, cluster=kube.cluster, db=database)

    assert first.status == DeploymentStatus.SUCCESS, first.apps[0].error
    assert recorded(database, first.deployment_id, "objs") == {
        ("Namespace", None, "lists"): ResourceAction.CREATE,
        ("ConfigMap", "lists", "one"): ResourceAction.CREATE,
        ("Secret", "lists", "creds"): ResourceAction.CREATE,
        ("ConfigMap", "lists", "typed"): ResourceAction.CREATE,
    }
    assert kube.live("v1", "ConfigMap", "lists", "typed")["data"] == {"a": "1"}
    # The Secret inside the List is redacted like any other: no plain text in the store.
    rec = DeploymentRepository(database).get(str(first.deployment_id)).app("objs")
    assert rec is not None
    stored = next(r for r in rec.resources if r.kind == "Secret").current_state
    assert "hunter2" not in json.dumps(stored, default=str)

    listed["items"] = [config_map("one", k="v")]  # the Secret leaves the List
    write_app(app, {"namespace": "lists", "apps": {"objs": yaml_app(["objs.yaml"])}}, {})
    (app / "objs.yaml").write_text(yaml.safe_dump_all([listed, typed]))
    second = deploy(app, cluster=kube.cluster, db=database)

    assert recorded(database, second.deployment_id, "objs")[("Secret", "lists", "creds")] == (
        ResourceAction.DELETE
    )
    assert kube.live("v1", "Secret", "lists", "creds") is None


# --------------------------------------------------------------------------- scope


def test_scope_comes_from_the_apps_crds_and_the_clusters_discovery(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    tenant = {"apiVersion": "example.com/v1", "kind": "Tenant", "metadata": {"name": "acme"}}
    vac = {  # cluster-scoped on the cluster; never named in a fixed list of sbkube's own
        "apiVersion": "storage.k8s.io/v1",
        "kind": "VolumeAttributesClass",
        "metadata": {"name": "fast", "namespace": "ignored"},
        "driverName": "csi.example.com",
    }
    app = write_app(
        tmp_path / "app",
        {"namespace": "scoped", "apps": {"defs": yaml_app(["defs.yaml"])}},
        {
            # The CRD is applied first (kubectl could not map the kind otherwise); the scope
            # of its kind is read off it, not off a cluster that does not serve it yet.
            "defs.yaml": [crd("example.com", "Tenant", "tenants", "Cluster"), tenant, vac],
        },
    )

    result = deploy(app, cluster=kube.cluster, db=database)

    assert result.status == DeploymentStatus.SUCCESS, result.apps[0].error
    actions = recorded(database, result.deployment_id, "defs")
    assert ("Tenant", None, "acme") in actions
    assert ("VolumeAttributesClass", None, "fast") in actions
    assert kube.live("example.com/v1", "Tenant", None, "acme") is not None
    # Only cluster-scoped objects: no namespace was needed, none was made.
    assert kube.live("v1", "Namespace", None, "scoped") is None


def test_a_crd_installed_by_an_earlier_app_of_the_run_decides_the_scope(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    # "Realm" is in no list: when the apps are prepared the cluster does not serve it yet,
    # so only the discovery asked again after the first app installed its CRD can tell.
    realm = {"apiVersion": "example.org/v1", "kind": "Realm", "metadata": {"name": "north"}}
    app = write_app(
        tmp_path / "app",
        {
            "namespace": "scoped",
            "apps": {
                "crds": yaml_app(["crds.yaml"]),
                "realms": yaml_app(["realms.yaml"], depends_on=["crds"]),
            },
        },
        {
            "crds.yaml": [crd("example.org", "Realm", "realms", "Cluster")],
            "realms.yaml": [realm],
        },
    )

    result = deploy(app, cluster=kube.cluster, db=database)

    assert result.status == DeploymentStatus.SUCCESS, [a.error for a in result.apps]
    assert recorded(database, result.deployment_id, "realms") == {
        ("Realm", None, "north"): ResourceAction.CREATE
    }


def test_discovery_is_read_once_and_again_only_after_a_write(kube: Kube) -> None:
    cluster = kube.cluster
    assert cluster.namespaced("apps/v1", "Deployment") is True
    assert cluster.namespaced("storage.k8s.io/v1", "VolumeAttributesClass") is False
    assert cluster.namespaced("example.net/v1", "Thing") is None
    cluster.apply(crd("example.net", "Thing", "things", "Namespaced"))
    assert cluster.namespaced("example.net/v1", "Thing") is True


# --------------------------------------------------------------------------- namespaces


def test_a_missing_namespace_is_created_for_a_yaml_app_and_recorded(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    app = write_app(
        tmp_path / "app",
        {"namespace": "fresh", "apps": {"cfg": yaml_app(["cfg.yaml"])}},
        {"cfg.yaml": [config_map("settings", mode="a")]},
    )

    first = deploy(app, cluster=kube.cluster, db=database)
    second = deploy(app, cluster=kube.cluster, db=database)

    assert first.status == DeploymentStatus.SUCCESS, first.apps[0].error
    namespace = kube.live("v1", "Namespace", None, "fresh")
    assert namespace is not None
    # Like helm --create-namespace: not sbkube's to prune, so no ownership labels.
    assert "sbkube.io/app" not in (namespace["metadata"].get("labels") or {})
    assert recorded(database, first.deployment_id, "cfg") == {
        ("Namespace", None, "fresh"): ResourceAction.CREATE,
        ("ConfigMap", "fresh", "settings"): ResourceAction.CREATE,
    }
    assert recorded(database, second.deployment_id, "cfg") == {
        ("Namespace", None, "fresh"): ResourceAction.UNCHANGED,
        ("ConfigMap", "fresh", "settings"): ResourceAction.UNCHANGED,
    }


# --------------------------------------------------------------------------- identity


def test_clusters_sharing_a_context_name_have_their_own_history_and_lock(
    start_kube: Callable[..., Kube], database: DeploymentDatabase, tmp_path: Path
) -> None:
    one, two = start_kube("default"), start_kube("default")
    app = write_app(
        tmp_path / "app",
        {"namespace": "team", "apps": {"cfg": yaml_app(["cfg.yaml"])}},
        {"cfg.yaml": [config_map("settings")]},
    )

    assert one.cluster.name == f"default@127.0.0.1:{one.server.port}"
    assert two.cluster.name == f"default@127.0.0.1:{two.server.port}"
    first = deploy(app, cluster=one.cluster, db=database)
    # The lock of cluster one's target is held; cluster two's is another lock.
    identity = one.cluster.identity()
    assert identity is not None and identity != two.cluster.identity()
    with DeployLocks(database).acquire(identity, "team", command="deploy"):
        second = deploy(app, cluster=two.cluster, db=database)
        with pytest.raises(LockError):
            deploy(app, cluster=one.cluster, db=database)

    assert (first.cluster, second.cluster) == (one.cluster.name, two.cluster.name)
    assert first.status == second.status == DeploymentStatus.SUCCESS
    # Each cluster's first deploy creates: neither took the other's record as its past.
    for result in (first, second):
        actions = recorded(database, result.deployment_id, "cfg")
        assert actions[("ConfigMap", "team", "settings")] == ResourceAction.CREATE
    repo = DeploymentRepository(database)
    assert {d.cluster for d in repo.list()} == {one.cluster.name, two.cluster.name}


def test_config_cluster_is_the_recorded_name_and_the_identity_the_lock_scope(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path
) -> None:
    app = write_app(
        tmp_path / "app",
        {"namespace": "team", "cluster": "lab", "apps": {"cfg": yaml_app(["cfg.yaml"])}},
        {"cfg.yaml": [config_map("settings")]},
    )
    locks = DeployLocks(database)

    # Locks on names (the display name, the context's) are other scopes: none holds it back.
    with locks.acquire(kube.cluster.name, "team"), locks.acquire("lab", "team"):
        result = deploy(app, cluster=kube.cluster, db=database)
    identity = kube.cluster.identity()
    assert identity is not None
    with locks.acquire(identity, "team", command="deploy"), pytest.raises(LockError):
        deploy(app, cluster=kube.cluster, db=database)

    assert result.cluster == "lab"
    recorded_as = DeploymentRepository(database).get(str(result.deployment_id))
    assert (recorded_as.cluster, recorded_as.cluster_id) == ("lab", identity)


def test_history_recorded_under_the_context_name_carries_over(
    kube: Kube, database: DeploymentDatabase, tmp_path: Path, helm_binary: str
) -> None:
    files = {"cfg.yaml": [config_map("settings"), config_map("extra")]}
    app = write_app(
        tmp_path / "app", {"namespace": "team", "apps": {"cfg": yaml_app(["cfg.yaml"])}}, files
    )
    # What sbkube recorded before identities named the server: the context alone.
    old = KubeCluster(kubeconfig=str(kube.kubeconfig), name="default", kubectl=kube.cluster.kubectl)
    before = deploy(app, cluster=old, db=database)
    assert before.cluster == "default"
    (app / "cfg.yaml").write_text(yaml.safe_dump(config_map("settings")))

    after = deploy(app, cluster=kube.cluster, db=database)

    assert any("earlier deployment" in m for m in after.messages)
    repo = DeploymentRepository(database)
    assert repo.get(str(before.deployment_id)).cluster == kube.cluster.name
    # The old record is this cluster's past: "extra", which it applied, is pruned.
    assert recorded(database, after.deployment_id, "cfg")[("ConfigMap", "team", "extra")] == (
        ResourceAction.DELETE
    )
    assert kube.live("v1", "ConfigMap", "team", "extra") is None


# --------------------------------------------------------------------------- repositories


def test_a_repo_chart_with_a_version_deploys_from_a_loopback_repository(
    kube: Kube,
    database: DeploymentDatabase,
    tmp_path: Path,
    helm_binary: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    repo = tmp_path / "repo"
    subprocess.run(
        [helm_binary, "package", str(CHARTS / "demo-redis"), "-d", str(repo)],
        check=True,
        capture_output=True,
    )
    subprocess.run([helm_binary, "repo", "index", str(repo)], check=True, capture_output=True)
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0", "-d", str(repo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().split(" port ")[1].split()[0]
        app = write_app(
            tmp_path / "app",
            {
                "namespace": "data",
                "repos": {"loop": f"http://127.0.0.1:{port}"},
                "apps": {"cache": {"type": "helm", "chart": "loop/demo-redis", "version": "0.1.0"}},
            },
            {},
        )
        result = deploy(app, cluster=kube.cluster, db=database)
    finally:
        server.terminate()
        server.wait(10)

    assert result.status == DeploymentStatus.SUCCESS, result.apps[0].error
    rec = DeploymentRepository(database).get(str(result.deployment_id)).app("cache")
    assert rec is not None and rec.helm_release is not None
    assert (rec.helm_release.chart, rec.helm_release.chart_version) == ("demo-redis", "0.1.0")
    assert kube.live("v1", "ConfigMap", "data", "cache-redis-config") is not None


# --------------------------------------------------------------------------- helm's error


def test_helms_whole_error_is_the_apps_recorded_error(
    start_kube: Callable[..., Kube], database: DeploymentDatabase, tmp_path: Path
) -> None:
    kube = start_kube(fail_on={"cache"})
    app = write_app(
        tmp_path / "app",
        {
            "namespace": "data",
            "apps": {"cache": {"type": "helm", "chart": str(CHARTS / "demo-redis")}},
        },
        {},
    )

    result = deploy(app, cluster=kube.cluster, db=database)

    outcome = result.app("cache")
    assert outcome.status == AppStatus.FAILED and outcome.error is not None
    # helm names every object it could not write, one line each.
    lines = outcome.error.split("\n")
    assert lines[0].startswith("helm upgrade --install cache failed: ")
    assert len(lines) >= 3 and all("injected failure for cache" in line for line in lines)
    rec = DeploymentRepository(database).get(str(result.deployment_id)).app("cache")
    assert rec is not None and rec.error_message == outcome.error
