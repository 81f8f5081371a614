"""``sbkube template``'s plan of a plain app dir of Helm apps, checked without pydantic.

Building the pydantic models of :mod:`sbkube.config.schema` costs more than rendering a
chart (their import alone is ~75 ms), so ``template`` asks :func:`helm_plan` first. It
reads the config as :func:`~sbkube.config.loader.load_config` does (the file
``find_config`` finds, the same hardened YAML, the same file reads) and vouches for it
only when everything in it is something it checks exactly as the models and the loader
do:

* the top level holds ``namespace``, ``apps``, ``cluster`` and ``secret_keys`` only, in
  our format;
* every app is ``type: helm`` with a local chart directory and nothing but ``chart``,
  ``values``, ``set``, ``namespace``, ``release_name``, ``version``, ``enabled``,
  ``depends_on``, ``wait`` and ``labels``, each of the exact type the model takes (no coercion);
* names, charts, versions, values files, dependencies and release names pass the
  loader's checks (the same functions: :mod:`sbkube.config.names`,
  :mod:`sbkube.config.ordering`, :mod:`sbkube.config.reading`).

It then returns, in deploy order, what ``prepare_apps`` gives ``helm template`` for each
enabled app: namespace, chart, release name and values (merged as
:func:`~sbkube.config.values.resolve_values` merges them). For
anything else, any doubt or any error it returns None, and the caller takes the full
path, whose error messages are therefore the only ones a user sees.
``tests/unit/config/test_quick.py`` holds it to ``load_config`` on every fixture and on
random variations of a config: whenever it vouches, the full path accepts the config and
plans the same renders.
"""

from __future__ import annotations

import os
from pathlib import Path

from sbkube.config.merge import deep_merge, expand_dotted
from sbkube.config.names import (
    HELM_RELEASE_NAME_MAX,
    MAX_PATH,
    MAX_TEXT,
    OURS_FILE,
    SINGLE_FILE,
    dns1123_label_problem,
    label_value_problem,
    text_problem,
)
from sbkube.config.ordering import file_order, refuse_cycles
from sbkube.config.reading import display_path, parse_yaml, read_file
from sbkube.errors import ConfigError

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["HelmRender", "helm_plan"]

_TOP_KEYS = frozenset({"namespace", "apps", "cluster", "secret_keys"})
_HELM_KEYS = frozenset(
    {
        "type",
        "chart",
        "values",
        "set",
        "namespace",
        "release_name",
        "version",
        "enabled",
        "depends_on",
        "wait",
        "labels",
    }
)
_LOCAL_PREFIXES = ("./", "../", "/")


class HelmRender:
    """One ``helm template`` of the plan: what ``prepare_apps`` would ask for the app.

    (Not a dataclass: ``dataclasses`` imports ``inspect``, start-up the quick path pays
    before helm starts.)"""

    __slots__ = ("chart", "name", "namespace", "release_name", "values", "version")

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        chart: str,  # the chart directory, absolute (as LoadedConfig.chart_ref)
        version: str | None,
        release_name: str,
        values: dict[str, Any],
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.chart = chart
        self.version = version
        self.release_name = release_name
        self.values = values

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field) for field in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is HelmRender and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # its values are a dict

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"HelmRender({shown})"


class _Doubt(Exception):
    """The config holds something this module does not vouch for."""


def helm_plan(
    app_dir: str | Path, config_file: str | None = None, *, namespace: str | None = None
) -> list[HelmRender] | None:
    """The renders ``template`` would run for this app dir (module docstring), or None
    when the full path must decide."""
    try:
        return _plan(Path(app_dir), config_file, namespace)
    except (_Doubt, ConfigError, OSError, RuntimeError, ValueError, TypeError, RecursionError):
        return None


def _text(value: Any, max_len: int) -> str:
    if type(value) is not str or text_problem(value, max_len) is not None:
        raise _Doubt
    return value


def _label(value: Any, max_len: int = 63) -> str:
    if type(value) is not str or dns1123_label_problem(value, max_len) is not None:
        raise _Doubt
    return value


def _files(value: Any) -> tuple[str, ...]:
    if type(value) is not list:
        raise _Doubt
    for item in value:
        if type(item) is not str or not item.strip() or "${" in item:
            raise _Doubt
        _text(item, MAX_PATH)
    return tuple(value)


def _our_config(app_dir: Path, config_file: str | None) -> Path:
    """The config file, when ``find_config`` would read it as ours: not ``sbkube.yaml``,
    no ``sources.yaml`` beside it (the original's pair). The content decides the rest: a
    config of nothing but ``namespace`` and Helm apps of our fields never looks original
    (``dialects._looks_original``)."""
    if config_file is None:
        if os.path.lexists(app_dir / SINGLE_FILE):
            raise _Doubt
        config_file = OURS_FILE
    path = app_dir / config_file
    if path.name == SINGLE_FILE or os.path.lexists(app_dir / "sources.yaml"):
        raise _Doubt
    if not os.path.lexists(path):
        raise _Doubt
    return path


def _read(path: Path, what: str, files: dict[Path, bytes]) -> bytes:
    """A file's bytes, as ``LoadedConfig.read_bytes`` reads them (once per load)."""
    key = path.resolve()
    if key not in files:
        files[key] = read_file(key, display_path(path), what)
    return files[key]


