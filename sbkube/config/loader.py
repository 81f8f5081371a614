"""Load and check an app directory's ``config.yaml``.

:func:`load_config` reads the file, validates it against :mod:`sbkube.config.schema`,
checks everything the schema cannot see on its own (charts, values and manifest files on
disk, ``depends_on`` targets, cycles, release name clashes) and computes the deploy order.
Every problem becomes a one-line :class:`~sbkube.errors.ConfigError` that names the file
and the field, so the CLI can print it as is.

Files are read once and kept on the :class:`LoadedConfig`, so the values and manifests a
deployment uses are byte for byte the ones :func:`~sbkube.config.values.sources_snapshot`
digests, even if someone edits them mid-deploy.
"""

from __future__ import annotations

import difflib
import io
import os
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sbkube.config.schema import (
    APP_MODELS,
    APP_TYPES,
    HELM_RELEASE_NAME_MAX,
    HelmApp,
    SbkubeConfig,
    YamlApp,
    dns1123_label_problem,
)
from sbkube.errors import ConfigError

__all__ = [
    "MAX_FILE_BYTES",
    "LoadedConfig",
    "display_path",
    "load_config",
    "parse_yaml",
    "parse_yaml_documents",
    "suggest",
]

MAX_FILE_BYTES = 10 * 1024 * 1024
# Far above any real config or manifest, far below what an alias bomb expands to.
MAX_EXPANDED_NODES = 5_000_000

_LOCAL_PREFIXES = ("./", "../", "/")
_PACKAGED_SUFFIXES = (".tgz", ".tar.gz")


# --------------------------------------------------------------------------- helpers


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        return absolute.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        pass
    try:
        return absolute.relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return str(absolute)


def suggest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


