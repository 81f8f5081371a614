"""The root ``sbkube`` group and ``main``, the console script.

Each command group lives in its own module and is imported only when it runs, so
``sbkube --help`` and ``sbkube state list`` do not pay for helm, pydantic or Alembic.
Every :class:`~sbkube.errors.SbkubeError` becomes one ``error: …`` line on stderr and its
exit code (2 bad input, 1 failure); ``--debug`` shows the traceback instead.

Global options (``--state``, ``--debug``, ``--kubeconfig``, ``--context``/``--kube-context``,
``--no-color``, ``-q``, ``-v``) work before or after the subcommand, as kubectl's and helm's
do: :class:`RootGroup` moves them in front of the subcommand before click parses.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from sbkube import __version__
from sbkube.cli.common import LazyCommand, LazyGroup

_COMMANDS: dict[str, LazyCommand] = {
    "deploy": LazyCommand(
        "sbkube.cli.deploy", "deploy", "Deploy the apps of an app dir and record the deployment."
    ),
    "diff": LazyCommand(
        "sbkube.cli.diff",
        "diff",
        "Show what a deploy would change on the live cluster, field by field.",
    ),
    "uninstall": LazyCommand(
        "sbkube.cli.uninstall",
        "uninstall",
        "Remove an app dir's apps from the cluster (recorded; rollback brings them back).",
    ),
    "status": LazyCommand(
        "sbkube.cli.status",
        "status",
        "Drift: compare the recorded deployment with the live cluster, per app.",
    ),
    "schema": LazyCommand("sbkube.cli.schema", "schema", "Print config.yaml's JSON Schema."),
    "config": LazyCommand(
        "sbkube.cli.config",
        "config",
        "Convert an app dir in the original sbkube's formats to config.yaml.",
    ),
    "completion": LazyCommand(
        "sbkube.cli.completion",
        "completion",
        "Print the shell completion script (bash, zsh or fish).",
    ),
    "template": LazyCommand(
        "sbkube.cli.deploy", "template", "Render every app to the manifests deploy would apply."
    ),
    "rollback": LazyCommand(
        "sbkube.cli.rollback", "rollback", "Roll apps back to any recorded deployment."
    ),
    "memory-cluster": LazyCommand(
        "sbkube.cli.memory_cluster",
        "memory_cluster",
        "Serve a memory-cluster file as a local Kubernetes API server.",
    ),
    "state": LazyCommand(
        "sbkube.cli.state",
        "state",
        "List, show, diff, export and prune recorded deployments; see locks.",
    ),
}


# Global options: (flag takes a value). Moved before the subcommand wherever they are given.
GLOBAL_OPTIONS: dict[str, bool] = {
    "--state": True,
    "--debug": False,
    "--kubeconfig": True,
    "--context": True,
    "--kube-context": True,
    "--no-color": False,
    "-q": False,
    "--quiet": False,
    "-v": False,
    "--verbose": False,
}


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with every global option (and its value) moved to the front.

    Stops at ``--``; ``--opt=value`` stays one token. What follows a value-taking option
    is its value, whatever it looks like.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        takes_value = GLOBAL_OPTIONS.get(name)
        if takes_value is None:
            rest.append(arg)
        elif takes_value and "=" not in arg and i + 1 < len(args):
            front += [arg, args[i + 1]]
            i += 1
        else:
            front.append(arg)
        i += 1
    return front + rest


class RootGroup(LazyGroup):
    """The root group: global options are taken wherever they appear."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))


