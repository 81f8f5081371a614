"""``sbkube state diff|prune|export|import`` (registered on the ``state`` group).

Imported at the end of ``sbkube/cli/state.py``, once the ``state`` group exists.
"""

from __future__ import annotations

import sys
from typing import IO, Any

import click

from sbkube.cli.common import open_db, parse_since
from sbkube.cli.output import echo_table, emit, fmt_time, output_option
from sbkube.cli.state import state
from sbkube.errors import UsageError


@state.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--app", "apps", multiple=True, metavar="NAME", help="Only this app (repeatable).")
@click.option("--cluster", help="Resolve 'latest' / 'latest~N' within this cluster.")
@click.option("-n", "--namespace", help="Resolve 'latest' / 'latest~N' within this namespace.")
@output_option
@click.pass_context
def diff_cmd(
    ctx: click.Context,
    a: str,
    b: str,
    apps: tuple[str, ...],
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
    from sbkube.engine.diff import diff_deployments, render_text
    from sbkube.state import DeploymentRepository

    repo = DeploymentRepository(open_db(ctx))
    id_a = repo.resolve(a, cluster=cluster, namespace=namespace)
    id_b = repo.resolve(b, cluster=cluster, namespace=namespace)
    result = diff_deployments(repo.get(id_a), repo.get(id_b), apps=list(apps) or None)
    if fmt != "table":
        emit(result, fmt)
        return
    click.echo(render_text(result))


@state.command("prune")
@click.option(
    "--keep-last",
    type=click.IntRange(0),
    required=True,
    metavar="N",
    help="Keep the newest N deployments of every app on every target.",
)
@click.option(
    "--older-than",
    type=click.FloatRange(0),
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


@state.command("export")
@click.option("--since", help="Only deployments started since: 7d, 12h, 30m or an ISO date.")
@click.pass_context
def export_cmd(ctx: click.Context, since: str | None) -> None:
    """Write the history as JSON Lines on stdout, oldest first, one deployment a line.

    \b
    Examples:
      sbkube state export > history.jsonl
      sbkube state export --since 30d > last-month.jsonl
    """
    from sbkube.state import dump_line, export_deployments

    since_at = parse_since(since)
    out = sys.stdout
    count = 0
    for item in export_deployments(open_db(ctx), since=since_at):
        out.write(dump_line(item) + "\n")
        count += 1
    out.flush()
    click.echo(f"exported {count} deployment(s)", err=True)


def _open(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None


@state.command("import")
@click.argument("file", metavar="FILE")
@output_option
@click.pass_context
def import_cmd(ctx: click.Context, file: str, fmt: str) -> None:
    """Import a history written by `sbkube state export` ('-' reads stdin).

    Deployments keep their ids; those already in the store are skipped, so importing
    the same file twice is harmless. A file with a malformed line is refused as a whole
    (nothing imported), naming the line.

    \b
    Examples:
      sbkube --state postgresql+psycopg://db/sbkube state import history.jsonl
    """
    from sbkube.state import check_lines, import_deployments

    if file != "-":
        with _open(file) as fh:
            try:
                check_lines(fh, source=file)
            except UnicodeDecodeError as err:
                raise UsageError(f"{file}: not a UTF-8 text file ({err.reason})") from None
    db = open_db(ctx)
    fh = _open(file)
    try:
        result = import_deployments(db, fh, source="<stdin>" if file == "-" else file)
    except UnicodeDecodeError as err:
        raise UsageError(f"{file}: not a UTF-8 text file ({err.reason})") from None
    finally:
        if fh is not sys.stdin:
            fh.close()
    if fmt != "table":
        data: dict[str, Any] = result.to_dict()
        data["file"] = file
        emit(data, fmt)
        return
    click.echo(
        f"Imported {result.imported} deployment(s), skipped {result.skipped} already present."
    )


@state.command("locks")
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
            ("TARGET", lambda r: r[0].target),
            ("COMMAND", lambda r: r[0].command),
            ("DEPLOYMENT", lambda r: r[0].deployment_id),
            ("HOLDER", lambda r: f"{r[0].operator}@{r[0].host} pid {r[0].pid}"),
            ("SINCE", lambda r: fmt_time(r[0].acquired_at)),
            ("STATE", lambda r: f"stale: {r[1]}" if r[1] else "live"),
        ],
        empty="No deploy locks are held.",
    )


@state.command("unlock")
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
    click.echo(f"removed the lock of {removed.target}: {describe_holder(removed)}")
