"""The reader of the original sbkube tool's two formats: its fields and defaults, mapped
into our one internal model.

:func:`translate` takes the parsed ``sbkube.yaml`` (``apiVersion``, ``metadata``,
``settings``, ``apps``) or ``config.yaml`` + ``sources.yaml`` and returns a
:class:`Translation`: a dict in our ``config.yaml`` shape (validated by the loader against
``schema.SbkubeConfig``, like ours), the cluster its settings name, and one
:class:`Rendering` per field whose meaning changed on the way (``sbkube config convert``
prints them). The engine never sees the original's names.

What the mapping keeps of the original's rules:

* ``settings`` (or ``sources.yaml``) give the namespace, the cluster name, the kubeconfig
  and context, the chart repositories (``helm_repos``: name -> url or ``{url: ...}``;
  ``oci_registries``: a chart ``NAME/chart`` becomes ``oci://REGISTRY/chart``); an app
  inherits ``namespace`` and ``helm_label_injection`` from them unless it says otherwise;
* Helm apps: ``wait`` is true and ``timeout`` 5m unless the file says otherwise;
  ``set_values`` is a mapping or a list of ``key=value`` (helm ``--set`` typing);
  ``repo: R`` + ``chart: C`` is the chart ``R/C``; ``labels``/``annotations`` (and the
  config's ``global_labels``/``global_annotations``) go into the chart's
  ``commonLabels``/``commonAnnotations`` values, as the original injects them, unless
  ``helm_label_injection`` is false or the chart is in ``incompatible_charts``;
* Helm apps' ``overrides`` (files under ``overrides/<app>/``) and ``removes`` (paths or
  globs in the chart) mean the same in ours: the chart is built in sbkube's cache;
* YAML apps: ``files`` (or ``manifests``); their labels and annotations are added to every
  object;
* git apps: ``repo`` is a URL or a ``git_repos`` name (``settings.git_repos`` /
  sources.yaml: a URL, or ``url`` + ``branch``); ``ref`` wins over ``branch``, then the
  repository's ``branch``, then ``main`` (the original's prepare); ``${repos.NAME}`` in
  other apps' paths is git app NAME's checkout, as in the original; http apps: ``url``,
  ``dest``, ``headers`` as they are;
* ``notes``, ``description``, ``metadata``, ``create_namespace`` (sbkube always creates
  a missing namespace and records it), ``force_conflicts`` (sbkube's apply always takes
  over fields changed behind its back) and ``context`` equal to the settings' context
  are read and recorded with the original text;
* hooks: the top-level ``hooks.deploy`` (``pre``, ``post``, ``on_failure``) and an app's
  ``pre_deploy``/``post_deploy``/``on_deploy_failure`` commands, manifest hooks (paths,
  or ``{path: ...}`` items as its docs write them) and ``pre_deploy_tasks``/
  ``post_deploy_tasks`` keep their shape (ours is the original's); a ``hook`` app's
  ``tasks``, ``validation`` and ``rollback`` too, its ``dependency.depends_on`` joining
  the app's ``depends_on`` and its ``dependency.wait_for`` becoming ``wait_for``. Hooks of
  commands or phases sbkube does not have (``hooks.prepare``, ``pre_build``...) are
  refused by name.

Everything else is either the original's default (accepted: it changes nothing) or
refused, ONE line per field naming it and why (:class:`~sbkube.errors.ConfigError`, exit
2), before anything is recorded. Never a silent drop.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbkube.config.command_line import parse_set
from sbkube.errors import ConfigError, FieldRefusals
from sbkube.messages import describe, key_text, suggest

__all__ = ["APP_FIELDS", "Rendering", "Translation", "translate"]

_COMMON = frozenset(
    {
        "type",
        "enabled",
        "depends_on",
        "namespace",
        "labels",
        "annotations",
        "notes",
        "description",
        "hooks",
        "context",
    }
)
#: Every field of each of the original's app types (its models, 0.11).
APP_FIELDS: dict[str, frozenset[str]] = {
    "helm": _COMMON
    | {
        "chart",
        "repo",
        "version",
        "values",
        "overrides",
        "removes",
        "set_values",
        "release_name",
        "create_namespace",
        "wait",
        "timeout",
        "atomic",
        "helm_label_injection",
        "force_conflicts",
    },
    "yaml": _COMMON | {"manifests", "files"},
    "noop": _COMMON,
    "exec": _COMMON | {"commands"},
    "kustomize": _COMMON | {"path"},
    "git": _COMMON | {"repo", "path", "branch", "ref", "tag", "commit"},
    "http": _COMMON | {"url", "dest", "headers"},
    "action": _COMMON | {"actions"},
    "hook": _COMMON | {"tasks", "validation", "dependency", "rollback"},
}
#: The app types our engine runs now; the others are refused by name.
_RUNNABLE = frozenset(
    {"helm", "yaml", "noop", "kustomize", "exec", "action", "git", "http", "hook"}
)

_SETTINGS_FIELDS = frozenset(
    {
        "namespace",
        "cluster",
        "kubeconfig",
        "kubeconfig_context",
        "helm_repos",
        "oci_registries",
        "git_repos",
        "helm_label_injection",
        "incompatible_charts",
        "force_label_injection",
        "execution_order",
        "parallel",
        "parallel_apps",
        "max_workers",
        "on_failure",
        "rollback_scope",
        "timeout",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "cleanup_metadata",
        "cluster_values_file",
        "global_values",
    }
)
# sources.yaml: the settings that were there before sbkube.yaml, plus app_dirs.
_SOURCES_FIELDS = (_SETTINGS_FIELDS - {"namespace"}) | {"app_dirs", "oci_repos"}
# Settings that change nothing here when they hold the original's default (or are only
# about how the original schedules its work); any other value is refused, with the reason.
_SETTING_DEFAULTS: dict[str, tuple[Any, str]] = {
    "on_failure": (
        ("stop", "continue", "rollback"),
        "the failure policy is one of stop, continue, rollback",
    ),
    "rollback_scope": (
        ("app", "phase", "all"),
        "the rollback scope is one of app, phase, all",
    ),
    "http_proxy": ((None,), "proxy settings are not supported; set HTTP_PROXY in the environment"),
    "https_proxy": (
        (None,),
        "proxy settings are not supported; set HTTPS_PROXY in the environment",
    ),
    "no_proxy": ((None,), "proxy settings are not supported; set NO_PROXY in the environment"),
    "cluster_values_file": ((None,), "cluster-wide values files are not supported yet"),
    "global_values": ((None, {}), "cluster-wide values are not supported yet"),
    "app_dirs": ((None,), "sbkube deploys one app dir per run; give each with --app-dir"),
    "oci_repos": ((None, {}), "the 0.2 oci_repos list is not read; use oci_registries"),
}
# Read, recorded, and without effect on what is deployed (listed by `config convert`).
_NO_EFFECT_SETTINGS = {
    "on_failure": "in config.yaml a failed app skips its dependents; deploy of this file "
    "reads it (rollback: what the run changed goes back), as deploy --on-failure does",
    "rollback_scope": "deploy of this file reads it, as deploy --rollback-scope does",
    "execution_order": "apps beside phases: are not read; apps run in depends_on order",
    "parallel": "independent phases run at once unless false; apps: --concurrency",
    "parallel_apps": "independent apps always run at once (--concurrency)",
    "max_workers": "how many phases run at once (apps at once: --concurrency)",
    "timeout": "each Helm app has its own timeout (default 5m)",
    "cleanup_metadata": "sbkube compares objects by server-side apply; nothing to clean",
}
_TOP_SINGLE = frozenset({"apiVersion", "metadata", "settings", "apps", "hooks", "phases", "deps"})
_TOP_PAIR = frozenset(
    {"namespace", "cluster", "deps", "hooks", "apps", "global_labels", "global_annotations"}
)
_GIT_REPO_FIELDS = frozenset({"url", "branch", "username", "password", "ssh_key"})
_GIT_URL_PREFIXES = ("http://", "https://", "git://", "ssh://", "file://", "git@")
_HELM_REPO_FIELDS = frozenset(
    {
        "url",
        "username",
        "password",
        "ca_file",
        "cert_file",
        "key_file",
        "insecure_skip_tls_verify",
        "insecure",
    }
)


@dataclass(frozen=True)
class Rendering:
    """How one field of the original's file is said in ours (for ``config convert``)."""

    field: str
    said: str


