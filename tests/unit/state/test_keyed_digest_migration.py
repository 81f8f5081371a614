"""Migration 0003: secret digests recorded before keys (``sha256:<hex>``) are re-keyed to
exactly what the same secret digests to now, so a diff across the upgrade still says
"unchanged"; an image digest of the same shape outside a secret position is left alone."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

from sbkube.model import AppType, thaw
from sbkube.redaction import digest, manifest_checksum
from sbkube.state import DeploymentDatabase, DeploymentRepository
from sbkube.state.records import ResourceInput

PLAIN = "old-secret-value"
LEGACY = "sha256:" + hashlib.sha256(PLAIN.encode()).hexdigest()
IMAGE = "sha256:" + "ab" * 32


def _raw(db_url: str) -> sa.Engine:
    url = sa.engine.make_url(db_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return sa.create_engine(url)


def test_legacy_digests_are_rekeyed_and_checksums_follow(db_url: str) -> None:
    db = DeploymentDatabase(db_url)
    repo = DeploymentRepository(db)
    dep = repo.create_deployment(cluster="c", namespace="n")
    app = repo.start_app(dep.deployment_id, name="a", type=AppType.HELM)
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "n"},
        "data": {"pw": "placeholder"},
    }
    repo.add_resources(app.app_id, [ResourceInput.from_manifest(secret, "create")])
    repo.add_helm_release(
        app.app_id, release_name="r", namespace="n", chart="c", revision=1, status="deployed"
    )
    db.close()
    # Make the store look as an older sbkube left it.
    legacy_state = {**secret, "data": {"pw": LEGACY}}
    resources = sa.table(
        "deployed_resources", sa.column("current_state", sa.JSON), sa.column("checksum")
    )
    releases = sa.table("helm_releases", sa.column("values", sa.JSON))
    engine = _raw(db_url)
    with engine.begin() as conn:
        conn.execute(sa.update(resources).values(current_state=legacy_state, checksum="stale"))
        legacy_values = {"auth": {"password": LEGACY}, "image": {"digest": IMAGE}}
        conn.execute(sa.update(releases).values(values=legacy_values))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0003'"))
        # Revision 0005 adds this column: a store at 0003 does not have it yet.
        conn.execute(sa.text("ALTER TABLE helm_releases DROP COLUMN chart_digest"))
    engine.dispose()

    db = DeploymentDatabase(db_url)  # opening migrates
    try:
        rec = DeploymentRepository(db).get(dep.deployment_id)
    finally:
        db.close()
    res = rec.apps[0].resources[0]
    assert res.current_state is not None
    assert res.current_state["data"]["pw"] == digest(PLAIN)
    assert res.checksum == manifest_checksum(thaw(res.current_state))
    values = rec.apps[0].helm_releases[0].values
    assert values["auth"]["password"] == digest(PLAIN)
    assert values["image"]["digest"] == IMAGE
