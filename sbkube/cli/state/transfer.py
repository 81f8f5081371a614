"""``sbkube state export|import``: the history as JSON Lines, out and back in."""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Any

import click

from sbkube.cli.common import open_db, parse_since
from sbkube.cli.options import output_option
from sbkube.cli.output import emit
from sbkube.errors import UsageError

if TYPE_CHECKING:
    from sbkube.state import ImportResult


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
@click.argument("file", metavar="FILE", required=False)
@click.option(
    "--from-sbkube-db",
    "legacy_db",
    metavar="DB",
    help="Import the original sbkube's history (its ~/.sbkube/deployments.db), read-only.",
)
@output_option
@click.pass_context
def import_cmd(ctx: click.Context, file: str | None, legacy_db: str | None, fmt: str) -> None:
    """Import a history written by `sbkube state export` ('-' reads stdin), or the
    original sbkube's database with --from-sbkube-db.

    Deployments keep their ids; those already in the store are skipped, so importing
    the same file twice is harmless. A file with a malformed line is refused as a whole
    (nothing imported), naming the line.

    \b
    Examples:
      sbkube --state postgresql+psycopg://db/sbkube state import history.jsonl
      sbkube state import --from-sbkube-db ~/.sbkube/deployments.db
    """
    from sbkube.state import check_lines, import_deployments, import_legacy

    if (file is None) == (legacy_db is None):
        raise UsageError("state import: give either FILE or --from-sbkube-db DB")
    db = open_db(ctx)
    if legacy_db is not None:
        _report(import_legacy(db, legacy_db), legacy_db, fmt)
        return
    assert file is not None
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
    _report(result, file, fmt)


def _report(result: ImportResult, file: str, fmt: str) -> None:
    if fmt != "table":
        data: dict[str, Any] = result.to_dict()
        data["file"] = file
        emit(data, fmt)
        return
    click.echo(
        f"Imported {result.imported} deployment(s), skipped {result.skipped} already present."
    )
