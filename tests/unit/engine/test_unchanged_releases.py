"""A Helm release is upgraded only when something would change (issue 11, item 2).

The inputs (chart files, chart version, values) are compared with the release's current
revision and the live objects with that revision's manifest; the real helm and kubectl
run against the local API server, the store is SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbkube.config.charts import chart_digest
from sbkube.engine import deploy, rollback
from sbkube.engine.apply import CRD_INSTALL
from sbkube.model import DeploymentStatus, ResourceAction
from sbkube.state import DeploymentRepository

pytestmark = pytest.mark.kube

CHARTS = Path(__file__).resolve().parents[2] / "fixtures" / "apiserver" / "charts"


def release_of(result: Any, app: str = "cache") -> tuple[str, int | None, int | None]:
    rel = result.app(app).release
    return rel.action, rel.from_revision, rel.to_revision


def test_the_chart_digest_is_recorded_with_the_revision(db, cluster, shop):
    result = deploy(shop.path, cluster=cluster, db=db)
    rel = DeploymentRepository(db).get(result.deployment_id).app("cache").helm_release
    assert rel.chart_digest == chart_digest(shop.path / "charts" / "cache")
    assert rel.chart_digest is not None and rel.chart_digest.startswith("hmac-checksum:")


def test_a_chart_file_changed_under_the_same_version_is_upgraded(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)
    template = shop.path / "charts" / "cache" / "templates" / "configmap.yaml"
    template.write_text(template.read_text() + "  extra: 'yes'\n")

    result = deploy(shop.path, cluster=cluster, db=db)

    assert release_of(result) == ("upgrade", 1, 2)
    live = cluster.get(("v1", "ConfigMap", "shop", "cache-settings"))
    assert live is not None and live["data"]["extra"] == "yes"
    assert {(c.action, c.name) for c in result.app("cache").changes} == {
        (ResourceAction.UPDATE, "cache-settings"),
        (ResourceAction.UNCHANGED, "cache-auth"),
    }


def test_changed_values_are_upgraded(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)
    shop.set_values(greeting="hi", size=2, password="s3cret-v1")

    result = deploy(shop.path, cluster=cluster, db=db)

    assert release_of(result) == ("upgrade", 1, 2)
    assert cluster.get(("v1", "ConfigMap", "shop", "cache-settings"))["data"]["greeting"] == "hi"


def test_a_float_value_helm_stores_as_an_integer_is_not_a_change(db, cluster, shop):
    shop.set_values(greeting="hello", size=2.0, password="s3cret-v1")
    deploy(shop.path, cluster=cluster, db=db)

    assert release_of(deploy(shop.path, cluster=cluster, db=db)) == ("unchanged", 1, 1)


def test_a_live_object_changed_behind_sbkubes_back_is_put_back(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)
    key = ("v1", "ConfigMap", "shop", "cache-settings")
    drifted = cluster.get(key)
    assert drifted is not None
    drifted["data"]["greeting"] = "edited by hand"
    cluster.apply(drifted)

    plan = deploy(shop.path, cluster=cluster, db=db, dry_run=True)
    assert release_of(plan) == ("upgrade", 1, 2)
    result = deploy(shop.path, cluster=cluster, db=db)

    assert release_of(result) == ("upgrade", 1, 2)
    assert cluster.get(key)["data"]["greeting"] == "hello"
    assert release_of(deploy(shop.path, cluster=cluster, db=db)) == ("unchanged", 2, 2)


def test_a_deleted_release_object_is_put_back(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)
    cluster.delete(("v1", "Secret", "shop", "cache-auth"))

    assert release_of(deploy(shop.path, cluster=cluster, db=db)) == ("upgrade", 1, 2)
    assert cluster.get(("v1", "Secret", "shop", "cache-auth")) is not None


def test_a_revision_sbkube_did_not_make_is_upgraded(db, cluster, shop):
    first = deploy(shop.path, cluster=cluster, db=db)
    # Someone ran helm by hand: the same chart and values, but a revision not recorded.
    rel = first.app("cache").release
    work_values = {"greeting": "hello", "size": 2, "password": "s3cret-v1"}
    from sbkube.cluster.port import ChartRef, UpgradeRequest

    cluster.helm_upgrade_install(
        UpgradeRequest(
            ChartRef(str(shop.path / "charts" / "cache"), version="0.1.0"),
            release_name=rel.release_name,
            namespace=rel.namespace,
            values=work_values,
        )
    )

    assert release_of(deploy(shop.path, cluster=cluster, db=db)) == ("upgrade", 2, 3)


def test_the_dry_run_plan_says_unchanged_too(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)

    plan = deploy(shop.path, cluster=cluster, db=db, dry_run=True)

    assert plan.status == DeploymentStatus.SUCCESS
    assert release_of(plan) == ("unchanged", 1, 1)
    assert {c.action for c in plan.app("cache").changes} == {ResourceAction.UNCHANGED}
    forced = deploy(shop.path, cluster=cluster, db=db, dry_run=True, force_upgrade=True)
    assert release_of(forced) == ("upgrade", 1, 2)
    assert cluster.release("cache", "shop").revision == 1


def test_after_a_rollback_the_same_inputs_are_unchanged(db, cluster, shop):
    first = deploy(shop.path, cluster=cluster, db=db)
    shop.set_values(greeting="hi", size=2, password="s3cret-v1")
    deploy(shop.path, cluster=cluster, db=db)

    done = rollback(db, cluster, to=first.deployment_id, namespace="shop")
    assert done.ok
    assert cluster.release("cache", "shop").revision == 3
    # The config says what the rolled-back-to revision was made from.
    shop.set_values(greeting="hello", size=2, password="s3cret-v1")

    assert release_of(deploy(shop.path, cluster=cluster, db=db)) == ("unchanged", 3, 3)


def crd_app(tmp_path: Path) -> Path:
    directory = tmp_path / "kit"
    shutil.copytree(CHARTS / "crd", directory / "charts" / "crd")
    config = {"namespace": "kit", "apps": {"widgets": {"type": "helm", "chart": "./charts/crd"}}}
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    return directory


def test_a_charts_crds_are_recorded_on_the_install_that_created_them(db, cluster, tmp_path):
    app_dir = crd_app(tmp_path)

    first = deploy(app_dir, cluster=cluster, db=db)

    assert first.status == DeploymentStatus.SUCCESS
    repo = DeploymentRepository(db)
    resources = {
        (r.kind, r.name): (r.action, r.hook)
        for r in repo.get(first.deployment_id).app("widgets").resources
    }
    assert resources == {
        ("CustomResourceDefinition", "widgets.example.com"): (ResourceAction.CREATE, CRD_INSTALL),
        ("Widget", "widgets-widget"): (ResourceAction.CREATE, None),
    }
    assert cluster.get(
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com")
    )

    again = deploy(app_dir, cluster=cluster, db=db)
    assert release_of(again, "widgets") == ("unchanged", 1, 1)
    # Helm never touches them again: later deployments list the release objects only.
    assert [r.kind for r in repo.get(again.deployment_id).app("widgets").resources] == ["Widget"]
