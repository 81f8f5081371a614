"""Chart builds: a Helm app's chart with its ``overrides`` and ``removes`` applied, as the
original sbkube's ``build`` step makes them.

Shape:

* :func:`override_files` -> ``[(path in the chart, file)]``: each ``overrides`` entry is a
  path under the app dir's ``overrides/<app name>/`` (the original's layout); an entry
  with ``*``, ``?`` or ``[`` is a glob there (``templates/*.yaml``, ``**/*.tpl``), and
  every file it matches replaces (or adds) the file at the same path in the chart. An
  entry that names no file is bad input (the original only warned).
* :func:`build_chart` copies the chart (a directory, or a packaged ``.tgz`` unpacked) to a
  scratch dir in sbkube's cache, copies the override files over it, then deletes what
  ``removes`` names: paths or globs relative to the chart's root, files or whole
  directories (a pattern that matches nothing is bad input). The result is moved to
  ``$XDG_CACHE_HOME/sbkube/charts/<digest>/<chart dir name>``: keyed by its content, so
  a build is made once, two runs never write the same dir, and the build a record names
  stays there for a rollback. Returns the built chart's path and its keyed digest
  (:func:`sbkube.config.charts.chart_digest`), which the record keeps: a changed override
  file changes it, and so upgrades the release.

Entries are relative paths that stay inside their root (``..`` and absolute paths are
refused, as are matches that leave it through a symlink). Nothing here touches the
cluster: a repository chart is pulled by the engine (``helm pull``) and handed in as a
directory.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sbkube.config.charts import chart_digest, chart_sha256
from sbkube.errors import ConfigError

__all__ = ["BuiltChart", "build_chart", "builds_home", "override_files"]

#: Where the original keeps override files: ``overrides/<app name>/`` in the app dir.
OVERRIDES_DIR = "overrides"
_GLOB = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class BuiltChart:
    """A built chart: its directory and the keyed digest of its files."""

    path: Path
    digest: str


def builds_home() -> Path:
    """``$XDG_CACHE_HOME/sbkube/charts`` (``~/.cache/sbkube/charts``): sbkube's own."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sbkube" / "charts"


def _relative(entry: str, where: str) -> str:
    path = PurePosixPath(entry)
    if not entry.strip() or path.is_absolute() or ".." in path.parts:
        raise ConfigError(f"{where}: {entry!r} must be a relative path inside its directory")
    return entry


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def override_files(
    app_dir: Path, app: str, overrides: tuple[str, ...], where: str
) -> list[tuple[str, Path]]:
    """The files ``overrides`` names (see the module docstring), in entry order, each with
    its path in the chart; ``where`` (``config.yaml: apps.NAME``) names the field."""
    base = app_dir / OVERRIDES_DIR / app
    found: list[tuple[str, Path]] = []
    for index, entry in enumerate(overrides):
        at = f"{where}.overrides[{index}]"
        _relative(entry, at)
        if _GLOB & set(entry):
            matches = sorted(p for p in base.glob(entry) if p.is_file() and _inside(p, base))
            if not matches:
                raise ConfigError(
                    f"{at}: {entry!r} matches no file under {OVERRIDES_DIR}/{app}/ ({base})"
                )
            found += [(p.relative_to(base).as_posix(), p) for p in matches]
            continue
        path = base / entry
        if not path.is_file() or not _inside(path, base):
            raise ConfigError(
                f"{at}: override file {entry!r} not found: the original reads it from "
                f"{OVERRIDES_DIR}/{app}/{entry} ({path})"
            )
        found.append((entry, path))
    return found


def _unpack(source: Path, into: Path, where: str) -> Path:
    """A packaged chart unpacked into ``into``: its one top directory."""
    try:
        with tarfile.open(source) as archive:
            archive.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise ConfigError(f"{where}: chart {source} cannot be unpacked: {err}") from None
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise ConfigError(f"{where}: chart {source} does not hold one chart directory")
    return tops[0]


def _remove(chart: Path, removes: tuple[str, ...], where: str) -> None:
    for index, entry in enumerate(removes):
        at = f"{where}.removes[{index}]"
        _relative(entry.rstrip("/") or entry, at)
        pattern = entry.rstrip("/")
        if _GLOB & set(pattern):
            matches = sorted(chart.glob(pattern), key=lambda p: len(p.parts), reverse=True)
        else:
            matches = [chart / pattern] if (chart / pattern).exists() else []
        matches = [p for p in matches if _inside(p, chart)]
        if not matches:
            raise ConfigError(f"{at}: {entry!r} matches nothing in the chart")
        for path in matches:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()


def build_chart(
    source: Path,
    overrides: list[tuple[str, Path]],
    removes: tuple[str, ...],
    where: str,
) -> BuiltChart:
    """``source`` (a chart directory or ``.tgz``) with ``overrides`` copied over it and
    ``removes`` deleted, in sbkube's cache (see the module docstring)."""
    home = builds_home()
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home, prefix=".build-") as scratch:
        if source.is_dir():
            work = Path(scratch) / source.name
            shutil.copytree(source, work)
        else:
            work = _unpack(source, Path(scratch), where)
        for inside, file in overrides:
            target = work / inside
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                raise ConfigError(f"{where}.overrides: {inside!r} is a directory in the chart")
            shutil.copyfile(file, target)
        _remove(work, removes, where)
        plain = chart_sha256(work)
        if plain is None:
            raise ConfigError(f"{where}: the built chart cannot be read ({work})")
        final = home / plain / work.name
        if chart_sha256(final) != plain:
            shutil.rmtree(final.parent, ignore_errors=True)  # a build cut short: made again
            final.parent.mkdir(exist_ok=True)
            try:
                work.rename(final)
            except OSError:
                # Another run built the same chart at the same moment: theirs is ours.
                if chart_sha256(final) != plain:
                    raise
    digest = chart_digest(final)
    assert digest is not None
    return BuiltChart(final, digest)
