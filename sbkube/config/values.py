"""What an app deploys: merged Helm values, parsed manifests, and digests of the sources.

These functions work on a :class:`~sbkube.config.loader.LoadedConfig` and read files
through its cache, so the values and manifests handed to the engine are exactly the bytes
that :func:`sources_snapshot` records for the deployment.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

from sbkube.config.loader import LoadedConfig
from sbkube.config.reading import display_path, parse_yaml, parse_yaml_documents
from sbkube.config.schema import (
    HelmApp,
    YamlApp,
    dns1123_label_problem,
    dns1123_subdomain_problem,
    label_value_problem,
)
from sbkube.errors import ConfigError
from sbkube.manifests import is_cluster_scoped

__all__ = ["deep_merge", "expand_dotted", "load_manifests", "resolve_values", "sources_snapshot"]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` on top of ``base``, mappings merged recursively.

    Lists and scalars are replaced, not merged, and an explicit null is kept (Helm then
    drops the key from the chart's defaults), matching ``helm -f a.yaml -f b.yaml``.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _split_dotted(key: str) -> list[str]:
    # Like helm --set: "a.b" nests, "a\.b" is a literal dot.
    parts: list[str] = []
    current = ""
    escaped = False
    for char in key:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
    if escaped:
        current += "\\"
    parts.append(current)
    return parts


def expand_dotted(flat: dict[str, Any], where: str = "set") -> dict[str, Any]:
    """Turn ``{"auth.password": x}`` into ``{"auth": {"password": x}}``, merging siblings.

    ``where`` prefixes error messages (e.g. ``config.yaml: apps.redis.set``).
    """
    result: dict[str, Any] = {}
    for key, value in flat.items():
        parts = _split_dotted(str(key))
        if any(part == "" for part in parts):
            raise ConfigError(f"{where}.{key}: empty path segment in key")
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise ConfigError(
                    f"{where}.{key}: conflicts with {prefix!r}, which is not a mapping"
                )
            node = child
        leaf = parts[-1]
        if isinstance(value, dict):
            value = expand_dotted(value, f"{where}.{key}")
        existing = node.get(leaf)
        if isinstance(existing, dict) and isinstance(value, dict):
            node[leaf] = deep_merge(existing, value)
        elif leaf in node and existing != value:
            raise ConfigError(f"{where}.{key}: set more than once with different values")
        else:
            node[leaf] = copy.deepcopy(value)
    return result


def _helm_app(loaded: LoadedConfig, app: str) -> HelmApp:
    config = loaded.app(app)
    if not isinstance(config, HelmApp):
        raise ConfigError(f"{loaded.shown_config}: apps.{app}.type: {app!r} is not a helm app")
    return config


def _yaml_app(loaded: LoadedConfig, app: str) -> YamlApp:
    config = loaded.app(app)
    if not isinstance(config, YamlApp):
        raise ConfigError(f"{loaded.shown_config}: apps.{app}.type: {app!r} is not a yaml app")
    return config


def resolve_values(loaded: LoadedConfig, app: str) -> dict[str, Any]:
    """The values for a helm app: its values files deep-merged in order, then ``set``.

    Always a fresh dict; callers may change it.
    """
    config = _helm_app(loaded, app)
    merged: dict[str, Any] = {}
    for relative in config.values:
        path = loaded.resolve_path(relative)
        shown = display_path(path)
        document = parse_yaml(loaded.read_bytes(path, "values file"), shown)
        if document is None:
            continue
        if not isinstance(document, dict):
            kind = "a list" if isinstance(document, list) else type(document).__name__
            raise ConfigError(f"{shown}: values file must be a mapping, got {kind}")
        merged = deep_merge(merged, document)
    if config.set:
        overrides = expand_dotted(dict(config.set), f"{loaded.shown_config}: apps.{app}.set")
        merged = deep_merge(merged, overrides)
    return merged


def _manifest_problem(doc: dict[str, Any]) -> str | None:
    for key in ("apiVersion", "kind"):
        value = doc.get(key)
        if value is None or value == "":
            return f"{key} missing"
        if not isinstance(value, str):
            return f"{key} must be a string"
    metadata = doc.get("metadata")
    if metadata is None:
        return "metadata.name missing"
    if not isinstance(metadata, dict):
        return "metadata must be a mapping"
    name = metadata.get("name")
    if name is None or name == "":
        return "metadata.name missing"
    if not isinstance(name, str):
        return "metadata.name must be a string"
    problem = dns1123_subdomain_problem(name)
    if problem is not None:
        return f"metadata.name: {problem}"
    namespace = metadata.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str):
            return "metadata.namespace must be a string"
        problem = dns1123_label_problem(namespace)
        if problem is not None:
            return f"metadata.namespace: {problem}"
    labels = metadata.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            return "metadata.labels must be a mapping"
        for key, value in labels.items():
            if not isinstance(key, str) or not key or not key.isprintable() or " " in key:
                return f"metadata.labels: {key!r} is not a valid label key"
            if not isinstance(value, str):
                return f"metadata.labels.{key} must be a string"
            problem = label_value_problem(value)
            if problem is not None:
                return f"metadata.labels.{key}: {problem}"
    return None


def load_manifests(loaded: LoadedConfig, app: str) -> list[dict[str, Any]]:
    """Every object in a yaml app's manifest files (see :func:`load_manifests_with_sources`)."""
    return [obj for _source, obj in load_manifests_with_sources(loaded, app)]


