"""Options shared by several commands, and what they turn into.

``cluster_options`` (--kubeconfig/--context/--memory-cluster) and ``make_cluster`` for the
commands that talk to a cluster; ``app_dir_options`` for those that read a config;
``namespace_option`` (-n) and ``values_options`` (--set, -f) for those that deploy or
plan; ``output_option`` (-o table|json|yaml) for every command with structured output;
``progress_for`` for the per-app progress lines; ``concurrency_option`` (--concurrency N) for
the commands that run apps. Shell completion of deployment ids, app
names and namespaces is attached here too (``complete_*``), so every command that takes
them completes them.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sbkube.cli.output import FORMATS
from sbkube.errors import UsageError
from sbkube.model import MAX_CONCURRENCY

if TYPE_CHECKING:
    from sbkube.cluster.port import Cluster
    from sbkube.config.phases import PhasesFile

#: The longest --wait-lock: a day. Longer is a typo (or inf), not a plan.
MAX_WAIT_SECONDS = 86_400.0
#: The largest --older-than: a thousand years, well inside what a date can hold.
MAX_AGE_DAYS = 365_000.0
#: The largest --keep-last: far above any history, well inside a 64-bit SQL integer.
MAX_KEEP = 1_000_000_000


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


class Concurrency(click.ParamType):
    """A whole number of apps at once, 1 to MAX_CONCURRENCY (one ``error:`` line otherwise)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                number = 0
        if not 1 <= number <= MAX_CONCURRENCY:
            self.fail(
                f"{value!r} is not a number of apps at once (1 or more, at most {MAX_CONCURRENCY})",
                param,
                ctx,
            )
        return number


def concurrency_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--concurrency",
        type=Concurrency(),
        default=4,
        show_default=True,
        metavar="N",
        help=f"{what} at most N apps at once, following depends_on (1: one by one, in order).",
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
            click.option(
                "--context",
                "--kube-context",
                "kube_context",
                metavar="NAME",
                help="kubeconfig context.",
            ),
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
    """--app-dir, --config-file, --profile, --app, -l/--selector and --no-deps: which
    config and which of its apps."""
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
                "--config-file",
                default=None,
                help=(
                    "Config file name [default: sbkube.yaml when present, else config.yaml; "
                    "either sbkube format is read]."
                ),
            ),
            click.option(
                "--profile",
                metavar="ENV",
                default=None,
                help=(
                    "Apply the config's environments.ENV overlay (the original's pair: "
                    "read sources-ENV.yaml); recorded with the deployment."
                ),
            ),
            click.option(
                "--app",
                "apps",
                multiple=True,
                metavar="NAME",
                help="Only this app (repeatable).",
                shell_complete=complete_apps,
            ),
            click.option(
                "-l",
                "--selector",
                "selectors",
                multiple=True,
                metavar="KEY=VALUE[,KEY!=VALUE]",
                help=(
                    "Only the apps whose labels match, with the apps they need (helmfile's "
                    "syntax: commas AND, repeated options OR; every app also has the labels "
                    "name, namespace and type)."
                ),
            ),
            click.option(
                "--no-deps",
                is_flag=True,
                help="With --selector: only the matching apps, not the apps they need; "
                "with --phase: only the phases named; and not the app dirs a config's "
                "deps: names.",
            ),
        ]
    ):
        f = opt(f)
    return f