@dataclass
class Translation:
    """The original's file(s) in our shape, the cluster its settings name, and what changed."""

    raw: dict[str, Any]
    kubeconfig: str | None = None
    kube_context: str | None = None
    renderings: list[Rendering] = field(default_factory=list)


class _Problems:
    """Refusals collected over the whole file: all of them are reported, one line each."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.lines: list[str] = []

    def add(self, where: str, why: str) -> None:
        self.lines.append(f"{self.shown}: {where}: {why}")

    def raise_any(self) -> None:
        if len(self.lines) == 1:
            raise ConfigError(self.lines[0])
        if self.lines:
            raise FieldRefusals("\n".join(self.lines))


def _mapping(value: Any, where: str, problems: _Problems) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(where, f"expected a mapping, got {describe(value)}")
        return {}
    return value


def _unknown(
    keys: Mapping[str, Any], known: frozenset[str], where: str, problems: _Problems
) -> None:
    for key in keys:
        if key not in known:
            prefix = f"{where}." if where else ""
            problems.add(f"{prefix}{key_text(key)}", f"unknown field{suggest(str(key), known)}")


def _escape(key: str) -> str:
    """A key as one segment of a dotted ``set`` path (label keys hold dots)."""
    return key.replace("\\", "\\\\").replace(".", "\\.")


@dataclass
class _Settings:
    namespace: str | None
    cluster: str | None
    kubeconfig: str | None
    context: str | None
    helm_repos: dict[str, str]
    oci_registries: dict[str, str]
    label_injection: bool
    incompatible: tuple[str, ...]
    forced: tuple[str, ...]
    git_repos: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """name -> (url, branch)"""


def _read_settings(
    settings: dict[str, Any],
    where: str,
    known: frozenset[str],
    problems: _Problems,
    renderings: list[Rendering],
    base_dir: Path,
) -> _Settings:
    prefix = f"{where}." if where else ""
    _unknown(settings, known, where, problems)
    for key, (allowed, why) in _SETTING_DEFAULTS.items():
        if key in settings and settings[key] not in allowed:
            problems.add(f"{prefix}{key}", f"{settings[key]!r} is not supported: {why}")
    for key, why in _NO_EFFECT_SETTINGS.items():
        if key in settings:
            renderings.append(Rendering(f"{prefix}{key}", f"read, no effect: {why}"))
    repos: dict[str, str] = {}
    for name, spec in _mapping(settings.get("helm_repos"), f"{prefix}helm_repos", problems).items():
        at = f"{prefix}helm_repos.{key_text(name)}"
        if isinstance(spec, str):
            repos[str(name)] = spec
            continue
        spec = _mapping(spec, at, problems)
        _unknown(spec, _HELM_REPO_FIELDS, at, problems)
        for key in sorted(_HELM_REPO_FIELDS - {"url"}):
            if spec.get(key) not in (None, False, ""):
                problems.add(
                    f"{at}.{key}",
                    "repository credentials and TLS files are not supported yet "
                    "(add the repository to helm yourself, or use a repository without them)",
                )
        url = spec.get("url")
        if not isinstance(url, str):
            problems.add(f"{at}.url", "required: the repository's URL")
            continue
        repos[str(name)] = url
    registries: dict[str, str] = {}
    oci = _mapping(settings.get("oci_registries"), f"{prefix}oci_registries", problems)
    for name, spec in oci.items():
        at = f"{prefix}oci_registries.{key_text(name)}"
        if isinstance(spec, dict):
            _unknown(spec, frozenset({"registry", "username", "password"}), at, problems)
            for key in ("username", "password"):
                if spec.get(key):
                    problems.add(f"{at}.{key}", "registry credentials are not supported yet")
            spec = spec.get("registry")
        if not isinstance(spec, str) or not spec:
            problems.add(f"{at}.registry", "required: the registry, such as ghcr.io/org/charts")
            continue
        registries[str(name)] = spec if spec.startswith("oci://") else f"oci://{spec}"
        renderings.append(
            Rendering(at, f"charts {name}/NAME are written {registries[str(name)]}/NAME")
        )
    gits: dict[str, tuple[str, str | None]] = {}
    for name, spec in _mapping(settings.get("git_repos"), f"{prefix}git_repos", problems).items():
        at = f"{prefix}git_repos.{key_text(name)}"
        if isinstance(spec, str):
            gits[str(name)] = (spec, None)
            continue
        spec = _mapping(spec, at, problems)
        _unknown(spec, _GIT_REPO_FIELDS, at, problems)
        for key in ("username", "password", "ssh_key"):
            if spec.get(key):
                problems.add(
                    f"{at}.{key}",
                    "git credentials are not supported yet (sbkube runs the git binary: use "
                    "a credential helper or an ssh agent)",
                )
        url, branch = spec.get("url"), spec.get("branch")
        if not isinstance(url, str) or not url:
            problems.add(f"{at}.url", "required: the repository's URL")
            continue
        if branch is not None and not isinstance(branch, str):
            problems.add(f"{at}.branch", f"expected a branch name, got {describe(branch)}")
            branch = None
        gits[str(name)] = (url, branch)
    kubeconfig = settings.get("kubeconfig")
    if kubeconfig is not None and not isinstance(kubeconfig, str):
        problems.add(f"{prefix}kubeconfig", f"expected a path, got {describe(kubeconfig)}")
        kubeconfig = None
    if isinstance(kubeconfig, str):
        expanded = Path(os.path.expanduser(kubeconfig))
        kubeconfig = str(expanded if expanded.is_absolute() else base_dir / expanded)
        renderings.append(
            Rendering(
                f"{prefix}kubeconfig",
                "not in config.yaml: give --kubeconfig (used by deploy when neither "
                "--kubeconfig/KUBECONFIG nor --memory-cluster is given)",
            )
        )
    if settings.get("kubeconfig_context") is not None:
        renderings.append(
            Rendering(f"{prefix}kubeconfig_context", "not in config.yaml: give --context")
        )
    context = settings.get("kubeconfig_context")
    if context is not None and not isinstance(context, str):
        problems.add(f"{prefix}kubeconfig_context", f"expected a name, got {describe(context)}")
        context = None
    injection = settings.get("helm_label_injection", True)
    if not isinstance(injection, bool):
        problems.add(f"{prefix}helm_label_injection", "must be true or false")
        injection = True
    lists = {}
    for key in ("incompatible_charts", "force_label_injection"):
        value = settings.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.add(f"{prefix}{key}", "expected a list of chart names (repo/chart)")
            value = []
        lists[key] = tuple(value)
    namespace = settings.get("namespace")
    cluster = settings.get("cluster")
    return _Settings(
        namespace=namespace if namespace is not None else None,
        cluster=cluster,
        kubeconfig=kubeconfig,
        context=context,
        helm_repos=repos,
        oci_registries=registries,
        label_injection=injection,
        incompatible=lists["incompatible_charts"],
        forced=lists["force_label_injection"],
        git_repos=gits,
    )


def _string_map(value: Any, where: str, problems: _Problems) -> dict[str, str]:
    mapping = _mapping(value, where, problems)
    out: dict[str, str] = {}
    for key, item in mapping.items():
        if not isinstance(item, str):
            problems.add(f"{where}.{key_text(key)}", "must be a string (quote it)")
            continue
        out[str(key)] = item
    return out


def _set_values(value: Any, where: str, problems: _Problems) -> dict[str, Any]:
    """``set_values`` as a mapping of dotted keys (ours: ``set``)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for index, item in enumerate(value):
            if not isinstance(item, str):
                problems.add(f"{where}[{index}]", f"expected key=value, got {describe(item)}")
                continue
            try:
                out.update(parse_set(item, f"{where}[{index}]"))
            except ConfigError as err:
                problems.add(f"{where}[{index}]", err.message.split(": ", 1)[-1])
        return out
    problems.add(where, f"expected a mapping or a list of key=value, got {describe(value)}")
    return {}


