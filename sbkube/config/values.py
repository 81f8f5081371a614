"""What an app deploys: merged Helm values, parsed manifests, and digests of the sources.

These functions work on a :class:`~sbkube.config.loader.LoadedConfig` and read files
through its cache, so the values and manifests handed to the engine are exactly the bytes
that :func:`sources_snapshot` records for the deployment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sbkube.config.loader import LoadedConfig
from sbkube.config.merge import deep_merge, expand_dotted
from sbkube.config.reading import display_path, parse_yaml, parse_yaml_documents
from sbkube.config.schema import (
    ActionApp,
    HelmApp,
    KustomizeApp,
    YamlApp,
    dns1123_label_problem,
    dns1123_subdomain_problem,
    label_value_problem,
)
from sbkube.errors import ConfigError
from sbkube.manifests import Discovery, Scope, expand_lists, is_list
from sbkube.redaction import DEFAULT_SECRET_KEYS, keyed_checksum, learn_manifests, secret_leaves

__all__ = [
    "deep_merge",
    "expand_dotted",
    "load_hook_objects",
    "load_manifests",
    "resolve_values",
    "sources_snapshot",
]


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
    # -f/--values and --set from the command line win, as helm's command line does.
    for layer in loaded.command_line.for_app(app):
        merged = deep_merge(merged, layer)
    # Known from here on: a chart that fails quoting a password, or renders it anywhere,
    # never shows it (sbkube.redaction hides every value found, wherever it reappears).
    secret_leaves(merged, (*DEFAULT_SECRET_KEYS, *(loaded.config.secret_keys or ())))
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


def load_manifests(
    loaded: LoadedConfig, app: str, discovery: Discovery | None = None
) -> list[dict[str, Any]]:
    """Every object in a yaml app's manifest files (see :func:`load_manifests_with_sources`)."""
    return [obj for _source, obj in load_manifests_with_sources(loaded, app, discovery)]


def load_manifests_with_sources(
    loaded: LoadedConfig, app: str, discovery: Discovery | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Every object in a yaml app's manifest files, in file and document order.

    Empty documents are skipped and ``kind: List`` (or ``*List``) documents stand for their
    items, as with kubectl. Namespaced objects without ``metadata.namespace`` get the app's
    namespace; cluster-scoped ones lose any namespace they name. Which kinds are namespaced
    comes from the app's own CustomResourceDefinitions, then ``discovery`` (the cluster's,
    ``(api_version, kind) -> bool | None``), then the offline list (see
    :class:`sbkube.manifests.Scope`). Returns fresh dicts; callers may change them (e.g. add
    labels).
    """
    config = _yaml_app(loaded, app)
    found = _read_manifest_files(loaded, config.manifests)
    return place_objects_found(loaded, app, found, discovery)


def _read_manifest_files(
    loaded: LoadedConfig, files: tuple[str, ...] | list[str]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every object of ``files`` (paths as configured), each checked:
    ``(file as configured, file as shown, "document N[ item M]", object)``."""
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    for relative in files:
        path = loaded.resolve_path(relative)
        shown = display_path(path)
        docs = parse_yaml_documents(loaded.read_bytes(path, "manifest file"), shown)
        count = 0
        for index, doc in enumerate(docs, start=1):
            if doc is None:
                continue
            where = f"{shown}: document {index}"
            if not isinstance(doc, dict):
                kind = "a list" if isinstance(doc, list) else type(doc).__name__
                raise ConfigError(f"{where}: expected a Kubernetes object (a mapping), got {kind}")
            listed = is_list(doc)
            items = list(expand_lists([doc])) if listed else [doc]
            for number, item in enumerate(items, start=1):
                label = f"document {index} item {number}" if listed else f"document {index}"
                if not isinstance(item, dict):
                    kind = type(item).__name__
                    raise ConfigError(
                        f"{shown}: {label}: expected a Kubernetes object (a mapping), got {kind}"
                    )
                problem = _manifest_problem(item)
                if problem is not None:
                    raise ConfigError(f"{shown}: {label}: {problem}")
                found.append((relative, shown, label, item))
                count += 1
        if count == 0:
            raise ConfigError(f"{shown}: no Kubernetes objects in manifest file")
    return found


def load_action_steps(
    loaded: LoadedConfig, app: str, discovery: Discovery | None = None
) -> list[list[tuple[str, dict[str, Any]]]]:
    """The objects of each step of an action app, in step order: read and checked as a
    YAML app's manifests are, placed in the step's namespace (else the app's). An object
    applied by two steps, or both applied and deleted, is refused: the apply steps' objects
    are applied together (one server-side apply)."""
    config = loaded.app(app)
    if not isinstance(config, ActionApp):
        raise ConfigError(f"{loaded.shown_config}: apps.{app}.type: {app!r} is not an action app")
    steps: list[list[tuple[str, dict[str, Any]]]] = []
    owner: dict[tuple[str, str, str, str], tuple[int, str]] = {}
    for index, step in enumerate(config.actions):
        found = _read_manifest_files(loaded, [step.path])
        placed = place_objects_found(loaded, app, found, discovery, namespace=step.namespace)
        for _source, obj in placed:
            meta = obj["metadata"]
            key = (
                obj["apiVersion"].rpartition("/")[0],
                obj["kind"],
                meta.get("namespace") or "",
                meta["name"],
            )
            if key in owner and (owner[key][1] == "apply" or step.type == "apply"):
                ident = f"{obj['kind']} {'/'.join(p for p in key[2:] if p)}"
                raise ConfigError(
                    f"{loaded.shown_config}: apps.{app}.actions[{index}]: {ident} is also in "
                    f"actions[{owner[key][0]}] ({owner[key][1]}): an object is applied once, "
                    "or deleted"
                )
            owner.setdefault(key, (index, step.type))
        steps.append(placed)
    return steps


