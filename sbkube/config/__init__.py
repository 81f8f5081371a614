"""config.yaml: its schema, the loader that checks it, and what each app deploys.

``load_config(app_dir)`` returns a :class:`LoadedConfig`; every problem is a one-line
:class:`~sbkube.errors.ConfigError` naming the file and the field. ``schema`` (pydantic),
``reading`` (files and hardened YAML), ``messages`` (error wording), ``ordering`` (deploy
order, graphlib), ``loader`` (ties them together) and ``values`` (values and manifests
per app). Names are imported on first use; none of this pulls in SQLAlchemy or the
cluster adapters.
"""

from __future__ import annotations

from sbkube._lazy import lazy_exports

# typing is for the type checker only: imported before helm starts (sbkube.cli.entry).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from sbkube.config.loader import LoadedConfig, load_config
    from sbkube.config.schema import HelmApp, SbkubeConfig, YamlApp
    from sbkube.config.values import (
        load_manifests,
        load_manifests_with_sources,
        resolve_values,
        sources_snapshot,
    )

_EXPORTS: dict[str, str] = {
    "HelmApp": "schema",
    "LoadedConfig": "loader",
    "SbkubeConfig": "schema",
    "YamlApp": "schema",
    "load_config": "loader",
    "load_manifests": "values",
    "load_manifests_with_sources": "values",
    "resolve_values": "values",
    "sources_snapshot": "values",
}

__all__ = [
    "HelmApp",
    "LoadedConfig",
    "SbkubeConfig",
    "YamlApp",
    "load_config",
    "load_manifests",
    "load_manifests_with_sources",
    "resolve_values",
    "sources_snapshot",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
