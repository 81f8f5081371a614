"""Which of the three config formats an app dir holds, and where its files are.

An app dir holds one of:

* ours: ``config.yaml`` (``namespace``, ``repos``, ``apps`` with ``set:``/``manifests:``);
* the original tool's single file: ``sbkube.yaml`` with ``apiVersion: sbkube/v1``;
* the original tool's older pair: ``config.yaml`` beside ``sources.yaml`` (``--profile ENV``
  picks ``sources-ENV.yaml``).

Any of them may hold ``environments:``, overlays picked by ``--profile ENV``
(``environments.py``); the content :func:`find_config` returns has the profile applied.

:func:`find_config` decides, without validating anything, by these rules in order:

1. ``--config-file NAME`` names the file; otherwise ``sbkube.yaml`` when present, else
   ``config.yaml``.
2. A file with a top-level ``apiVersion: sbkube/...`` (or named ``sbkube.yaml``) is the
   single-file format.
3. A ``config.yaml`` with a ``sources.yaml`` (``sources-ENV.yaml``) beside it is the pair;
   so is one that uses a field only the original's format has (``set_values``, ``files``,
   ``deps``, ``hooks``, an app type ours does not read...): a file valid in both is ours.

The readers (``original.py`` for the original's two formats, ``loader.py`` for ours) turn
each into the one internal model (``schema.SbkubeConfig``); nothing past them knows which
format it came from, except the record, which keeps the original text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sbkube.config.names import OURS_FILE, SINGLE_FILE
from sbkube.config.reading import display_path, parse_yaml, read_file
from sbkube.errors import ConfigError

__all__ = ["Dialect", "Found", "find_config"]


class Dialect(StrEnum):
    OURS = "sbkube-config"
    """Our ``config.yaml``."""
    SINGLE = "original-sbkube.yaml"
    """The original tool's ``sbkube.yaml`` (``apiVersion: sbkube/v1``)."""
    PAIR = "original-config+sources"
    """The original tool's ``config.yaml`` (+ ``sources.yaml``)."""


@dataclass(frozen=True)
class Found:
    """The config file, its bytes and parsed content, its format, and (the pair) its
    sources file."""

    path: Path
    data: bytes
    content: Any
    dialect: Dialect
    sources: Path | None = None
    environment: str | None = None
    """The ``environments:`` entry merged over ``content`` (``--profile``), if one was."""
    environments: tuple[str, ...] = ()
    """Every environment the file defines (none of them left in ``content``)."""


# Top-level keys only the original's config.yaml has (deps: is ours too).
_ORIGINAL_TOP = frozenset({"hooks", "global_labels", "global_annotations"})


def _sources_name(profile: str | None) -> str:
    return f"sources-{profile}.yaml" if profile else "sources.yaml"


def _looks_original(content: Any) -> bool:
    """Whether a config.yaml uses something only the original's format has."""
    from sbkube.config.original import APP_FIELDS
    from sbkube.config.schema import APP_MODELS

    if not isinstance(content, dict):
        return False
    if any(key in _ORIGINAL_TOP for key in content):
        return True
    apps = content.get("apps")
    if isinstance(apps, list):
        # The original's 0.2 list form (refused by its reader, by name).
        return any(isinstance(a, dict) and ("specs" in a or "name" in a) for a in apps)
    if not isinstance(apps, dict):
        return False
    for app in apps.values():
        if not isinstance(app, dict):
            continue
        model = APP_MODELS.get(str(app.get("type")))
        if model is None:
            if str(app.get("type")) in APP_FIELDS:
                return True
            continue
        theirs = APP_FIELDS.get(str(app.get("type")), frozenset())
        extra = [key for key in app if key not in model.model_fields]
        if extra and all(key in theirs for key in extra):
            return True
    return False


def _load(path: Path) -> tuple[bytes, Any]:
    shown = display_path(path)
    data = read_file(path, shown, "config file")
    return data, parse_yaml(data, shown)


def find_config(app_dir: Path, config_file: str | None, profile: str | None) -> Found:
    """The app dir's config file and its format (see the module docstring), with the
    profile applied (``environments.py``): its ``environments:`` entry merged over the
    content, and for the pair its ``sources-ENV.yaml``.

    ``app_dir`` is resolved already. ConfigError (one line, exit 2) when no config file
    is there, or ``--profile`` names no environment and no sources file (the line lists
    the known ones).
    """
    from sbkube.config.environments import (
        apply_profile,
        check_profile_name,
        known_profiles,
        sources_profiles,
        unknown_profile,
    )

    if profile is not None:
        check_profile_name(profile)
    if config_file is None:
        if os.path.lexists(app_dir / SINGLE_FILE):
            config_file = SINGLE_FILE
        elif os.path.lexists(app_dir / OURS_FILE):
            config_file = OURS_FILE
        else:
            raise ConfigError(
                f"{display_path(app_dir / OURS_FILE)}: config file not found (nor {SINGLE_FILE})"
            )
    path = app_dir / config_file
    shown = display_path(path)
    if not os.path.lexists(path):
        raise ConfigError(f"{shown}: config file not found")
    data, given = _load(path)
    content, merged = apply_profile(given, profile, shown)
    env = profile if merged else None
    defined = tuple(known_profiles(given))
    api = content.get("apiVersion") if isinstance(content, dict) else None
    if path.name == SINGLE_FILE or (isinstance(api, str) and api.startswith("sbkube/")):
        if profile is not None and not merged:
            raise unknown_profile(
                shown, profile, known_profiles(given), f"add environments.{profile} to it"
            )
        return Found(path, data, content, Dialect.SINGLE, environment=env, environments=defined)
    sources = app_dir / _sources_name(profile)
    if profile is not None and not os.path.lexists(sources):
        if not merged:
            raise unknown_profile(
                shown,
                profile,
                known_profiles(given, sources_profiles(app_dir)),
                f"add environments.{profile} to it, or sources-{profile}.yaml beside it",
            )
        sources = app_dir / _sources_name(None)
    if os.path.lexists(sources):
        return Found(path, data, content, Dialect.PAIR, sources, env, defined)
    dialect = Dialect.PAIR if _looks_original(content) else Dialect.OURS
    return Found(path, data, content, dialect, environment=env, environments=defined)
