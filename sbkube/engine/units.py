"""The units of a multi-dir run: a file of phases read into its loaded app dirs.

A :class:`Unit` is one group of a phase (an app dir, or a phase's inline apps), loaded;
:func:`select_units` takes the phases a command runs (``--phase`` and the phases they
need, ``--no-deps``), loads their groups (with the app dirs their configs' ``deps:``
name) and picks the apps (``--app``, ``--selector``), app names unique across the run.
:func:`run_record` is what a run's deployment records about its input.

Shared by every command on a file of phases: ``deploy`` (``sbkube.engine.phases``), and
``status``, ``diff``, ``template`` and ``uninstall``, none of which runs anything
through the deployer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbkube.engine.target import Options, config_record
from sbkube.errors import ConfigError

if TYPE_CHECKING:
    from sbkube.cluster.port import Cluster
    from sbkube.config.loader import LoadedConfig
    from sbkube.config.phases import Group, PhasesFile
    from sbkube.engine.work import AppWork

__all__ = ["Unit", "display", "phases_of", "run_record", "select_units"]


@dataclass(frozen=True)
class Unit:
    """One group of a phase, loaded; ``works``: its apps prepared (a deploy's; empty for
    a command that runs nothing through the deployer)."""

    phase: str
    group: Group
    loaded: LoadedConfig
    works: tuple[AppWork, ...]


def phases_of(
    app_dir: str | os.PathLike[str], config_file: str | None, profile: str | None = None
) -> PhasesFile | None:
    """The multi-phase file of ``app_dir`` read with ``profile`` (``read_phases``), or None
    when it is a plain app dir."""
    from sbkube.config.loader import resolve_checked
    from sbkube.config.phases import read_phases

    given = Path(app_dir)
    if not given.is_dir():
        return None
    return read_phases(resolve_checked(given), config_file, profile)


def select_units(
    phases_file: PhasesFile, phases: Sequence[str] | None, options: Options
) -> tuple[tuple[str, ...], list[tuple[str, Group, LoadedConfig, tuple[str, ...]]]]:
    """The phases a run takes (``phases``: the ``--phase`` names, None: every enabled one;
    with the phases they need unless ``--no-deps``) and their groups, loaded, each with the
    apps it runs (``--app``, ``--selector``). App names must be unique across the run (one
    record holds them all); an ``--app`` of no phase is an error naming it."""
    no_deps = options.no_deps
    selected = phases_file.closure(
        list(phases) if phases else list(phases_file.order), with_deps=not no_deps
    )
    loaded_units = _load_units(phases_file, selected, options, no_deps=no_deps)
    owner: dict[str, str] = {}
    wanted_apps = set(options.apps or ())
    for pname, group, loaded, _names in loaded_units:
        for name in loaded.order:
            if name in owner:
                raise ConfigError(
                    f"{loaded.shown_config}: apps.{name}: app {name!r} is also in "
                    f"{owner[name]}: app names are unique across a run (one record "
                    "holds them all)"
                )
            owner[name] = f"phase {pname} ({group.name})"
    loaded_units = [
        (
            p,
            g,
            ld,
            ld.pick(None, options.selectors, with_deps=not no_deps)
            if options.selectors
            else tuple(n for n in ld.order if not wanted_apps or n in wanted_apps),
        )
        for p, g, ld, _n in loaded_units
    ]
    unknown = sorted(wanted_apps - set(owner))
    if unknown:
        raise ConfigError(
            f"--app {unknown[0]}: not an app of the phases run ({', '.join(selected)})"
        )
    return selected, loaded_units


def _load_units(
    phases_file: PhasesFile, selected: Sequence[str], options: Options, *, no_deps: bool
) -> list[tuple[str, Group, LoadedConfig, tuple[str, ...]]]:
    """Each selected phase's groups, loaded, with the app dirs their config's ``deps:``
    names: a dir already in the run (this phase, or a phase it needs) is deployed before
    the group that names it; a dir not in the run joins this phase, just before it
    (``--no-deps``: left out). Dependencies first, within each phase."""
    from sbkube.config.phases import Group, dir_profiles, load_group

    placed: dict[Path, tuple[str, str]] = {}  # app dir -> (phase, group name)
    out: list[tuple[str, Group, LoadedConfig, tuple[str, ...]]] = []

    def needs(phase: str) -> set[str]:
        seen: set[str] = set()
        todo = [phase]
        while todo:
            for dep in phases_file.phases[todo.pop()].depends_on:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    for pname in selected:
        declared = {g.app_dir.resolve(): g for g in phases_file.phases[pname].groups}
        before = needs(pname)

        def visit(
            group: Group,
            chain: tuple[Path, ...],
            pname: str = pname,
            before: set[str] = before,
            declared: dict[Path, Group] = declared,
        ) -> str:
            key = group.app_dir.resolve()
            if key in placed and group.inline is None:
                phase, name = placed[key]
                if phase != pname and phase not in before:
                    raise ConfigError(
                        f"{display(chain[-1] if chain else key)}: deps: {key.name!r} is in "
                        f"phase {phase}, which phase {pname} does not depend on"
                    )
                return name
            if key in chain:
                cycle = " -> ".join(p.name for p in (*chain, key))
                raise ConfigError(f"{display(chain[-1])}: deps: dependency cycle {cycle}")
            loaded = load_group(group, phases_file, values=options.values)
            extra: list[str] = []
            for dep in () if no_deps else loaded.config.deps:
                where = (group.app_dir / ".." / dep).resolve()
                if not where.is_dir():
                    raise ConfigError(
                        f"{loaded.shown_config}: deps: app dir {dep!r} not found ({display(where)})"
                    )
                known = declared.get(where)
                run_profile = phases_file.profile or group.profile
                joined = known or Group(
                    f"{pname}/{dep}",
                    where,
                    None,
                    None,
                    group.namespace,
                    group.settings,
                    # The run's profile, where that dir defines it.
                    profile=run_profile if run_profile in dir_profiles(where, None) else None,
                )
                extra.append(visit(joined, (*chain, key)))
            made = replace(group, deps=tuple(dict.fromkeys((*group.deps, *extra))))
            if group.inline is None:
                placed[key] = (pname, made.name)
            out.append((pname, made, loaded, loaded.order))
            return made.name

        for group in phases_file.phases[pname].groups:
            if group.inline is not None or group.app_dir.resolve() not in placed:
                visit(group, ())
    return out


def display(path: Path) -> str:
    from sbkube.config.reading import display_path

    return display_path(path)


def run_record(
    phases_file: PhasesFile, units: Sequence[Unit], cluster: Cluster, concurrency: int
) -> dict[str, Any]:
    """What the run's deployment records about its input: the multi-phase file as read,
    and each group's app dir, config file and config snapshot, and sources."""
    groups: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    for unit in units:
        rec = config_record(
            unit.loaded, cluster, prepared=[w.name for w in unit.works], concurrency=concurrency
        )
        groups[unit.group.name] = {
            "phase": unit.phase,
            "app_dir": rec["app_dir"],
            "config_file": rec["config_file"],
            "config": rec["config"],
        }
        sources[unit.group.name] = rec["sources"]
        if not phases_file.raw:  # one app dir (deploy --atomic): recorded as deploy records it
            return rec
    return {
        "app_dir": str(phases_file.path.parent),
        "config_file": str(phases_file.path),
        "config": {
            "format": phases_file.dialect,
            "phases_file": dict(phases_file.raw),
            "groups": groups,
        },
        "sources": sources,
    }
