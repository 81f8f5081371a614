"""Profiles (``--profile ENV``): one app dir, several environments, in every format.

The shape, modelled on helmfile's ``environments:`` (without its templating): a config
file may hold a top-level ``environments:`` mapping, each entry an overlay written in the
file's OWN terms, deep-merged over the file when ``--profile`` names it::

    # our config.yaml
    namespace: demo
    apps:
      redis: {type: helm, chart: ./charts/redis, values: [values/redis.yaml]}
      web:   {type: yaml, manifests: [manifests/web.yaml], labels: {tier: front}}
    environments:
      prod:
        namespace: demo-prod                 # replaces
        cluster: k3s-prod
        apps:
          redis:
            values: [values/redis.yaml, values/redis-prod.yaml]   # a list replaces
            set: {replicaCount: 3}                                # a mapping merges
          web: {enabled: false}

The merge is helm's rule for values: mappings merge key by key, anything else (a list,
a string, a number) replaces. An environment changes the apps the file has; it adds none
(``environments.prod.apps.x`` for an app the file lacks is refused, naming it). Without
``--profile`` the file is read without any environment.

* our ``config.yaml`` and the original's ``sbkube.yaml``: ``environments:`` as above (in
  ``sbkube.yaml``, the overlay speaks its terms: ``settings:``, ``set_values:``...);
* the original's ``config.yaml`` + ``sources.yaml`` pair: ``sources-ENV.yaml`` replaces
  ``sources.yaml``, as the original reads it; ``environments.ENV`` in the config.yaml
  applies too when present.

:func:`apply_profile` is called by ``dialects.find_config`` on the parsed file, so every
reader (ours, the original's, ``config convert``, the settings' kubeconfig) sees the one
merged file; the ``environments`` key itself never reaches a reader. A profile that is
neither an environment nor a sources file is one line naming it and the known ones (exit
2). The profile a deployment was made with is recorded with it (``state list --profile``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sbkube.errors import ConfigError
from sbkube.messages import key_text

__all__ = [
    "ENVIRONMENTS",
    "apply_profile",
    "check_profile_name",
    "known_profiles",
    "sources_profiles",
    "unknown_profile",
]

ENVIRONMENTS = "environments"
_SOURCES = re.compile(r"sources-(?P<name>.+)\.yaml\Z")
# A profile names a file (sources-ENV.yaml) and is recorded: a plain word.
_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


def check_profile_name(profile: str) -> None:
    """A ConfigError unless ``profile`` is a plain name (letters, digits, ``.-_``)."""
    if not _PROFILE.match(profile) or ".." in profile:
        raise ConfigError(
            f"--profile {profile!r}: not a profile name (letters, digits, '.', '-' and '_', "
            "at most 63)"
        )


def sources_profiles(app_dir: Path) -> list[str]:
    """The profiles the ``sources-ENV.yaml`` files beside a config name."""
    try:
        names = [p.name for p in app_dir.iterdir()]
    except OSError:
        return []
    return sorted(m.group("name") for n in names if (m := _SOURCES.match(n)))


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return over


def apply_profile(content: Any, profile: str | None, shown: str) -> tuple[Any, bool]:
    """``content`` without its ``environments:`` and, when ``profile`` names one of them,
    with that environment merged over it; and whether one was merged. A profile it does
    not name is the caller's to refuse (:func:`unknown_profile`): it may be a sources file."""
    if not isinstance(content, dict) or ENVIRONMENTS not in content:
        return content, False
    envs = content[ENVIRONMENTS]
    base = {k: v for k, v in content.items() if k != ENVIRONMENTS}
    if envs is None:
        return base, False
    if not isinstance(envs, dict):
        raise ConfigError(f"{shown}: {ENVIRONMENTS}: must be a mapping of name -> overlay")
    for name, overlay in envs.items():
        at = f"{ENVIRONMENTS}.{key_text(name)}"
        if not isinstance(name, str) or not _PROFILE.match(name):
            raise ConfigError(
                f"{shown}: {at}: not a profile name (letters, digits, '.', '-' and '_')"
            )
        if overlay is None:
            continue
        if not isinstance(overlay, dict):
            raise ConfigError(f"{shown}: {at}: must be a mapping (an overlay of this file)")
        if ENVIRONMENTS in overlay:
            raise ConfigError(f"{shown}: {at}.{ENVIRONMENTS}: environments do not nest")
        apps, base_apps = overlay.get("apps"), base.get("apps")
        if apps is not None and not isinstance(apps, dict):
            raise ConfigError(f"{shown}: {at}.apps: must be a mapping of app name -> changes")
        if isinstance(apps, dict) and isinstance(base_apps, dict):
            for app in apps:
                if app not in base_apps:
                    raise ConfigError(
                        f"{shown}: {at}.apps.{key_text(app)}: no such app in apps "
                        "(an environment changes the file's apps, it adds none)"
                    )
    if profile is None or profile not in envs:
        return base, False
    return _merge(base, envs[profile] or {}), True


def known_profiles(content: Any, more_known: Iterable[str] = ()) -> list[str]:
    """Every profile a file (its ``environments:``) and ``more_known`` name."""
    envs = content.get(ENVIRONMENTS) if isinstance(content, dict) else None
    names = set(more_known)
    if isinstance(envs, dict):
        names |= {str(k) for k in envs}
    return sorted(names)


def unknown_profile(shown: str, profile: str, known: list[str], hint: str) -> ConfigError:
    """The one line for a ``--profile`` nothing defines."""
    listed = f"known: {', '.join(known)}" if known else f"none defined; {hint}"
    return ConfigError(f"{shown}: --profile {profile}: no such profile ({listed})")