# --------------------------------------------------------------------------- YAML


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader that leaves timestamps as strings, as Helm and kubectl do.

    (Go's YAML-to-JSON path never produces dates, and strings keep ``raw`` JSON-safe.)
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _check_duplicates(node: yaml.Node, shown: str) -> None:
    """Refuse duplicate mapping keys anywhere in ``node`` (PyYAML silently keeps the last)."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(node, ())]
    while stack:
        current, path = stack.pop()
        # Aliases share nodes; visiting each once also keeps "billion laughs" cheap.
        if id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in current.value:
                key: Any = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if key is not None and key != "<<":
                    line = key_node.start_mark.line + 1
                    if key in first_line:
                        what = "duplicate app name" if path == ("apps",) else "duplicate key"
                        raise ConfigError(
                            f"{shown}: {_dotted((*path, str(key)))}: {what} "
                            f"(first at line {first_line[key]}, again at line {line})"
                        )
                    first_line[key] = line
                child = str(key) if key is not None else "?"
                stack.append((value_node, (*path, child)))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                stack.append((item, (*path, index)))


def _check_expansion(node: yaml.Node, shown: str) -> None:
    """Refuse recursive anchors and alias "bombs" before anything walks the data.

    Constructed YAML shares aliased objects, but JSON snapshots, deep merges and helm's
    values file all expand them; a few lines of aliases can expand to billions of nodes.
    """
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(current: yaml.Node) -> int:
        key = id(current)
        if key in memo:
            return memo[key]
        if key in active:
            raise ConfigError(
                f"{shown}: line {current.start_mark.line + 1}: recursive YAML anchor refused"
            )
        active.add(key)
        total = 1
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                total += size(key_node) + size(value_node)
        elif isinstance(current, yaml.SequenceNode):
            for item in current.value:
                total += size(item)
        active.discard(key)
        memo[key] = total
        if total > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{shown}: YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes; refused"
            )
        return total

    size(node)


def _yaml_error(shown: str, err: yaml.YAMLError) -> ConfigError:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = "; ".join(p for p in (err.context, err.problem) if p)
        return ConfigError(f"{shown}: {where}invalid YAML: {_one_line(problem or str(err))}")
    return ConfigError(f"{shown}: invalid YAML: {_one_line(str(err))}")


def _decode(data: bytes, shown: str) -> str:
    if b"\x00" in data:
        raise ConfigError(f"{shown}: binary file, expected YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{shown}: not valid UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})"
        ) from None


def parse_yaml_documents(data: bytes, shown: str) -> list[Any]:
    """Every document of a YAML stream (None for empty ones), refusing duplicate keys."""
    text = _decode(data, shown)
    loader = _Loader(text)
    docs: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            _check_duplicates(node, shown)
            _check_expansion(node, shown)
            docs.append(loader.construct_document(node))
    except yaml.YAMLError as err:
        raise _yaml_error(shown, err) from None
    except RecursionError:
        raise ConfigError(f"{shown}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return docs


def parse_yaml(data: bytes, shown: str) -> Any:
    """The single document of a YAML file (None when empty), refusing duplicate keys."""
    docs = parse_yaml_documents(data, shown)
    if len(docs) > 1:
        raise ConfigError(f"{shown}: expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None


# --------------------------------------------------------------------------- files


def _read_file(path: Path, shown: str, what: str) -> bytes:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{shown}: {what} not found") from None
    except OSError as err:
        raise ConfigError(f"{shown}: cannot read {what}: {err.strerror or err}") from None
    if not path.is_file():
        raise ConfigError(f"{shown}: {what} is not a regular file")
    if stat.st_size > MAX_FILE_BYTES:
        raise ConfigError(
            f"{shown}: {what} is {stat.st_size / (1024 * 1024):.1f} MB; "
            f"files over {MAX_FILE_BYTES // (1024 * 1024)} MB are refused"
        )
    try:
        with path.open("rb") as handle:
            # Read one byte past the limit so a file that grew since stat() is still refused.
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{shown}: cannot read {what}: {err.strerror or err}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{shown}: {what} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; refused"
        )
    return data


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class LoadedConfig:
    """A validated ``config.yaml`` together with where it lives and the deploy order.

    Compared and hashed by identity: it carries the bytes of the files it has read, so
    two loads of the same directory are two different snapshots.
    """

    app_dir: Path
    config_path: Path
    config: SbkubeConfig
    raw: dict[str, Any]
    order: tuple[str, ...]
    # Bytes of every file read so far, keyed by resolved path: one read per file per load.
    _files: dict[Path, bytes] = field(default_factory=dict, repr=False, compare=False)

    @property
    def shown_config(self) -> str:
        """The config file's path as error messages show it."""
        return display_path(self.config_path)

    def app(self, name: str) -> HelmApp | YamlApp:
        """The app called ``name``; ConfigError (with a suggestion) if there is none."""
        try:
            return self.config.apps[name]
        except KeyError:
            raise ConfigError(
                f"{self.shown_config}: apps: unknown app {name!r}{suggest(name, self.config.apps)}"
            ) from None

    def select(self, names: Sequence[str] | None) -> tuple[str, ...]:
        """The named apps in deploy order (all enabled apps when ``names`` is None or empty).

        Dependencies of the selected apps are not added: selecting is an explicit choice.
        """
        if not names:
            return self.order
        wanted = set()
        for name in names:
            app = self.app(name)
            if not app.enabled:
                raise ConfigError(
                    f"{self.shown_config}: apps.{name}.enabled: app {name!r} is disabled"
                )
            wanted.add(name)
        return tuple(name for name in self.order if name in wanted)

    def app_namespace(self, name: str) -> str:
        """The namespace the app deploys into: its own, else the config's."""
        return self.app(name).namespace or self.config.namespace

    def release_name(self, name: str) -> str:
        """The Helm release name (the app name unless ``release_name`` is set)."""
        app = self.app(name)
        if isinstance(app, HelmApp) and app.release_name:
            return app.release_name
        return name

    def resolve_path(self, relative: str) -> Path:
        """A path from config.yaml, resolved against the app directory."""
        return (self.app_dir / relative).resolve()

    def shown(self, path: Path) -> str:
        """How error messages name ``path``."""
        return display_path(path)

    def chart_ref(self, name: str) -> str:
        """What to pass to helm as the chart: an absolute path for local charts, else as given."""
        app = self.app(name)
        if not isinstance(app, HelmApp):
            raise ConfigError(f"{self.shown_config}: apps.{name}.type: not a helm app")
        if _is_local_chart(self.app_dir, app.chart):
            return str(self.resolve_path(app.chart))
        return app.chart

    def local_chart_path(self, name: str) -> Path | None:
        """The chart directory or .tgz of a helm app with a local chart, else None."""
        app = self.app(name)
        if isinstance(app, HelmApp) and _is_local_chart(self.app_dir, app.chart):
            return self.resolve_path(app.chart)
        return None

    def read_bytes(self, path: Path, what: str = "file") -> bytes:
        """The file's bytes, read once per load (size-checked), then served from memory."""
        key = path.resolve()
        data = self._files.get(key)
        if data is None:
            data = _read_file(key, display_path(path), what)
            self._files.setdefault(key, data)
            data = self._files[key]
        return data


# --------------------------------------------------------------------------- loading


def _is_local_chart(app_dir: Path, chart: str) -> bool:
    if chart.startswith(_LOCAL_PREFIXES):
        return True
    if "://" in chart:
        return False
    return (app_dir / chart).exists()


def _validation_error(err: ValidationError, shown: str) -> ConfigError:
    errors = err.errors()
    # A misspelt key also makes the real key "missing"; the misspelling is the useful news.
    errors.sort(key=lambda e: 0 if e["type"] == "extra_forbidden" else 1)
    first = errors[0]
    loc = list(first["loc"])
    kind = first["type"]
    app_type: str | None = None
    if len(loc) >= 3 and loc[0] == "apps" and loc[2] in APP_TYPES:
        app_type = str(loc.pop(2))
    if loc and loc[-1] == "[key]":
        loc.pop()
        key = loc.pop() if loc else "?"
        return ConfigError(
            f"{shown}: {_dotted(loc)}: key {key!r} must be a string (quote it in the YAML)"
        )
    path = _dotted(loc)
    ctx = first.get("ctx") or {}

    if kind == "extra_forbidden":
        key = str(loc[-1])
        if app_type is not None:
            model = APP_MODELS[app_type]
            elsewhere = [
                t for t, m in APP_MODELS.items() if t != app_type and key in m.model_fields
            ]
            if elsewhere:
                return ConfigError(
                    f"{shown}: {path}: unknown field for a {app_type!r} app "
                    f"(it belongs to {elsewhere[0]!r} apps)"
                )
            fields: Iterable[str] = model.model_fields
        elif len(loc) == 1:
            fields = SbkubeConfig.model_fields
        else:
            fields = ()
        return ConfigError(f"{shown}: {path}: unknown field{suggest(key, fields)}")
    if kind == "union_tag_invalid":
        valid = ", ".join(APP_TYPES)
        return ConfigError(
            f"{shown}: {path}.type: unknown app type {ctx.get('tag')!r} (valid types: {valid})"
        )
    if kind == "union_tag_not_found":
        valid = ", ".join(APP_TYPES)
        return ConfigError(f"{shown}: {path}.type: required field missing (one of: {valid})")
    if kind == "missing":
        return ConfigError(f"{shown}: {path}: required field missing")
    expected = {
        "string_type": "a string",
        "bool_type": "true or false",
        "int_type": "an integer",
        "dict_type": "a mapping",
        "model_attributes_type": "a mapping",
        "model_type": "a mapping",
        "list_type": "a list",
        "tuple_type": "a list",
    }.get(kind)
    if expected is not None:
        return ConfigError(
            f"{shown}: {path}: expected {expected}, got {_describe(first.get('input'))}"
        )
    if kind in ("too_short", "string_too_short"):
        return ConfigError(f"{shown}: {path}: must not be empty")
    message = str(first["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    elif message:
        message = message[0].lower() + message[1:]
    return ConfigError(f"{shown}: {path}: {_one_line(message)}")


def _precheck_names(raw: dict[str, Any], shown: str) -> None:
    """Name-level checks that pydantic could only report against the whole ``apps`` field."""
    apps = raw.get("apps")
    if isinstance(apps, dict):
        for name in apps:
            if isinstance(name, str):
                problem = dns1123_label_problem(name)
                if problem is not None:
                    raise ConfigError(f"{shown}: apps.{name}: invalid app name: {problem}")
    repos = raw.get("repos")
    if isinstance(repos, dict):
        for name, url in repos.items():
            if isinstance(url, str) and not url.startswith(("http://", "https://")):
                raise ConfigError(
                    f"{shown}: repos.{name}: url {url!r} must start with http:// or https://"
                )


def _deploy_order(config: SbkubeConfig, shown: str) -> tuple[str, ...]:
    apps = config.apps
    names = list(apps)
    for name, app in apps.items():
        for index, dep in enumerate(app.depends_on):
            if dep not in apps:
                raise ConfigError(
                    f"{shown}: apps.{name}.depends_on[{index}]: unknown app {dep!r}"
                    f"{suggest(dep, names)}"
                )
    _check_cycles(config, shown)
    # Stable topological sort: always take the first app (in file order) whose deps are done.
    # Disabled apps are not deployed, so an edge to one does not hold anything back.
    enabled = [name for name in names if apps[name].enabled]
    remaining = list(enabled)
    placed: set[str] = set()
    order: list[str] = []
    while remaining:
        for name in remaining:
            if all(dep in placed or not apps[dep].enabled for dep in apps[name].depends_on):
                order.append(name)
                placed.add(name)
                remaining.remove(name)
                break
    return tuple(order)


def _check_cycles(config: SbkubeConfig, shown: str) -> None:
    apps = config.apps
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in apps:
        if state.get(root):
            continue
        path: list[str] = [root]
        iters = [iter(apps[root].depends_on)]
        state[root] = 1
        while iters:
            dep = next(iters[-1], None)
            if dep is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                raise ConfigError(
                    f"{shown}: apps.{path[-1]}.depends_on: dependency cycle {' -> '.join(cycle)}"
                )
            if not state.get(dep):
                state[dep] = 1
                path.append(dep)
                iters.append(iter(apps[dep].depends_on))


def _check_chart(loaded: LoadedConfig, name: str, app: HelmApp) -> None:
    shown = loaded.shown_config
    where = f"{shown}: apps.{name}.chart"
    chart = app.chart
    if chart.startswith("oci://"):
        return
    if _is_local_chart(loaded.app_dir, chart):
        path = loaded.resolve_path(chart)
        if not path.exists():
            raise ConfigError(f"{where}: chart {chart!r} not found ({display_path(path)})")
        if path.is_dir():
            chart_yaml = path / "Chart.yaml"
            if not chart_yaml.is_file():
                raise ConfigError(
                    f"{where}: {chart!r} is not a Helm chart ({display_path(chart_yaml)} missing)"
                )
            meta = parse_yaml(loaded.read_bytes(chart_yaml, "Chart.yaml"), display_path(chart_yaml))
            source = display_path(chart_yaml)
        elif chart.endswith(_PACKAGED_SUFFIXES):
            meta, source = _packaged_chart_meta(loaded, path)
        else:
            raise ConfigError(
                f"{where}: {chart!r} is neither a chart directory nor a packaged .tgz chart"
            )
        if not isinstance(meta, dict):
            raise ConfigError(f"{source}: expected a mapping (Chart.yaml), got {_describe(meta)}")
        if "version" not in meta or meta["version"] in (None, ""):
            raise ConfigError(f"{source}: version: required field missing")
        if app.version is not None and str(meta["version"]) != app.version:
            raise ConfigError(
                f"{shown}: apps.{name}.version: {app.version!r} does not match "
                f"{source} version {str(meta['version'])!r}"
            )
        return
    repo, sep, chart_name = chart.partition("/")
    if sep and repo and chart_name and "/" not in chart_name:
        if repo in loaded.config.repos:
            return
        known = ", ".join(sorted(loaded.config.repos)) or "none defined"
        raise ConfigError(
            f"{where}: unknown repo {repo!r} in {chart!r}{suggest(repo, loaded.config.repos)} "
            f"(repos: {known}; use ./{chart} for a local chart)"
        )
    raise ConfigError(
        f"{where}: chart {chart!r} not found: not a local path "
        f"(./{chart}) and not in repo/chart form"
    )


def _packaged_chart_meta(loaded: LoadedConfig, path: Path) -> tuple[Any, str]:
    shown = display_path(path)
    data = loaded.read_bytes(path, "packaged chart")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                    if member.size > MAX_FILE_BYTES:
                        raise ConfigError(f"{shown}: Chart.yaml is too large; refused")
                    handle = archive.extractfile(member)
                    content = handle.read() if handle is not None else b""
                    where = f"{shown}:{member.name}"
                    return parse_yaml(content, where), where
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ConfigError(f"{shown}: not a valid packaged chart: {_one_line(str(err))}") from None
    raise ConfigError(f"{shown}: not a valid packaged chart: no <name>/Chart.yaml inside")


def _check_app_files(loaded: LoadedConfig, name: str, app: HelmApp | YamlApp) -> None:
    shown = loaded.shown_config
    files: tuple[str, ...]
    if isinstance(app, HelmApp):
        files, field_name, what = app.values, "values", "values file"
    else:
        files, field_name, what = app.manifests, "manifests", "manifest file"
    for index, relative in enumerate(files):
        path = loaded.resolve_path(relative)
        if not path.exists():
            raise ConfigError(
                f"{shown}: apps.{name}.{field_name}[{index}]: {what} {relative!r} not found "
                f"({display_path(path)})"
            )
        try:
            loaded.read_bytes(path, what)
        except ConfigError as err:
            raise ConfigError(f"{shown}: apps.{name}.{field_name}[{index}]: {err}") from None


def _check_release_names(loaded: LoadedConfig) -> None:
    shown = loaded.shown_config
    owners: dict[tuple[str, str], str] = {}
    for name, app in loaded.config.apps.items():
        if not isinstance(app, HelmApp) or not app.enabled:
            continue
        release = loaded.release_name(name)
        if app.release_name is None and len(release) > HELM_RELEASE_NAME_MAX:
            raise ConfigError(
                f"{shown}: apps.{name}: app name is longer than {HELM_RELEASE_NAME_MAX} "
                "characters, too long for a Helm release name; set release_name"
            )
        key = (loaded.app_namespace(name), release)
        if key in owners:
            raise ConfigError(
                f"{shown}: apps.{name}.release_name: release {release!r} in namespace "
                f"{key[0]!r} is also used by app {owners[key]!r}"
            )
        owners[key] = name


def load_config(app_dir: str | Path, config_file: str = "config.yaml") -> LoadedConfig:
    """Load, validate and order the apps of ``<app_dir>/<config_file>``.

    Raises ConfigError (one line, naming file and field) for anything wrong with the file
    or with the charts, values files and manifests it names (for enabled apps).
    """
    given_dir = Path(app_dir)
    if not given_dir.exists():
        raise ConfigError(f"{display_path(given_dir)}: app directory not found")
    if not given_dir.is_dir():
        raise ConfigError(f"{display_path(given_dir)}: app directory is not a directory")
    resolved_dir = given_dir.resolve()
    config_path = resolved_dir / config_file
    shown = display_path(config_path)
    if not os.path.lexists(config_path):
        raise ConfigError(f"{shown}: config file not found")
    data = _read_file(config_path, shown, "config file")
    raw = parse_yaml(data, shown)
    if raw is None:
        raise ConfigError(f"{shown}: file is empty (expected namespace: and apps:)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{shown}: expected a mapping at the top level, got {_describe(raw)}")
    _precheck_names(raw, shown)
    try:
        config = SbkubeConfig.model_validate(raw)
    except ValidationError as err:
        raise _validation_error(err, shown) from None
    order = _deploy_order(config, shown)
    loaded = LoadedConfig(
        app_dir=resolved_dir,
        config_path=config_path,
        config=config,
        raw=raw,
        order=order,
        _files={config_path.resolve(): data},
    )
    _check_release_names(loaded)
    for name, app in config.apps.items():
        if not app.enabled:
            continue
        if isinstance(app, HelmApp):
            _check_chart(loaded, name, app)
        _check_app_files(loaded, name, app)
    return loaded
