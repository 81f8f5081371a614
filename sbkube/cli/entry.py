"""``main``, the console script: ``sbkube template`` of a plain app dir without click.

Most commands go straight to :func:`sbkube.cli.root.main` (click, the error handling).
``sbkube template`` is also what a user runs in a loop or a pipeline, where the start-up
around one ``helm template`` is most of its cost (W9/W9b in ``bench/``). So when the
command line is ``template`` with nothing but ``--app-dir`` and ``--config-file`` (each
once, a value that is not an option), :func:`quick_template` plans the app dir with
:func:`sbkube.config.quick.helm_plan`, renders it with :func:`render_plan` and prints
what the click command prints, byte for byte, without importing click. Anything else,
any doubt and any error go the full path (:mod:`sbkube.cli.root`), which does the work
again and says what is wrong in its own words: this module never prints an error of its
own (but ``interrupted`` on Ctrl-C, as the full path does).

Run as the console script, the quick path ends the process as soon as its output is
flushed (``os._exit``): nothing is left to clean up, and the interpreter's teardown is
time a one-chart render would otherwise spend (:func:`_exit`).

``tests/cli/test_template_quick_cli.py`` holds both paths to the same output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, TypeAlias

    from sbkube.cluster.launch import Render
    from sbkube.config.quick import HelmRender

    #: What ``template`` prints for each app: name, type, namespace, its documents, and
    #: their YAML when it was written already (by the thread that rendered them).
    Rendered: TypeAlias = list[tuple[str, str, str, list[dict[str, Any]], str | None]]


#: The options the quick path takes (each with a value); any other token goes the full path.
_QUICK_OPTIONS = ("--app-dir", "--config-file")
#: The click command's default ``--concurrency``.
_CONCURRENCY = 4


def main(argv: list[str] | None = None) -> Any:
    """Run the command line; errors become one ``error: ...`` line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["template"]:
        code = quick_template(args[1:])
        if code is not None:
            if argv is None:
                _exit(code)
            return code
    from sbkube.cli.root import main as full

    return full(argv)


def _exit(code: int) -> None:
    """End the console script's process now: its output is written and flushed, its
    helm processes reaped, and nothing registered to run at exit (no store, no temporary
    file). Tearing the interpreter down would cost ~10-15 ms more than the render's own
    parse and write (W9b)."""
    import os
    from contextlib import suppress

    for stream in (sys.stdout, sys.stderr):
        with suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)


def _quick_options(args: Sequence[str]) -> dict[str, str] | None:
    """``--app-dir``/``--config-file`` values, or None for any other command line."""
    found: dict[str, str] = {}
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if name not in _QUICK_OPTIONS or name in found:
            return None
        if not eq:
            if i + 1 == len(args):
                return None
            i += 1
            value = args[i]
        if not value or value.startswith("-"):
            return None
        found[name] = value
        i += 1
    return found


def quick_template(args: Sequence[str]) -> int | None:
    """``sbkube template ARGS`` printed without click, and its exit code; None when the
    full path must run (another option, a config the plan does not vouch for, a failed
    render, anything unforeseen)."""
    options = _quick_options(args)
    if options is None or sys.stdout is None:  # no stdout: click's echo knows what to do
        return None
    app_dir, config_file = options.get("--app-dir", "."), options.get("--config-file")
    if os.path.isfile(app_dir):
        return None  # click's own usage error
    started: list[Render] = []
    try:
        started = _start_predicted(app_dir, config_file)
        from pathlib import Path

        from sbkube.config.quick import helm_plan

        plan = helm_plan(Path(app_dir), config_file, namespace=None)
        rendered = None if plan is None else render_plan(plan, _CONCURRENCY, True, started)
        if rendered is None:
            return None
        text = "".join(
            f"---\n# sbkube app: {name} ({kind}, namespace {namespace})\n{dumped or ''}"
            for name, kind, namespace, _docs, dumped in rendered
        )
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception:
        return None
    finally:
        for render in started:  # those render_plan did not take
            render.discard()
    if "\x1b" in text:
        return None  # click.echo strips escape sequences when stdout is not a terminal
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        return 0
    return 0


