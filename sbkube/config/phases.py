"""The reader of a multi-phase file: ``phases:`` in our ``config.yaml`` and in the
original tool's ``sbkube.yaml``, the same shape in both.

::

    namespace: platform            # where the run is recorded (ours; the original:
    cluster: prod                  #   settings.namespace / settings.cluster)
    settings:                      # the run's policy (the original's settings block)
      on_failure: rollback         # stop | continue | rollback   (default stop)
      rollback_scope: phase        # app | phase | all            (default app)
      max_workers: 2               # phases at once (1-32, default 4)
      parallel: true               # false: one phase at a time
    phases:
      infra:
        source: p1-infra           # an app dir, or its config file (p1-infra/sbkube.yaml)
      data:
        source: p2-data/config.yaml
        depends_on: [infra]
        on_failure: rollback       # (or in the phase's settings:) overrides the run's
        settings: {namespace: db}  # the phase's app dirs deploy into this namespace
      tools:
        apps: {...}                # inline apps (instead of source), the file's own format
      apps:
        source: p3-apps
        app_groups: [web, api]     # app dirs inside source's dir, in this order
        app_group_deps: {api: [web]}
        enabled: false             # left out of every run

:func:`read_phases` returns None for a file without ``phases:`` (a plain app dir), else a
:class:`PhasesFile`: each phase's app dirs (:class:`Group`: a directory and a config
file name, or inline apps), its ``depends_on`` (checked: known, no cycle), its
``on_failure``/``rollback_scope`` (the phase's, else the file's settings), and the phase
order (topological, file order among the ready ones). The ``settings`` of a phase are
merged over the settings of an original ``sbkube.yaml`` it names (scalars replace, maps
merge), so a phase's namespace or repositories reach its apps; for our config.yaml only
``namespace`` is read there (as ``-n`` would). Loading the app dirs themselves is
``loader.load_config``'s work (the engine calls it per group).

Every problem is one :class:`~sbkube.errors.ConfigError` line naming the file and the
field (``phases.data.depends_on[0]: unknown phase 'infra2' (did you mean 'infra'?)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from graphlib import CycleError
from pathlib import Path
from typing import Any

from sbkube.config.dialects import OURS_FILE, SINGLE_FILE
from sbkube.config.ordering import file_order, refuse_cycles
from sbkube.config.reading import display_path, parse_yaml, read_file
from sbkube.config.schema import dns1123_label_problem
from sbkube.errors import ConfigError
from sbkube.messages import describe, key_text, suggest

__all__ = [
    "FAILURE_POLICIES",
    "ROLLBACK_SCOPES",
    "Group",
    "Phase",
    "PhasesFile",
    "read_phases",
]

FAILURE_POLICIES = ("stop", "continue", "rollback")
ROLLBACK_SCOPES = ("app", "phase", "all")
MAX_WORKERS = 32

_PHASE_FIELDS = frozenset(
    {
        "description",
        "source",
        "apps",
        "depends_on",
        "enabled",
        "settings",
        "on_failure",
        "rollback_scope",
        "app_groups",
        "app_group_deps",
    }
)
_RUN_SETTINGS = frozenset({"on_failure", "rollback_scope", "max_workers", "parallel"})
# Our config.yaml's top level beside phases:.
_OUR_TOP = frozenset({"namespace", "cluster", "secret_keys", "settings", "phases"})


@dataclass(frozen=True)
class Group:
    """One app dir of a phase: ``app_dir`` and the config file name to read there (None:
    found as ``--app-dir`` finds it); or ``inline`` apps read as a file of the parent's
    format at ``app_dir``. ``settings``: the phase's settings merged into an original
    ``sbkube.yaml``; ``namespace``: the phase's namespace (as ``-n``)."""

    name: str
    app_dir: Path
    config_file: str | None = None
    inline: Mapping[str, Any] | None = None
    namespace: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    deps: tuple[str, ...] = ()
    """The groups (full names: ``phase/group``) this one deploys after
    (``app_group_deps``, and the app dirs its config's ``deps:`` names)."""
    profile: str | None = None
    """``--profile ENV`` to load the app dir with: the run's, when the app dir defines
    it (``read_phases``); a plain app dir's run with a failure policy (``one_dir``)."""


@dataclass(frozen=True)
class Phase:
    name: str
    groups: tuple[Group, ...]
    depends_on: tuple[str, ...]
    on_failure: str
    rollback_scope: str
    description: str | None = None


