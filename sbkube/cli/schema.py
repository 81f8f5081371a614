"""``sbkube schema``: config.yaml's JSON Schema, for editors and CI checks."""

from __future__ import annotations

import json
from typing import Any

import click

SCHEMA_ID = "https://sbkube.dev/schemas/config.schema.json"


def config_schema() -> dict[str, Any]:
    """The JSON Schema of config.yaml, from the pydantic model that validates it."""
    from sbkube.config import SbkubeConfig

    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **SbkubeConfig.model_json_schema(),
    }
    schema["title"] = "sbkube config.yaml"
    return schema


def schema_text() -> str:
    """What ``sbkube schema`` prints (and ``schemas/config.schema.json`` holds)."""
    return json.dumps(config_schema(), indent=2, sort_keys=False) + "\n"


@click.command()
def schema() -> None:
    """Print config.yaml's JSON Schema (draft 2020-12).

    Editors with the YAML language server validate and complete config.yaml from it: put
    this first line in the file

    \b
      # yaml-language-server: $schema=https://sbkube.dev/schemas/config.schema.json

    or point $schema at a saved copy (sbkube schema > config.schema.json).
    """
    click.echo(schema_text(), nl=False)
