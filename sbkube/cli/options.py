"""Options shared by several commands, and what they turn into.

``cluster_options`` (--kubeconfig/--context/--memory-cluster) and ``make_cluster`` for the
commands that talk to a cluster; ``app_dir_options`` for those that read a config;
``output_option`` (-o table|json|yaml) for every read command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sbkube.cli.output import FORMATS

if TYPE_CHECKING:
    from sbkube.cluster.port import Cluster

output_option = click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)


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


def make_cluster(kubeconfig: str | None, kube_context: str | None, memory: str | None) -> Cluster:
    """The cluster that ``cluster_options`` select: in-memory when --memory-cluster is given."""
    if memory:
        from sbkube.cluster.memory import MemoryCluster

        return MemoryCluster(path=Path(memory))
    from sbkube.cluster.kube import KubeCluster

    return KubeCluster(kubeconfig=kubeconfig, context=kube_context)
