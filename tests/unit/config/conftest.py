"""Helpers for building throwaway app directories in tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "apps"

CHART_YAML = "apiVersion: v2\nname: redis\nversion: 0.1.0\n"

MakeApp = Callable[..., Path]


def write_tree(root: Path, files: dict[str, str | bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")


@pytest.fixture
def make_app(tmp_path: Path) -> MakeApp:
    """Build an app dir: ``make_app(config_text, **{"path": content})`` -> app dir."""

    def build(config: str | bytes | None, files: dict[str, str | bytes] | None = None) -> Path:
        app_dir = tmp_path / "app"
        app_dir.mkdir(exist_ok=True)
        tree: dict[str, str | bytes] = dict(files or {})
        if config is not None:
            tree["config.yaml"] = config
        write_tree(app_dir, tree)
        return app_dir

    return build


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
