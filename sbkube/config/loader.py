"""Load and check an app directory's ``config.yaml``.

:func:`load_config` reads the file, validates it against :mod:`sbkube.config.schema`,
checks everything the schema cannot see on its own (charts, values and manifest files on
disk, ``depends_on`` targets, cycles, release name clashes) and computes the deploy order.
Every problem becomes a one-line :class:`~sbkube.errors.ConfigError` that names the file
and the field, so the CLI can print it as is. Reading and YAML hardening live in
:mod:`~sbkube.config.reading`, the wording of schema errors in :mod:`~sbkube.config.messages`
and the deploy order in :mod:`~sbkube.config.ordering`.

Files are read once and kept on the :class:`LoadedConfig`, so the values and manifests a
deployment uses are byte for byte the ones :func:`~sbkube.config.values.sources_snapshot`
digests, even if someone edits them mid-deploy.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sbkube.config.command_line import CommandLineValues, ResolvedValues, resolve
from sbkube.config.dialects import Dialect, Found, find_config
from sbkube.config.messages import validation_error
from sbkube.config.ordering import deploy_order
from sbkube.config.reading import MAX_FILE_BYTES, display_path, parse_yaml, read_file
from sbkube.config.schema import (
    HELM_RELEASE_NAME_MAX,
    REPO_VARIABLE_RE,
    ActionApp,
    AppConfig,
    GitApp,
    HelmApp,
    HttpApp,
    KustomizeApp,
    SbkubeConfig,
    YamlApp,
    dns1123_label_problem,
)
from sbkube.errors import ConfigError, UsageError
from sbkube.messages import describe, key_text, one_line, suggest
from sbkube.redaction import remember

__all__ = ["LoadedConfig", "check_app", "load_config"]

_LOCAL_PREFIXES = ("./", "../", "/")
_PACKAGED_SUFFIXES = (".tgz", ".tar.gz")


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
    # -n/--namespace, -f/--values and --set from the command line (see command_line.py).
    command_line: ResolvedValues = field(default_factory=ResolvedValues)
    namespace_override: str | None = None
    # The original tool's formats (dialects.py): which one, its files as parsed (recorded
    # beside our shape), the other files read (sources.yaml), the cluster its settings name.
    dialect: str = Dialect.OURS
    original: dict[str, Any] | None = None
    extra_paths: tuple[Path, ...] = ()
    kubeconfig: str | None = None
    kube_context: str | None = None
    # Git apps' checkouts (``sbkube.sources``), by app name: what ``${repos.NAME}`` in a
    # path stands for, once fetched (``bind_sources``); the files of an http app's ``dest``
    # are read only after its download.
    checkouts: Mapping[str, Path] = field(default_factory=dict)

    @property
    def snapshot(self) -> dict[str, Any]:
        """What a deployment records as its config: config.yaml as read, with the
        command line's namespace applied and its values under ``command_line``."""
        base = self.raw
        if self.original is not None:
            base = {**base, "format": str(self.dialect), "original": self.original}
        if not self.command_line.values and self.namespace_override is None:
            return base
        extra: dict[str, Any] = {}
        if self.namespace_override is not None:
            extra["namespace"] = self.namespace_override
        if self.command_line.values:
            extra["values"] = self.command_line.values
        return {**base, "command_line": extra}

    @property
    def shown_config(self) -> str:
        """The config file's path as error messages show it."""
        return display_path(self.config_path)

    def app(self, name: str) -> AppConfig:
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

    def pick(
        self,
        names: Sequence[str] | None,
        selectors: Sequence[str] = (),
        *,
        with_deps: bool = True,
        dependents: bool = False,
    ) -> tuple[str, ...]:
        """The apps a command works on, in deploy order: ``--app`` names (:meth:`select`)
        or ``-l`` selectors (``selection.py``: with the apps they need, or with
        ``dependents`` the apps that need them, unless not ``with_deps``); all enabled
        apps when neither is given. Both at once is a UsageError."""
        if not selectors:
            return self.select(names)
        from sbkube.config.selection import AppLabels, parse_selectors, pick

        if names:
            raise UsageError("--app and --selector each pick apps: give one of them")
        parsed = parse_selectors(selectors)
        apps = [
            AppLabels(
                name,
                {
                    "name": name,
                    "namespace": self.app_namespace(name),
                    "type": self.app(name).type,
                    **self.app(name).labels,
                },
                tuple(self.app(name).depends_on),
            )
            for name in self.order
        ]
        return pick(apps, parsed, with_deps=with_deps, dependents=dependents)

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
        """A path from config.yaml, resolved against the app directory; ``${repos.NAME}``
        stands for git app NAME's checkout (ConfigError when it is not fetched)."""
        return resolve_checked(self.app_dir / self.expand(relative))

    def expand(self, relative: str) -> str:
        """``relative`` with each ``${repos.NAME}`` replaced by NAME's checkout."""
        if "${" not in relative:
            return relative

        def checkout(match: re.Match[str]) -> str:
            name = match.group(1)
            path = self.checkouts.get(name)
            if path is None:
                raise ConfigError(
                    f"{self.shown_config}: ${{repos.{name}}}: the checkout of git app "
                    f"{name!r} is not fetched (sbkube deploy fetches it)"
                )
            return str(path)

        return REPO_VARIABLE_RE.sub(checkout, relative)

    def source_of(self, path: Path) -> str | None:
        """``${repos.NAME}/REL`` for a path inside a checkout, else None."""
        for name, root in self.checkouts.items():
            try:
                rel = path.relative_to(root)
            except ValueError:
                continue
            return f"${{repos.{name}}}/{rel.as_posix()}"
        return None

    def waits_for_sources(self, name: str) -> tuple[str, ...]:
        """The git and http apps whose output the app reads (``${repos.NAME}`` in its
        paths, or an http app's ``dest``), in config order."""
        app = self.app(name)
        paths = _app_paths(app)
        found: list[str] = []
        for other, source in self.config.apps.items():
            if other == name or not source.enabled:
                continue
            if isinstance(source, GitApp):
                token = f"${{repos.{other}}}"
                if any(token in p for p in paths):
                    found.append(other)
            elif isinstance(source, HttpApp):
                dest = (self.app_dir / source.dest).resolve()
                for p in paths:
                    if "${" in p:
                        continue
                    mine = (self.app_dir / p).resolve()
                    if mine == dest or mine in dest.parents:
                        found.append(other)
                        break
        return tuple(found)

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
        key = resolve_checked(path)
        data = self._files.get(key)
        if data is None:
            data = read_file(key, display_path(path), what)
            self._files.setdefault(key, data)
            data = self._files[key]
        return data