_SPECIAL_FILES = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_special_file(path: str | os.PathLike[str], what: str) -> None:
    """Exit 2 when ``path`` exists and is neither a regular file nor a directory.

    A store or memory-cluster path naming a device (``/dev/null``), a FIFO or a socket
    would be opened, written to, or replaced by a regular file by an atomic save: refused
    before anything touches it. A missing path is left to the code that creates it."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = next((name for test, name in _SPECIAL_FILES if test(mode)), "not a regular file")
    raise UsageError(f"{what} {os.fspath(path)}: is {kind}, not a regular file; refused")


_SQLITE_URL = re.compile(r"sqlite(?:\+\w+)?:///(?P<path>[^?]*)")


def refuse_special_store(state_url: str | None) -> None:
    """:func:`refuse_special_file` for a ``--state`` path or ``sqlite:///PATH`` URL."""
    if not state_url:
        return
    if "://" not in state_url and not state_url.startswith("sqlite:"):
        refuse_special_file(os.path.expanduser(state_url), "--state")
        return
    m = _SQLITE_URL.match(state_url)
    if m and m.group("path") and not m.group("path").startswith(("file:", ":memory:")):
        refuse_special_file(os.path.expanduser(m.group("path")), "--state")


def make_cluster(kubeconfig: str | None, kube_context: str | None, memory: str | None) -> Cluster:
    """The cluster that ``cluster_options`` select: in-memory when --memory-cluster is given.

    --kubeconfig and --context are global options (taken before or after the command), so
    the root's values fill in what the command itself did not get."""
    root = click.get_current_context(silent=True)
    obj = (root.find_root().obj or {}) if root is not None else {}
    kubeconfig = kubeconfig or obj.get("kubeconfig")
    kube_context = kube_context or obj.get("kube_context")
    if memory:
        from sbkube.cluster.memory import MemoryCluster
        from sbkube.errors import ConfigError

        refuse_special_file(memory, "--memory-cluster")
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


def make_cluster_for(
    app_dir: Path,
    config_file: str | None,
    profile: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    memory: str | None,
) -> Cluster:
    """``make_cluster``, where the app dir's settings (the original sbkube's
    ``kubeconfig``/``kubeconfig_context``) fill in what the command line did not give."""
    if not memory:
        from sbkube.config.loader import config_cluster

        root = click.get_current_context(silent=True)
        obj = (root.find_root().obj or {}) if root is not None else {}
        named_config, named_context = config_cluster(app_dir, config_file, profile)
        kubeconfig = kubeconfig or obj.get("kubeconfig") or named_config
        kube_context = kube_context or obj.get("kube_context") or named_context
    return make_cluster(kubeconfig, kube_context, memory)


#: ``--phase``'s help of the commands that read a run: what deploy would run.
READ_PHASES = "this phase's apps and those of the phases it needs (--no-deps: this phase's alone)"


def phase_option(taken: str) -> Callable[..., Any]:
    """``--phase NAME`` (repeatable, into ``phases``): which phases of a file of phases
    the command takes; ``taken`` says which, for its help."""
    return click.option(
        "--phase",
        "phases",
        multiple=True,
        metavar="NAME",
        help=f"A file of phases: {taken} (repeatable).",
    )


def refuse_for_phases(
    app_dir: Path, phased: PhasesFile | None, phases: Sequence[str], namespace: str | None
) -> None:
    """The options a read of a file of phases (status, diff, template) cannot take, as
    usage errors: ``--phase`` of a plain app dir, ``-n`` of a file of phases."""
    if phased is None and phases:
        raise click.UsageError(f"--phase: {app_dir} has no phases: in its config")
    if phased is not None and namespace is not None:
        raise click.UsageError(
            "-n/--namespace: a file of phases is recorded under its own namespace: "
            f"{phased.namespace}"
        )


def values_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--set and -f/--values: Helm values on the command line, over config.yaml's."""
    for opt in reversed(
        [
            click.option(
                "--set",
                "set_values",
                multiple=True,
                metavar="[APP:]KEY=VALUE",
                help=(
                    "Set a Helm value (repeatable; dotted keys, a=1,b=2 like helm). "
                    "Every Helm app, or only APP. Wins over config.yaml's values and set."
                ),
            ),
            click.option(
                "-f",
                "--values",
                "values_files",
                multiple=True,
                metavar="[APP:]FILE",
                help="A values file on top of config.yaml's (repeatable; every Helm app or APP).",
            ),
        ]
    ):
        f = opt(f)
    return f


