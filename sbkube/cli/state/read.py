"""``sbkube state list|show|history``: read the deployment history.

They import only the state store and the renderers, never helm, pydantic or the cluster
adapters, so they start fast.
"""

from __future__ import annotations

from typing import Any

import click

from sbkube.cli.common import open_recovered, parse_since
from sbkube.cli.options import (
    complete_apps,
    complete_deployment_ids,
    complete_namespaces,
    output_option,
)
from sbkube.cli.output import echo_table, emit, error_lines, fmt_duration, fmt_time, safe


def _counts(summary: Any) -> str:
    counts = summary.app_counts
    if not counts:
        return "0"
    ok = counts.get("success", 0)
    total = summary.app_total
    rest = ",".join(f"{n} {s}" for s, n in counts.items() if s != "success")
    return f"{ok}/{total}" + (f" ({rest})" if rest else "")


@click.command("list")
@click.option("--cluster", help="Only deployments to this cluster.")
@click.option(
    "-n",
    "--namespace",
    help="Only deployments to this namespace.",
    shell_complete=complete_namespaces,
)
@click.option("--app", help="Only deployments that include this app.")
@click.option(
    "--profile",
    metavar="ENV",
    help="Only deployments made with --profile ENV.",
)
@click.option(
    "--status",
    multiple=True,
    type=click.Choice(
        [
            "pending",
            "in_progress",
            "success",
            "failed",
            "partially_failed",
            "rolled_back",
            "interrupted",
        ]
    ),
    help="Only deployments with this status (repeatable).",
)
@click.option("--since", help="Only deployments started since: 7d, 12h, 30m or an ISO date.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option(
    "--page",
    # (page - 1) * limit must fit the store's 64-bit integers.
    type=click.IntRange(1, 10**12),
    default=1,
    show_default=True,
    help="Page of --limit rows.",
)
@output_option
@click.pass_context
def list_cmd(
    ctx: click.Context,
    cluster: str | None,
    namespace: str | None,
    app: str | None,
    profile: str | None,
    status: tuple[str, ...],
    since: str | None,
    limit: int,
    page: int,
    fmt: str,
) -> None:
    """List recorded deployments, newest first.

    \b
    Examples:
      sbkube state list
      sbkube state list -n demo --app redis --since 7d
      sbkube state list --profile prod
      sbkube state list --status failed --status partially_failed -o json
    """
    from sbkube.state import list_deployments

    since_at = parse_since(since)
    rows = list_deployments(
        open_recovered(ctx),
        cluster=cluster,
        namespace=namespace,
        app=app,
        profile=profile,
        status=list(status) or None,
        since=since_at,
        limit=limit,
        offset=(page - 1) * limit,
    )
    if fmt != "table":
        emit(rows, fmt)
        return
    echo_table(
        rows,
        [
            ("ID", lambda r: r.deployment_id),
            ("COMMAND", lambda r: r.command + (" (dry-run)" if r.dry_run else "")),
            ("STATUS", lambda r: r.status),
            ("CLUSTER", lambda r: r.cluster),
            ("NAMESPACE", lambda r: r.namespace),
            *([("PROFILE", lambda r: r.profile)] if any(r.profile for r in rows) else []),
            ("APPS OK", _counts),
            ("STARTED", lambda r: fmt_time(r.started_at)),
            ("DURATION", lambda r: fmt_duration(r.started_at, r.finished_at)),
            ("OPERATOR", lambda r: r.operator),
        ],
        empty="No deployments recorded yet. Run `sbkube deploy --app-dir DIR` to make one.",
    )


