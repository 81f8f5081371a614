"""``sbkube state prune``: delete old deployments by a keep-last / older-than policy."""

from __future__ import annotations

import click

from sbkube.cli.common import open_db
from sbkube.cli.options import MAX_AGE_DAYS, MAX_KEEP, BoundedFloat, output_option
from sbkube.cli.output import echo_table, emit, fmt_time


@click.command("prune")
@click.option(
    "--keep-last",
    type=click.IntRange(0, MAX_KEEP),
    required=True,
    metavar="N",
    help="Keep the newest N deployments of every app on every target.",
)
@click.option(
    "--older-than",
    type=BoundedFloat(MAX_AGE_DAYS, "days"),
    required=True,
    metavar="DAYS",
    help="Only delete deployments started more than DAYS days ago.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@output_option
@click.pass_context
def prune_cmd(
    ctx: click.Context, keep_last: int, older_than: float, dry_run: bool, fmt: str
) -> None:
    """Delete old deployments from the history, per app and target.

    A deployment is deleted only when, for every app it contains, it is neither among
    the newest --keep-last deployments of that app on its target nor younger than
    --older-than days. Never deleted: the latest successful deployment of any app on a
    target, any deployment a rollback points to, unfinished deployments.

    \b
    Examples:
      sbkube state prune --keep-last 20 --older-than 90 --dry-run
      sbkube state prune --keep-last 5 --older-than 30 -o json
    """
    from sbkube.state import apply_prune, plan_prune

    db = open_db(ctx)
    plan = plan_prune(db, keep_last=keep_last, older_than_days=older_than)
    deleted = 0 if dry_run else apply_prune(db, plan)
    if fmt != "table":
        data = plan.to_dict()
        data["dry_run"] = dry_run
        data["deleted"] = deleted
        data["deleted_ids"] = [] if dry_run else list(plan.deployment_ids)
        emit(data, fmt)
        return
    if plan.delete:
        echo_table(
            plan.delete,
            [
                ("ID", lambda c: c.deployment_id),
                ("COMMAND", lambda c: c.command + (" (dry-run)" if c.dry_run else "")),
                ("STATUS", lambda c: c.status),
                ("CLUSTER", lambda c: c.cluster),
                ("NAMESPACE", lambda c: c.namespace),
                ("STARTED", lambda c: fmt_time(c.started_at)),
                ("APPS", lambda c: ",".join(c.apps)),
            ],
        )
        click.echo("")
    reasons = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in plan.kept_by_reason.items())
    kept = f"kept {plan.kept} of {plan.total}" + (f" ({reasons})" if reasons else "")
    if dry_run:
        click.echo(f"Would delete {len(plan.delete)} deployment(s); {kept}. (dry run)")
    else:
        click.echo(f"Deleted {deleted} deployment(s); {kept}.")
