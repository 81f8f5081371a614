"""``sbkube diff`` in the engine (``live_diff.live_diff``): what a deploy would change, object
by object, against the live objects of the local API server (real helm and kubectl)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbkube.engine import deploy
from sbkube.engine.live_diff import LiveDiff, live_diff

pytestmark = pytest.mark.kube

CHARTS = Path(__file__).resolve().parents[2] / "fixtures" / "apiserver" / "charts"


def objects(diff: LiveDiff, app: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{ref: (action, fields)}`` of one app's differences."""
    [found] = [a for a in diff.apps if a.name == app]
    return {o.ref: (o.action, o.fields) for o in found.objects}


def app_of(diff: LiveDiff, app: str) -> Any:
    return next(a for a in diff.apps if a.name == app)


def text(diff: LiveDiff, app: str, ref: str) -> str:
    """The unified diff shown for one object."""
    return next(o.diff for o in app_of(diff, app).objects if o.ref == ref)


def test_right_after_a_deploy_there_is_nothing_to_show(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)

    diff = live_diff(shop.path, cluster=cluster, db=db)

    assert not diff.changed
    assert [(a.name, a.release, a.objects, a.changed) for a in diff.apps] == [
        ("cache", "unchanged", (), False),
        ("web", None, (), False),
        ("worker", None, (), False),
    ]


def test_before_the_first_deploy_everything_is_created(db, cluster, shop):
    diff = live_diff(shop.path, cluster=cluster, db=db)

    assert diff.changed
    assert app_of(diff, "cache").release == "install"
    assert objects(diff, "cache") == {
        "ConfigMap/shop/cache-settings": ("create", ()),
        "Secret/shop/cache-auth": ("create", ()),
    }
    # The namespace the YAML app goes to does not exist either (helm would make it first,
    # but the diff reads the cluster as it is).
    assert objects(diff, "web")["Namespace/shop"] == ("create", ())
    created = text(diff, "cache", "ConfigMap/shop/cache-settings")
    assert created.startswith("--- live ConfigMap/shop/cache-settings\n+++ desired")
    assert "+  greeting: hello" in created
    assert cluster.helm_status("cache", "shop") is None


def test_a_field_changed_live_is_named_and_shown(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)
    # Changed by hand (another field manager than sbkube's).
    kubectl = cluster.kubectl
    patch = ["patch", "deployment", "web", "-n", "shop", "-p", '{"spec":{"replicas":5}}']
    kubectl.run([kubectl.binary, *patch, *kubectl.flags], what="kubectl patch")

    diff = live_diff(shop.path, cluster=cluster, db=db)

    assert diff.changed
    assert objects(diff, "web") == {"Deployment/shop/web": ("update", ("spec.replicas",))}
    shown = text(diff, "web", "Deployment/shop/web")
    assert "-  replicas: 5\n+  replicas: 1\n" in shown
    # Server defaults the manifest does not set are not shown.
    assert "strategy" not in shown and "status" not in shown
    assert not app_of(diff, "cache").changed


def test_a_drifted_release_object_shows_against_its_revision(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)
    key = ("v1", "ConfigMap", "shop", "cache-settings")
    live = cluster.get(key)
    live["data"]["greeting"] = "edited"
    cluster.apply(live)

    diff = live_diff(shop.path, cluster=cluster, db=db)

    cache = app_of(diff, "cache")
    assert cache.release == "upgrade: ConfigMap/shop/cache-settings differs at data.greeting"
    assert objects(diff, "cache") == {
        "ConfigMap/shop/cache-settings": ("update", ("data.greeting",))
    }


def test_secrets_are_masked_and_still_said_to_change(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)
    key = ("v1", "Secret", "shop", "cache-auth")
    live = cluster.get(key)
    live["data"]["password"] = base64.b64encode(b"typed-by-hand").decode()
    cluster.apply(live)

    diff = live_diff(shop.path, cluster=cluster, db=db)

    [secret] = app_of(diff, "cache").objects
    assert (secret.ref, secret.fields) == ("Secret/shop/cache-auth", ("data.password",))
    assert "-  password: (secret)\n+  password: (secret, changed)\n" in secret.diff
    for plain in ("typed-by-hand", "s3cret-v1"):
        assert plain not in secret.diff
        assert base64.b64encode(plain.encode()).decode() not in secret.diff


def test_changed_values_are_planned_by_a_server_side_dry_run(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)
    shop.set_values(greeting="hi", size=2, password="s3cret-v2")

    diff = live_diff(shop.path, cluster=cluster, db=db)

    assert app_of(diff, "cache").release == "upgrade: values changed"
    assert objects(diff, "cache") == {
        "ConfigMap/shop/cache-settings": ("update", ("data.greeting",)),
        "Secret/shop/cache-auth": ("update", ("data.password",)),
    }
    settings = text(diff, "cache", "ConfigMap/shop/cache-settings")
    assert "-  greeting: hello\n+  greeting: hi\n" in settings
    # A diff changes nothing: no new revision, the old values live.
    assert cluster.helm_status("cache", "shop").revision == 1
    assert cluster.get(("v1", "ConfigMap", "shop", "cache-settings"))["data"]["greeting"] == (
        "hello"
    )


def test_objects_a_yaml_app_no_longer_has_are_shown_deleted(db, cluster, shop):
    deploy(shop.path, cluster=cluster, db=db)

    def change(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [d for d in docs if d["kind"] != "Service"]
        kept.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}})
        return kept

    shop.edit("manifests/web.yaml", change)

    diff = live_diff(shop.path, cluster=cluster, db=db, apps=["web"])

    assert [a.name for a in diff.apps] == ["web"]
    assert objects(diff, "web") == {
        "ConfigMap/shop/new": ("create", ()),
        "Service/shop/web": ("delete", ()),
    }
    deleted = text(diff, "web", "Service/shop/web").splitlines()
    assert "-kind: Service" in deleted
    assert not [line for line in deleted[2:] if line.startswith("+")]


def test_a_first_install_shows_the_charts_crds(db, cluster, tmp_path: Path):
    directory = tmp_path / "kit"
    shutil.copytree(CHARTS / "crd", directory / "charts" / "crd")
    (directory / "config.yaml").write_text(
        yaml.safe_dump(
            {"namespace": "kit", "apps": {"w": {"type": "helm", "chart": "./charts/crd"}}}
        )
    )
    # The chart's Widget needs its CRD: helm's dry run of a first install cannot plan the
    # custom resource before the CRD exists, so install once and diff a second release.
    deploy(directory, cluster=cluster, db=db)
    config = yaml.safe_load((directory / "config.yaml").read_text())
    config["apps"]["w2"] = {"type": "helm", "chart": "./charts/crd"}
    (directory / "config.yaml").write_text(yaml.safe_dump(config))

    diff = live_diff(directory, cluster=cluster, db=db)

    assert app_of(diff, "w").release == "unchanged"
    assert app_of(diff, "w2").release == "install"
    # The CRD exists already (the first release made it): only the Widget is new.
    assert objects(diff, "w2") == {"Widget/kit/w2-widget": ("create", ())}
