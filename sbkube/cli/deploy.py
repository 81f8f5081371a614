"""``sbkube deploy`` and ``sbkube template``."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from sbkube.cli.output import echo_changes, echo_table, emit
from sbkube.errors import InterruptedDeployment


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--kubeconfig/--context for a real cluster, --memory-cluster for the in-memory one."""
    for opt in reversed(
        [
            click.option(
                "--kubeconfig",
                envvar="KUBECONFIG",
                metavar="FILE",
                help="kubeconfig for helm and kubectl [env: KUBECONFIG].",
            ),
            click.option("--context", "kube_context", metavar="NAME", help="kubeconfig context."),
            click.option(
                "--memory-cluster",
                envvar="SBKUBE_MEMORY_CLUSTER",
                metavar="FILE",
                help=(
                    "Use sbkube's in-memory cluster, kept in FILE (JSON), instead of a real "
                    "one: for trying sbkube out and for tests [env: SBKUBE_MEMORY_CLUSTER]."
                ),
            ),
        ]
    ):
        f = opt(f)
    return f


def app_dir_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--app-dir, --config-file and --app: which config and which of its apps."""
    for opt in reversed(
        [
            click.option(
                "--app-dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=Path("."),
                show_default=True,
                help="Directory holding config.yaml.",
            ),
            click.option(
                "--config-file", default="config.yaml", show_default=True, help="Config file name."
            ),
            click.option(
                "--app", "apps", multiple=True, metavar="NAME", help="Only this app (repeatable)."
            ),
        ]
    ):
        f = opt(f)
    return f


def make_cluster(kubeconfig: str | None, kube_context: str | None, memory: str | None) -> Any:
    if memory:
        from sbkube.cluster.memory import MemoryCluster

        return MemoryCluster(path=Path(memory))
    from sbkube.cluster.kube import KubeCluster

    return KubeCluster(kubeconfig=kubeconfig, context=kube_context)


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into an exception so the deployment is marked interrupted and the lock
    released by this process before it exits (Ctrl-C already raises KeyboardInterrupt)."""

    def handler(signum: int, _frame: Any) -> None:
        raise InterruptedDeployment(f"interrupted by {signal.Signals(signum).name}", exit_code=143)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Progress:
    """Per-app progress lines with timing, on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.monotonic()

    def __call__(self, line: str) -> None:
        if self.enabled:
            click.echo(f"{time.monotonic() - self.start:6.1f}s  {line}", err=True)


def _release_text(rel: Any) -> str | None:
    if rel is None:
        return None
    if rel.from_revision is None:
        return f"{rel.action} rev {rel.to_revision}"
    return f"{rel.action} rev {rel.from_revision}->{rel.to_revision}"


def print_result(result: Any) -> None:
    head = "Plan (dry run, nothing applied or recorded)" if result.dry_run else "Deployment"
    ident = f" {result.deployment_id}" if result.deployment_id else ""
    click.echo(f"{head}{ident}: {result.status}  target {result.cluster}/{result.namespace}")
    echo_table(
        result.apps,
        [
            ("APP", lambda a: a.name),
            ("TYPE", lambda a: a.type),
            ("NAMESPACE", lambda a: a.namespace),
            ("STATUS", lambda a: a.status),
            (
                "RELEASE",
                lambda a: _release_text(a.release),
            ),
            ("CHANGES", lambda a: a.error or a.summary),
            ("TIME", lambda a: f"{a.seconds:.1f}s"),
        ],
    )
    echo_changes(result.apps)


@click.command()
@app_dir_options
@click.option("--dry-run", is_flag=True, help="Compute the plan; apply and record nothing.")
@click.option(
    "--wait-lock",
    type=click.FloatRange(0),
    default=0,
    metavar="SECONDS",
    help="Wait this long for another deploy to the same target to finish.",
)
@cluster_options
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def deploy(
    ctx: click.Context,
    app_dir: Path,
    config_file: str,
    apps: tuple[str, ...],
    dry_run: bool,
    wait_lock: float,
    kubeconfig: str | None,
    kube_context: str | None,
    memory_cluster: str | None,
    fmt: str,
) -> None:
    """Deploy the apps of an app dir, in depends_on order, and record the deployment.

    Helm apps are installed or upgraded with `helm upgrade --install`; YAML apps are applied
    with ownership labels, and objects sbkube applied before but the config no longer has
    are pruned. Every app, release and resource is recorded in the state store.

    Exit code: 0 success, 1 some app failed (or the lock is held), 2 bad input.

    \b
    Examples:
      sbkube deploy --app-dir apps/demo
      sbkube deploy --app-dir apps/demo --app redis --dry-run
      sbkube deploy --app-dir apps/demo --memory-cluster /tmp/cluster.json
    """
    from sbkube.engine.deployer import deploy as run_deploy

    cluster = make_cluster(kubeconfig, kube_context, memory_cluster)
    progress = Progress(fmt == "table" or sys.stderr.isatty())
    with interrupt_on_sigterm():
        result = run_deploy(
            app_dir,
            cluster=cluster,
            # Opened by the engine once the config is known to be valid: bad input must not
            # create (or be masked by an unreachable) state store.
            db=(ctx.find_root().obj or {}).get("state_url"),
            apps=apps or None,
            dry_run=dry_run,
            wait_lock=wait_lock,
            config_file=config_file,
            progress=progress,
            command_args=sys.argv[1:],
        )
    if fmt == "json":
        emit(result, "json")
    else:
        print_result(result)
    if not result.ok:
        ctx.exit(1)


@click.command()
@app_dir_options
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one <app>.yaml per app here instead of printing to stdout.",
)
def template(
    app_dir: Path, config_file: str, apps: tuple[str, ...], output_dir: Path | None
) -> None:
    """Render every app to the manifests deploy would apply.

    Helm apps go through the real `helm template`; YAML apps get their namespace defaulted
    and sbkube's ownership labels. No cluster is contacted and nothing is recorded.
    """
    import yaml

    from sbkube.cluster.memory import MemoryCluster
    from sbkube.config import load_config
    from sbkube.engine.deployer import prepare_apps

    loaded = load_config(app_dir, config_file)
    works = prepare_apps(loaded, loaded.select(list(apps) or None), MemoryCluster())
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
    for work in works:
        docs = [o.manifest for o in work.objects]
        text = yaml.safe_dump_all(docs, sort_keys=False) if docs else ""
        header = f"# sbkube app: {work.name} ({work.type}, namespace {work.namespace})\n"
        if output_dir is not None:
            target = output_dir / f"{work.name}.yaml"
            target.write_text(header + text)
            click.echo(f"wrote {target} ({len(docs)} objects)", err=True)
        else:
            click.echo("---\n" + header + text, nl=False)
