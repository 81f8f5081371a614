"""``sbkube diff``: what a deploy would change on the live cluster, field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sbkube.cli.options import (
    READ_PHASES,
    app_dir_options,
    cluster_options,
    command_line_values,
    make_cluster_for,
    namespace_option,
    output_option,
    phase_option,
    refuse_for_phases,
    values_options,
)
from sbkube.cli.output import colour_diff, emit, render_live_diff


@click.command()
@app_dir_options
@namespace_option
@values_options
@cluster_options
@output_option
@phase_option(READ_PHASES)
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
    phases: tuple[str, ...],
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

    A file of phases is compared as deploy runs it: the apps of every phase (or of --phase
    NAME and the phases it needs), against the run's own record, each under its phase.

    \b
    Examples:
      sbkube diff --app-dir apps/demo
      sbkube diff --app-dir apps/demo --app redis --exit-code
      sbkube diff --app-dir apps/demo -o json
      sbkube diff --app-dir platform --phase data
    """
    from sbkube.engine.live_diff import live_diff, live_diff_phases
    from sbkube.engine.units import phases_of

    phased = phases_of(app_dir, config_file, profile)
    refuse_for_phases(app_dir, phased, phases, namespace)
    cluster = make_cluster_for(
        app_dir, config_file, profile, kubeconfig, kube_context, memory_cluster
    )
    picked: dict[str, Any] = {
        "cluster": cluster,
        "db": (ctx.find_root().obj or {}).get("state_url"),
        "apps": apps or None,
        "selectors": selectors,
        "no_deps": no_deps,
        "values": command_line_values(values_files, set_values),
    }
    if phased is not None:
        result = live_diff_phases(phased, phases=phases or None, **picked)
    else:
        result = live_diff(
            app_dir, config_file=config_file, profile=profile, namespace=namespace, **picked
        )
    if fmt == "table":
        click.echo(colour_diff(render_live_diff(result)))
    else:
        emit(result, fmt)
    if exit_code and result.changed:
        ctx.exit(1)