@click.group(
    cls=RootGroup,
    table=_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "The state store is a SQLite file by default (~/.local/state/sbkube/state.db); "
        "set --state or SBKUBE_STATE_URL to a path or a postgresql+psycopg:// URL to share "
        "one history across machines.\n\n"
        "\b\nExamples:\n"
        "  sbkube deploy --app-dir ./apps/demo --dry-run\n"
        "  sbkube diff --app-dir ./apps/demo --exit-code\n"
        "  sbkube state list --namespace demo -o json\n"
        "  sbkube state diff latest~1 latest\n"
        "  sbkube rollback --app-dir ./apps/demo --to latest~2 --dry-run\n"
        "\nRun 'sbkube COMMAND --help' for a command's options."
    ),
)
@click.option(
    "--state",
    "state_url",
    envvar="SBKUBE_STATE_URL",
    metavar="PATH|URL",
    help="State store: SQLite file path or SQLAlchemy URL [env: SBKUBE_STATE_URL].",
)
@click.option("--debug", is_flag=True, envvar="SBKUBE_DEBUG", help="Show tracebacks on errors.")
@click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    metavar="FILE",
    help="kubeconfig for helm and kubectl [env: KUBECONFIG].",
)
@click.option(
    "--context", "--kube-context", "kube_context", metavar="NAME", help="kubeconfig context."
)
@click.option(
    "--no-color", is_flag=True, help="No colour (also when NO_COLOR is set or output is piped)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress lines or notes on stderr.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Progress always, and every helm/kubectl command run."
)
@click.version_option(__version__, "--version", prog_name="sbkube")
@click.pass_context
def cli(
    ctx: click.Context,
    state_url: str | None,
    debug: bool,
    kubeconfig: str | None,
    kube_context: str | None,
    no_color: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """sbkube deploys Helm charts and Kubernetes YAML from one config.yaml and keeps a
    durable record of every deployment: list it, show it, diff it, roll back to it.

    Global options may also be given after the command (sbkube deploy --state FILE ...).
    """
    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose exclude each other")
    if state_url:
        from sbkube.cli.options import refuse_special_store

        refuse_special_store(state_url)
    ctx.ensure_object(dict)
    ctx.obj.update(
        state_url=state_url,
        debug=debug,
        kubeconfig=kubeconfig,
        kube_context=kube_context,
        quiet=quiet,
        verbose=verbose,
    )
    # https://no-color.org: any non-empty NO_COLOR turns colour off. Child contexts
    # inherit ``color``, and click.echo strips styles when it is False.
    if no_color or os.environ.get("NO_COLOR"):
        ctx.color = False
    if verbose:
        import logging

        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("sbkube")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> Any:
    """Run the command line; errors become one ``error: ...`` line and an exit code."""
    from sbkube.errors import ClusterError, FieldRefusals, SbkubeError
    from sbkube.redaction import mask_text

    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(
        os.environ.get("SBKUBE_DEBUG")
    )
    try:
        return cli.main(args=argv, prog_name="sbkube", standalone_mode=False)
    except SbkubeError as err:
        if debug:
            raise
        from sbkube.cli.output import error_lines, safe

        message = mask_text(err.message)
        # Only a tool's error has detail lines (helm's list of schema violations), also when
        # it is the cause of ours (a chart that fails to render is bad config); in any other
        # message a line break came with a name (an operator, a cluster) and is shown
        # escaped, so the error stays one line.
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, ClusterError):
            cause = cause.__cause__
        many = cause is not None or isinstance(err, FieldRefusals)
        text = error_lines(message) if many else f"error: {safe(message)}"
        click.echo(text, err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as err:
        # One line like every other error, pointing at the help that click would print.
        from sbkube.cli.output import safe

        hint = f" (see '{safe(err.ctx.command_path)} --help')" if err.ctx is not None else ""
        click.echo(f"error: {safe(mask_text(_one_line(err.format_message())))}{hint}", err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        from sbkube.cli.output import safe

        click.echo(f"error: {safe(mask_text(_one_line(err.format_message())))}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as err:
        # A fault sbkube did not foresee: still one line (the traceback is for --debug).
        if debug:
            raise
        from sbkube.cli.output import safe

        first = str(err).strip().splitlines()
        detail = f": {safe(first[0])}" if first else ""
        click.echo(
            f"error: unexpected {type(err).__name__}{detail} (run with --debug for the traceback)",
            err=True,
        )
        sys.exit(1)
