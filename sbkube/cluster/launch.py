"""Starting ``helm template`` before the rest of sbkube is imported.

``helm template`` of one chart takes ~75 ms here, and ~65 ms of it is helm starting (Go's
package initialisation: ``helm version`` alone takes as long); the Python around it (YAML,
the config checks, the manifest parser) takes about as long again. ``sbkube template``'s
quick path (:mod:`sbkube.cli.entry`) therefore starts helm with what this module holds,
which imports only the process plumbing (no YAML, no pathlib), and does the rest while
helm starts: the two cores do the two jobs at once. A render may even be started before
its values are known (:func:`start_render` with ``values=None``): helm reads them from
stdin (``--values -``) once it has started, and waits for :meth:`Render.send`.

What starting a render needs lives here once, and :class:`~sbkube.cluster.helm.HelmClient`
uses the same: the helm binary (``SBKUBE_HELM``), helm's environment (sbkube's own
repository config and cache), the ``helm template`` command line, and the check that a
chart's dependencies are in its ``charts/`` (:func:`missing_dependencies`: when they are
not, the client builds them first, and the quick path leaves the chart to it).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from contextlib import suppress

from sbkube.cluster.process import (
    DEFAULT_CALL_TIMEOUT,
    VALUES_FROM_STDIN,
    call_limit,
    log_run,
    resolve_binary,
    values_json,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

HELM_ENV_VAR = "SBKUBE_HELM"


def _repository_home() -> str:
    """Where sbkube keeps its helm repository config and index cache:
    ``$XDG_CACHE_HOME/sbkube/helm`` (``~/.cache/sbkube/helm``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sbkube", "helm")


def helm_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """Variables set for helm on top of this process's environment: sbkube's own
    repository config and index cache, unless the caller chose others (``extra``)."""
    home = _repository_home()
    return {
        "HELM_REPOSITORY_CONFIG": os.path.join(home, "repositories.yaml"),
        "HELM_REPOSITORY_CACHE": os.path.join(home, "repository"),
        **extra,
    }


def template_command(
    binary: str,
    *,
    release_name: str,
    chart: str,
    namespace: str,
    version: str | None,
    values_file: str,
) -> list[str]:
    """``helm template``: renders locally, so no cluster flags (it must work offline).

    ``--include-crds``: the chart's ``crds/`` are part of what a first install puts on the
    cluster, so the rendered set shows them too."""
    return [
        binary,
        "template",
        release_name,
        chart,
        "--namespace",
        namespace,
        "--values",
        values_file,
        "--include-crds",
        *(["--version", version] if version else []),
    ]


def missing_dependencies(chart_dir: Path) -> list[str]:
    """Names of the dependencies in ``chart_dir``'s Chart.yaml that its ``charts/`` lacks
    (neither a ``<name>`` directory nor a ``<name>-<version>.tgz``), as helm checks."""
    from sbkube import yamlio

    try:
        meta = yamlio.load((chart_dir / "Chart.yaml").read_text(encoding="utf-8"))
    except (OSError, yamlio.YAMLError):
        return []  # helm itself reports an unreadable chart
    deps = meta.get("dependencies") if isinstance(meta, Mapping) else None
    if not isinstance(deps, list):
        return []
    charts = chart_dir / "charts"
    present = [p.name for p in charts.iterdir()] if charts.is_dir() else []
    missing = []
    for dep in deps:
        name = str(dep.get("name") or "") if isinstance(dep, Mapping) else ""
        if name and not any(
            entry == name or (entry.startswith(f"{name}-") and entry.endswith(".tgz"))
            for entry in present
        ):
            missing.append(name)
    return missing


class Render:
    """A ``helm template`` of a local chart, started (``argv``). :meth:`send` gives it its
    values when it was started without them; :meth:`text` is what it printed, or None when
    it failed or outlived the call bound (whoever asked then renders it the full way, which
    says why); :meth:`stop` kills it (from any thread), :meth:`discard` kills it and reaps
    it unread."""

    def __init__(self, proc: subprocess.Popen[str], argv: Sequence[str], values_in: int) -> None:
        self._proc = proc
        self.argv = tuple(argv)
        self._values_in: int | None = values_in

    def send(self, values: Mapping[str, object]) -> None:
        """Write ``values`` to helm's stdin and close it (helm reads them once started:
        a large document waits for that)."""
        fd, self._values_in = self._values_in, None
        if fd is None:
            raise RuntimeError("the values of this render were sent already")
        # (helm ended early: text() says it failed.)
        with suppress(BrokenPipeError), os.fdopen(fd, "w", encoding="utf-8") as values_in:
            values_in.write(values_json(values))

    def text(self) -> str | None:
        limit = call_limit(DEFAULT_CALL_TIMEOUT)
        if self._values_in is not None:
            raise RuntimeError("a render is read only once its values were sent")
        try:
            out, _err = self._proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            self.discard()
            return None
        except BaseException:
            self.discard()
            raise
        return out if self._proc.returncode == 0 else None

    def stop(self) -> None:
        if self._proc.poll() is None:
            with suppress(ProcessLookupError):
                self._proc.kill()

    def discard(self) -> None:
        self.stop()
        fd, self._values_in = self._values_in, None
        if fd is not None:
            os.close(fd)
        self._proc.communicate()


def render_argv(
    *, release_name: str, chart: str, namespace: str, version: str | None
) -> list[str] | None:
    """The command line :meth:`HelmClient.template_text
    <sbkube.cluster.helm.HelmClient.template_text>` runs for a local chart directory
    (values on stdin); None when helm cannot be found."""
    try:
        binary = resolve_binary(None, HELM_ENV_VAR, "helm")
    except Exception:
        return None
    return template_command(
        binary,
        release_name=release_name,
        chart=chart,
        namespace=namespace,
        version=version,
        values_file=VALUES_FROM_STDIN,
    )


def start_render(argv: Sequence[str], values: Mapping[str, object] | None) -> Render | None:
    """Start ``argv`` (:func:`render_argv`) with the environment the helm client gives
    helm; its ``values`` written now, or later by :meth:`Render.send` (None)."""
    log_run(argv)
    read, write = os.pipe()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=read,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **helm_environment({})},
        )
    except OSError:
        os.close(write)
        return None
    finally:
        os.close(read)
    render = Render(proc, argv, write)
    if values is not None:
        render.send(values)
    return render


def start_template(
    *,
    release_name: str,
    chart: str,
    namespace: str,
    version: str | None,
    values: Mapping[str, object],
) -> Render | None:
    """``helm template`` of the local chart directory ``chart`` started as
    :meth:`HelmClient.template_text <sbkube.cluster.helm.HelmClient.template_text>` runs
    it (the same command line, environment and values on stdin); None when that would
    first do more (a dependency to build) or helm cannot be found."""
    from pathlib import Path

    if not Path(chart).is_dir() or missing_dependencies(Path(chart)):
        return None
    argv = render_argv(release_name=release_name, chart=chart, namespace=namespace, version=version)
    return None if argv is None else start_render(argv, values)
