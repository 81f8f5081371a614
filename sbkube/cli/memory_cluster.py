"""``sbkube memory-cluster serve``: a memory-cluster file as a Kubernetes API server."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("memory-cluster")
def memory_cluster() -> None:
    """The memory cluster: sbkube's local Kubernetes API server, kept in a JSON file.

    `--memory-cluster FILE` on deploy and rollback starts it inside that one command. To
    use one FILE from several processes at once, or from kubectl, helm or k9s, serve it
    and point them at the kubeconfig it writes.
    """


@memory_cluster.command("serve")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--kubeconfig",
    "kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a kubeconfig for the server here (mode 0600, context 'memory').",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default="a free port",
    help="Loopback port to listen on.",
)
@click.pass_context
def serve(ctx: click.Context, file: Path, kubeconfig: Path | None, port: int) -> None:
    """Serve FILE in the foreground until Ctrl-C or SIGTERM, then save it and exit 0.

    The server listens on 127.0.0.1 only. While FILE is served, any other use of it
    (a second `serve`, or `--memory-cluster FILE`) is refused; reach it through the
    kubeconfig instead.

    Examples:
      sbkube memory-cluster serve /tmp/demo.json --kubeconfig /tmp/demo.kubeconfig
      kubectl --kubeconfig /tmp/demo.kubeconfig get all -A
      sbkube deploy --app-dir examples/demo --kubeconfig /tmp/demo.kubeconfig
    """
    from sbkube.apiserver import serve as serve_file
    from sbkube.cli.options import refuse_special_file

    refuse_special_file(file, "memory cluster file")

    if kubeconfig is None:
        # --kubeconfig is also a global option, which takes it wherever it stands; only a
        # value typed on this command line counts (never $KUBECONFIG: that is the user's).
        root = ctx.find_root()
        if root.get_parameter_source("kubeconfig") == click.core.ParameterSource.COMMANDLINE:
            kubeconfig = Path(root.params["kubeconfig"])
    if kubeconfig is None:
        raise click.UsageError("Missing option '--kubeconfig' (where to write the kubeconfig).")
    refuse_special_file(kubeconfig, "--kubeconfig")
    raise SystemExit(serve_file(file, kubeconfig, port=port))
