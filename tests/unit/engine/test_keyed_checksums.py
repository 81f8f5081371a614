"""Every checksum that may cover a secret is keyed (issue 22): the sources snapshot (config.yaml,
values and manifest files) and a local chart's digest are ``hmac-checksum:`` under the
digest key, so a store's rows hold no plain sha256 of a file a weak password could be
guessed from. Records made before hold ``sha256:``: still compared, and re-keyed by the
migration that brings an older store to head."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sbkube.config.charts import chart_digest, chart_sha256
from sbkube.engine import deploy
from sbkube.redaction import keyed_checksum
from sbkube.state import DeploymentDatabase, DeploymentRepository

pytestmark = pytest.mark.helm


def _raw(db_url: str) -> sa.Engine:
    url = sa.engine.make_url(db_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return sa.create_engine(url)


def _rows(db_url: str) -> str:
    """Every row of every table of the store, as text."""
    engine = _raw(db_url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return "\n".join(
                json.dumps([str(v) for v in row])
                for name in names
                for row in conn.execute(sa.text(f'SELECT * FROM "{name}"'))
            )
    finally:
        engine.dispose()


def _set(db_url: str, statement: str, **params: Any) -> None:
    engine = _raw(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def _release_action(result: Any) -> str:
    return str(result.app("cache").release.action)


def test_no_plain_sha256_of_an_input_or_chart_file_is_in_the_store(db, db_url, cluster, shop):
    shop.set_values(greeting="hello", size=2, password="pw")  # a weak password: "pw"
    result = deploy(shop.path, cluster=cluster, db=db)
    assert result.ok, result

    rows = _rows(db_url)
    files = [p for p in shop.path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert hashlib.sha256(path.read_bytes()).hexdigest() not in rows, path
    plain_chart = chart_sha256(shop.path / "charts" / "cache")
    assert plain_chart is not None and plain_chart not in rows
    rec = DeploymentRepository(db).get(result.deployment_id)
    assert rec.sources_snapshot is not None
    values_file = rec.sources_snapshot["values/cache.yaml"]
    assert values_file == keyed_checksum((shop.path / "values" / "cache.yaml").read_bytes())
    assert values_file != keyed_checksum(b"greeting: hello\npassword: pw0\nsize: 2\n")
    rel = rec.app("cache").helm_release
    assert rel.chart_digest == chart_digest(shop.path / "charts" / "cache")


def test_a_plain_chart_digest_of_an_older_record_still_tells_same_from_changed(
    db, db_url, cluster, shop
):
    deploy(shop.path, cluster=cluster, db=db)
    chart = shop.path / "charts" / "cache"
    _set(db_url, "UPDATE helm_releases SET chart_digest = :d", d=f"sha256:{chart_sha256(chart)}")
    assert _release_action(deploy(shop.path, cluster=cluster, db=db)) == "unchanged"

    _set(db_url, "UPDATE helm_releases SET chart_digest = :d", d="sha256:" + "0" * 64)
    assert _release_action(deploy(shop.path, cluster=cluster, db=db)) == "upgrade"
    assert helm_revision(cluster) == 2


def helm_revision(cluster: Any) -> int:
    return int(cluster.release("cache", "shop").revision)


def test_opening_an_older_store_rekeys_its_plain_checksums(db_url: str, tmp_path: Path) -> None:
    data = b"password: pw\n"
    plain = hashlib.sha256(data).hexdigest()
    db = DeploymentDatabase(db_url)
    repo = DeploymentRepository(db)
    dep = repo.create_deployment(
        cluster="c", namespace="n", sources_snapshot={"values.yaml": keyed_checksum(data)}
    )
    app = repo.start_app(dep.deployment_id, name="a", type="helm")
    repo.add_helm_release(
        app.app_id, release_name="r", namespace="n", chart="c", revision=1, status="deployed"
    )
    db.close()
    # As an older sbkube left it: plain sha256 everywhere, the schema one revision back.
    _set(
        db_url,
        "UPDATE deployments SET sources_snapshot = :s",
        s=json.dumps({"values.yaml": f"sha256:{plain}", "image": "x"}),
    )
    _set(db_url, "UPDATE helm_releases SET chart_digest = :d", d=f"sha256:{plain}")
    _set(db_url, "UPDATE alembic_version SET version_num = '0006'")

    db = DeploymentDatabase(db_url)  # opening migrates
    try:
        rec = DeploymentRepository(db).get(dep.deployment_id)
    finally:
        db.close()
    assert rec.sources_snapshot == {"values.yaml": keyed_checksum(data), "image": "x"}
    assert rec.apps[0].helm_releases[0].chart_digest == keyed_checksum(data)
    assert plain not in _rows(db_url)