def load_hook_objects(
    loaded: LoadedConfig,
    app: str,
    files: tuple[str, ...] | list[str],
    discovery: Discovery | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The objects of manifest files an app's hooks or tasks apply (``files`` as
    configured), read, checked and placed as a YAML app's manifests are."""
    return place_objects_found(loaded, app, _read_manifest_files(loaded, files), discovery)


def rendered_objects(
    loaded: LoadedConfig,
    app: str,
    documents: list[dict[str, Any]],
    source: str,
    discovery: Discovery | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Objects a tool rendered for ``app`` (``kubectl kustomize``), checked and placed as
    a YAML app's manifests are (see :func:`load_manifests_with_sources`); ``source``
    names where they came from in messages and in the record."""
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    for number, item in enumerate(documents, start=1):
        label = f"object {number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{source}: {label}: expected a Kubernetes object (a mapping)")
        problem = _manifest_problem(item)
        if problem is not None:
            raise ConfigError(f"{source}: {label}: {problem}")
        found.append((source, source, label, item))
    if not found:
        raise ConfigError(f"{source}: no Kubernetes objects rendered")
    return place_objects_found(loaded, app, found, discovery)


def place_objects_found(
    loaded: LoadedConfig,
    app: str,
    found: list[tuple[str, str, str, dict[str, Any]]],
    discovery: Discovery | None,
    *,
    namespace: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """``(file as configured, file as shown, label, object)`` found for ``app``: each
    placed in ``namespace`` (else the app's) when it names none, duplicates refused;
    ``(file, object)`` pairs."""
    namespace = namespace or loaded.app_namespace(app)
    # Scope is decided once every object is read: a CRD may come after the objects of its kind.
    scope = Scope.of((obj for *_, obj in found), discovery)
    objects: list[tuple[str, dict[str, Any]]] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for relative, shown, label, doc in found:
        metadata = scope.place(doc, namespace)["metadata"]
        group = doc["apiVersion"].rpartition("/")[0]
        key = (group, doc["kind"], metadata.get("namespace") or "", metadata["name"])
        if key in seen:
            ident = f"{doc['kind']} {'/'.join(p for p in key[2:] if p)}"
            raise ConfigError(f"{shown}: {label}: duplicate object {ident} (also {seen[key]})")
        seen[key] = f"{shown} {label}"
        objects.append((relative, doc))
    learn_manifests(obj for _source, obj in objects)
    return objects


def _relative(loaded: LoadedConfig, path: Path) -> str:
    return loaded.source_of(path) or Path(os.path.relpath(path, loaded.app_dir)).as_posix()


def _app_sources(loaded: LoadedConfig, name: str) -> list[Path]:
    try:
        paths = _app_paths(loaded, name)
    except ConfigError:
        if loaded.waits_for_sources(name):
            return []  # its checkout is not fetched (a command that fetches nothing)
        raise
    if loaded.waits_for_sources(name):
        # A download a dry run did not make: what the app would read is not there yet.
        paths = [p for p in paths if p.exists()]
    return paths


def _app_paths(loaded: LoadedConfig, name: str) -> list[Path]:
    config = loaded.app(name)
    paths: list[Path] = []
    if isinstance(config, HelmApp):
        chart = loaded.local_chart_path(name)
        if chart is not None:
            paths.append(chart / "Chart.yaml" if chart.is_dir() else chart)
        paths.extend(loaded.resolve_path(relative) for relative in config.values)
        if config.overrides:
            from sbkube.config.chart_build import override_files

            where = f"{loaded.shown_config}: apps.{name}"
            paths.extend(
                p for _, p in override_files(loaded.app_dir, name, config.overrides, where)
            )
    elif isinstance(config, YamlApp):
        paths.extend(loaded.resolve_path(relative) for relative in config.manifests)
    elif isinstance(config, ActionApp):
        paths.extend(loaded.resolve_path(step.path) for step in config.actions)
    return paths


def _tree_sources(loaded: LoadedConfig, name: str) -> dict[str, str]:
    """A kustomization's files, each by its digest (read from disk: kubectl reads them)."""
    from sbkube.config.charts import chart_digest

    config = loaded.app(name)
    if not isinstance(config, KustomizeApp):
        return {}
    try:
        root = loaded.resolve_path(config.path)
    except ConfigError:
        if loaded.waits_for_sources(name):
            return {}  # its checkout is not fetched (a command that fetches nothing)
        raise
    digest = chart_digest(root)
    return {_relative(loaded, root) + "/": digest} if digest else {}


def sources_snapshot(loaded: LoadedConfig, app: str | None = None) -> dict[str, str]:
    """``{relative path: "hmac-checksum:<hex>"}`` for config.yaml and the files the app(s)
    read: keyed checksums (:func:`sbkube.redaction.keyed_checksum`), as a values file's
    plain sha256 would let a weak password in it be guessed offline.

    With ``app`` None, covers every enabled app. Paths are relative to the app directory
    (``../`` for files outside it); local charts contribute their Chart.yaml, packaged
    charts their .tgz. Digests are of the bytes this load read, not of the disk now.
    """
    paths = [loaded.config_path, *loaded.extra_paths]
    names = loaded.order if app is None else (app,)
    for name in names:
        paths.extend(_app_sources(loaded, name))
    paths.extend(loaded.command_line.files)
    snapshot: dict[str, str] = {}
    for path in paths:
        snapshot[_relative(loaded, path)] = keyed_checksum(loaded.read_bytes(path))
    for name in names:
        snapshot.update(_tree_sources(loaded, name))
    return snapshot
