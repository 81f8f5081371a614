"""Fixtures for the reliability tests: the real ``sbkube`` CLI in a subprocess.

Everything here runs against real databases (an SQLite file, a per-test PostgreSQL schema
from ``tests/conftest.py``) and the real ``sbkube`` entry point; nothing is mocked.
Helpers live in ``reliability_helpers.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from reliability_helpers import CliResult, cli_env, run_cli


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def sbkube(home: Path, tmp_path: Path) -> Callable[..., CliResult]:
    """``sbkube(*args, state=URL, env={...}, cwd=...)`` runs the real CLI in a subprocess."""

    def run(
        *args: str,
        state: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
    ) -> CliResult:
        return run_cli(args, env=cli_env(home, state, env), cwd=cwd or tmp_path, timeout=timeout)

    return run