def load_manifests_with_sources(loaded: LoadedConfig, app: str) -> list[tuple[str, dict[str, Any]]]:
    """Every object in a yaml app's manifest files, in file and document order.

    Empty documents are skipped. Namespaced objects without ``metadata.namespace`` get the
    app's namespace. Returns fresh dicts; callers may change them (e.g. add labels).
    """
    config = _yaml_app(loaded, app)
    namespace = loaded.app_namespace(app)
    objects: list[tuple[str, dict[str, Any]]] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for relative in config.manifests:
        path = loaded.resolve_path(relative)
        shown = display_path(path)
        docs = parse_yaml_documents(loaded.read_bytes(path, "manifest file"), shown)
        found = 0
        for index, doc in enumerate(docs, start=1):
            if doc is None:
                continue
            where = f"{shown}: document {index}"
            if not isinstance(doc, dict):
                kind = "a list" if isinstance(doc, list) else type(doc).__name__
                raise ConfigError(f"{where}: expected a Kubernetes object (a mapping), got {kind}")
            problem = _manifest_problem(doc)
            if problem is not None:
                raise ConfigError(f"{where}: {problem}")
            metadata = doc["metadata"]
            if not is_cluster_scoped(doc["kind"]):
                metadata.setdefault("namespace", namespace)
            group = doc["apiVersion"].rpartition("/")[0]
            key = (group, doc["kind"], metadata.get("namespace") or "", metadata["name"])
            if key in seen:
                ident = f"{doc['kind']} {'/'.join(p for p in key[2:] if p)}"
                raise ConfigError(f"{where}: duplicate object {ident} (also {seen[key]})")
            seen[key] = f"{shown} document {index}"
            objects.append((relative, doc))
            found += 1
        if found == 0:
            raise ConfigError(f"{shown}: no Kubernetes objects in manifest file")
    return objects


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _relative(loaded: LoadedConfig, path: Path) -> str:
    return Path(os.path.relpath(path, loaded.app_dir)).as_posix()


def _app_sources(loaded: LoadedConfig, name: str) -> list[Path]:
    config = loaded.app(name)
    paths: list[Path] = []
    if isinstance(config, HelmApp):
        chart = loaded.local_chart_path(name)
        if chart is not None:
            paths.append(chart / "Chart.yaml" if chart.is_dir() else chart)
        paths.extend(loaded.resolve_path(relative) for relative in config.values)
    else:
        paths.extend(loaded.resolve_path(relative) for relative in config.manifests)
    return paths


def sources_snapshot(loaded: LoadedConfig, app: str | None = None) -> dict[str, str]:
    """``{relative path: "sha256:<hex>"}`` for config.yaml and the files the app(s) read.

    With ``app`` None, covers every enabled app. Paths are relative to the app directory
    (``../`` for files outside it); local charts contribute their Chart.yaml, packaged
    charts their .tgz. Digests are of the bytes this load read, not of the disk now.
    """
    paths = [loaded.config_path]
    names = loaded.order if app is None else (app,)
    for name in names:
        paths.extend(_app_sources(loaded, name))
    snapshot: dict[str, str] = {}
    for path in paths:
        snapshot[_relative(loaded, path)] = _digest(loaded.read_bytes(path))
    return snapshot