@dataclass(frozen=True)
class PhasesFile:
    """A multi-phase file, read and checked (see the module docstring)."""

    path: Path
    dialect: str
    namespace: str
    cluster: str | None
    on_failure: str
    rollback_scope: str
    max_workers: int
    phases: Mapping[str, Phase]
    order: tuple[str, ...]
    """Enabled phases, dependencies first (file order among the ready ones)."""
    raw: Mapping[str, Any]
    secret_keys: tuple[str, ...] = ()
    profile: str | None = None
    """``--profile ENV`` the file was read with (recorded with the run)."""

    @property
    def shown(self) -> str:
        return display_path(self.path)

    def closure(self, names: list[str], *, with_deps: bool) -> tuple[str, ...]:
        """The phases ``names`` (``--phase``) and, ``with_deps``, every phase they need,
        in :attr:`order`; ConfigError for an unknown or disabled name."""
        wanted: set[str] = set()
        for name in names:
            if name not in self.phases:
                if name in self.raw.get("phases", {}):
                    raise ConfigError(
                        f"{self.shown}: phases.{name}.enabled: phase {name!r} is disabled"
                    )
                raise ConfigError(
                    f"--phase {name}: no such phase in {self.shown}"
                    f"{suggest(name, list(self.phases))} (phases: {', '.join(self.order)})"
                )
            wanted.add(name)
        if with_deps:
            todo = list(wanted)
            while todo:
                for dep in self.phases[todo.pop()].depends_on:
                    if dep not in wanted:
                        wanted.add(dep)
                        todo.append(dep)
        return tuple(name for name in self.order if name in wanted)


