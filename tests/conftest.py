"""Shared fixtures: a real state store on SQLite and on PostgreSQL, and the helm binary.

``db_url`` / ``db`` are parametrized over both backends. PostgreSQL tests use
``SBKUBE_TEST_POSTGRES_URL``; each test gets its own schema (via ``search_path``) so tests
never see each other's rows. Outside CI a missing server or helm binary skips those
tests; with ``CI`` set they fail instead, so a green CI run really ran them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent

# Secret digests are keyed; without a key sbkube would create a key file in the real
# home of whoever runs the tests. Subprocess tests set their own HOME (and key) instead.
os.environ.setdefault("SBKUBE_DIGEST_KEY", "sbkube-test-digest-key")
# The same for the key that seals secret values (sbkube.sealing).
os.environ.setdefault("SBKUBE_SEAL_KEY", "sbkube-test-seal-key")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing(reason: str) -> None:
    """Skip locally; fail in CI, where every dependency must be present."""
    if in_ci():
        pytest.fail(f"{reason} (required in CI)", pytrace=False)
    pytest.skip(reason)


def postgres_base_url() -> str:
    url = os.environ.get("SBKUBE_TEST_POSTGRES_URL")
    if not url:
        missing("SBKUBE_TEST_POSTGRES_URL is not set")
    assert url is not None
    return url


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import sqlalchemy as sa

    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(base, connect_args={"connect_timeout": 5})
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as err:
        missing(f"PostgreSQL at {base} is unreachable: {err.orig}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[object]:
    from sbkube.state import DeploymentDatabase

    database = DeploymentDatabase(db_url)
    yield database
    database.close()


def find_binary(env_var: str | None, name: str) -> str | None:
    """``$env_var``, else ``name`` on PATH, else ``.ci/bin/name`` (where .ci/run puts it)."""
    configured = os.environ.get(env_var) if env_var else None
    if configured:
        return shutil.which(configured)
    bundled = REPO_ROOT / ".ci" / "bin" / name
    return shutil.which(name) or (str(bundled) if os.access(bundled, os.X_OK) else None)


def require_binary(env_var: str | None, name: str, hint: str) -> str:
    path = find_binary(env_var, name)
    if path is None:
        missing(f"{name} not found ({hint})")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def helm_binary() -> str:
    """Path of the real helm binary (SBKUBE_HELM, PATH, or .ci/bin/helm)."""
    return require_binary("SBKUBE_HELM", "helm", "run: python .ci/install_tools.py .ci/bin")


@pytest.fixture(scope="session")
def kubectl_binary() -> str:
    """Path of the real kubectl binary (SBKUBE_KUBECTL, PATH, or .ci/bin/kubectl)."""
    return require_binary("SBKUBE_KUBECTL", "kubectl", "run: python .ci/install_tools.py .ci/bin")


#: Where Debian puts Chromium (``apt-get install chromium``; ``.ci/run`` does it when missing).
CHROMIUM = "/usr/bin/chromium"
#: Headless, and nothing that would reach the network on its own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless system Chromium driven by Playwright (marker ``browser``).

    Playwright's own browser downloads are never used: ``executable_path`` points at the
    Debian package, which CI installs.
    """
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def sbkube_exe() -> str:
    """The installed ``sbkube`` console script (CLI tests run the real thing)."""
    return require_binary(None, "sbkube", "pip install -e .")


def _forget_seals(store: Any) -> None:
    import sqlalchemy as sa

    engine = store.engine if hasattr(store, "engine") else sa.create_engine(f"sqlite:///{store}")
    with engine.begin() as conn:
        for table in ("deployed_resources", "helm_releases"):
            conn.execute(sa.text(f"UPDATE {table} SET sealed = NULL"))
    if not hasattr(store, "engine"):
        engine.dispose()


@pytest.fixture
def forget_seals() -> Any:
    """``forget_seals(store)``: make every record of ``store`` (a DeploymentDatabase, or a
    SQLite file) look as if recorded before sealing existed: secrets known only as digests."""
    return _forget_seals


CHARTS = REPO_ROOT / "tests" / "fixtures" / "charts"


@dataclass
class ChartRepo:
    """A directory of packaged charts with its index.yaml, served over HTTP on loopback."""

    root: Path
    helm_binary: str
    url: str = ""
    requests: list[str] = field(default_factory=list)

    def publish(self, version: str, chart: Path | None = None) -> None:
        """Package ``chart`` (demo-redis by default) as ``version`` and index the
        repository again."""
        chart = chart or CHARTS / "demo-redis"
        source = self.root.parent / f"{chart.name}-{version}"
        shutil.copytree(chart, source)
        meta = yaml.safe_load((source / "Chart.yaml").read_text())
        (source / "Chart.yaml").write_text(yaml.safe_dump({**meta, "version": version}))
        for argv in (
            ["package", str(source), "-d", str(self.root)],
            ["repo", "index", str(self.root)],
        ):
            subprocess.run([self.helm_binary, *argv], check=True, capture_output=True)

    def index_fetches(self) -> int:
        return sum(1 for path in self.requests if path.endswith("/index.yaml"))


@pytest.fixture
def chart_repo(tmp_path: Path, helm_binary: str) -> Iterator[ChartRepo]:
    """A chart repository on loopback (demo-redis 0.1.0 published; ``publish`` more)."""
    repo = ChartRepo(tmp_path / "repo", helm_binary)
    repo.root.mkdir()
    repo.publish("0.1.0")

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(repo.root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            repo.requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    repo.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield repo
    server.shutdown()
    server.server_close()