# --------------------------------------------------------------------------- loading


def _app_paths(app: AppConfig) -> tuple[str, ...]:
    """The paths an app names (chart, values, manifests, kustomization, action files), as
    written."""
    if isinstance(app, HelmApp):
        return (app.chart, *app.values)
    if isinstance(app, YamlApp):
        return app.manifests
    if isinstance(app, KustomizeApp):
        return (app.path,)
    if isinstance(app, ActionApp):
        return tuple(step.path for step in app.actions)
    return ()


def _check_repo_variables(loaded: LoadedConfig, name: str, app: AppConfig) -> None:
    """Each ``${repos.NAME}`` an app's paths hold names an enabled git app."""
    for path in _app_paths(app):
        if "${" not in path:
            continue
        for match in re.finditer(r"\$\{([^}]*)\}?", path):
            text, inner = match.group(0), match.group(1)
            where = f"{loaded.shown_config}: apps.{name}: {path!r}"
            if not text.endswith("}") or not inner.startswith("repos.") or not inner[6:]:
                raise ConfigError(f"{where}: {text!r} is not ${{repos.NAME}}")
            target = loaded.config.apps.get(inner[6:])
            if not isinstance(target, GitApp):
                gits = [n for n, a in loaded.config.apps.items() if isinstance(a, GitApp)]
                raise ConfigError(
                    f"{where}: ${{repos.{inner[6:]}}} names no git app{suggest(inner[6:], gits)}"
                )
            if not target.enabled:
                raise ConfigError(f"{where}: git app {inner[6:]!r} is disabled")


def check_app(loaded: LoadedConfig, name: str) -> None:
    """The file checks of one app (chart, values, manifests, kustomization), made at load
    time, or once its sources are fetched for an app that reads them."""
    app = loaded.app(name)
    if isinstance(app, HelmApp):
        _check_chart(loaded, name, app)
    _check_app_files(loaded, name, app)


def _is_local_chart(app_dir: Path, chart: str) -> bool:
    if chart.startswith("${"):
        return True
    if chart.startswith(_LOCAL_PREFIXES):
        return True
    if "://" in chart:
        return False
    return (app_dir / chart).exists()


def _precheck_names(raw: dict[str, Any], shown: str) -> None:
    """Name-level checks that pydantic could only report against the whole ``apps`` field."""
    apps = raw.get("apps")
    if isinstance(apps, dict):
        for name in apps:
            if isinstance(name, str):
                problem = dns1123_label_problem(name)
                if problem is not None:
                    raise ConfigError(
                        f"{shown}: apps.{key_text(name)}: invalid app name: {problem}"
                    )
    repos = raw.get("repos")
    if isinstance(repos, dict):
        for name, url in repos.items():
            if isinstance(url, str) and not url.startswith(("http://", "https://")):
                raise ConfigError(
                    f"{shown}: repos.{key_text(name)}: url {url!r} must start with http:// "
                    "or https://"
                )


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
            raise ConfigError(f"{source}: expected a mapping (Chart.yaml), got {describe(meta)}")
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
        raise ConfigError(f"{shown}: not a valid packaged chart: {one_line(str(err))}") from None
    raise ConfigError(f"{shown}: not a valid packaged chart: no <name>/Chart.yaml inside")