def _plan(given: Path, config_file: str | None, namespace: str | None) -> list[HelmRender]:
    if not given.is_dir():
        raise _Doubt
    app_dir = given.resolve()
    path = _our_config(app_dir, config_file)
    data = read_file(path, display_path(path), "config file")
    raw = parse_yaml(data, display_path(path))
    if type(raw) is not dict or not raw.keys() <= _TOP_KEYS:
        raise _Doubt
    default_namespace = _label(raw.get("namespace") if namespace is None else namespace)
    if raw.get("cluster") is not None:
        _text(raw["cluster"], MAX_TEXT)
    secret_keys = raw.get("secret_keys")
    if secret_keys is not None:
        if type(secret_keys) is not list or len(secret_keys) > 1000:
            raise _Doubt
        for key in secret_keys:
            if not _text(key, MAX_TEXT).strip():
                raise _Doubt
    apps = raw.get("apps")
    if type(apps) is not dict or not apps:
        raise _Doubt
    files: dict[Path, bytes] = {path.resolve(): data}
    checked: dict[str, dict[str, Any]] = {}
    for name, app in apps.items():
        _label(name)
        if type(app) is not dict or app.get("type") != "helm" or not app.keys() <= _HELM_KEYS:
            raise _Doubt
        checked[name] = _check_helm_app(app, app_dir, files)
    # The deploy order, exactly as ordering.deploy_order computes it.
    for app in checked.values():
        if any(dep not in checked for dep in app["depends_on"]):
            raise _Doubt
    refuse_cycles({n: a["depends_on"] for n, a in checked.items()}, "apps")
    position = {name: index for index, name in enumerate(checked)}
    enabled = [name for name, app in checked.items() if app["enabled"]]
    graph = {n: [d for d in checked[n]["depends_on"] if checked[d]["enabled"]] for n in enabled}
    order = file_order(graph, position)
    # Release names: at most 53 characters, one app per release and namespace.
    owners: set[tuple[str, str]] = set()
    renders = []
    for name in order:
        app = checked[name]
        release = app["release_name"] or name
        if app["release_name"] is None and len(release) > HELM_RELEASE_NAME_MAX:
            raise _Doubt
        app_namespace = app["namespace"] or default_namespace
        if (app_namespace, release) in owners:
            raise _Doubt
        owners.add((app_namespace, release))
        renders.append(
            HelmRender(
                name=name,
                namespace=app_namespace,
                chart=app["chart"],
                version=app["version"],
                release_name=release,
                values=_values(name, app, files),
            )
        )
    # A disabled app's release is not checked, and its files are not read.
    return renders


def _check_helm_app(app: dict[str, Any], app_dir: Path, files: dict[Path, bytes]) -> dict[str, Any]:
    """The app's fields, checked as HelmApp and the loader check them, its chart and
    values files read."""
    chart = _text(app.get("chart"), MAX_PATH)
    if not chart or "${" in chart or "://" in chart or chart.endswith((".tgz", ".tar.gz")):
        raise _Doubt
    version = app.get("version")
    if version is not None:
        _text(version, MAX_TEXT)
    release_name = app.get("release_name")
    if release_name is not None:
        _label(release_name, HELM_RELEASE_NAME_MAX)
    namespace = app.get("namespace")
    if namespace is not None:
        _label(namespace)
    values = _files(app.get("values", []))
    overrides = app.get("set", {})
    if type(overrides) is not dict or any(type(k) is not str for k in overrides):
        raise _Doubt
    depends_on = app.get("depends_on", [])
    if type(depends_on) is not list or any(type(d) is not str for d in depends_on):
        raise _Doubt
    labels = app.get("labels", {})
    if type(labels) is not dict:
        raise _Doubt
    for key, value in labels.items():
        if type(key) is not str or not key or not key.isprintable() or " " in key:
            raise _Doubt
        if len(key) > MAX_TEXT or type(value) is not str or label_value_problem(value):
            raise _Doubt
    enabled = app.get("enabled", True)
    if type(enabled) is not bool or type(app.get("wait", False)) is not bool:
        raise _Doubt
    path = app_dir / chart
    if not chart.startswith(_LOCAL_PREFIXES) and not path.exists():
        raise _Doubt  # a repo chart: the full path
    path = path.resolve()
    if enabled:
        chart_yaml = path / "Chart.yaml"
        if not path.is_dir() or not chart_yaml.is_file():
            raise _Doubt
        meta = parse_yaml(_read(chart_yaml, "Chart.yaml", files), display_path(chart_yaml))
        if type(meta) is not dict or meta.get("version") in (None, ""):
            raise _Doubt
        if version is not None and str(meta["version"]) != version:
            raise _Doubt
    value_paths = []
    for relative in values if enabled else ():
        value_path = (app_dir / relative).resolve()
        if not value_path.exists():
            raise _Doubt
        _read(value_path, "values file", files)
        value_paths.append(value_path)
    return {
        "chart": str(path),
        "version": version,
        "release_name": release_name,
        "namespace": namespace,
        "value_paths": value_paths,
        "set": overrides,
        "depends_on": tuple(depends_on),
        "enabled": enabled,
    }


def _values(name: str, app: dict[str, Any], files: dict[Path, bytes]) -> dict[str, Any]:
    """As ``resolve_values``: the values files deep-merged in order, then ``set``. The
    secrets among them are not learned (``sbkube.redaction``): nothing of this path is
    recorded or shown but the rendered manifests, and a failure goes the full path."""
    merged: dict[str, Any] = {}
    for path in app["value_paths"]:
        document = parse_yaml(_read(path, "values file", files), display_path(path))
        if document is None:
            continue
        if type(document) is not dict:
            raise _Doubt
        merged = deep_merge(merged, document)
    if app["set"]:
        merged = deep_merge(merged, expand_dotted(dict(app["set"]), f"apps.{name}.set"))
    return merged
