"""``sbkube.engine.deploy`` against the in-memory cluster, recorded in a real store.

Charts are rendered by the real helm binary; the store is SQLite and PostgreSQL (``db``).
"""

from __future__ import annotations

from typing import Any

import pytest

from sbkube.engine import deploy
from sbkube.engine.work import APP_LABEL, MANAGED_BY
from sbkube.model import AppStatus, DeploymentStatus, ResourceAction, thaw
from sbkube.state import DeploymentRepository

pytestmark = pytest.mark.helm


def recorded_actions(repo: DeploymentRepository, deployment_id: str) -> dict[str, set[Any]]:
    rec = repo.get(deployment_id)
    return {
        app.name: {(r.action, r.kind, r.namespace, r.name) for r in app.resources}
        for app in rec.apps
    }


def outcome_actions(result: Any) -> dict[str, set[Any]]:
    return {
        app.name: {(c.action, c.kind, c.namespace, c.name) for c in app.changes}
        for app in result.apps
    }


def test_first_deploy_creates_everything_and_records_release(db, cluster, shop, probe):
    result = deploy(shop.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.SUCCESS and result.ok
    assert result.deployment_id is not None and not result.dry_run
    assert [a.name for a in result.apps] == ["cache", "web", "worker"]
    for app in result.apps:
        assert app.status == AppStatus.SUCCESS
        assert app.changes and {c.action for c in app.changes} == {ResourceAction.CREATE}
    assert result.app("cache").release.action == "install"
    assert result.app("cache").release.to_revision == 1

    assert probe.live_names(cluster) == {
        ("ConfigMap", "cache-settings"),
        ("Secret", "cache-auth"),
        ("ConfigMap", "web-config"),
        ("Deployment", "web"),
        ("Service", "web"),
        ("ConfigMap", "worker-config"),
        ("Secret", "worker-token"),
    }
    release = cluster.release("cache", "shop")
    assert release is not None and release.revision == 1 and release.status == "deployed"
    assert release.values["greeting"] == "hello" and release.values["size"] == 2

    repo = DeploymentRepository(db)
    rec = repo.get(result.deployment_id)
    assert rec.status == DeploymentStatus.SUCCESS and rec.namespace == "shop"
    assert rec.cluster == cluster.name
    cache = rec.app("cache")
    assert cache is not None and cache.status == AppStatus.SUCCESS
    rel = cache.helm_release
    assert rel is not None
    assert (rel.release_name, rel.namespace, rel.chart) == ("cache", "shop", "cache")
    assert rel.chart_version == "0.1.0" and rel.app_version == "1.0"
    assert rel.revision == 1 and rel.status == "deployed"
    assert rel.values["greeting"] == "hello" and rel.values["size"] == 2
    # The password is recorded as a digest, never in the clear.
    assert rel.values["password"] != "s3cret-v1"
    assert rel.values["password"].startswith("hmac-sha256:")
    assert recorded_actions(repo, result.deployment_id) == outcome_actions(result)
    assert {r.name for r in rec.app("web").resources} == {"web-config", "web"}
    # Every object of a YAML app carries sbkube's ownership labels.
    for obj in cluster.objects():
        if obj["metadata"]["name"].startswith(("web", "worker")):
            assert obj["metadata"]["labels"][MANAGED_BY] == "sbkube"
            assert obj["metadata"]["labels"][APP_LABEL] in ("web", "worker")


def test_demo_example_deploys(db, cluster, demo):
    result = deploy(demo.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.SUCCESS
    redis = result.app("redis")
    assert redis.release.to_revision == 1
    assert {c.action for c in redis.changes} == {ResourceAction.CREATE}
    rel = DeploymentRepository(db).get(result.deployment_id).app("redis").helm_release
    assert rel.chart == "redis" and rel.chart_version == "0.1.0"
    assert rel.values["config"]["maxmemory"] == "128mb"
    assert rel.values["replicaCount"] == 1


def test_redeploy_unchanged_is_unchanged_and_keeps_the_revision(db, cluster, shop, probe):
    first = deploy(shop.path, cluster=cluster, db=db)
    before = probe.live_state(cluster)

    second = deploy(shop.path, cluster=cluster, db=db)

    assert second.status == DeploymentStatus.SUCCESS
    assert second.deployment_id != first.deployment_id
    for app in second.apps:
        assert app.changes and {c.action for c in app.changes} == {ResourceAction.UNCHANGED}
    release = second.app("cache").release
    assert (release.action, release.from_revision, release.to_revision) == ("unchanged", 1, 1)
    assert cluster.release("cache", "shop").revision == 1
    assert probe.live_state(cluster) == before
    repo = DeploymentRepository(db)
    assert recorded_actions(repo, second.deployment_id) == outcome_actions(second)
    assert repo.get(second.deployment_id).app("cache").helm_release.revision == 1


def test_force_upgrade_upgrades_an_unchanged_release(db, cluster, shop, probe):
    deploy(shop.path, cluster=cluster, db=db)
    before = probe.live_state(cluster)

    forced = deploy(shop.path, cluster=cluster, db=db, force_upgrade=True)

    release = forced.app("cache").release
    assert (release.action, release.from_revision, release.to_revision) == ("upgrade", 1, 2)
    assert cluster.release("cache", "shop").revision == 2
    # Helm's manifest is what it was: the objects are recorded unchanged all the same.
    assert {c.action for c in forced.app("cache").changes} == {ResourceAction.UNCHANGED}
    assert probe.live_state(cluster) == before


def test_update_and_delete_are_recorded_with_previous_state(db, cluster, shop, probe):
    deploy(shop.path, cluster=cluster, db=db)
    old_service = cluster.get(("v1", "Service", "shop", "web"))
    assert old_service is not None

    def change(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shop.find(docs, "ConfigMap", "web-config")["data"]["mode"] = "v2"
        return [d for d in docs if d["kind"] != "Service"]

    shop.edit("manifests/web.yaml", change)
    result = deploy(shop.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.SUCCESS
    assert outcome_actions(result)["web"] == {
        (ResourceAction.UPDATE, "ConfigMap", "shop", "web-config"),
        (ResourceAction.UNCHANGED, "Deployment", "shop", "web"),
        (ResourceAction.DELETE, "Service", "shop", "web"),
    }
    assert ("Service", "web") not in probe.live_names(cluster)
    assert cluster.get(("v1", "ConfigMap", "shop", "web-config"))["data"] == {"mode": "v2"}

    web = DeploymentRepository(db).get(result.deployment_id).app("web")
    res = {(r.kind, r.name): r for r in web.resources}
    updated = res[("ConfigMap", "web-config")]
    assert updated.action == ResourceAction.UPDATE
    assert updated.previous_state["data"] == {"mode": "v1"}
    assert updated.current_state["data"] == {"mode": "v2"}
    deleted = res[("Service", "web")]
    assert deleted.action == ResourceAction.DELETE
    assert deleted.current_state is None
    assert deleted.previous_state is not None
    assert thaw(deleted.previous_state["spec"]) == old_service["spec"]
    assert deleted.previous_state["metadata"]["labels"][APP_LABEL] == "web"


def test_objects_not_labelled_by_sbkube_are_never_pruned(db, cluster, shop, probe):
    deploy(shop.path, cluster=cluster, db=db)
    # Someone replaced the Service by hand (no sbkube labels), and another object that
    # sbkube never applied lives in the namespace too.
    foreign_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "ops"}},
        "spec": {"ports": [{"port": 8080}]},
    }
    cluster.apply(foreign_service)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hand-made", "namespace": "shop"},
            "data": {"a": "b"},
        }
    )

    shop.edit("manifests/web.yaml", lambda docs: [d for d in docs if d["kind"] != "Service"])
    result = deploy(shop.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.SUCCESS
    assert all(c.action != ResourceAction.DELETE for c in result.app("web").changes)
    live = cluster.get(("v1", "Service", "shop", "web"))
    assert live is not None and live["metadata"]["labels"] == {"team": "ops"}
    assert [p["port"] for p in live["spec"]["ports"]] == [8080]
    assert ("ConfigMap", "hand-made") in probe.live_names(cluster)


def test_failed_app_skips_dependents_but_not_independent_apps(db, make_cluster, shop, probe):
    cluster = make_cluster(fail_on={"cache"})

    result = deploy(shop.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.PARTIALLY_FAILED and not result.ok
    cache, web, worker = (result.app(n) for n in ("cache", "web", "worker"))
    assert cache.status == AppStatus.FAILED and "injected failure for cache" in cache.error
    assert web.status == AppStatus.SKIPPED and "cache" in web.error
    assert worker.status == AppStatus.SUCCESS
    assert ("ConfigMap", "worker-config") in probe.live_names(cluster)
    assert ("ConfigMap", "web-config") not in probe.live_names(cluster)

    rec = DeploymentRepository(db).get(result.deployment_id)
    assert rec.status == DeploymentStatus.PARTIALLY_FAILED
    assert rec.app("cache").status == AppStatus.FAILED
    assert "injected failure for cache" in rec.app("cache").error_message
    assert rec.app("web").status == AppStatus.SKIPPED
    assert rec.app("worker").status == AppStatus.SUCCESS
    assert "injected failure for cache" in rec.error_message


def test_object_failure_in_the_middle_of_a_yaml_app(db, make_cluster, shop, probe):
    cluster = make_cluster(fail_on={"web"})

    result = deploy(shop.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.PARTIALLY_FAILED
    assert result.app("web").status == AppStatus.FAILED
    assert "injected failure for web" in result.app("web").error
    assert result.app("cache").status == AppStatus.SUCCESS
    assert result.app("worker").status == AppStatus.SUCCESS
    # Objects before the failing one were applied; the deployment after it was not.
    assert ("ConfigMap", "web-config") in probe.live_names(cluster)
    assert ("Deployment", "web") not in probe.live_names(cluster)

    # The next deploy (failure gone) finishes the app.
    cluster.fail_on.clear()
    again = deploy(shop.path, cluster=cluster, db=db)
    assert again.status == DeploymentStatus.SUCCESS
    assert ("Deployment", "web") in probe.live_names(cluster)


def test_every_app_failing_is_failed(db, make_cluster, shop):
    cluster = make_cluster(fail_on={"cache", "worker-config"})

    result = deploy(shop.path, cluster=cluster, db=db)

    assert result.status == DeploymentStatus.FAILED
    assert [a.status for a in result.apps] == [
        AppStatus.FAILED,
        AppStatus.SKIPPED,
        AppStatus.FAILED,
    ]


def _store_rows(repo: DeploymentRepository) -> int:
    return repo.count()


def test_dry_run_records_nothing_and_predicts_the_real_run(db, cluster, shop, probe):
    repo = DeploymentRepository(db)
    # First deploy: plan against an empty store.
    plan = deploy(shop.path, cluster=cluster, db=db, dry_run=True)
    assert plan.dry_run and plan.deployment_id is None
    assert _store_rows(repo) == 0
    assert cluster.objects() == [] and probe.helm_releases(cluster) == []
    # Apps at once (the default), the plan one by one: the shared namespace is created by
    # the same app either way (deployer.namespace_turns).
    real = deploy(shop.path, cluster=cluster, db=db)
    assert outcome_actions(plan) == recorded_actions(repo, real.deployment_id)
    assert outcome_actions(plan) == outcome_actions(real)

    # Then a change of every kind: helm values, an update, a delete and a create.
    shop.set_values(greeting="bonjour", size=3, password="s3cret-v2")

    def change(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shop.find(docs, "ConfigMap", "web-config")["data"]["mode"] = "v2"
        docs = [d for d in docs if d["kind"] != "Service"]
        extra = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-extra"}}
        return [*docs, {**extra, "data": {"k": "v"}}]

    shop.edit("manifests/web.yaml", change)
    rows = _store_rows(repo)
    live = probe.live_state(cluster)
    releases = probe.helm_releases(cluster)

    plan = deploy(shop.path, cluster=cluster, db=db, dry_run=True)

    assert _store_rows(repo) == rows
    assert probe.live_state(cluster) == live
    assert probe.helm_releases(cluster) == releases
    assert plan.status == DeploymentStatus.SUCCESS
    planned = outcome_actions(plan)
    assert planned["web"] == {
        (ResourceAction.UPDATE, "ConfigMap", "shop", "web-config"),
        (ResourceAction.UNCHANGED, "Deployment", "shop", "web"),
        (ResourceAction.CREATE, "ConfigMap", "shop", "web-extra"),
        (ResourceAction.DELETE, "Service", "shop", "web"),
    }
    assert plan.app("cache").release.from_revision == 1
    assert plan.app("cache").release.to_revision == 2

    real = deploy(shop.path, cluster=cluster, db=db)

    assert planned == recorded_actions(repo, real.deployment_id)
    assert planned == outcome_actions(real)
    assert plan.app("cache").release == real.app("cache").release


def test_apps_selection_deploys_only_the_named_apps(db, cluster, shop, probe):
    result = deploy(shop.path, cluster=cluster, db=db, apps=["worker"])

    assert result.status == DeploymentStatus.SUCCESS
    assert [a.name for a in result.apps] == ["worker"]
    assert probe.live_names(cluster) == {("ConfigMap", "worker-config"), ("Secret", "worker-token")}
    assert cluster.release("cache", "shop") is None
    rec = DeploymentRepository(db).get(result.deployment_id)
    assert [a.name for a in rec.apps] == ["worker"]

    # Selected apps come in deploy order whatever order they are named in.
    both = deploy(shop.path, cluster=cluster, db=db, apps=["web", "cache"])
    assert [a.name for a in both.apps] == ["cache", "web"]
    # worker was not part of it, so its objects stay (nothing is pruned across apps).
    assert ("ConfigMap", "worker-config") in probe.live_names(cluster)


def test_unknown_app_selection_is_refused_before_anything_is_recorded(db, cluster, shop):
    from sbkube.errors import ConfigError

    with pytest.raises(ConfigError, match="wrker"):
        deploy(shop.path, cluster=cluster, db=db, apps=["wrker"])
    assert DeploymentRepository(db).count() == 0


def test_the_release_is_recorded_in_every_deployment(db, cluster, shop):
    ids = []
    for greeting in ("one", "two", "three"):
        shop.set_values(greeting=greeting, size=1, password="p")
        ids.append(deploy(shop.path, cluster=cluster, db=db).deployment_id)

    repo = DeploymentRepository(db)
    seen = []
    for dep_id in ids:
        rel = repo.get(dep_id).app("cache").helm_release
        assert rel is not None
        seen.append((rel.release_name, rel.namespace, rel.revision, rel.values["greeting"]))
    assert seen == [
        ("cache", "shop", 1, "one"),
        ("cache", "shop", 2, "two"),
        ("cache", "shop", 3, "three"),
    ]
    history = repo.app_history("cache", namespace="shop")
    assert [h.revision for h in history] == [3, 2, 1]
    assert [h.deployment_id for h in history] == ids[::-1]


def test_a_missing_namespace_is_created_by_the_first_app_that_needs_it(db, cluster, shop):
    """Apps at once: worker (independent of cache) waits for cache, the first app to need
    the missing namespace shop, so cache's helm creates it as a one-by-one deploy would."""
    from sbkube.config import load_config
    from sbkube.engine.deployer import namespace_turns
    from sbkube.engine.prepare import prepare_apps

    loaded = load_config(shop.path)
    works = prepare_apps(loaded, loaded.select(None), cluster)
    assert namespace_turns(works, cluster) == {"web": ("cache",), "worker": ("cache",)}

    result = deploy(shop.path, cluster=cluster, db=db)
    assert result.status == DeploymentStatus.SUCCESS
    # Once it exists, nobody waits.
    assert namespace_turns(works, cluster) == {}
    recorded = [
        (a.name, r.kind)
        for a in DeploymentRepository(db).get(result.deployment_id).apps
        for r in a.resources
        if r.kind == "Namespace"
    ]
    assert recorded == []  # created by helm (--create-namespace), not by a YAML app