def command_line_values(files: tuple[str, ...], sets: tuple[str, ...]) -> Any:
    """What ``values_options`` gave, for ``load_config(values=...)`` (None when nothing)."""
    if not files and not sets:
        return None
    from sbkube.config.command_line import CommandLineValues

    return CommandLineValues(files=files, sets=sets)


def root_obj(ctx: click.Context) -> dict[str, Any]:
    return ctx.find_root().obj or {}


def progress_for(ctx: click.Context, fmt: str) -> Any:
    """Progress lines on stderr: with a table, or on a terminal; always with -v; never
    with -q."""
    import sys

    from sbkube.cli.output import Progress

    obj = root_obj(ctx)
    enabled = not obj.get("quiet") and (
        bool(obj.get("verbose")) or fmt == "table" or sys.stderr.isatty()
    )
    return Progress(enabled, color=ctx.color)


# -- shell completion ------------------------------------------------------------------
# Completion runs the real program with _SBKUBE_COMPLETE set; every failure (no store, no
# config) must complete nothing rather than print an error into the user's prompt.


def _completion_app_dir(ctx: click.Context) -> Path:
    app_dir = ctx.params.get("app_dir")
    return Path(app_dir) if app_dir else Path(".")


def complete_apps(ctx: click.Context, _param: Any, incomplete: str) -> list[Any]:
    """App names from the app dir's config.yaml."""
    from click.shell_completion import CompletionItem

    try:
        from sbkube import yamlio

        config_file = ctx.params.get("config_file") or "config.yaml"
        raw = yamlio.load((_completion_app_dir(ctx) / config_file).read_text())
        names = sorted((raw or {}).get("apps") or {})
    except Exception:
        return []
    return [CompletionItem(n) for n in names if str(n).startswith(incomplete)]


def _completion_db(ctx: click.Context) -> Any:
    import os

    from sbkube.state import DeploymentDatabase

    url = root_obj(ctx).get("state_url") or os.environ.get("SBKUBE_STATE_URL")
    return DeploymentDatabase(url)


def complete_namespaces(ctx: click.Context, _param: Any, incomplete: str) -> list[Any]:
    """Namespaces recorded in the state store, and config.yaml's."""
    from click.shell_completion import CompletionItem

    found: set[str] = set()
    try:
        from sbkube.state import list_deployments

        found |= {r.namespace for r in list_deployments(_completion_db(ctx), limit=500)}
    except Exception:
        pass
    try:
        from sbkube import yamlio

        raw = yamlio.load((_completion_app_dir(ctx) / "config.yaml").read_text())
        if isinstance(raw, dict) and isinstance(raw.get("namespace"), str):
            found.add(raw["namespace"])
    except Exception:
        pass
    return [CompletionItem(n) for n in sorted(found) if n.startswith(incomplete)]


def complete_deployment_ids(ctx: click.Context, _param: Any, incomplete: str) -> list[Any]:
    """``latest``, ``latest~N`` and the recorded deployment ids, newest first."""
    from click.shell_completion import CompletionItem

    try:
        from sbkube.state import list_deployments

        rows = list_deployments(_completion_db(ctx), limit=50, include_dry_run=False)
    except Exception:
        rows = []
    words = ["latest", *(f"latest~{i}" for i in range(1, min(len(rows), 10)))]
    items = [CompletionItem(w, help="relative to the newest deployment") for w in words]
    items += [
        CompletionItem(r.deployment_id, help=f"{r.command} {r.status} {r.cluster}/{r.namespace}")
        for r in rows
    ]
    return [i for i in items if i.value.startswith(incomplete)]


namespace_option = click.option(
    "-n",
    "--namespace",
    metavar="NS",
    help="Target namespace, instead of config.yaml's top-level namespace.",
    shell_complete=complete_namespaces,
)
