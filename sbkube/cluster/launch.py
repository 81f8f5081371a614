"""Starting ``helm template`` before the rest of sbkube is imported.

``helm template`` of one chart takes ~65 ms here; the Python around it (the helm client,
its value types, the manifest parser) takes about as long to import. ``sbkube template``'s
quick path (:mod:`sbkube.cli.entry`) therefore starts helm with what this module holds,
which imports only the process plumbing, and imports the rest while helm renders: the
two cores do the two jobs at once.

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
from pathlib import Path

from sbkube import yamlio
from sbkube.cluster.process import (
    DEFAULT_CALL_TIMEOUT,
    REPORT_GRACE_MAX,
    REPORT_GRACE_MIN,
    VALUES_FROM_STDIN,
    log_run,
    resolve_binary,
    values_json,
)

HELM_ENV_VAR = "SBKUBE_HELM"


def repository_home() -> Path:
    """Where sbkube keeps its helm repository config and index cache:
    ``$XDG_CACHE_HOME/sbkube/helm`` (``~/.cache/sbkube/helm``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sbkube" / "helm"


def helm_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """Variables set for helm on top of this process's environment: sbkube's own
    repository config and index cache, unless the caller chose others (``extra``)."""
    home = repository_home()
    return {
        "HELM_REPOSITORY_CONFIG": str(home / "repositories.yaml"),
        "HELM_REPOSITORY_CACHE": str(home / "repository"),
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
    """A ``helm template`` of a local chart, started. :meth:`text` is what it printed, or
    None when it failed or outlived the call bound (whoever asked then renders it the full
    way, which says why); :meth:`stop` kills it (from any thread), :meth:`discard` kills
    it and reaps it unread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc

    def text(self) -> str | None:
        limit = DEFAULT_CALL_TIMEOUT + min(
            REPORT_GRACE_MAX, max(REPORT_GRACE_MIN, DEFAULT_CALL_TIMEOUT / 10)
        )
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
        self._proc.communicate()


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
    if not Path(chart).is_dir() or missing_dependencies(Path(chart)):
        return None
    try:
        binary = resolve_binary(None, HELM_ENV_VAR, "helm")
    except Exception:
        return None
    argv: Sequence[str] = template_command(
        binary,
        release_name=release_name,
        chart=chart,
        namespace=namespace,
        version=version,
        values_file=VALUES_FROM_STDIN,
    )
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
    # helm reads all of its values before it renders: written now, they are not waited on.
    # (helm ended early: text() says it failed.)
    with suppress(BrokenPipeError), os.fdopen(write, "w", encoding="utf-8") as values_in:
        values_in.write(values_json(values))
    return Render(proc)
