"""``sbkube state report --html FILE``: the history as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from sbkube.cli.common import open_recovered, parse_since


@click.command("report")
@click.option(
    "--html",
    "html_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Write the report to FILE (one HTML file, nothing loaded from the network).",
)
@click.option("--since", help="Only deployments started since: 30d, 12h, or an ISO date.")
@click.option("--cluster", help="Only deployments to this cluster.")
@click.option("-n", "--namespace", help="Only deployments to this namespace.")
@click.option("--app", help="Only deployments of this app, and only this app in them.")
@click.pass_context
def report_cmd(
    ctx: click.Context,
    html_path: Path,
    since: str | None,
    cluster: str | None,
    namespace: str | None,
    app: str | None,
) -> None:
    """Write the deployment history as one HTML page to look at.

    The page shows a timeline of every target (rollbacks point at the deployment they
    restored), each app's history (revisions, chart versions, statuses, operators), every
    deployment's apps, Helm releases and resources, and its diff to the previous
    deployment of the same target (config, values, manifests; unified or side by side;
    secrets masked). It filters and searches in the browser, and `FILE#<deployment id>`
    opens one deployment. Without --since it covers the whole history.

    \b
    Examples:
      sbkube state report --html history.html
      sbkube state report --html last-month.html --since 30d -n demo
      sbkube state report --html redis.html --cluster prod --app redis
    """
    from sbkube.cli.options import refuse_special_file
    from sbkube.errors import UsageError
    from sbkube.report import Scope, write_report
    from sbkube.state import DeploymentRepository

    # Refused before the store is read: a page that cannot be written is bad input.
    if not html_path.parent.is_dir():
        raise UsageError(f"--html {html_path}: directory {html_path.parent} does not exist")
    refuse_special_file(html_path, "--html")

    scope = Scope(since=parse_since(since), cluster=cluster, namespace=namespace, app=app)
    count = write_report(DeploymentRepository(open_recovered(ctx)), html_path, scope)
    size = html_path.stat().st_size
    click.echo(f"Wrote {html_path} ({count} deployment(s), {size / 1024:.0f} KiB)", err=True)