def _helm_app(
    name: str,
    app: dict[str, Any],
    settings: _Settings,
    labels: dict[str, str],
    annotations: dict[str, str],
    problems: _Problems,
    renderings: list[Rendering],
) -> dict[str, Any]:
    at = f"apps.{name}"
    out: dict[str, Any] = {"type": "helm"}
    chart = app.get("chart")
    repo = app.get("repo")
    if isinstance(repo, str) and isinstance(chart, str) and "/" not in chart:
        chart = f"{repo}/{chart}"
        renderings.append(Rendering(f"{at}.repo", f"chart: {chart}"))
    elif repo is not None:
        problems.add(f"{at}.repo", "with repo:, chart: must be the chart's bare name")
    if isinstance(chart, str):
        head, sep, rest = chart.partition("/")
        if sep and head in settings.oci_registries and not chart.startswith(("./", "/")):
            chart = f"{settings.oci_registries[head]}/{rest}"
    if chart is not None:
        out["chart"] = chart
    for key in ("version", "values", "release_name"):
        if key in app:
            out[key] = app[key]
    out["wait"] = app.get("wait", True)
    out["timeout"] = app.get("timeout", "5m")
    for key, default in (("wait", "true"), ("timeout", "5m")):
        if key not in app:
            renderings.append(
                Rendering(f"{at}.{key}", f"the original's default, written out: {key}: {default}")
            )
    for key in ("overrides", "removes"):
        # The same meaning in ours: overrides/<app>/ files over the chart, removes deleted.
        if app.get(key):
            out[key] = app[key]
    if app.get("atomic") not in (None, False):
        problems.add(
            f"{at}.atomic",
            "atomic: true is not supported: sbkube records a failed upgrade as a failed "
            "revision; roll back with sbkube rollback",
        )
    for key in ("create_namespace", "force_conflicts"):
        if key in app and not isinstance(app[key], bool):
            problems.add(f"{at}.{key}", "must be true or false")
    if app.get("create_namespace") is False:
        renderings.append(
            Rendering(f"{at}.create_namespace", "sbkube creates a missing namespace anyway")
        )
    if app.get("force_conflicts") is False:
        renderings.append(
            Rendering(
                f"{at}.force_conflicts",
                "sbkube's apply takes over fields changed behind its back anyway",
            )
        )
    injection = app.get("helm_label_injection", settings.label_injection)
    if not isinstance(injection, bool):
        problems.add(f"{at}.helm_label_injection", "must be true or false")
        injection = True
    chart_name = str(app.get("chart"))
    if chart_name in settings.incompatible and chart_name not in settings.forced:
        injection = False
    sets: dict[str, Any] = {}
    if injection:
        for key, value in labels.items():
            sets[f"commonLabels.{_escape(key)}"] = value
        for key, value in annotations.items():
            sets[f"commonAnnotations.{_escape(key)}"] = value
        if labels or annotations:
            renderings.append(
                Rendering(f"{at}.labels", "set: commonLabels/commonAnnotations (label injection)")
            )
    elif labels or annotations:
        renderings.append(
            Rendering(f"{at}.labels", "not injected (helm_label_injection is off): read only")
        )
    given = _set_values(app.get("set_values"), f"{at}.set_values", problems)
    if "set_values" in app:
        renderings.append(Rendering(f"{at}.set_values", "set"))
    sets.update(given)
    if sets:
        out["set"] = sets
    return out


