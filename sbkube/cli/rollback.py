"""``sbkube rollback``: roll apps back to any recorded deployment."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sbkube.cli.common import open_db
from sbkube.cli.options import (
    cluster_options,
    complete_deployment_ids,
    concurrency_option,
    make_cluster,
    make_cluster_for,
    namespace_option,
    output_option,
    progress_for,
    wait_lock_option,
)
from sbkube.cli.output import echo_changes, echo_table, emit, error_lines, paint, safe
from sbkube.redaction import mask_text

if TYPE_CHECKING:
    from sbkube.engine.rollback_plan import RollbackPlan
    from sbkube.engine.rollback_run import RollbackResult


def print_plan(plan: RollbackPlan) -> None:
    click.echo(
        f"Rollback plan: {safe(plan.source_id)} -> {safe(plan.target_id)}  "
        f"target {safe(plan.cluster)}/{safe(plan.namespace)}"
    )
    echo_table(
        plan.apps,
        [
            ("APP", lambda a: a.name),
            ("TYPE", lambda a: a.type),
            ("ACTION", lambda a: a.action),
            ("RELEASE", lambda a: a.release_name),
            (
                "REVISION",
                lambda a: (
                    f"{a.from_revision} -> {a.to_revision} (new revision)"
                    if a.action == "helm-rollback"
                    else f"{a.from_revision} -> revision {a.to_revision}'s chart and values"
                    if a.action == "helm-upgrade"
                    else a.from_revision
                ),
            ),
            (
                "RESOURCES",
                lambda a: ", ".join(
                    f"{sum(1 for c in a.changes if c.action == act)} {act}"
                    for act in ("create", "update", "delete", "unchanged")
                    if any(c.action == act for c in a.changes)
                ),
            ),
        ],
        empty="(nothing to roll back)",
    )
    echo_changes(plan.apps)
    for warning in plan.warnings:
        click.echo(f"warning: {safe(warning)}", err=True)


@click.command()
@click.argument(
    "deployment_id", required=False, metavar="[ID]", shell_complete=complete_deployment_ids
)
@click.option(
    "--to",
    "to",
    metavar="TARGET",
    shell_complete=complete_deployment_ids,
    help="Deployment to roll back to (default: the last successful one before ID).",
)
@click.option("--app", "apps", multiple=True, metavar="NAME", help="Only this app (repeatable).")
@click.option(
    "--phase",
    "phases",
    multiple=True,
    metavar="NAME",
    help="Only the apps of this phase of a multi-dir run (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan and stop.")
@click.option(
    "--force",
    is_flag=True,
    help=(
        "Allow an unsuccessful TARGET, removing apps TARGET lacks (asked on a terminal "
        "otherwise), and leaving Secrets known only by digest as they are."
    ),
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@click.option(
    "--app-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Take the target namespace from this app dir's config.yaml (when ID is not given).",
)
@namespace_option
@wait_lock_option
@concurrency_option("Roll back")
@cluster_options
@output_option
@click.pass_context
def rollback(
    ctx: click.Context,
    deployment_id: str | None,
    to: str | None,
    apps: tuple[str, ...],
    phases: tuple[str, ...],
    dry_run: bool,
    force: bool,
    yes: bool,
    app_dir: Path | None,
    namespace: str | None,
    wait_lock: float,
    concurrency: int,
    kubeconfig: str | None,
    kube_context: str | None,
    memory_cluster: str | None,
    fmt: str,
) -> None:
    """Roll apps back to any recorded deployment.

    ID (default: the latest deployment of the target) is the deployment rolled back from;
    TARGET is the one rolled back to. Ids may be full ids, unique prefixes, 'latest' or
    'latest~N'. Helm apps are rolled back to the revision TARGET recorded; YAML apps get
    TARGET's manifests re-applied, objects TARGET lacked deleted, deleted ones recreated.
    The plan is printed first; the rollback is recorded as a new deployment.

    \b
    Examples:
      sbkube rollback --app-dir apps/demo --dry-run
      sbkube rollback latest --to latest~2 --app redis
      sbkube rollback dep-20261126-085120-3f9a1c --to dep-20261125-101500-aa01bc --force
      sbkube rollback --app-dir platform --phase data
    """
    from sbkube.engine.rollback_plan import RemovalNeedsConfirmation
    from sbkube.engine.rollback_run import rollback as run_rollback
    from sbkube.engine.runner import interrupt_on_sigterm

    configured_cluster = None
    if app_dir is not None:
        from sbkube.config import load_config
        from sbkube.engine.phases import phases_of

        phased = phases_of(app_dir, None)
        if phased is not None:  # a multi-dir run is recorded under its file's namespace
            namespace, configured_cluster = namespace or phased.namespace, phased.cluster
        else:
            config = load_config(app_dir).config
            namespace, configured_cluster = namespace or config.namespace, config.cluster
    if app_dir is not None:
        # The app dir's settings (the original sbkube's kubeconfig) name its cluster too.
        cluster = make_cluster_for(app_dir, None, None, kubeconfig, kube_context, memory_cluster)
    else:
        cluster = make_cluster(kubeconfig, kube_context, memory_cluster)
    interactive = sys.stdin.isatty() and not yes and fmt == "table"

    def confirm(plan: RollbackPlan) -> bool:
        if fmt == "table":
            print_plan(plan)
        if not interactive:
            return True
        return click.confirm("Proceed with this rollback?", default=False, err=True)

    progress = progress_for(ctx, fmt)
    db = open_db(ctx)

    def run(allow_removal: bool) -> RollbackResult:
        return run_rollback(
            db,
            cluster,
            deployment_id=deployment_id,
            to=to,
            apps=apps or None,
            dry_run=dry_run,
            force=force,
            allow_removal=allow_removal,
            namespace=namespace,
            wait_lock=wait_lock,
            progress=progress,
            confirm=confirm,
            command_args=sys.argv[1:],
            configured_cluster=configured_cluster,
            concurrency=concurrency,
            phases=phases or None,
        )

    with interrupt_on_sigterm():
        try:
            result = run(allow_removal=False)
        except RemovalNeedsConfirmation as err:
            # An app TARGET lacks would be removed: ask on a terminal, else --force decides.
            if not (interactive or (dry_run and sys.stdin.isatty())):
                raise
            click.echo(f"note: {safe(mask_text(err.message))}", err=True)
            if not click.confirm(f"Remove app {err.app} as part of the rollback?", err=True):
                raise
            result = run(allow_removal=True)
    if fmt != "table":
        # Each app's (name, status, error) as the JSON always had them, beside the outcomes.
        emit({**result.to_dict(), "app_status": result.app_status}, fmt)
    elif dry_run:
        print_plan(result.plan)
        click.echo("\nDry run: nothing was changed or recorded.")
    else:
        click.echo(f"\nRollback {safe(result.deployment_id)}: {paint(str(result.status))}")
        for name, status, error in result.app_status:
            if error:
                prefix = f"  {safe(name)}: {paint(status)}: "
                click.echo(error_lines(mask_text(error), prefix=prefix))
    if not result.ok:
        ctx.exit(1)