def _policy(value: Any, where: str, allowed: tuple[str, ...], shown: str, default: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise ConfigError(f"{shown}: {where}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _names(value: Any, where: str, shown: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{shown}: {where}: expected a list of names, got {describe(value)}")
    return tuple(value)


def _mapping(value: Any, where: str, shown: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{shown}: {where}: expected a mapping, got {describe(value)}")
    return value


def holds_phases(content: Any) -> bool:
    """Whether a parsed config file is a multi-phase file."""
    return isinstance(content, dict) and "phases" in content


def read_phases(
    app_dir: Path, config_file: str | None = None, profile: str | None = None
) -> PhasesFile | None:
    """The multi-phase file of ``app_dir`` (resolved), or None when its config has no
    ``phases:``; ConfigError (one line) for anything wrong in it.

    ``profile`` (``--profile ENV``) is the run's: the file's own ``environments.ENV`` is
    merged over it (as over any config: ``environments.py``), and every app dir of the run
    that defines ENV (its ``environments:``, or a ``sources-ENV.yaml`` beside it) is loaded
    with it; an app dir that does not is loaded as it is. A profile that neither the file
    nor any of its app dirs defines is one line listing the ones they do."""
    from sbkube.config.environments import apply_profile, check_profile_name, known_profiles

    if profile is not None:
        check_profile_name(profile)
    name = config_file
    if name is None:
        if (app_dir / SINGLE_FILE).exists():
            name = SINGLE_FILE
        elif (app_dir / OURS_FILE).exists():
            name = OURS_FILE
        else:
            return None
    path = app_dir / name
    if not path.is_file():
        return None
    shown = display_path(path)
    content = parse_yaml(read_file(path, shown, "config file"), shown)
    if not holds_phases(content):
        return None
    assert isinstance(content, dict)
    defined = known_profiles(content)
    content, merged_profile = apply_profile(content, profile, shown)
    api = content.get("apiVersion")
    original = path.name == SINGLE_FILE or (isinstance(api, str) and api.startswith("sbkube/"))
    settings = _mapping(content.get("settings"), "settings", shown)
    if original:
        if content.get("apps"):
            raise ConfigError(
                f"{shown}: apps: apps beside phases: are not read; put them in a phase of "
                "their own (phases.NAME.apps)"
            )
        for key in content:
            if key not in {"apiVersion", "metadata", "settings", "phases", "apps", "deps"}:
                raise ConfigError(f"{shown}: {key_text(key)}: unknown field beside phases:")
        namespace = settings.get("namespace", "default")
        cluster = settings.get("cluster")
    else:
        for key in content:
            if key not in _OUR_TOP:
                why = (
                    "apps beside phases: are not read; put them in a phase of their own "
                    "(phases.NAME.apps)"
                    if key == "apps"
                    else f"unknown field beside phases:{suggest(str(key), _OUR_TOP)}"
                )
                raise ConfigError(f"{shown}: {key_text(key)}: {why}")
        for key in settings:
            if key not in _RUN_SETTINGS:
                raise ConfigError(
                    f"{shown}: settings.{key_text(key)}: unknown field"
                    f"{suggest(str(key), _RUN_SETTINGS)} "
                    f"(settings: {', '.join(sorted(_RUN_SETTINGS))})"
                )
        namespace = content.get("namespace", "default")
        cluster = content.get("cluster")
    if not isinstance(namespace, str) or dns1123_label_problem(namespace):
        where = "settings.namespace" if original else "namespace"
        raise ConfigError(
            f"{shown}: {where}: {dns1123_label_problem(str(namespace)) or 'not a namespace'}"
        )
    if cluster is not None and not isinstance(cluster, str):
        raise ConfigError(f"{shown}: cluster: expected a name, got {describe(cluster)}")
    on_failure = _policy(
        settings.get("on_failure"), "settings.on_failure", FAILURE_POLICIES, shown, "stop"
    )
    scope = _policy(
        settings.get("rollback_scope"), "settings.rollback_scope", ROLLBACK_SCOPES, shown, "app"
    )
    workers = settings.get("max_workers", 4)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(
            f"{shown}: settings.max_workers: {workers!r} is not a number of phases at once "
            f"(1 to {MAX_WORKERS})"
        )
    parallel = settings.get("parallel", True)
    if not isinstance(parallel, bool):
        raise ConfigError(f"{shown}: settings.parallel: must be true or false")
    if not parallel:
        workers = 1
    secret_keys = content.get("secret_keys") or ()
    raw_phases = content.get("phases")
    if not isinstance(raw_phases, dict) or not raw_phases:
        raise ConfigError(
            f"{shown}: phases: expected a mapping of phase names, got {describe(raw_phases)}"
        )
    base = path.parent
    phases: dict[str, Phase] = {}
    for pname, spec in raw_phases.items():
        at = f"phases.{key_text(pname)}"
        if not isinstance(pname, str) or dns1123_label_problem(pname):
            raise ConfigError(
                f"{shown}: {at}: invalid phase name: {dns1123_label_problem(str(pname))}"
            )
        spec = _mapping(spec, at, shown)
        for key in spec:
            if key not in _PHASE_FIELDS:
                raise ConfigError(
                    f"{shown}: {at}.{key_text(key)}: unknown field"
                    f"{suggest(str(key), _PHASE_FIELDS)}"
                )
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{shown}: {at}.enabled: must be true or false")
        phase_settings = _mapping(spec.get("settings"), f"{at}.settings", shown)
        if not original:
            for key in phase_settings:
                if key not in _RUN_SETTINGS | {"namespace"}:
                    raise ConfigError(
                        f"{shown}: {at}.settings.{key_text(key)}: unknown field (a phase's "
                        "settings here: namespace, on_failure, rollback_scope)"
                    )
        phase_on_failure = _policy(
            spec.get("on_failure", phase_settings.get("on_failure")),
            f"{at}.on_failure",
            FAILURE_POLICIES,
            shown,
            on_failure,
        )
        phase_scope = _policy(
            spec.get("rollback_scope", phase_settings.get("rollback_scope")),
            f"{at}.rollback_scope",
            ROLLBACK_SCOPES,
            shown,
            scope,
        )
        ns = phase_settings.get("namespace")
        if ns is not None and (not isinstance(ns, str) or dns1123_label_problem(ns)):
            raise ConfigError(
                f"{shown}: {at}.settings.namespace: "
                f"{dns1123_label_problem(str(ns)) or 'not a namespace'}"
            )
        merged = {k: v for k, v in phase_settings.items() if k not in _RUN_SETTINGS}
        groups = _groups(spec, at, shown, base, pname, ns, merged, original, namespace)
        if not enabled:
            continue
        description = spec.get("description")
        phases[pname] = Phase(
            name=pname,
            groups=groups,
            depends_on=_names(spec.get("depends_on"), f"{at}.depends_on", shown),
            on_failure=phase_on_failure,
            rollback_scope=phase_scope,
            description=description if isinstance(description, str) else None,
        )
    order = _phase_order(phases, raw_phases, shown)
    if profile is not None:
        phases = _with_profile(phases, profile, merged_profile, defined, shown)
    return PhasesFile(
        path=path,
        dialect="original-sbkube.yaml" if original else "sbkube-config",
        namespace=namespace,
        cluster=cluster,
        on_failure=on_failure,
        rollback_scope=scope,
        max_workers=workers,
        phases=phases,
        order=order,
        raw=content,
        secret_keys=tuple(str(k) for k in secret_keys) if isinstance(secret_keys, list) else (),
        profile=profile,
    )


def dir_profiles(app_dir: Path, config_file: str | None) -> tuple[str, ...]:
    """The profiles an app dir defines: its config's ``environments:`` and the
    ``sources-ENV.yaml`` files beside it (none when its config cannot be read: loading it
    says why)."""
    from sbkube.config.dialects import find_config
    from sbkube.config.environments import sources_profiles

    try:
        found = find_config(app_dir.resolve(), config_file, None)
    except ConfigError:
        return ()
    return tuple(sorted({*found.environments, *sources_profiles(app_dir)}))


def _with_profile(
    phases: dict[str, Phase], profile: str, in_file: bool, defined: list[str], shown: str
) -> dict[str, Phase]:
    """``phases`` with ``profile`` given to each app dir that defines it; ConfigError when
    neither the file (``in_file``) nor any app dir does."""
    from sbkube.config.environments import unknown_profile

    known = set(defined)
    out: dict[str, Phase] = {}
    used = in_file
    for name, phase in phases.items():
        groups = []
        for group in phase.groups:
            if group.inline is None:
                profiles = dir_profiles(group.app_dir, group.config_file)
                known.update(profiles)
                if profile in profiles:
                    group = replace(group, profile=profile)
                    used = True
            groups.append(group)
        out[name] = replace(phase, groups=tuple(groups))
    if not used:
        raise unknown_profile(
            shown,
            profile,
            sorted(known),
            f"add environments.{profile} to it or to one of its app dirs' configs",
        )
    return out


def _groups(
    spec: Mapping[str, Any],
    at: str,
    shown: str,
    base: Path,
    pname: str,
    namespace: str | None,
    settings: Mapping[str, Any],
    original: bool,
    top_namespace: str,
) -> tuple[Group, ...]:
    source = spec.get("source")
    inline = spec.get("apps")
    if source is not None and inline is not None:
        raise ConfigError(f"{shown}: {at}: give source or apps, not both")
    if source is None and inline is None:
        raise ConfigError(f"{shown}: {at}: needs source (an app dir) or apps (inline apps)")
    group_names = _names(spec.get("app_groups"), f"{at}.app_groups", shown)
    group_deps = _mapping(spec.get("app_group_deps"), f"{at}.app_group_deps", shown)
    if inline is not None:
        if group_names or group_deps:
            raise ConfigError(f"{shown}: {at}.app_groups: app groups need a source directory")
        if not isinstance(inline, dict) or not inline:
            raise ConfigError(
                f"{shown}: {at}.apps: expected a mapping of apps, got {describe(inline)}"
            )
        if original:
            body: dict[str, Any] = {
                "apiVersion": "sbkube/v1",
                "settings": {"namespace": top_namespace, **settings},
                "apps": inline,
            }
        else:
            body = {"namespace": top_namespace, "apps": inline}
        return (Group(pname, base, None, body, namespace, settings),)
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"{shown}: {at}.source: expected a path, got {describe(source)}")
    target = (base / source).resolve()
    if target.is_dir():
        directory, config_file = target, None
    elif target.is_file():
        directory, config_file = target.parent, target.name
        if target.name.startswith("sources") and target.suffix in (".yaml", ".yml"):
            config_file = None  # the original's pair: its config.yaml beside it
    else:
        raise ConfigError(f"{shown}: {at}.source: {source!r} not found ({display_path(target)})")
    if directory == base.resolve() and config_file in (None, SINGLE_FILE, OURS_FILE):
        raise ConfigError(f"{shown}: {at}.source: {source!r} is this file's own directory")
    if not group_names:
        if group_deps:
            raise ConfigError(f"{shown}: {at}.app_group_deps: needs app_groups")
        return (Group(pname, directory, config_file, None, namespace, settings),)
    groups: list[Group] = []
    for index, gname in enumerate(group_names):
        gdir = directory / gname
        if not gdir.is_dir():
            raise ConfigError(
                f"{shown}: {at}.app_groups[{index}]: app dir {gname!r} not found "
                f"({display_path(gdir)})"
            )
        deps = _names(group_deps.get(gname), f"{at}.app_group_deps.{key_text(gname)}", shown)
        for dep in deps:
            if dep not in group_names:
                raise ConfigError(
                    f"{shown}: {at}.app_group_deps.{key_text(gname)}: unknown app group "
                    f"{dep!r}{suggest(dep, group_names)}"
                )
        full = tuple(f"{pname}/{d}" for d in deps)
        groups.append(Group(f"{pname}/{gname}", gdir, None, None, namespace, settings, full))
    for gname in group_deps:
        if gname not in group_names:
            raise ConfigError(
                f"{shown}: {at}.app_group_deps.{key_text(gname)}: not one of app_groups"
            )
    # Deployed dependencies first (the runner waits only for earlier apps).
    graph = {g: list(group_deps.get(g) or ()) for g in group_names}
    try:
        order = file_order(graph, {g: i for i, g in enumerate(group_names)})
    except CycleError as err:
        raise ConfigError(
            f"{shown}: {at}.app_group_deps: dependency cycle {' -> '.join(err.args[1])}"
        ) from None
    by_name = {g.name.rsplit("/", 1)[1]: g for g in groups}
    return tuple(by_name[g] for g in order)


def _phase_order(
    phases: Mapping[str, Phase], raw: Mapping[str, Any], shown: str
) -> tuple[str, ...]:
    names = list(raw)
    for name, phase in phases.items():
        for index, dep in enumerate(phase.depends_on):
            if dep not in raw:
                raise ConfigError(
                    f"{shown}: phases.{name}.depends_on[{index}]: unknown phase {dep!r}"
                    f"{suggest(dep, names)}"
                )
            if dep not in phases:
                raise ConfigError(
                    f"{shown}: phases.{name}.depends_on[{index}]: phase {dep!r} is disabled"
                )
    refuse_cycles({name: phase.depends_on for name, phase in phases.items()}, f"{shown}: phases")
    graph = {name: list(phase.depends_on) for name, phase in phases.items()}
    return tuple(file_order(graph, {n: i for i, n in enumerate(names)}))


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on ``base``: maps merge, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def load_group(
    group: Group,
    phases: PhasesFile,
    *,
    values: Any = None,
) -> Any:
    """The :class:`~sbkube.config.loader.LoadedConfig` of one group: its app dir's config
    (or its inline apps), with the phase's namespace and settings applied."""
    from sbkube.config.dialects import Dialect, Found, find_config
    from sbkube.config.loader import load_config

    found = None
    if group.inline is not None:
        dialect = Dialect.SINGLE if phases.dialect == Dialect.SINGLE else Dialect.OURS
        found = Found(
            phases.path,
            read_file(phases.path, phases.shown, "config file"),
            dict(group.inline),
            dialect,
        )
    elif group.settings:
        base = find_config(group.app_dir.resolve(), group.config_file, group.profile)
        if base.dialect == Dialect.SINGLE and isinstance(base.content, dict):
            settings = base.content.get("settings") or {}
            content = {**base.content, "settings": _merged(settings, group.settings)}
            found = Found(base.path, base.data, content, base.dialect)
    return load_config(
        group.app_dir,
        group.config_file,
        namespace=group.namespace,
        values=values,
        profile=group.profile,
        found=found,
    )


def plain_policy(
    app_dir: Path, config_file: str | None, profile: str | None
) -> tuple[str | None, str | None]:
    """The ``on_failure`` and ``rollback_scope`` an original app dir's settings (its
    ``sbkube.yaml``, or the ``sources.yaml`` of its pair) give, or Nones; never raises
    (a broken config is reported by ``load_config``)."""
    from sbkube.config.dialects import Dialect, find_config

    try:
        found = find_config(app_dir.resolve(), config_file, profile)
        if found.dialect == Dialect.SINGLE and isinstance(found.content, dict):
            settings = found.content.get("settings")
        elif found.sources is not None:
            shown = display_path(found.sources)
            settings = parse_yaml(read_file(found.sources, shown, "sources file"), shown)
        else:
            return None, None
    except (ConfigError, OSError):
        return None, None
    if not isinstance(settings, dict):
        return None, None
    failure, scope = settings.get("on_failure"), settings.get("rollback_scope")
    return (
        failure if failure in FAILURE_POLICIES else None,
        scope if scope in ROLLBACK_SCOPES else None,
    )


def declared_deps(app_dir: Path, config_file: str | None, profile: str | None) -> tuple[str, ...]:
    """The ``deps:`` of an app dir's config (either format), or (); never raises."""
    from sbkube.config.dialects import find_config

    try:
        found = find_config(app_dir.resolve(), config_file, profile)
    except (ConfigError, OSError):
        return ()
    deps = found.content.get("deps") if isinstance(found.content, dict) else None
    if not isinstance(deps, list):
        return ()
    return tuple(d for d in deps if isinstance(d, str))