def _yaml_app(
    name: str,
    app: dict[str, Any],
    labels: dict[str, str],
    annotations: dict[str, str],
    problems: _Problems,
    renderings: list[Rendering],
) -> dict[str, Any]:
    at = f"apps.{name}"
    if "files" in app and "manifests" in app:
        problems.add(f"{at}.files", "give files or manifests, not both")
    files = app.get("files", app.get("manifests"))
    if "files" in app:
        renderings.append(Rendering(f"{at}.files", "manifests"))
    out: dict[str, Any] = {"type": "yaml", "manifests": files}
    if labels:
        out["labels"] = labels
    if annotations:
        out["annotations"] = annotations
    return out


def _git_app(
    name: str,
    app: dict[str, Any],
    settings: _Settings,
    problems: _Problems,
    renderings: list[Rendering],
) -> dict[str, Any]:
    """A git app: ``repo`` is a URL or a ``git_repos`` name; ``ref`` wins over ``branch``
    (as the original's prepare takes them), then the repository's ``branch``, then main."""
    at = f"apps.{name}"
    out: dict[str, Any] = {"type": "git"}
    repo = app.get("repo")
    default_branch: str | None = None
    if isinstance(repo, str) and repo.startswith(_GIT_URL_PREFIXES):
        out["repo"] = repo
    elif isinstance(repo, str) and repo in settings.git_repos:
        out["repo"], default_branch = settings.git_repos[repo]
        renderings.append(Rendering(f"{at}.repo", f"repo: {out['repo']} (git_repos.{repo})"))
    else:
        known = ", ".join(sorted(settings.git_repos)) or "none defined"
        problems.add(
            f"{at}.repo",
            f"{repo!r} is neither a git URL nor a name in git_repos"
            f"{suggest(str(repo), settings.git_repos)} (git_repos: {known})",
        )
        return out
    given = [k for k in ("commit", "tag", "ref", "branch") if app.get(k) is not None]
    if given:
        out[given[0]] = app[given[0]]
        for key in given[1:]:
            renderings.append(Rendering(f"{at}.{key}", f"{given[0]}: wins; {key} is not used"))
    else:
        out["branch"] = default_branch or "main"
        renderings.append(
            Rendering(
                f"{at}.branch", f"the original's default, written out: branch: {out['branch']}"
            )
        )
    if app.get("path") is not None:
        out["path"] = app["path"]
    return out


