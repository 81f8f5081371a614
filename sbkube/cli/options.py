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

#: The longest --wait-lock: a day. Longer is a typo (or inf), not a plan.
MAX_WAIT_SECONDS = 86_400.0
#: The largest --older-than: a thousand years, well inside what a date can hold.
MAX_AGE_DAYS = 365_000.0


class BoundedFloat(click.ParamType):
    """A finite number in [0, maximum]. click's FloatRange lets nan through (every
    comparison with nan is false) and accepts inf and 1e309 (= inf)."""

    name = "number"

    def __init__(self, maximum: float, unit: str) -> None:
        self.maximum = maximum
        self.unit = unit

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float | int) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number of {self.unit}", param, ctx)
        if not 0 <= number <= self.maximum:  # False for nan, as wanted
            self.fail(
                f"{value!r} is not a number of {self.unit} from 0 to {self.maximum:g}", param, ctx
            )
        return number


wait_lock_option = click.option(
    "--wait-lock",
    type=BoundedFloat(MAX_WAIT_SECONDS, "seconds"),
    default=0,
    metavar="SECONDS",
    help="Wait this long for another deploy to the same target to finish (at most a day).",
)

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
        from sbkube.errors import ConfigError

        try:
            return MemoryCluster(path=Path(memory))
        except (AttributeError, TypeError, KeyError, ValueError) as err:
            # A JSON file of the wrong shape (a list, a string, missing keys).
            raise ConfigError(
                f"--memory-cluster {memory}: not a memory cluster file "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
            ) from err
    from sbkube.cluster.kube import KubeCluster

    return KubeCluster(kubeconfig=kubeconfig, context=kube_context)