def _check_app_files(loaded: LoadedConfig, name: str, app: AppConfig) -> None:
    shown = loaded.shown_config
    files: tuple[str, ...]
    if isinstance(app, HelmApp):
        files, field_name, what = app.values, "values", "values file"
        if app.overrides:
            from sbkube.config.chart_build import override_files

            override_files(loaded.app_dir, name, app.overrides, f"{shown}: apps.{name}")
    elif isinstance(app, YamlApp):
        files, field_name, what = app.manifests, "manifests", "manifest file"
    elif isinstance(app, KustomizeApp):
        _check_kustomization(loaded, name, app)
        return
    elif isinstance(app, ActionApp):
        files, field_name, what = tuple(s.path for s in app.actions), "actions", "manifest file"
    else:
        return
    for index, relative in enumerate(files):
        path = loaded.resolve_path(relative)
        at = f"{field_name}[{index}].path" if field_name == "actions" else f"{field_name}[{index}]"
        if not path.exists():
            raise ConfigError(
                f"{shown}: apps.{name}.{at}: {what} {relative!r} not found ({display_path(path)})"
            )
        try:
            loaded.read_bytes(path, what)
        except ConfigError as err:
            raise ConfigError(f"{shown}: apps.{name}.{at}: {err}") from None


KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def _check_kustomization(loaded: LoadedConfig, name: str, app: KustomizeApp) -> None:
    where = f"{loaded.shown_config}: apps.{name}.path"
    path = loaded.resolve_path(app.path)
    if not path.is_dir():
        raise ConfigError(f"{where}: directory {app.path!r} not found ({display_path(path)})")
    if not any((path / f).is_file() for f in KUSTOMIZATION_FILES):
        raise ConfigError(
            f"{where}: {app.path!r} holds no kustomization.yaml ({display_path(path)})"
        )


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


def resolve_checked(path: Path) -> Path:
    """``path.resolve()``, with a symbolic link loop (RuntimeError in Python 3.11, OSError
    later) reported as the one-line ConfigError it is."""
    try:
        return path.resolve()
    except RuntimeError:
        raise ConfigError(f"{display_path(path)}: symbolic link loop") from None
    except OSError as err:
        raise ConfigError(f"{display_path(path)}: {err.strerror or err}") from None


def load_config(
    app_dir: str | Path,
    config_file: str | None = None,
    *,
    namespace: str | None = None,
    values: CommandLineValues | None = None,
    profile: str | None = None,
    found: Found | None = None,
) -> LoadedConfig:
    """Load, validate and order the apps of an app dir's config, in any of the three
    formats (``dialects.py``): ``config_file`` names the file (None: found), ``profile``
    applies its ``environments.PROFILE`` (``environments.py``; the original's pair:
    ``sources-PROFILE.yaml``); an error then says the environment was applied. ``found``:
    the file already read (a phase's inline apps, or its settings merged in:
    ``config.phases``).

    ``namespace`` (``-n``) replaces the top-level namespace; ``values`` (``-f``/``--set``)
    go on top of every Helm app's values (see :mod:`~sbkube.config.command_line`).
    Raises ConfigError (one line, naming file and field) for anything wrong with the file
    or with the charts, values files and manifests it names (for enabled apps).
    """
    given_dir = Path(app_dir)
    if not given_dir.exists():
        raise ConfigError(f"{display_path(given_dir)}: app directory not found")
    if not given_dir.is_dir():
        raise ConfigError(f"{display_path(given_dir)}: app directory is not a directory")
    resolved_dir = resolve_checked(given_dir)
    found = found or find_config(resolved_dir, config_file, profile)
    try:
        return _load_found(found, resolved_dir, namespace, values)
    except ConfigError as err:
        if found.environment is not None:
            # The line names a field of the merged file: say where its value may come from.
            first, nl, rest = err.message.partition("\n")
            err.message = f"{first} (with environments.{found.environment} applied){nl}{rest}"
        raise