def _apps(
    apps: Any,
    settings: _Settings,
    global_labels: dict[str, str],
    global_annotations: dict[str, str],
    problems: _Problems,
    renderings: list[Rendering],
) -> dict[str, Any]:
    if isinstance(apps, list):
        problems.add(
            "apps",
            "the 0.2 list form (name:/specs:) is not read; run the original's `sbkube migrate` "
            "to get the apps: mapping first",
        )
        return {}
    out: dict[str, Any] = {}
    for name, app in _mapping(apps, "apps", problems).items():
        at = f"apps.{key_text(name)}"
        if not isinstance(app, dict):
            # Left as it is: our schema names what is wrong with it.
            out[str(name)] = app
            continue
        kind = app.get("type")
        if kind not in APP_FIELDS:
            valid = ", ".join(APP_FIELDS)
            problems.add(f"{at}.type", f"unknown app type {kind!r} (valid types: {valid})")
            continue
        _unknown(app, APP_FIELDS[kind], at, problems)
        if kind not in _RUNNABLE:
            problems.add(f"{at}.type", f"{kind!r} apps are not supported yet")
            continue
        hooks = _app_hooks(app.get("hooks"), f"{at}.hooks", problems)
        context = app.get("context")
        if context is not None and context == settings.context:
            renderings.append(
                Rendering(f"{at}.context", "the settings' context: the run's (--context)")
            )
        if context is not None and context != settings.context:
            problems.add(
                f"{at}.context",
                f"context {context!r} differs from the settings' "
                f"({settings.context!r}): one run deploys to one cluster",
            )
        for key in ("notes", "description"):
            if key in app:
                renderings.append(Rendering(f"{at}.{key}", "recorded with the original, no effect"))
        labels = {**global_labels, **_string_map(app.get("labels"), f"{at}.labels", problems)}
        annotations = {
            **global_annotations,
            **_string_map(app.get("annotations"), f"{at}.annotations", problems),
        }
        common = {k: app[k] for k in ("namespace", "depends_on", "enabled") if k in app}
        if kind == "helm":
            body = _helm_app(name, app, settings, labels, annotations, problems, renderings)
        elif kind == "yaml":
            body = _yaml_app(name, app, labels, annotations, problems, renderings)
        elif kind == "exec":
            body = {"type": kind, "commands": app.get("commands")}
        elif kind == "git":
            body = _git_app(name, app, settings, problems, renderings)
        elif kind == "http":
            body = {"type": kind, "url": app.get("url"), "dest": app.get("dest")}
            if app.get("headers") is not None:
                body["headers"] = _string_map(app.get("headers"), f"{at}.headers", problems)
        elif kind in ("kustomize", "action"):
            body = {"type": kind}
            if kind == "kustomize":
                body["path"] = app.get("path")
            else:
                body["actions"] = _actions(app.get("actions"), f"{at}.actions", problems)
            if labels:
                body["labels"] = labels
            if annotations:
                body["annotations"] = annotations
        elif kind == "hook":
            body = _hook_app(app, at, common, problems, renderings)
        else:
            body = {"type": kind}
            if "description" in app:
                body["description"] = app["description"]
        if hooks:
            common["hooks"] = hooks
        if labels and "labels" not in body:
            # What -l/--selector picks the app by (a chart's are injected above).
            body["labels"] = labels
        if app.get("annotations") and "annotations" not in body and kind != "helm":
            renderings.append(
                Rendering(f"{at}.annotations", f"read, no effect: a {kind} app has no objects")
            )
        out[str(name)] = {**body, **common}
    return out


