"""``sbkube diff``: what a deploy would change on the live cluster, field by field."""

from __future__ import annotations

from pathlib import Path

import click

from sbkube.cli.options import (
    app_dir_options,
    cluster_options,
    command_line_values,
    make_cluster_for,
    namespace_option,
    output_option,
    values_options,
)
from sbkube.cli.output import colour_diff, emit, render_live_diff


@click.command()
@app_dir_options
@namespace_option
@values_options
@cluster_options
@output_option
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when there are differences, 0 when there are none.",
)
@click.pass_context
def diff(
    ctx: click.Context,
    app_dir: Path,
    config_file: str | None,
    profile: str | None,
    apps: tuple[str, ...],
    selectors: tuple[str, ...],
    no_deps: bool,
    namespace: str | None,
    set_values: tuple[str, ...],
    values_files: tuple[str, ...],
    kubeconfig: str | None,
    kube_context: str | None,
    memory_cluster: str | None,
    fmt: str,
    exit_code: bool,
) -> None:
    """Compare what deploy would apply with the live objects, like helm-diff and kubectl diff.

    Each object that would be created, changed or deleted is shown as a unified diff of its
    YAML (live, then desired), secrets masked; only the fields the manifest sets are
    compared, so server defaults never show. A Helm release whose chart and values match its
    current revision is compared with that revision's manifest (so only drift shows);
    otherwise with what `helm upgrade --dry-run=server` would install. Nothing is applied or
    recorded. -n, --set and -f mean what they mean for deploy. An unreachable cluster is
    an error (exit 1).

    \b
    Examples:
      sbkube diff --app-dir apps/demo
      sbkube diff --app-dir apps/demo --app redis --exit-code
      sbkube diff --app-dir apps/demo -o json
    """
    from sbkube.engine.live_diff import live_diff

    cluster = make_cluster_for(
        app_dir, config_file, profile, kubeconfig, kube_context, memory_cluster
    )
    result = live_diff(
        app_dir,
        cluster=cluster,
        db=(ctx.find_root().obj or {}).get("state_url"),
        apps=apps or None,
        config_file=config_file,
        profile=profile,
        selectors=selectors,
        no_deps=no_deps,
        namespace=namespace,
        values=command_line_values(values_files, set_values),
    )
    if fmt == "table":
        click.echo(colour_diff(render_live_diff(result)))
    else:
        emit(result, fmt)
    if exit_code and result.changed:
        ctx.exit(1)