def _start_predicted(app_dir: str, config_file: str | None) -> list[Render]:
    """``helm template`` of the charts :func:`predict_renders` guesses, started before
    YAML is even imported, without their values (helm takes ~65 ms to start; the plan is
    made meanwhile). :func:`render_plan` uses one only if the exact plan asks for exactly
    its command line, and gives it its values then."""
    from sbkube.cluster.launch import render_argv, start_render

    started = []
    try:
        for release_name, chart, namespace, version in predict_renders(app_dir, config_file):
            argv = render_argv(
                release_name=release_name, chart=chart, namespace=namespace, version=version
            )
            render = None if argv is None else start_render(argv, None)
            if render is not None:
                started.append(render)
    except BaseException:
        for render in started:
            render.discard()
        raise
    return started


def _plain(value: str) -> str:
    """A scalar as a plain or simply quoted YAML value says it (a guess: checked later)."""
    value = value.strip()
    if " #" in value:
        value = value.split(" #", 1)[0].rstrip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def predict_renders(
    app_dir: str, config_file: str | None, limit: int = _CONCURRENCY
) -> list[tuple[str, str, str, str | None]]:
    """(release name, chart directory, namespace, version) of the first ``limit`` Helm
    apps with a local chart that ``config.yaml`` seems to hold, read line by line, without
    YAML: a guess from its simplest shape (``namespace:`` on top, ``apps:`` of ``type:
    helm`` apps), only ever used where the exact plan asks for the same command line."""
    if config_file is None:
        if os.path.lexists(os.path.join(app_dir, "sbkube.yaml")):
            return []
        config_file = "config.yaml"
    try:
        with open(os.path.join(app_dir, config_file), "rb") as handle:
            text = handle.read(1 << 16).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    top: dict[str, str] = {}
    apps: list[dict[str, str]] = []
    in_apps = False
    app_indent = field_indent = -1
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, colon, value = stripped.partition(":")
        if not colon:
            continue
        if indent == 0:
            in_apps = key == "apps"
            top[key] = _plain(value)
        elif in_apps and app_indent in (-1, indent):
            app_indent = indent
            apps.append({"": key})
        elif in_apps and apps and indent > app_indent and field_indent in (-1, indent):
            field_indent = indent
            apps[-1][key] = _plain(value)
    base = os.path.realpath(app_dir)
    found = []
    for app in apps:
        chart = app.get("chart", "")
        namespace = app.get("namespace") or top.get("namespace") or ""
        release = app.get("release_name") or app[""]
        version = app.get("version") or None
        if (
            app.get("type") != "helm"
            or not chart.startswith(("./", "../", "/"))
            or app.get("enabled", "true") != "true"
            # Nothing helm could take for a flag: only names and versions of plain words.
            or not all(_word(v) for v in (namespace, release, version or "0"))
        ):
            continue
        chart_dir = os.path.realpath(os.path.join(base, chart))
        found.append((release, chart_dir, namespace, version))
    return found[:limit]


def _word(value: str) -> bool:
    """A name or version of letters, digits, ``-``, ``.``, ``_`` and ``+``, not starting
    with ``-``."""
    return (
        0 < len(value) <= 253
        and value[0] != "-"
        and value.isascii()
        and value.replace("-", "").replace(".", "").replace("_", "").replace("+", "").isalnum()
    )


def yaml_text(docs: list[dict[str, Any]]) -> str:
    from sbkube import yamlio

    return yamlio.dump_all(docs, allow_unicode=False) if docs else ""


