"""``sbkube.engine.rollback``: back to any recorded deployment, on the in-memory cluster."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest

from sbkube.engine import deploy, rollback
from sbkube.errors import NotFoundError, RefusedError, UsageError
from sbkube.model import Command, DeploymentStatus, ResourceAction
from sbkube.state import DeploymentRepository

pytestmark = pytest.mark.helm


@dataclass
class Snapshot:
    deployment_id: str
    live: list[dict[str, Any]]
    values: dict[str, Any]
    revision: int


def snap(result: Any, cluster: Any, probe: Any) -> Snapshot:
    assert result.status == DeploymentStatus.SUCCESS, result
    release = cluster.release("cache", "shop")
    return Snapshot(
        result.deployment_id, probe.live_state(cluster), release.values, release.revision
    )


@pytest.fixture
def three(db, cluster, shop, probe) -> tuple[Snapshot, Snapshot, Snapshot]:
    """v1; v2 (helm values changed, a manifest changed, one removed, one added); v3."""
    v1 = snap(deploy(shop.path, cluster=cluster, db=db), cluster, probe)

    shop.set_values(greeting="bonjour", size=3, password="s3cret-v2")

    def v2_web(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shop.find(docs, "ConfigMap", "web-config")["data"]["mode"] = "v2"
        docs = [d for d in docs if d["kind"] != "Service"]
        extra = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-extra"}}
        return [*docs, {**extra, "data": {"added": "in v2"}}]

    shop.edit("manifests/web.yaml", v2_web)
    v2 = snap(deploy(shop.path, cluster=cluster, db=db), cluster, probe)

    shop.set_values(greeting="hola", size=4, password="s3cret-v2")

    def v3_web(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shop.find(docs, "Deployment", "web")["spec"]["replicas"] = 3
        return docs

    shop.edit("manifests/web.yaml", v3_web)
    v3 = snap(deploy(shop.path, cluster=cluster, db=db), cluster, probe)
    assert v1.live != v2.live != v3.live and v1.values != v3.values
    return v1, v2, v3


def test_rollback_to_v1_restores_objects_and_values(db, cluster, probe, three):
    v1, _v2, v3 = three

    result = rollback(db, cluster, to=v1.deployment_id)

    assert result.ok and result.status == DeploymentStatus.SUCCESS and not result.dry_run
    assert result.plan.source_id == v3.deployment_id
    assert result.plan.target_id == v1.deployment_id
    assert probe.live_state(cluster) == v1.live
    release = cluster.release("cache", "shop")
    assert release.values == v1.values
    assert release.revision == 4 and release.status == "deployed"
    assert release.description == "Rollback to 1"

    repo = DeploymentRepository(db)
    rec = repo.get(result.deployment_id)
    assert rec.command == Command.ROLLBACK
    assert rec.rollback_target_id == v1.deployment_id
    assert rec.status == DeploymentStatus.SUCCESS
    assert repo.get(v3.deployment_id).status == DeploymentStatus.ROLLED_BACK
    assert rec.app("cache").helm_release.revision == 4
    assert rec.app("cache").rollback_info["to_revision"] == 1
    history = repo.app_history("cache", namespace="shop")
    assert [h.command for h in history] == [
        Command.ROLLBACK,
        Command.DEPLOY,
        Command.DEPLOY,
        Command.DEPLOY,
    ]
    assert [h.revision for h in history] == [4, 3, 2, 1]
    web = {(r.kind, r.name): r.action for r in rec.app("web").resources}
    assert web == {
        ("ConfigMap", "web-config"): ResourceAction.UPDATE,
        ("Deployment", "web"): ResourceAction.UPDATE,
        ("Service", "web"): ResourceAction.CREATE,
        ("ConfigMap", "web-extra"): ResourceAction.DELETE,
    }

    # The rollback is now what sbkube last applied, so rolling it back to v3 (a
    # rolled_back deployment is a valid TARGET) restores v3's state.
    again = rollback(db, cluster, to=v3.deployment_id)
    assert again.plan.source_id == result.deployment_id
    assert again.plan.target_id == v3.deployment_id
    assert again.ok
    assert probe.live_state(cluster) == v3.live
    assert cluster.release("cache", "shop").values == v3.values


def test_default_target_is_the_previous_successful_deployment(db, cluster, probe, three):
    _v1, v2, v3 = three

    result = rollback(db, cluster, namespace="shop")

    assert (result.plan.source_id, result.plan.target_id) == (v3.deployment_id, v2.deployment_id)
    assert probe.live_state(cluster) == v2.live
    assert cluster.release("cache", "shop").values == v2.values


def test_rollback_of_one_app_leaves_the_others(db, cluster, probe, three):
    v1, _v2, v3 = three
    before = {(o["kind"], o["metadata"]["name"]): o for o in probe.live_state(cluster)}

    result = rollback(db, cluster, to=v1.deployment_id, apps=["web"])

    assert result.ok
    assert [p.name for p in result.plan.apps] == ["web"]
    assert cluster.release("cache", "shop").revision == v3.revision
    assert cluster.release("cache", "shop").values == v3.values
    live = {(o["kind"], o["metadata"]["name"]): o for o in probe.live_state(cluster)}
    want = {(o["kind"], o["metadata"]["name"]): o for o in v1.live}
    for key in (("ConfigMap", "web-config"), ("Deployment", "web"), ("Service", "web")):
        assert live[key] == want[key]
    assert ("ConfigMap", "web-extra") not in live
    for key in (("ConfigMap", "cache-settings"), ("ConfigMap", "worker-config")):
        assert live[key] == before[key]
    rec = DeploymentRepository(db).get(result.deployment_id)
    assert [a.name for a in rec.apps] == ["web"]


def test_dry_run_plan_is_what_the_real_rollback_executes(db, cluster, probe, three):
    v1, _v2, _v3 = three
    repo = DeploymentRepository(db)
    rows = repo.count()
    live = probe.live_state(cluster)

    dry = rollback(db, cluster, to=v1.deployment_id, dry_run=True)

    assert dry.dry_run and dry.deployment_id is None and dry.ok
    assert repo.count() == rows
    assert probe.live_state(cluster) == live
    assert cluster.release("cache", "shop").revision == 3
    cache = next(p for p in dry.plan.apps if p.name == "cache")
    assert (cache.action, cache.from_revision, cache.to_revision) == ("helm-rollback", 3, 1)
    web = next(p for p in dry.plan.apps if p.name == "web")
    assert web.action == "reapply"
    worker = next(p for p in dry.plan.apps if p.name == "worker")
    assert worker.action == "unchanged"

    real = rollback(db, cluster, to=v1.deployment_id)

    assert real.plan == dry.plan
    # ... and the record of what ran matches the plan, resource by resource.
    rec = repo.get(real.deployment_id)
    for app_plan in dry.plan.apps:
        planned = {(c.action, c.kind, c.name) for c in app_plan.changes}
        recorded = {(r.action, r.kind, r.name) for r in rec.app(app_plan.name).resources}
        assert planned == recorded, app_plan.name


def test_refuses_target_on_another_namespace(db, cluster, shop, probe):
    v1 = deploy(shop.path, cluster=cluster, db=db, apps=["worker"])
    config = shop.path / "config.yaml"
    config.write_text(config.read_text().replace("namespace: shop", "namespace: other"))
    other = deploy(shop.path, cluster=cluster, db=db, apps=["worker"])
    assert other.status == DeploymentStatus.SUCCESS
    live = probe.live_state(cluster)

    with pytest.raises(RefusedError, match="stays on one target") as err:
        rollback(db, cluster, namespace="shop", to=other.deployment_id)
    assert other.deployment_id in err.value.message and err.value.exit_code == 2
    with pytest.raises(RefusedError, match="other"):
        rollback(db, cluster, deployment_id=other.deployment_id, to=v1.deployment_id)
    assert probe.live_state(cluster) == live


def test_refuses_failed_target_without_force(db, make_cluster, shop):
    cluster = make_cluster()
    deploy(shop.path, cluster=cluster, db=db)
    cluster.fail_on.add("web-config")
    shop.edit(
        "manifests/web.yaml",
        lambda docs: [
            {**d, "data": {"mode": "broken"}} if d["metadata"]["name"] == "web-config" else d
            for d in docs
        ],
    )
    bad = deploy(shop.path, cluster=cluster, db=db)
    assert bad.status == DeploymentStatus.PARTIALLY_FAILED
    cluster.fail_on.clear()
    shop.set_values(greeting="later", size=1, password="p")
    latest = deploy(shop.path, cluster=cluster, db=db, apps=["cache"])
    assert latest.status == DeploymentStatus.SUCCESS

    with pytest.raises(RefusedError, match="--force") as err:
        rollback(db, cluster, to=bad.deployment_id)
    assert "partially_failed" in err.value.message
    # With force, the failed app itself still needs force: it goes through.
    forced = rollback(db, cluster, to=bad.deployment_id, apps=["cache"], force=True)
    assert forced.ok
    assert cluster.release("cache", "shop").values["greeting"] == "hello"


def test_unknown_ids_and_apps_are_refused(db, cluster, shop):
    v1 = deploy(shop.path, cluster=cluster, db=db, apps=["worker"])
    typo = v1.deployment_id[:-1] + ("0" if v1.deployment_id[-1] != "0" else "1")

    with pytest.raises(NotFoundError) as err:
        rollback(db, cluster, to=typo)
    assert typo in err.value.message
    assert "did you mean" in err.value.message and v1.deployment_id in err.value.message
    assert err.value.exit_code == 2
    with pytest.raises(NotFoundError):
        rollback(db, cluster, deployment_id="dep-19990101-000000-abcdef")
    with pytest.raises(UsageError, match="wrker"):
        rollback(db, cluster, to=v1.deployment_id, apps=["wrker"])


def test_app_absent_from_target_needs_force(db, cluster, shop, probe):
    (shop.path / "config.yaml").write_text(
        (shop.path / "config.yaml").read_text().split("  worker:")[0]
    )
    v1 = deploy(shop.path, cluster=cluster, db=db)
    v1_live = probe.live_state(cluster)
    shop.path.joinpath("config.yaml").write_text(
        shop.path.joinpath("config.yaml").read_text()
        + "  worker:\n    type: yaml\n    manifests: [manifests/worker.yaml]\n"
    )
    v2 = deploy(shop.path, cluster=cluster, db=db)
    assert [a.name for a in v2.apps] == ["cache", "web", "worker"]
    live = probe.live_state(cluster)

    with pytest.raises(RefusedError, match="worker") as err:
        rollback(db, cluster, to=v1.deployment_id)
    assert "--force" in err.value.message
    assert probe.live_state(cluster) == live

    result = rollback(db, cluster, to=v1.deployment_id, force=True)

    assert result.ok
    worker = next(p for p in result.plan.apps if p.name == "worker")
    assert worker.action == "delete"
    assert probe.live_state(cluster) == v1_live


def test_secret_changed_since_target_is_refused_and_named(db, cluster, shop, forget_seals):
    """Records made before sealing existed: a Secret known only by digests."""
    v1 = deploy(shop.path, cluster=cluster, db=db)
    forget_seals(db)

    def rotate(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shop.find(docs, "Secret", "worker-token")["stringData"]["token"] = "token-v2"
        shop.find(docs, "ConfigMap", "worker-config")["data"]["queue"] = "jobs-v2"
        return docs

    shop.edit("manifests/worker.yaml", rotate)
    deploy(shop.path, cluster=cluster, db=db)
    token = cluster.get(("v1", "Secret", "shop", "worker-token"))
    assert token["data"] == {"token": b64("token-v2")}

    with pytest.raises(RefusedError) as err:
        rollback(db, cluster, to=v1.deployment_id)
    assert "Secret shop/worker-token" in err.value.message
    assert "--force" in err.value.message
    with pytest.raises(RefusedError, match="worker-token"):
        rollback(db, cluster, to=v1.deployment_id, dry_run=True)

    # An app without the Secret is not affected by the refusal.
    assert rollback(db, cluster, to=v1.deployment_id, apps=["cache"]).ok

    forced = rollback(db, cluster, to=v1.deployment_id, apps=["worker"], force=True)

    assert forced.ok
    assert any("worker-token" in w for w in forced.plan.warnings)
    # The Secret is left as it is live (its data was never recorded) ...
    assert cluster.get(("v1", "Secret", "shop", "worker-token"))["data"] == {
        "token": b64("token-v2")
    }
    # ... while the rest of the app is rolled back.
    assert cluster.get(("v1", "ConfigMap", "shop", "worker-config"))["data"] == {"queue": "jobs"}
    # The store never saw the token in the clear.
    rec = DeploymentRepository(db).get(forced.deployment_id)
    for res in rec.app("worker").resources:
        assert "token-v1" not in str(res.current_state) and "token-v2" not in str(res.current_state)


def b64(text: str) -> str:
    """A Secret value as the API server stores it (stringData is folded into data)."""
    return base64.b64encode(text.encode()).decode()


def test_a_rollback_keeps_the_profile_of_what_it_restores(db, cluster, shop):
    config = shop.path / "config.yaml"
    config.write_text(config.read_text() + "environments:\n  blue: {}\n")
    blue = deploy(shop.path, cluster=cluster, db=db, profile="blue")
    shop.set_values(greeting="plain")
    plain = deploy(shop.path, cluster=cluster, db=db)
    assert (blue.status, plain.status) == (DeploymentStatus.SUCCESS, DeploymentStatus.SUCCESS)

    back = rollback(db, cluster, to=blue.deployment_id)

    repo = DeploymentRepository(db)
    assert [repo.get(d).profile for d in (blue.deployment_id, plain.deployment_id)] == [
        "blue",
        None,
    ]
    assert repo.get(back.deployment_id).profile == "blue"
    listed = [s.deployment_id for s in repo.list(profile="blue")]
    assert listed == [back.deployment_id, blue.deployment_id]
