"""config.yaml: its schema, the loader that checks it, and what each app deploys.

``load_config(app_dir)`` returns a :class:`LoadedConfig`; every problem is a one-line
:class:`~sbkube.errors.ConfigError` naming the file and the field. Only pydantic and
PyYAML are imported here, so the CLI can load a config without pulling in SQLAlchemy
or the cluster adapters.
"""

from sbkube.config.loader import LoadedConfig, load_config
from sbkube.config.schema import HelmApp, SbkubeConfig, YamlApp
from sbkube.config.values import (
    load_manifests,
    load_manifests_with_sources,
    resolve_values,
    sources_snapshot,
)

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