@click.command("show")
@click.argument("deployment_id", shell_complete=complete_deployment_ids)
@click.option("--resources/--no-resources", default=True, help="List each resource (table).")
@output_option
@click.pass_context
def show_cmd(ctx: click.Context, deployment_id: str, resources: bool, fmt: str) -> None:
    """Show one deployment: its apps, Helm releases and resources.

    ID is a deployment id, a unique prefix of one, 'latest' or 'latest~N'.
    """
    from sbkube.state import DeploymentRepository, imported_from

    repo = DeploymentRepository(open_recovered(ctx))
    rec = repo.get(repo.resolve(deployment_id))
    reverted_by = repo.reverted_by(rec.deployment_id)
    if fmt != "table":
        # The rollback that undid this deployment, beside the record (None: none did).
        emit({**rec.to_dict(), "reverted_by": reverted_by}, fmt)
        return
    fields = [
        ("Deployment", rec.deployment_id),
        ("Command", rec.command + (" (dry-run)" if rec.dry_run else "")),
        ("Status", rec.status),
        ("Target", f"{rec.cluster}/{rec.namespace}"),
        *([("Profile", rec.profile)] if rec.profile else []),
        ("App dir", rec.app_dir),
        ("Started", fmt_time(rec.started_at)),
        ("Finished", fmt_time(rec.finished_at)),
        ("Duration", fmt_duration(rec.started_at, rec.finished_at)),
        ("Operator", f"{rec.operator}@{rec.host}" if rec.host else rec.operator),
        ("sbkube", rec.sbkube_version),
    ]
    if rec.rollback_target_id:
        fields.append(("Rollback to", rec.rollback_target_id))
    if rec.reverts_id:
        fields.append(("Reverts", f"{rec.reverts_id} (its failure policy's rollback)"))
    if reverted_by:
        fields.append(("Reverted by", f"{reverted_by} (the failure policy's rollback)"))
    original = imported_from(rec.command_args)
    if original is not None:
        fields.append(("Imported", f"from the original sbkube's database, its id {original}"))
    if rec.error_message:
        fields.append(("Error", rec.error_message))
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        click.echo(f"{key + ':':<{width + 1}} {safe(value) if value is not None else '-'}")
    click.echo("")
    columns: list[tuple[str, Any]] = [
        ("APP", lambda a: a.name),
        ("TYPE", lambda a: a.type),
        ("NAMESPACE", lambda a: a.namespace),
        ("STATUS", lambda a: a.status),
        ("RESOURCES", lambda a: len(a.resources)),
        ("DURATION", lambda a: fmt_duration(a.started_at, a.finished_at)),
        ("ERROR", lambda a: a.error_message.split("\n", 1)[0] if a.error_message else None),
    ]
    phased = [a for a in rec.apps if a.metadata.get("phase")]
    if not phased:
        echo_table(rec.apps, columns, empty="(no apps recorded)")
    # A multi-dir run: its apps grouped by phase, each phase with its app dir and target.
    groups: dict[str, list[Any]] = {}
    for app in phased:
        groups.setdefault(str(app.metadata["phase"]), []).append(app)
    for index, (phase, members) in enumerate(groups.items()):
        dirs = sorted({str(a.metadata.get("app_dir")) for a in members})
        targets = sorted({str(a.metadata.get("target")) for a in members})
        if index:
            click.echo("")
        click.echo(
            f"Phase {safe(phase)}: app dir {safe(', '.join(dirs))}, "
            f"target {safe(', '.join(targets))}"
        )
        echo_table(members, columns)
    for app in rec.apps:
        # A tool's whole error (every line helm printed) below the one-line table.
        if app.error_message and "\n" in app.error_message:
            click.echo(error_lines(app.error_message, prefix=f"{safe(app.name)}: "))
    sources = [(a, a.metadata["source"]) for a in rec.apps if a.metadata.get("source")]
    if sources:
        # Git and http apps: what was fetched (the commit a branch stood at, the download).
        click.echo("")
        echo_table(
            sources,
            [
                ("APP", lambda p: p[0].name),
                ("SOURCE", lambda p: p[1].get("repo") or p[1].get("url")),
                ("REF", lambda p: p[1].get("ref") or p[1].get("dest")),
                ("COMMIT/SHA256", lambda p: p[1].get("commit") or p[1].get("sha256")),
            ],
        )
    releases = [(a, h) for a in rec.apps for h in a.helm_releases]
    if releases:
        click.echo("")
        echo_table(
            releases,
            [
                ("RELEASE", lambda p: p[1].release_name),
                ("NAMESPACE", lambda p: p[1].namespace),
                ("CHART", lambda p: p[1].chart),
                ("VERSION", lambda p: p[1].chart_version),
                ("APP VERSION", lambda p: p[1].app_version),
                ("REVISION", lambda p: p[1].revision),
                ("STATUS", lambda p: p[1].status),
            ],
        )
    if resources:
        res = list(rec.iter_resources())
        if res:
            click.echo("")
            echo_table(
                res,
                [
                    ("APP", lambda p: p[0].name),
                    ("ACTION", lambda p: p[1].action),
                    ("KIND", lambda p: p[1].kind),
                    ("NAMESPACE", lambda p: p[1].namespace),
                    ("NAME", lambda p: p[1].name),
                    ("API VERSION", lambda p: p[1].api_version),
                ],
            )


@click.command("history")
@click.argument("app", shell_complete=complete_apps)
@click.option("--cluster", help="Only this cluster.")
@click.option("-n", "--namespace", help="Only this namespace.", shell_complete=complete_namespaces)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@output_option
@click.pass_context
def history_cmd(
    ctx: click.Context, app: str, cluster: str | None, namespace: str | None, limit: int, fmt: str
) -> None:
    """One app's timeline: every deployment that touched it, newest first.

    Apps of the same name on other clusters or namespaces are other apps: the CLUSTER and
    NAMESPACE columns tell them apart, and --cluster / -n keep one target.
    """
    from sbkube.state import DeploymentRepository

    rows = DeploymentRepository(open_recovered(ctx)).app_history(
        app, cluster=cluster, namespace=namespace, limit=limit
    )
    if fmt != "table":
        emit(rows, fmt)
        return
    echo_table(
        rows,
        [
            ("DEPLOYMENT", lambda r: r.deployment_id),
            ("STARTED", lambda r: fmt_time(r.started_at)),
            ("CLUSTER", lambda r: r.cluster),
            ("NAMESPACE", lambda r: r.namespace),
            *([("PROFILE", lambda r: r.profile)] if any(r.profile for r in rows) else []),
            ("COMMAND", lambda r: r.command),
            ("APP STATUS", lambda r: r.app_status),
            ("DEPLOYMENT STATUS", lambda r: r.deployment_status),
            ("CHART", lambda r: f"{r.chart}-{r.chart_version}" if r.chart_version else r.chart),
            ("REVISION", lambda r: r.revision),
            ("RESOURCES", lambda r: r.resource_count),
            ("OPERATOR", lambda r: r.operator),
        ],
        empty=f"No deployment of app '{app}' recorded.",
    )
