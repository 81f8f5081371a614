"""``sbkube state locks|unlock``: see deploy locks and clear a stuck one."""

from __future__ import annotations

import click

from sbkube.cli.common import open_db
from sbkube.cli.options import output_option
from sbkube.cli.output import echo_table, emit, fmt_time, safe
from sbkube.errors import UsageError


@click.command("locks")
@output_option
@click.pass_context
def locks_cmd(ctx: click.Context, fmt: str) -> None:
    """List deploy locks: who holds which target, since when, and whether the holder is alive.

    A lock whose holder died is taken over by the next deploy automatically; one whose
    holder is alive but stuck can be removed with `sbkube state unlock`.
    """
    from datetime import UTC, datetime

    from sbkube.state import DeployLocks, stale_reason

    locks = DeployLocks(open_db(ctx))
    now = datetime.now(UTC)
    rows = [(rec, stale_reason(rec, now, locks.host)) for rec in locks.all()]
    if fmt != "table":
        emit([{**rec.to_dict(), "stale": reason} for rec, reason in rows], fmt)
        return
    echo_table(
        rows,
        [
            ("TARGET", lambda r: r[0].shown),
            ("COMMAND", lambda r: r[0].command),
            ("DEPLOYMENT", lambda r: r[0].deployment_id),
            ("HOLDER", lambda r: f"{r[0].operator}@{r[0].host} pid {r[0].pid}"),
            ("SINCE", lambda r: fmt_time(r[0].acquired_at)),
            ("STATE", lambda r: f"stale: {r[1]}" if r[1] else "live"),
        ],
        empty="No deploy locks are held.",
    )


@click.command("unlock")
@click.option("--cluster", required=True, help="Cluster of the locked target.")
@click.option("-n", "--namespace", required=True, help="Namespace of the locked target.")
@click.option("--force", is_flag=True, help="Required: remove the lock even if its holder lives.")
@click.pass_context
def unlock_cmd(ctx: click.Context, cluster: str, namespace: str, force: bool) -> None:
    """Remove a target's deploy lock (like `terraform force-unlock`).

    Only for a holder that is stuck: a live deploy that loses its lock keeps running, and
    a second deploy may then run beside it. Dead holders need nothing: the next deploy
    takes their lock over by itself.
    """
    from sbkube.errors import NotFoundError
    from sbkube.state import DeployLocks, describe_holder

    if not force:
        raise UsageError("state unlock: --force is required (a live deploy may still hold it)")
    removed = DeployLocks(open_db(ctx)).force_release(cluster, namespace)
    if removed is None:
        raise NotFoundError(f"target {cluster}/{namespace} is not locked")
    click.echo(f"removed the lock of {safe(removed.shown)}: {safe(describe_holder(removed))}")
