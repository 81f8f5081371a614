"""``sbkube state export|import``: the history as JSON Lines, out and back in."""

from __future__ import annotations

import sys
from typing import IO, Any

import click

from sbkube.cli.common import open_db, parse_since
from sbkube.cli.options import output_option
from sbkube.cli.output import emit
from sbkube.errors import UsageError


@click.command("export")
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


@click.command("import")
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

    db = open_db(ctx)
    if file != "-":
        with _open(file) as fh:
            try:
                check_lines(fh, source=file, db=db)
            except UnicodeDecodeError as err:
                raise UsageError(f"{file}: not a UTF-8 text file ({err.reason})") from None
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
