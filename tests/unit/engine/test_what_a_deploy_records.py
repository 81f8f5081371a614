"""What a deploy of ``examples/demo`` records: the file each YAML resource came from, Helm
values with the configured and default secret keys hidden (and still unchanged on a
redeploy), and a failed upgrade's revision, which the next plan counts from."""

from __future__ import annotations

from typing import Any

from sbkube.engine import deploy
from sbkube.state import DeploymentDatabase, DeploymentRepository


def test_yaml_resources_record_their_source_file(
    demo: Any, cluster: Any, db: DeploymentDatabase
) -> None:
    result = deploy(demo.path, cluster=cluster, db=db)
    rec = DeploymentRepository(db).get(result.deployment_id)
    web = rec.app("web")
    assert web is not None
    sources = {(r.kind, r.name): r.source_file for r in web.resources}
    assert sources == {
        ("ConfigMap", "web-config"): "manifests/web.yaml",
        ("Deployment", "web"): "manifests/web.yaml",
        ("Service", "web"): "manifests/svc.yaml",
    }


def test_config_secret_keys_add_to_the_defaults(
    demo: Any, cluster: Any, db: DeploymentDatabase
) -> None:
    cfg = demo.path / "config.yaml"
    cfg.write_text("secret_keys: [replicaCount]\n" + cfg.read_text())
    result = deploy(demo.path, cluster=cluster, db=db)
    rec = DeploymentRepository(db).get(result.deployment_id)
    redis = rec.app("redis")
    assert redis is not None and redis.helm_release is not None
    values = redis.helm_release.values
    assert str(values["replicaCount"]).startswith("hmac-sha256:")  # the configured key
    assert str(values["auth"]["password"]).startswith("hmac-sha256:")  # a default key, still hidden


def test_rendered_secret_values_are_scrubbed_but_redeploy_is_unchanged(
    demo: Any, cluster: Any, db: DeploymentDatabase
) -> None:
    deploy(demo.path, cluster=cluster, db=db)
    again = deploy(demo.path, cluster=cluster, db=db)
    redis = again.app("redis")
    assert redis is not None
    assert {c.action for c in redis.changes} == {"unchanged"}


def test_a_failed_upgrade_is_recorded_and_the_next_plan_counts_from_it(
    demo: Any, helm: Any, db: DeploymentDatabase, tmp_path: Any
) -> None:
    from sbkube.cluster.memory import MemoryCluster
    from sbkube.state import DeploymentRepository

    cluster = MemoryCluster(path=tmp_path / "c.json", helm=helm)
    deploy(demo.path, cluster=cluster, db=db)  # revision 1
    cluster.fail_on.add("redis")
    # A changed value, so that Helm has objects of the release to write (and fail).
    values = demo.path / "values" / "redis.yaml"
    values.write_text(values.read_text().replace("maxmemory: 128mb", "maxmemory: 256mb"))
    failed = deploy(demo.path, cluster=cluster, db=db)  # revision 2, failed
    assert failed.status == "failed"
    rec = DeploymentRepository(db).get(failed.deployment_id)
    redis = rec.app("redis")
    assert redis is not None and redis.status == "failed"
    assert redis.helm_release is not None
    assert (redis.helm_release.revision, redis.helm_release.status) == (2, "failed")

    cluster.fail_on.clear()
    plan = deploy(demo.path, cluster=cluster, db=db, dry_run=True)
    real = deploy(demo.path, cluster=cluster, db=db)
    planned, done = plan.app("redis"), real.app("redis")
    assert planned is not None and done is not None
    assert planned.release is not None and done.release is not None
    assert (planned.release.from_revision, planned.release.to_revision) == (2, 3)
    assert (done.release.from_revision, done.release.to_revision) == (2, 3)
