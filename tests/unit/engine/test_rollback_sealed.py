"""Exact Helm rollbacks when Helm's history no longer holds the recorded revision (issue 22):
a revision ``max-history`` trimmed is not rolled back to by number, the release is upgraded
to the recorded chart with the recorded (unsealed) values, and the record says so."""

from __future__ import annotations

import base64

import pytest

from sbkube.engine import deploy, rollback
from sbkube.model import DeploymentStatus
from sbkube.state import DeploymentRepository

pytestmark = pytest.mark.helm


def test_a_trimmed_revision_is_restored_by_upgrading_to_the_recorded_values(db, cluster, shop):
    v1 = deploy(shop.path, cluster=cluster, db=db, apps=["cache"])
    v1_values = cluster.release("cache", "shop").values
    shop.set_values(greeting="bonjour", size=3, password="s3cret-v2")
    assert deploy(shop.path, cluster=cluster, db=db, apps=["cache"]).ok
    # What `--history-max` does to revision 1: Helm's record of it is gone.
    assert cluster.delete(("v1", "Secret", "shop", "sh.helm.release.v1.cache.v1"))
    assert [r.revision for r in cluster.helm_history("cache", "shop")] == [2]

    plan = rollback(db, cluster, to=v1.deployment_id, apps=["cache"], dry_run=True).plan
    (app,) = plan.apps
    assert app.action == "helm-upgrade"
    assert app.reason == "helm no longer has revision 1 of shop/cache"

    result = rollback(db, cluster, to=v1.deployment_id, apps=["cache"])

    assert result.status == DeploymentStatus.SUCCESS, result
    release = cluster.release("cache", "shop")
    assert release.values == v1_values and release.revision == 3
    secret = cluster.get(("v1", "Secret", "shop", "cache-auth"))
    assert secret is not None
    assert base64.b64decode(secret["data"]["password"]).decode() == "s3cret-v1"
    app_record = DeploymentRepository(db).get(result.deployment_id).app("cache")
    assert app_record is not None and app_record.rollback_info is not None
    assert app_record.rollback_info["action"] == "helm-upgrade"
    assert "no longer has revision 1" in app_record.rollback_info["reason"]
    assert app_record.metadata["rollback_by"] == "upgrade"
    # The new revision is recorded like any other: secrets digested, and sealed.
    (rel,) = app_record.helm_releases
    assert rel.revision == 3 and "s3cret" not in str(rel.values) and rel.sealed is not None
