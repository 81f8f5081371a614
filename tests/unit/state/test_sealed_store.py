"""Sealed values in the store (migration 0006): every recorded row that lost a secret to
redaction keeps it sealed; the rows alone reveal nothing, the key brings the exact values
back; display never shows a seal; export carries it still sealed, on both backends."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sbkube.model import thaw
from sbkube.redaction import is_digest
from sbkube.sealing import PREFIX, SealError, SealKey, key_id_of, restore, seal_key
from sbkube.state import (
    DeploymentDatabase,
    DeploymentRepository,
    DeploymentTracker,
    dump_line,
    export_deployments,
    import_deployments,
)

PASSWORD = "Pa55w0rd-Zq9/+x@y:%41"
TOKEN = "tok3n-Vx7Wq2Lm9Rt4"
URL_PASSWORD = "u9HsKq-Lw77x"  # "/" in a URL password: the detector helper's case


def _secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "demo", "resourceVersion": "7"},
        "type": "Opaque",
        "data": {"password": base64.b64encode(PASSWORD.encode()).decode()},
        "stringData": {"token": TOKEN},
    }


def _config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "conf", "namespace": "demo"},
        "data": {"url": f"postgres://app:{URL_PASSWORD}@db/app", "plain": "hello"},
    }


VALUES = {"auth": {"password": PASSWORD, "ttlToken": 3600}, "replicas": 2}
PLAINTEXTS = (PASSWORD, TOKEN, URL_PASSWORD)


def _record(db: DeploymentDatabase) -> str:
    tracker = DeploymentTracker(DeploymentRepository(db))
    with tracker.track_deployment(cluster="k3s", namespace="demo") as dep:
        with dep.track_app(name="web", type="helm", namespace="demo") as app:
            app.record_helm_release(
                release_name="web",
                namespace="demo",
                chart="./charts/web",
                revision=1,
                status="deployed",
                values=VALUES,
            )
            app.record_resources([_secret(), _config_map()], action="create")
    return dep.deployment_id


def _raw_rows(db_url: str) -> str:
    """Every row of every table, as text (what someone holding the rows has)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return "\n".join(
                repr(tuple(row))
                for t in tables
                for row in conn.execute(sa.text(f"SELECT * FROM {t}"))
            )
    finally:
        engine.dispose()


def _forms(text: str) -> list[str]:
    return [
        text,
        base64.b64encode(text.encode()).decode(),
        base64.b64encode(text.encode()).decode().rstrip("="),
    ]


def test_rows_keep_secrets_sealed_and_reveal_nothing(db_url: str, db: DeploymentDatabase) -> None:
    dep_id = _record(db)
    rec = DeploymentRepository(db).get(dep_id)
    (release,) = rec.apps[0].helm_releases
    secret, config_map = rec.apps[0].resources
    assert is_digest(release.values["auth"]["password"])
    assert is_digest(secret.current_state["data"]["password"])
    for sealed in (release.sealed, secret.sealed, config_map.sealed):
        assert sealed is not None and sealed.startswith(PREFIX)
        assert key_id_of(sealed) == seal_key().key_id  # type: ignore[union-attr]
    raw = _raw_rows(db_url)
    assert release.sealed in raw
    for text in PLAINTEXTS:
        for form in _forms(text):
            assert form not in raw, form
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        data = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        encoded = base64.b64encode(data)
        for text in PLAINTEXTS:
            for form in _forms(text):
                assert form.encode() not in data
                assert form.encode() not in encoded


def test_the_key_brings_the_exact_documents_back(db: DeploymentDatabase) -> None:
    rec = DeploymentRepository(db).get(_record(db))
    (release,) = rec.apps[0].helm_releases
    secret, config_map = rec.apps[0].resources
    key = seal_key()
    assert release.sealed is not None and secret.sealed is not None
    assert restore(release.sealed, {"values": release.values}, key) == {"values": VALUES}
    plain = restore(secret.sealed, {"current_state": secret.current_state}, key)["current_state"]
    want = _secret()
    del want["metadata"]["resourceVersion"]  # volatile: never recorded
    assert plain == want
    assert config_map.sealed is not None
    back = restore(config_map.sealed, {"current_state": config_map.current_state}, [key])
    assert back["current_state"] == _config_map()
    with pytest.raises(SealError, match="not at hand"):
        restore(secret.sealed, {"current_state": secret.current_state}, SealKey.from_text(b"x"))


def test_display_never_shows_a_seal(db: DeploymentDatabase) -> None:
    rec = DeploymentRepository(db).get(_record(db))
    shown = json.dumps(rec.to_dict()) + repr(rec)
    assert PREFIX not in shown and "sealed" not in shown


def test_export_carries_seals_and_an_import_without_the_key_shows_but_cannot_open(
    db: DeploymentDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep_id = _record(db)
    lines = [dump_line(d) for d in export_deployments(db)]
    text = "\n".join(lines)
    assert text.count(PREFIX) == 3
    for plain in PLAINTEXTS:
        assert plain not in text
    # Another machine, another seal key: the import keeps the seals as they are.
    monkeypatch.setenv("SBKUBE_SEAL_KEY", "someone-elses-key")
    other = DeploymentDatabase(tmp_path / "other.db")
    try:
        assert import_deployments(other, lines).imported == 1
        rec = DeploymentRepository(other).get(dep_id)
        assert [dump_line(d) for d in export_deployments(other)] == lines  # byte for byte
        (release,) = rec.apps[0].helm_releases
        assert is_digest(release.values["auth"]["password"])  # shows (as digests)
        assert release.sealed is not None
        with pytest.raises(SealError, match="not at hand"):
            restore(release.sealed, {"values": release.values}, seal_key())
    finally:
        other.close()


def test_import_refuses_what_is_not_a_seal(db: DeploymentDatabase, tmp_path: Path) -> None:
    _record(db)
    (item,) = export_deployments(db)
    item["apps"][0]["helm_releases"][0]["sealed"] = "hunter2"
    other = DeploymentDatabase(tmp_path / "other.db")
    try:
        with pytest.raises(Exception, match="not a sealed value"):
            import_deployments(other, [dump_line(item)])
    finally:
        other.close()


def test_rows_without_secrets_have_no_seal(db: DeploymentDatabase) -> None:
    tracker = DeploymentTracker(DeploymentRepository(db))
    with tracker.track_deployment(cluster="k3s", namespace="demo") as dep:
        with dep.track_app(name="web", type="yaml", namespace="demo") as app:
            app.record_resources([{**_config_map(), "data": {"a": "b"}}], action="create")
    rec = DeploymentRepository(db).get(dep.deployment_id)
    assert rec.apps[0].resources[0].sealed is None
    assert "sealed" not in json.dumps([dict(d) for d in export_deployments(db)])
    assert thaw(rec.apps[0].resources[0].current_state)["data"] == {"a": "b"}