def _load_found(
    found: Found,
    resolved_dir: Path,
    namespace: str | None,
    values: CommandLineValues | None,
) -> LoadedConfig:
    config_path = found.path
    shown = display_path(config_path)
    data = found.data
    raw = found.content
    if isinstance(raw, dict) and "phases" in raw:
        raise ConfigError(
            f"{shown}: phases: a multi-phase file: deploy, rollback, status, diff and "
            "template take it as a whole (--phase NAME for some phases); other commands "
            "take one phase's app dir"
        )
    if raw is None:
        raise ConfigError(f"{shown}: file is empty (expected namespace: and apps:)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{shown}: expected a mapping at the top level, got {describe(raw)}")
    files = {resolve_checked(config_path): data}
    original: dict[str, Any] | None = None
    extra_paths: tuple[Path, ...] = ()
    kubeconfig = kube_context = None
    if found.dialect != Dialect.OURS:
        from sbkube.config.original import translate

        sources: Any = None
        sources_shown = None
        original = {config_path.name: raw}
        if found.sources is not None:
            sources_shown = display_path(found.sources)
            sources_data = read_file(found.sources, sources_shown, "sources file")
            sources = parse_yaml(sources_data, sources_shown)
            files[resolve_checked(found.sources)] = sources_data
            extra_paths = (found.sources,)
            original[found.sources.name] = sources
        translation = translate(
            raw,
            shown,
            sources=sources,
            sources_shown=sources_shown,
            base_dir=resolved_dir,
            single=found.dialect == Dialect.SINGLE,
        )
        raw = translation.raw
        kubeconfig, kube_context = translation.kubeconfig, translation.kube_context
    _precheck_names(raw, shown)
    if namespace is not None:
        raw = {**raw, "namespace": namespace}
    try:
        config = SbkubeConfig.model_validate(raw)
    except ValidationError as err:
        raise validation_error(err, shown) from None
    order = deploy_order(config, shown)
    loaded = LoadedConfig(
        app_dir=resolved_dir,
        config_path=config_path,
        config=config,
        raw=raw,
        order=order,
        _files=files,
        namespace_override=namespace,
        dialect=found.dialect,
        original=original,
        extra_paths=extra_paths,
        kubeconfig=kubeconfig,
        kube_context=kube_context,
    )
    if values:
        helm_apps = [n for n, a in config.apps.items() if isinstance(a, HelmApp)]
        resolved = resolve(values, config.apps, helm_apps)
        loaded = replace(loaded, command_line=resolved)
        loaded._files.update(resolved.files)
    _check_release_names(loaded)
    # An http app's header values are credentials whatever their names: hidden wherever
    # they would be recorded or shown, the config snapshot included.
    remember(v for a in config.apps.values() if isinstance(a, HttpApp) for v in a.headers.values())
    for name, app in config.apps.items():
        if not app.enabled:
            continue
        _check_repo_variables(loaded, name, app)
        if loaded.waits_for_sources(name):
            continue  # checked once its sources are fetched (sbkube.engine.fetch)
        check_app(loaded, name)
    return loaded


def config_cluster(
    app_dir: str | Path, config_file: str | None = None, profile: str | None = None
) -> tuple[str | None, str | None]:
    """The kubeconfig and context an app dir's settings name (the original sbkube's
    formats), or Nones; never raises: a broken config is reported by :func:`load_config`.
    A profile the file does not define (a file of phases whose app dirs define it) leaves
    the file's own settings."""
    for given in dict.fromkeys((profile, None)):
        try:
            return _settings_cluster(Path(app_dir), config_file, given)
        except (ConfigError, OSError):
            continue
    return None, None


def _settings_cluster(
    app_dir: Path, config_file: str | None, profile: str | None
) -> tuple[str | None, str | None]:
    from sbkube.config.original import translate

    resolved = resolve_checked(app_dir)
    found = find_config(resolved, config_file, profile)
    if found.dialect == Dialect.OURS or not isinstance(found.content, dict):
        return None, None
    if "phases" in found.content:
        # The original's sbkube.yaml of phases: the run's cluster is its settings' (one
        # cluster per run), read as translate reads a plain file's.
        settings = found.content.get("settings")
        settings = settings if isinstance(settings, dict) else {}
        kubeconfig, context = settings.get("kubeconfig"), settings.get("kubeconfig_context")
        if isinstance(kubeconfig, str):
            expanded = Path(os.path.expanduser(kubeconfig))
            kubeconfig = str(expanded if expanded.is_absolute() else resolved / expanded)
        return (
            kubeconfig if isinstance(kubeconfig, str) else None,
            context if isinstance(context, str) else None,
        )
    sources = None
    if found.sources is not None:
        shown = display_path(found.sources)
        sources = parse_yaml(read_file(found.sources, shown, "sources file"), shown)
    translation = translate(
        found.content,
        display_path(found.path),
        sources=sources,
        sources_shown=None,
        base_dir=resolved,
        single=found.dialect == Dialect.SINGLE,
    )
    return translation.kubeconfig, translation.kube_context
