"""``sbkube state rekey``: every sealed value re-sealed under a new key, resumable when
killed, on SQLite and PostgreSQL alike.

The kill points are chosen, not timed: ``SBKUBE_FAULT_REKEY_KILL_AT=N`` makes the command
SIGKILL itself at its N-th step (the new key written, each value re-sealed inside the
transaction, the commit, the key file replaced); 20 points drawn from a fixed seed."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sbkube import keyfiles
from sbkube.model import thaw
from sbkube.sealing import SealKey, can_unseal, key_from_file, restore
from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker

KILL = "SBKUBE_FAULT_REKEY_KILL_AT"


def _seed(url: str, deployments: int = 3) -> list[tuple[str, dict[str, Any]]]:
    """Deployments whose Helm values and Secrets hold secrets; (deployment id, values)."""
    db = DeploymentDatabase(url)
    made: list[tuple[str, dict[str, Any]]] = []
    try:
        tracker = DeploymentTracker(DeploymentRepository(db))
        for i in range(deployments):
            values = {"auth": {"password": f"pw-{i}-Qx7Lm2Vb9"}, "n": i}
            with tracker.track_deployment(cluster="k3s", namespace="demo") as dep:
                with dep.track_app(name="web", type="helm", namespace="demo") as app:
                    app.record_helm_release(
                        release_name="web",
                        namespace="demo",
                        chart="web",
                        revision=i + 1,
                        status="deployed",
                        values=values,
                    )
                    secret = {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": f"s{i}", "namespace": "demo"},
                        "stringData": {"token": f"tok-{i}-Zr8Kw3Np"},
                    }
                    app.record_resources([secret], action="create")
            made.append((dep.deployment_id, values))
    finally:
        db.close()
    return made


def _seals(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                blob
                for table in ("deployed_resources", "helm_releases")
                for (blob,) in conn.execute(
                    sa.text(f"SELECT sealed FROM {table} WHERE sealed IS NOT NULL")
                )
            ]
    finally:
        engine.dispose()


@pytest.fixture
def key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The seal key file of the test's sbkube runs (their XDG_CONFIG_HOME), used here too."""
    monkeypatch.delenv("SBKUBE_SEAL_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    keyfiles.forget()
    yield tmp_path / "config" / "sbkube"
    keyfiles.forget()


def test_rekey_killed_20_times_then_resumed_leaves_only_the_new_key(
    sbkube: Any, db_url: str, key_home: Path
) -> None:
    made = _seed(db_url)
    env = {"SBKUBE_STATE_URL": db_url}
    original = key_from_file(key_home / "seal.key")
    seals = _seals(db_url)
    assert len(seals) == 6 and all(can_unseal(s, [original]) for s in seals)
    steps = 1 + len(seals) + 2  # the new key, each value, the commit, the key file
    draw = random.Random(22)
    kill_points = [draw.randint(1, steps) for _ in range(20)]
    assert len(set(kill_points)) > 5
    seen = {original.key_id: original}

    killed = 0
    for point in kill_points:
        proc = sbkube("state", "rekey", env={**env, KILL: str(point)})
        # A run resuming after its commit has fewer steps: a later point finds it done.
        assert proc.returncode in (-9, 0), (point, proc.stderr)
        killed += proc.returncode == -9
        keys = [key_from_file(p) for p in sorted(key_home.glob("seal.key*"))]
        seen.update({k.key_id: k for k in keys})
        # Killed anywhere: every seal opens with a key at hand, old or new.
        for blob in _seals(db_url):
            assert can_unseal(blob, keys), point

    assert killed >= 15
    proc = sbkube("state", "rekey", "-o", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not (key_home / "seal.key.new").exists()
    final = key_from_file(key_home / "seal.key")
    assert final.key_id not in (set(seen) - {final.key_id})
    after = _seals(db_url)
    assert len(after) == len(seals)
    for blob in after:
        assert can_unseal(blob, [final])
        for key_id, key in seen.items():
            if key_id != final.key_id:
                assert not can_unseal(blob, [key])
    # The values themselves are intact.
    db = DeploymentDatabase(db_url)
    try:
        repo = DeploymentRepository(db)
        for dep_id, values in made:
            (release,) = repo.get(dep_id).apps[0].helm_releases
            assert release.sealed is not None
            back = restore(release.sealed, {"values": release.values}, final)["values"]
            assert back == values and thaw(release.values) != values
    finally:
        db.close()


def test_rekey_with_keys_from_the_environment(sbkube: Any, db_url: str, key_home: Path) -> None:
    _seed(db_url, deployments=1)
    # Sealed under the key file's key; now the team moves it into the environment.
    old_text = (key_home / "seal.key").read_text().strip()
    env = {"SBKUBE_STATE_URL": db_url, "SBKUBE_SEAL_KEY": old_text}

    missing = sbkube("state", "rekey", env=env)
    assert missing.returncode == 2
    assert "SBKUBE_NEW_SEAL_KEY" in missing.stderr and "Traceback" not in missing.stderr

    proc = sbkube("state", "rekey", env={**env, "SBKUBE_NEW_SEAL_KEY": "the-new-team-key"})
    assert proc.returncode == 0, proc.stderr
    assert "Re-sealed 2 value(s)" in proc.stdout
    new = SealKey.from_text(b"the-new-team-key")
    for blob in _seals(db_url):
        assert can_unseal(blob, [new]) and not can_unseal(
            blob, [SealKey.from_text(old_text.encode())]
        )
    # Again: nothing left to move, the seals stay as they are.
    again = sbkube(
        "state", "rekey", "-o", "json",
        env={**env, "SBKUBE_SEAL_KEY": "the-new-team-key", "SBKUBE_NEW_SEAL_KEY": "newer"},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert '"resealed": 2' in again.stdout
    stranger = sbkube(
        "state", "rekey", "-o", "json",
        env={**env, "SBKUBE_SEAL_KEY": "unrelated", "SBKUBE_NEW_SEAL_KEY": "newest"},
    )  # fmt: skip
    assert stranger.returncode == 0
    assert '"foreign": 2' in stranger.stdout and '"resealed": 0' in stranger.stdout
