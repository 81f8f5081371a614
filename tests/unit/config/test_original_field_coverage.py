"""Every field of the original sbkube's app models (``original.APP_FIELDS``) is either in
one of our fixtures of its formats (``tests/fixtures/original/*``: ``sbkube.yaml``, or
``config.yaml`` beside a ``sources.yaml``), in an app of that type, or listed in the
README as not supported (one ``TYPE.FIELD`` line each) and refused: exit 2, one line
naming it, nothing recorded. A field added to APP_FIELDS without either fails here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbkube.config import load_config
from sbkube.config.original import APP_FIELDS
from sbkube.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "original"
_LISTED = re.compile(r"^  - `([a-z]+)\.([a-z_]+)`: ", re.MULTILINE)


def _fixture_apps() -> list[tuple[Path, str, dict[str, Any]]]:
    """(file, app name, app) of every app in the fixtures of the original's formats."""
    found = []
    for path in sorted(FIXTURES.glob("*/sbkube.yaml")) + sorted(FIXTURES.glob("*/config.yaml")):
        if path.name == "config.yaml" and not (path.parent / "sources.yaml").exists():
            continue
        content = yaml.safe_load(path.read_text())
        apps = dict(content.get("apps") or {})
        for phase in (content.get("phases") or {}).values():
            apps.update((phase or {}).get("apps") or {})
        found += [(path, name, app) for name, app in apps.items() if isinstance(app, dict)]
    return found


def _unsupported() -> set[tuple[str, str]]:
    """The ``TYPE.FIELD`` lines of the README's "Not supported yet" list."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Coming from the original sbkube", 1)[1].split("\n## ", 1)[0]
    listed = section.split("**Not supported yet**", 1)[1]
    return set(_LISTED.findall(listed))


def test_every_field_of_every_app_type_is_in_a_fixture_or_listed_as_unsupported() -> None:
    covered = {(app["type"], key) for _path, _name, app in _fixture_apps() for key in app}
    unsupported = _unsupported()
    refused_types = {kind for kind, field in unsupported if field == "type"}
    missing = sorted(
        f"{kind}.{field}"
        for kind, fields in APP_FIELDS.items()
        for field in fields
        if (kind, field) not in covered
        and (kind, field) not in unsupported
        and kind not in refused_types
    )
    assert missing == [], (
        "fields of the original's app models in no fixture of tests/fixtures/original and "
        f"not listed as unsupported in the README: {missing}"
    )
    # Every line names a real field, and none of a field a fixture deploys.
    for kind, field in unsupported:
        assert field in APP_FIELDS.get(kind, ()), f"README lists {kind}.{field}: no such field"
        assert (kind, field) not in covered, f"{kind}.{field} is in a fixture and listed"


def test_both_formats_hold_every_runnable_type() -> None:
    formats: dict[str, set[str]] = {"sbkube.yaml": set(), "config.yaml": set()}
    for path, _name, app in _fixture_apps():
        formats[path.name].add(app["type"])
    runnable = set(APP_FIELDS) - {k for k, f in _unsupported() if f == "type"}
    assert runnable <= formats["sbkube.yaml"] and runnable <= formats["config.yaml"]


_SAMPLES: dict[str, Any] = {"tasks": [], "validation": {}, "dependency": {}, "rollback": {}}


@pytest.mark.parametrize("listed", sorted(_unsupported()) or [None])
def test_each_listed_field_is_refused_naming_it(
    tmp_path: Path, listed: tuple[str, str] | None
) -> None:
    if listed is None:
        readme = (ROOT / "README.md").read_text()
        assert "today every field of the original's app models\n  is read" in readme
        return
    kind, field = listed
    app: dict[str, Any] = {"type": kind}
    if field != "type":
        app[field] = _SAMPLES.get(field, "x")
    (tmp_path / "sbkube.yaml").write_text(
        yaml.safe_dump({"apiVersion": "sbkube/v1", "apps": {"a": app}})
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert err.value.exit_code == 2
    (line,) = err.value.message.splitlines()
    assert f"apps.a.{field}:" in line or f"apps.a.type: '{kind}' apps are not supported" in line


def test_a_refused_field_exits_2_and_records_nothing(tmp_path: Path, sbkube_exe: str) -> None:
    """A listed field, else a field refused by its value (``atomic: true``)."""
    kind, field, value = next(
        ((k, f, k) for k, f in sorted(_unsupported())), ("helm", "atomic", True)
    )
    app = {"type": kind, field: value, **({"chart": "./chart"} if kind == "helm" else {})}
    (tmp_path / "sbkube.yaml").write_text(
        yaml.safe_dump({"apiVersion": "sbkube/v1", "apps": {"a": app}})
    )
    state = tmp_path / "state.db"
    argv = ["deploy", "--app-dir", str(tmp_path), "--memory-cluster", str(tmp_path / "c.json")]
    proc = subprocess.run(
        [sbkube_exe, *argv, "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"apps.a.{field}" in line or "apps.a.type" in line
    assert not state.exists() and not (tmp_path / "c.json").exists()