def render_plan(
    plan: Sequence[HelmRender],
    concurrency: int,
    dump: bool,
    started: list[Render] | None = None,
) -> Rendered | None:
    """The renders of :func:`sbkube.config.quick.helm_plan`, ``concurrency`` at a time,
    placed as ``prepare_apps`` places them, and written as YAML (``dump``) by the thread
    that rendered them, while other charts render; None when any fails (the full path
    then says why, in its own words).

    The first ``concurrency`` renders start before the helm client, its types and the
    manifest parser are imported (:mod:`sbkube.cluster.launch`): helm works on one core
    while this process imports on the other. A render in ``started`` (begun before the
    plan, without its values) is taken, and removed from the list, by the app whose exact
    command line it runs, which gives it its values; the others are discarded."""
    from sbkube.cluster.launch import start_template

    guesses = started if started is not None else []
    early: dict[int, Render | None] = {}
    try:
        for i, app in enumerate(plan[: max(1, concurrency)]):
            early[i] = _taken(app, guesses)
            if early[i] is None:
                early[i] = start_template(
                    release_name=app.release_name,
                    chart=app.chart,
                    namespace=app.namespace,
                    version=app.version,
                    values=app.values,
                )
        while guesses:  # guesses the plan did not confirm: their cores are wanted
            guesses.pop().discard()
        return _render_plan(plan, concurrency, dump, early)
    finally:
        for render in early.values():  # read, or left unread by an error or an interrupt
            if render is not None:
                render.discard()


def _taken(app: HelmRender, guesses: list[Render]) -> Render | None:
    """The render in ``guesses`` that runs ``app``'s exact command line (taken out of the
    list and given the app's values), if any; never one whose chart lacks dependencies
    (the helm client builds them first)."""
    from pathlib import Path

    from sbkube.cluster.launch import missing_dependencies, render_argv

    argv = render_argv(
        release_name=app.release_name,
        chart=app.chart,
        namespace=app.namespace,
        version=app.version,
    )
    taken = next((r for r in guesses if argv is not None and r.argv == tuple(argv)), None)
    if taken is None or not os.path.isdir(app.chart) or missing_dependencies(Path(app.chart)):
        return None
    guesses.remove(taken)
    taken.send(app.values)
    return taken


def _render_plan(
    plan: Sequence[HelmRender],
    concurrency: int,
    dump: bool,
    early: dict[int, Render | None],
) -> Rendered | None:
    import functools

    from sbkube.errors import ClusterError, ConfigError
    from sbkube.interrupts import Stop
    from sbkube.manifests import Scope, parse_rendered

    stop = Stop()

    @functools.cache
    def helm_client() -> Any:
        """The helm client, for renders not started early (imported only then)."""
        from sbkube.cluster.helm import HelmClient

        return HelmClient(kubeconfig=None, context=None)

    def render_now(app: HelmRender) -> str:
        from sbkube.cluster.port import ChartRef, TemplateRequest
        from sbkube.interrupts import working_under

        request = TemplateRequest(
            ChartRef(ref=app.chart, version=app.version),
            release_name=app.release_name,
            namespace=app.namespace,
            values=app.values,
        )
        with working_under(stop):
            return str(helm_client().template_text(request))

    def render(i: int, app: HelmRender) -> tuple[list[dict[str, Any]], str | None]:
        started = early.get(i)
        if started is not None:
            text = started.text()
            if text is None:
                raise ClusterError(f"helm template {app.chart} failed")
        else:
            text = render_now(app)
        # Placed as prepare_apps places them (offline: the chart's CRDs and the offline
        # list). Nothing is learned for redaction: this path prints what it renders, and
        # any error goes the full path, which learns before it speaks.
        manifests = parse_rendered(text, "helm")
        scope = Scope.of(manifests, None)
        placed = [scope.place(m, app.namespace) for m in manifests]
        return placed, yaml_text(placed) if dump else None

    pool = None
    try:
        if len(plan) == 1 or concurrency == 1:  # one at a time: no thread to start
            return [
                (app.name, "helm", app.namespace, *render(i, app)) for i, app in enumerate(plan)
            ]
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=concurrency)
        futures = [pool.submit(render, i, app) for i, app in enumerate(plan)]
        return [
            (app.name, "helm", app.namespace, *future.result())
            for app, future in zip(plan, futures, strict=True)
        ]
    except (ClusterError, ConfigError):
        return None
    except BaseException as exc:
        stop.request(exc)  # renders still running are of no use now
        for started in early.values():
            if started is not None:
                started.stop()  # also one a worker is reading
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