_ACTION_FIELDS = frozenset({"type", "path", "namespace"})


def _actions(value: Any, where: str, problems: _Problems) -> Any:
    """An action app's ``actions``: each step's fields checked by name (ours validates the
    rest); ``type`` defaults to ``apply``, as the original's."""
    if not isinstance(value, list):
        return value  # our schema names what is wrong with it
    for index, step in enumerate(value):
        if isinstance(step, dict):
            _unknown(step, _ACTION_FIELDS, f"{where}[{index}]", problems)
    return value


_RUN_HOOKS = ("pre_deploy", "post_deploy", "on_deploy_failure")
_PHASE_HOOKS = (
    "pre_prepare",
    "post_prepare",
    "pre_build",
    "post_build",
    "pre_template",
    "post_template",
)
_LATER_HOOKS = (
    "pre_deploy_manifests",
    "post_deploy_manifests",
    "pre_deploy_tasks",
    "post_deploy_tasks",
)


def _app_hooks(hooks: Any, where: str, problems: _Problems) -> dict[str, Any]:
    """An app's ``hooks``: the deploy's command hooks kept; the rest refused by name."""
    out: dict[str, Any] = {}
    for key, value in _mapping(hooks, where, problems).items():
        if key in _RUN_HOOKS:
            out[key] = value
        elif key in _PHASE_HOOKS:
            if value:
                problems.add(
                    f"{where}.{key}",
                    "sbkube has no prepare, build or template phase to run it in",
                )
        elif key in ("pre_deploy_manifests", "post_deploy_manifests"):
            if value:
                out[key] = _hook_files(value, f"{where}.{key}", problems)
        elif key in _LATER_HOOKS:
            if value:
                out[key] = value  # tasks: ours has the original's shape, and checks it
        else:
            known = frozenset((*_RUN_HOOKS, *_PHASE_HOOKS, *_LATER_HOOKS))
            problems.add(f"{where}.{key_text(key)}", f"unknown field{suggest(str(key), known)}")
    return out


