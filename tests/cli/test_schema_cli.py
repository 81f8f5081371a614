"""``sbkube schema``: config.yaml's JSON Schema, the copy in schemas/, and what it accepts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def validator_for(sbkube):
    try:
        import jsonschema
    except ImportError:
        reason = "jsonschema is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{reason} (required in CI)", pytrace=False)
        pytest.skip(reason)
    proc = sbkube("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_in_the_repository_is_what_sbkube_schema_prints(sbkube):
    proc = sbkube("schema")

    assert proc.returncode == 0, proc.stderr
    kept = (REPO_ROOT / "schemas" / "config.schema.json").read_text()
    assert proc.stdout == kept, "run: sbkube schema > schemas/config.schema.json"


def test_schema_validates_the_demo_and_rejects_a_misspelt_field(validator_for):
    demo = yaml.safe_load((REPO_ROOT / "examples" / "demo" / "config.yaml").read_text())
    assert list(validator_for.iter_errors(demo)) == []

    demo["apps"]["redis"]["chrat"] = demo["apps"]["redis"].pop("chart")
    errors = list(validator_for.iter_errors(demo))
    assert errors, "a misspelt field must not validate"
    assert any("chrat" in e.message or "chart" in e.message for e in errors)


def test_every_fixture_app_dir_validates(validator_for):
    for config in Path(REPO_ROOT / "tests" / "fixtures" / "engine").glob("*/config.yaml"):
        assert list(validator_for.iter_errors(yaml.safe_load(config.read_text()))) == [], config


def test_readme_shows_the_modeline():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "# yaml-language-server: $schema=" in readme
    assert "sbkube schema" in readme
