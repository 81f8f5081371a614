"""Rollbacks of ``examples/demo`` across recorded deployments: a second plain rollback
undoes the first, and removing an app the target lacks is asked for or allowed."""

from __future__ import annotations

from typing import Any

import pytest

from sbkube.engine import deploy, rollback
from sbkube.engine.rollback_plan import RemovalNeedsConfirmation
from sbkube.state import DeploymentDatabase


def test_second_plain_rollback_undoes_the_first(
    demo: Any, cluster: Any, db: DeploymentDatabase
) -> None:
    first = deploy(demo.path, cluster=cluster, db=db)
    cfg = demo.path / "config.yaml"
    cfg.write_text(cfg.read_text().replace("replicaCount: 1", "replicaCount: 3"))
    second = deploy(demo.path, cluster=cluster, db=db)

    back = rollback(db, cluster, namespace="demo")
    assert back.plan.target_id == first.deployment_id
    assert cluster.release("redis", "demo").values["replicaCount"] == 1

    again = rollback(db, cluster, namespace="demo")
    assert again.plan.source_id == back.deployment_id
    assert again.plan.target_id == second.deployment_id  # rolled_back, but it succeeded
    assert cluster.release("redis", "demo").values["replicaCount"] == 3
    assert cluster.release("redis", "demo").revision == 4


def test_removing_an_app_target_lacks_is_asked_for_or_allowed(
    demo: Any, cluster: Any, db: DeploymentDatabase
) -> None:
    cfg = demo.path / "config.yaml"
    text = cfg.read_text()
    web_start = text.index("  web:")
    cfg.write_text(text[:web_start])  # v1: redis only
    first = deploy(demo.path, cluster=cluster, db=db)
    cfg.write_text(text)  # v2: redis and web
    deploy(demo.path, cluster=cluster, db=db)

    with pytest.raises(RemovalNeedsConfirmation) as refused:
        rollback(db, cluster, to=first.deployment_id, namespace="demo")
    assert refused.value.app == "web" and refused.value.exit_code == 2

    done = rollback(db, cluster, to=first.deployment_id, namespace="demo", allow_removal=True)
    assert done.status == "success"
    assert [a.action for a in done.plan.apps if a.name == "web"] == ["delete"]
    assert not [o for o in cluster.objects() if o["metadata"]["name"].startswith("web")]