def _hook_files(value: Any, where: str, problems: _Problems) -> list[Any]:
    """A manifest hook's files: paths, or ``{path: ...}`` items as its docs write them."""
    if not isinstance(value, list):
        problems.add(where, f"expected a list of manifest files, got {describe(value)}")
        return []
    out: list[Any] = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            _unknown(item, frozenset({"path"}), f"{where}[{index}]", problems)
            item = item.get("path")
        if not isinstance(item, str):
            problems.add(f"{where}[{index}]", f"expected a file path, got {describe(item)}")
            continue
        out.append(item)
    return out


_HOOK_DEPENDENCY_FIELDS = frozenset({"depends_on", "wait_for"})


def _hook_app(
    app: dict[str, Any],
    at: str,
    common: dict[str, Any],
    problems: _Problems,
    renderings: list[Rendering],
) -> dict[str, Any]:
    """A hook app: its tasks, validation and rollback as they are; its ``dependency``
    (the whole app's) becomes the app's ``depends_on`` (apps it waits for) and
    ``wait_for`` (objects it waits for before its first task)."""
    body: dict[str, Any] = {"type": "hook"}
    for key in ("tasks", "validation", "rollback"):
        if app.get(key) is not None:
            body[key] = app[key]
    dependency = _mapping(app.get("dependency"), f"{at}.dependency", problems)
    _unknown(dependency, _HOOK_DEPENDENCY_FIELDS, f"{at}.dependency", problems)
    needed = dependency.get("depends_on") or []
    if needed:
        if not isinstance(needed, list):
            problems.add(f"{at}.dependency.depends_on", "expected a list of app names")
        else:
            common["depends_on"] = [*common.get("depends_on", []), *needed]
            renderings.append(Rendering(f"{at}.dependency.depends_on", "depends_on"))
    if dependency.get("wait_for"):
        body["wait_for"] = dependency["wait_for"]
        renderings.append(Rendering(f"{at}.dependency.wait_for", "wait_for"))
    return body


_COMMAND_PHASES = frozenset({"pre", "post", "on_failure"})


def _command_hooks(hooks: Any, where: str, problems: _Problems) -> dict[str, Any]:
    """The top-level ``hooks`` (per command: ``pre``, ``post``, ``on_failure``): the
    deploy's kept as they are; those of commands sbkube does not have refused by name."""
    out: dict[str, Any] = {}
    for command, phases in _mapping(hooks, where, problems).items():
        at = f"{where}.{key_text(command)}"
        phases = _mapping(phases, at, problems)
        _unknown(phases, _COMMAND_PHASES, at, problems)
        if command == "deploy":
            kept = {k: v for k, v in phases.items() if k in _COMMAND_PHASES and v}
            if kept:
                out["deploy"] = kept
        elif any(phases.get(p) for p in _COMMAND_PHASES):
            problems.add(
                at,
                f"sbkube has no {command} command to run it around; it runs the deploy's "
                "hooks (hooks.deploy)",
            )
    return out


# Said differently, though the field's text is not kept as it is (each known one named by
# what became of it; any other: read, its effect the same without it).
_SAID = {
    "create_namespace": "sbkube creates a missing namespace anyway",
    "atomic": "false is sbkube's way (a failed upgrade is a failed revision): not written",
    "helm_label_injection": "read: whether labels go into set: commonLabels/commonAnnotations",
    "force_conflicts": "sbkube's apply takes over fields changed behind its back anyway",
}
_SETTING_SAID = {
    "namespace": "namespace",
    "cluster": "cluster",
    "helm_repos": "repos",
    "helm_label_injection": "read: whether apps' labels go into their charts' values",
    "incompatible_charts": "read: charts whose labels are not injected",
    "force_label_injection": "read: charts whose labels are injected anyway",
    "oci_registries": "charts REGISTRY/NAME are written oci://...",
    "git_repos": "read by git apps: their repo: is written as the URL",
}


