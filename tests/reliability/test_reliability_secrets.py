"""Secrets never reach the store in plain text, nor ``sbkube state show -o json``.

Property-based: Hypothesis builds Helm values, config snapshots and app configs with
values under secret-looking keys (``password``, ``apiKey``, ``tls.key``, ``AWS_SECRET_…``,
at any depth, as strings, lists or whole sub-trees), and ``Secret`` manifests whose
``data``/``stringData`` (and kubectl's last-applied annotation, and the previous state
of an update or delete) hold secret values. Each is recorded through
:class:`DeploymentTracker`; then no secret may appear in the SQLite file or its WAL (or in
any row of any table on PostgreSQL), nor in the CLI's JSON for that deployment.

Secret values are random strings of 12+ characters from an alphabet with no vowels and
no hex digits, and everything else recorded is drawn from a disjoint alphabet, so a
secret can only show up in the store if it leaked.

Also: the store sbkube creates is mode 0600, in a directory of mode 0700, whatever the
umask.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import REPO_ROOT, CliJob, cli_env, run_cli, run_cli_many, store_bytes

from sbkube.redaction import is_secret_key
from sbkube.state import DeploymentDatabase, DeploymentTracker, ResourceInput

SECRET_ALPHABET = "GHJKLMNPQRSTVWXZghjklmnpqrstvwxz"
FILLER_ALPHABET = "0123456789abcdef-."  # disjoint from SECRET_ALPHABET

SECRET_KEYS = [
    "password",
    "adminPassword",
    "redisPassword",
    "root_password",
    "mysql-root-password",
    "PASSWORD",
    "passwd",
    "passphrase",
    "secret",
    "clientSecret",
    "client-secret",
    "token",
    "accessToken",
    "auth_token",
    "apiKey",
    "api_key",
    "APIKEY",
    "key",
    "tls.key",
    "privateKey",
    "private_key",
    "credentials",
    "awsCredentials",
    "AWS_SECRET_ACCESS_KEY",
    "secretKey",
    "passwords",
    "tokens",
]
PLAIN_KEYS = ["image", "auth", "config", "db", "users", "settings", "keycloak", "extra", "env"]

assert all(is_secret_key(k) for k in SECRET_KEYS)
assert not any(is_secret_key(k) for k in PLAIN_KEYS)

secret_values = st.text(alphabet=SECRET_ALPHABET, min_size=12, max_size=32)
filler = st.text(alphabet=FILLER_ALPHABET, min_size=0, max_size=10)
plain_leaf = st.one_of(filler, st.integers(-1000, 1000), st.booleans(), st.none())


class Secrets:
    """Collects the secret values drawn for one example."""

    def __init__(self) -> None:
        self.values: list[str] = []

    def add(self, value: str) -> str:
        self.values.append(value)
        return value


@st.composite
def secret_payload(draw: st.DrawFn, secrets: Secrets) -> Any:
    """What sits under a secret key: a string, a PEM-like block, a list, or a sub-tree."""
    shape = draw(st.sampled_from(["str", "pem", "list", "tree"]))
    if shape == "str":
        return secrets.add(draw(secret_values))
    if shape == "pem":
        body = secrets.add(draw(secret_values))
        return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    if shape == "list":
        return [secrets.add(draw(secret_values)) for _ in range(draw(st.integers(1, 3)))]
    return {
        draw(st.sampled_from(PLAIN_KEYS)): secrets.add(draw(secret_values)),
        "nested": {"deeper": secrets.add(draw(secret_values))},
    }


@st.composite
def values_tree(draw: st.DrawFn, secrets: Secrets, depth: int = 0) -> dict[str, Any]:
    """A values mapping with plain leaves and secret keys at random places and depths."""
    out: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                ["plain", "secret", "nest", "list"] if depth < 3 else ["plain", "secret"]
            )
        )
        if kind == "plain":
            out[draw(st.sampled_from(PLAIN_KEYS))] = draw(plain_leaf)
        elif kind == "secret":
            out[draw(st.sampled_from(SECRET_KEYS))] = draw(secret_payload(secrets))
        elif kind == "nest":
            out[draw(st.sampled_from(PLAIN_KEYS))] = draw(values_tree(secrets, depth + 1))
        else:
            out[draw(st.sampled_from(PLAIN_KEYS))] = [
                draw(values_tree(secrets, depth + 1)) for _ in range(draw(st.integers(1, 2)))
            ]
    return out


@st.composite
def secret_manifest(draw: st.DrawFn, secrets: Secrets, name: str) -> dict[str, Any]:
    data = {
        draw(st.sampled_from(PLAIN_KEYS + SECRET_KEYS)): secrets.add(draw(secret_values))
        for _ in range(draw(st.integers(1, 3)))
    }
    # Real `data` is base64: the encoded form is just as secret as the value.
    raw = draw(secret_values)
    encoded = secrets.add(base64.b64encode(raw.encode()).decode())
    data["encoded"] = encoded
    string_data = {"config.yaml": f"user: admin\npassword: {secrets.add(draw(secret_values))}\n"}
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "demo"},
        "type": "Opaque",
        "data": data,
        "stringData": string_data,
    }
    if draw(st.booleans()):
        body["metadata"]["annotations"] = {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(body),
            "team": "payments",
        }
    return body


@st.composite
def deployment_input(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    secrets = Secrets()
    helm_values = draw(values_tree(secrets))
    set_key = draw(st.sampled_from(["auth.password", "tls.key", "db.apiKey", "token"]))
    config = {
        "namespace": "demo",
        "apps": {
            "web": {
                "type": "helm",
                "chart": "./charts/web",
                "set": {set_key: secrets.add(draw(secret_values))},
            },
            "extra": draw(values_tree(secrets)),
        },
    }
    app_config = {"type": "helm", "set": draw(values_tree(secrets))}
    current = draw(secret_manifest(secrets, "db-credentials"))
    previous = draw(secret_manifest(secrets, "db-credentials"))
    removed = draw(secret_manifest(secrets, "old-credentials"))
    spec = {
        "helm_values": helm_values,
        "config": config,
        "app_config": app_config,
        "metadata": draw(values_tree(secrets)),
        "current": current,
        "previous": previous,
        "removed": removed,
    }
    # A key drawn twice keeps only its last value: keep the secrets the input really holds.
    given_text = json.dumps(spec)
    return spec, [v for v in dict.fromkeys(secrets.values) if v in given_text]


def record(tracker: DeploymentTracker, spec: dict[str, Any]) -> str:
    with tracker.track_deployment(
        cluster="secrets", namespace="demo", app_dir="/apps/demo", config=spec["config"]
    ) as dep:
        with dep.track_app(
            name="web",
            type="helm",
            namespace="demo",
            config=spec["app_config"],
            metadata=spec["metadata"],
        ) as app:
            app.record_helm_release(
                release_name="web",
                namespace="demo",
                chart="web",
                chart_version="1.0.0",
                revision=2,
                status="deployed",
                values=spec["helm_values"],
            )
            app.record_resources(
                [
                    ResourceInput.from_manifest(
                        spec["current"], "update", previous=spec["previous"]
                    ),
                    ResourceInput.from_manifest(spec["removed"], "delete"),
                ]
            )
            app.record_resources([spec["current"]], "unchanged")
    return dep.deployment_id


def postgres_dump(db: DeploymentDatabase) -> bytes:
    """Every row of every sbkube table on PostgreSQL, as text."""
    from sqlalchemy import text

    tables = ("deployments", "app_deployments", "deployed_resources", "helm_releases")
    with db.engine.connect() as conn:
        rows = [
            line
            for table in tables
            for line in conn.execute(text(f"SELECT row_to_json(t)::text FROM {table} t")).scalars()
        ]
    return "\n".join(rows).encode()


def leaked(secrets: list[str], haystack: bytes) -> list[str]:
    return [s for s in secrets if s.encode() in haystack]


@pytest.fixture
def store(db_url: str) -> Iterator[tuple[str, DeploymentDatabase]]:
    database = DeploymentDatabase(db_url)
    yield db_url, database
    database.close()


@pytest.mark.slow
def test_secrets_never_stored_nor_shown(
    store: tuple[str, DeploymentDatabase], tmp_path: Path
) -> None:
    url, db = store
    tracker = DeploymentTracker(db)
    recorded: list[tuple[str, list[str]]] = []

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(deployment_input())
    def check(example: tuple[dict[str, Any], list[str]]) -> None:
        spec, secrets = example
        assert secrets
        dep_id = record(tracker, spec)
        # ... and in none of what it stored.
        if db.dialect == "sqlite":
            assert db.path is not None
            assert leaked(secrets, store_bytes(db.path)) == []
        else:
            assert leaked(secrets, postgres_dump(db)) == []
        recorded.append((dep_id, secrets))

    check()
    assert len(recorded) >= 10

    if db.dialect == "sqlite":
        db.close()  # checkpoint the WAL into the file and look again
        all_secrets = [s for _, secrets in recorded for s in secrets]
        assert db.path is not None
        assert leaked(all_secrets, store_bytes(db.path)) == []

    # What a user sees: `sbkube state show ID -o json` for every recorded deployment.
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(home, url)
    jobs = []
    for index, (dep_id, _) in enumerate(recorded):
        cwd = tmp_path / f"show-{index}"
        cwd.mkdir()
        jobs.append(CliJob(dep_id, ["state", "show", dep_id, "-o", "json"], env, cwd))
    results = run_cli_many(jobs, parallel=3)
    for dep_id, secrets in recorded:
        result = results[dep_id]
        assert result.returncode == 0, str(result)
        shown = json.loads(result.stdout)
        assert shown["deployment_id"] == dep_id
        assert shown["apps"][0]["helm_releases"][0]["values"], "values not shown at all"
        assert leaked(secrets, (result.stdout + result.stderr).encode()) == []

    # ... and `state diff` between consecutive deployments, and the whole `state export`.
    all_secrets = [s for _, secrets in recorded for s in secrets]
    jobs = []
    for index in range(1, len(recorded)):
        a, b = recorded[index - 1][0], recorded[index][0]
        for name, extra in ((f"diff-{index}", ["-o", "json"]), (f"difftext-{index}", [])):
            cwd = tmp_path / name  # one folder per job: its output files live beside it
            cwd.mkdir()
            jobs.append(CliJob(name, ["state", "diff", a, b, *extra], env, cwd))
    cwd = tmp_path / "export"
    cwd.mkdir()
    jobs.append(CliJob("export", ["state", "export"], env, cwd))
    results = run_cli_many(jobs, parallel=3)
    assert len(results["export"].stdout.splitlines()) == len(recorded)
    for name, result in results.items():
        assert result.returncode == 0, str(result)
        assert leaked(all_secrets, (result.stdout + result.stderr).encode()) == [], name


def test_config_secret_set_values_never_stored(db: DeploymentDatabase) -> None:
    """A config.yaml ``set:`` with dotted secret keys, exactly as the loader gives it."""
    tracker = DeploymentTracker(db)
    secret = "QWRTZPLKJHGFDSXC"
    config = {"apps": {"redis": {"type": "helm", "set": {"auth.password": secret}}}}
    with tracker.track_deployment(cluster="c", namespace="n", config=config) as dep:
        with dep.track_app(name="redis", type="helm", config=config["apps"]["redis"]):
            pass
    stored = store_bytes(db.path) if db.path is not None else postgres_dump(db)
    assert secret.encode() not in stored


# -- file modes --------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("where", ["state-url", "default-location"])
def test_store_file_and_directory_modes(tmp_path: Path, where: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if where == "state-url":
        state = tmp_path / "fresh" / "state.db"
        env = cli_env(home, str(state))
    else:
        env = cli_env(home)
        state = home / ".state" / "sbkube" / "state.db"
    # A wide-open umask: sbkube must still create a private store.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; os.umask(0); from sbkube.cli import main;"
            " sys.argv[0] = 'sbkube'; main()",
            "state",
            "list",
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert state.is_file()
    assert _mode(state) == 0o600, oct(_mode(state))
    assert _mode(state.parent) == 0o700, oct(_mode(state.parent))


def test_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        db = DeploymentDatabase(tmp_path / "private" / "state.db")
        try:
            with DeploymentTracker(db).track_deployment(cluster="c", namespace="n"):
                pass
            assert db.path is not None
            for suffix in ("", "-wal", "-shm"):
                path = Path(f"{db.path}{suffix}")
                if path.exists():
                    assert _mode(path) == 0o600, f"{path.name}: {oct(_mode(path))}"
            assert _mode(db.path.parent) == 0o700
        finally:
            db.close()
    finally:
        os.umask(old)


# -- secrets outside secret keys' exact words, and outside the values themselves -------------


def test_lowercase_compound_secret_keys_are_redacted(db: DeploymentDatabase) -> None:
    secret = "QWRTZPLKJHGFDSXCV"
    values = {"mariadb": {"auth": {"rootpassword": secret}}}
    with DeploymentTracker(db).track_deployment(cluster="c", namespace="n") as dep:
        with dep.track_app(name="db", type="helm") as app:
            app.record_helm_release(
                release_name="db",
                namespace="n",
                chart="db",
                revision=1,
                status="deployed",
                values=values,
            )
    stored = store_bytes(db.path) if db.path is not None else postgres_dump(db)
    assert secret.encode() not in stored


LEAKY_TEMPLATE = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-auth
stringData:
  password: {{ .Values.auth.password | quote }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx
          env:
            - name: DB_PASSWORD
              value: {{ .Values.auth.password | quote }}
"""


@pytest.mark.helm
def test_helm_rendered_manifests_do_not_leak_secret_values(
    tmp_path: Path, helm_binary: str
) -> None:
    secret = "QZXWVTRSPLKJHGNM"
    app = tmp_path / "app"
    (app / "charts" / "web" / "templates").mkdir(parents=True)
    (app / "charts" / "web" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: web\nversion: 0.1.0\n"
    )
    (app / "charts" / "web" / "templates" / "all.yaml").write_text(LEAKY_TEMPLATE)
    (app / "config.yaml").write_text(
        "namespace: demo\napps:\n  web:\n    type: helm\n    chart: ./charts/web\n"
        "    values: [values.yaml]\n"
    )
    (app / "values.yaml").write_text(f"auth:\n  password: {secret}\n")
    home = tmp_path / "home"
    home.mkdir()
    state = tmp_path / "state.db"
    env = cli_env(home, str(state), {"SBKUBE_HELM": helm_binary})
    result = run_cli(
        ["deploy", "--app-dir", str(app), "--memory-cluster", str(tmp_path / "c.json")],
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, str(result)
    assert secret.encode() not in store_bytes(state)
