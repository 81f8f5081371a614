"""``sbkube config convert``: the original sbkube's formats as our config.yaml."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("config")
def config() -> None:
    """Work with an app dir's config file."""


@config.command("convert")
@click.argument("app_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--config-file", default=None, help="The original's file (default: found).")
@click.option(
    "--profile",
    metavar="ENV",
    default=None,
    help="Apply the file's environments.ENV (the pair: read sources-ENV.yaml).",
)
def convert(app_dir: Path, config_file: str | None, profile: str | None) -> None:
    """Print sbkube's config.yaml for APP_DIR, written in the original sbkube's sbkube.yaml
    or config.yaml + sources.yaml.

    The comments at its top list every field the two formats say differently and what
    became of each. Saved as config.yaml in APP_DIR (without the original files), it
    deploys the same objects. Fields sbkube does not support are refused as deploy
    refuses them, one line each (exit 2).

    \b
    Example:
      sbkube config convert apps/billing > apps/billing/config.yaml.new
    """
    from sbkube.config.convert import convert as run_convert

    click.echo(run_convert(app_dir, config_file, profile), nl=False)