def _list_the_rest(
    content: dict[str, Any],
    sources: Any,
    raw: dict[str, Any],
    renderings: list[Rendering],
    single: bool,
) -> None:
    """Add a rendering for each field of the original's file that ``raw`` does not say the
    same way and that no rendering names yet: ``config convert`` lists every one."""
    named = {r.field for r in renderings}

    def add(where: str, said: str) -> None:
        if where not in named and not any(n.startswith(f"{where}.") for n in named):
            renderings.append(Rendering(where, said))
            named.add(where)

    apps = raw.get("apps") or {}
    for name, app in (content.get("apps") or {}).items():
        ours = apps.get(str(name))
        if not isinstance(app, dict) or not isinstance(ours, dict):
            continue
        for key, value in app.items():
            if ours.get(key) == value:
                continue
            where = f"apps.{key_text(name)}.{key}"
            if key in _SAID:
                add(where, _SAID[key])
            elif key == "annotations" and app.get("type") == "helm":
                injected = any(str(k).startswith("commonAnnotations.") for k in ours.get("set", {}))
                add(where, "set: commonAnnotations" if injected else "read only (not injected)")
            elif key in ours:
                shown = json.dumps(ours[key], sort_keys=True, default=str)
                add(where, f"written as {key}: {shown}")
            else:
                add(where, "read, not written: it changes nothing here")
    settings = content.get("settings") if single else sources
    prefix = "settings." if single else ""
    if isinstance(settings, dict):
        for key, value in settings.items():
            if raw.get(key) != value:
                add(f"{prefix}{key}", _SETTING_SAID.get(key, "read, not written"))


def translate(
    content: Any,
    shown: str,
    *,
    sources: Any = None,
    sources_shown: str | None = None,
    base_dir: Path,
    single: bool,
) -> Translation:
    """The original's ``sbkube.yaml`` (``single``) or ``config.yaml`` (+ the parsed
    ``sources``) in our shape; ConfigError listing every refused field, one per line."""
    problems = _Problems(shown)
    renderings: list[Rendering] = []
    if not isinstance(content, dict):
        raise ConfigError(f"{shown}: expected a mapping at the top level, got {describe(content)}")
    if single:
        _unknown(content, _TOP_SINGLE, "", problems)
        api = content.get("apiVersion", "sbkube/v1")
        if api != "sbkube/v1":
            problems.add("apiVersion", f"{api!r} is not read (only sbkube/v1)")
        if content.get("phases"):
            problems.add(
                "phases",
                "multi-phase files are not supported: deploy each phase's dir with --app-dir",
            )
        settings_raw = _mapping(content.get("settings"), "settings", problems)
        settings = _read_settings(
            settings_raw, "settings", _SETTINGS_FIELDS, problems, renderings, base_dir
        )
        namespace: Any = settings.namespace if settings.namespace is not None else "default"
        global_labels: dict[str, str] = {}
        global_annotations: dict[str, str] = {}
        if "metadata" in content:
            renderings.append(Rendering("metadata", "recorded with the original, no effect"))
    else:
        _unknown(content, _TOP_PAIR, "", problems)
        source_problems = _Problems(sources_shown or "sources.yaml")
        source_map = _mapping(sources, "", source_problems) if sources is not None else {}
        settings = _read_settings(
            source_map, "", _SOURCES_FIELDS, source_problems, renderings, base_dir
        )
        problems.lines.extend(source_problems.lines)
        namespace = content.get("namespace")
        if content.get("cluster") is not None:
            settings.cluster = content.get("cluster")
        global_labels = _string_map(content.get("global_labels"), "global_labels", problems)
        global_annotations = _string_map(
            content.get("global_annotations"), "global_annotations", problems
        )
    deps = content.get("deps")
    if deps is not None and (
        not isinstance(deps, list) or not all(isinstance(d, str) for d in deps)
    ):
        problems.add("deps", f"expected a list of app dir names, got {describe(deps)}")
        deps = None
    if deps:
        renderings.append(
            Rendering("deps", "deps (the app dirs deployed before this one, in the same run)")
        )
    command_hooks = _command_hooks(content.get("hooks"), "hooks", problems)
    apps = _apps(
        content.get("apps"), settings, global_labels, global_annotations, problems, renderings
    )
    problems.raise_any()
    raw: dict[str, Any] = {}
    if namespace is not None:
        raw["namespace"] = namespace
    if settings.cluster is not None:
        raw["cluster"] = settings.cluster
    if settings.helm_repos:
        raw["repos"] = settings.helm_repos
    if deps:
        raw["deps"] = list(deps)
    if command_hooks:
        raw["hooks"] = command_hooks
    raw["apps"] = apps
    _list_the_rest(content, sources if not single else None, raw, renderings, single)
    return Translation(
        raw=raw,
        kubeconfig=settings.kubeconfig,
        kube_context=settings.context,
        renderings=renderings,
    )
