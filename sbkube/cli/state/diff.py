"""``sbkube state diff A B``: what changed between two recorded deployments."""

from __future__ import annotations

import click

from sbkube.cli.common import open_db
from sbkube.cli.options import complete_deployment_ids, output_option
from sbkube.cli.output import colour_diff, emit, render_diff


@click.command("diff")
@click.argument("a", metavar="A", shell_complete=complete_deployment_ids)
@click.argument("b", metavar="B", shell_complete=complete_deployment_ids)
@click.option("--app", "apps", multiple=True, metavar="NAME", help="Only this app (repeatable).")
@click.option(
    "--phase",
    "phases",
    multiple=True,
    metavar="NAME",
    help="Only the apps of this phase of a multi-dir run (repeatable).",
)
@click.option("--cluster", help="Resolve 'latest' / 'latest~N' within this cluster.")
@click.option("-n", "--namespace", help="Resolve 'latest' / 'latest~N' within this namespace.")
@output_option
@click.pass_context
def diff_cmd(
    ctx: click.Context,
    a: str,
    b: str,
    apps: tuple[str, ...],
    phases: tuple[str, ...],
    cluster: str | None,
    namespace: str | None,
    fmt: str,
) -> None:
    """Show what changed from deployment A to deployment B.

    Sections: the config snapshot (unified diff), every Helm release (chart version,
    revision, values by dotted path; secrets only as "(secret) changed/unchanged"),
    the resources of every app (added, removed, changed, unchanged) and a unified diff
    of every changed manifest.

    A and B are deployment ids, unique prefixes of one, 'latest' or 'latest~N'.

    \b
    Examples:
      sbkube state diff latest~1 latest
      sbkube state diff dep-20261126-0851 latest --app redis -o json
    """
    from sbkube.engine.record_diff import diff_deployments
    from sbkube.state import DeploymentRepository

    repo = DeploymentRepository(open_db(ctx))
    id_a = repo.resolve(a, cluster=cluster, namespace=namespace)
    id_b = repo.resolve(b, cluster=cluster, namespace=namespace)
    dep_a, dep_b = repo.get(id_a), repo.get(id_b)
    wanted = list(apps) or None
    if phases:
        from sbkube.engine.record_diff import apps_of_phases

        wanted = apps_of_phases(dep_b, dep_a, phases, wanted)
    result = diff_deployments(dep_a, dep_b, apps=wanted)
    if fmt != "table":
        emit(result, fmt)
        return
    click.echo(colour_diff(render_diff(result)))
