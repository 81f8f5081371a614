"""The shape of ``config.yaml``: pydantic models for the app directory's single config file.

The models check everything that can be checked from the file alone (field names, types,
Kubernetes name rules). Checks that need the file system or the whole app graph (chart
paths, values files, ``depends_on``, cycles) live in :mod:`sbkube.config.loader`, which
also turns validation errors into one-line :class:`~sbkube.errors.ConfigError` messages.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from sbkube.config.names import (
    DNS1123_LABEL_MAX,
    HELM_RELEASE_NAME_MAX,
    MAX_PATH,
    MAX_TEXT,
    dns1123_label_problem,
    dns1123_subdomain_problem,
    label_value_problem,
    text_problem,
)
from sbkube.config.names import short as _short

__all__ = [
    "APP_TYPES",
    "DNS1123_LABEL_MAX",
    "HELM_RELEASE_NAME_MAX",
    "ActionApp",
    "ActionStep",
    "AppConfig",
    "ExecApp",
    "GitApp",
    "HelmApp",
    "HookApp",
    "HttpApp",
    "KustomizeApp",
    "NoopApp",
    "SbkubeConfig",
    "YamlApp",
    "dns1123_label_problem",
    "dns1123_subdomain_problem",
    "label_value_problem",
]

# Go duration syntax, as helm's --timeout parses it: 90s, 5m, 1h30m, 1.5h.
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+\Z")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
#: The longest app timeout: a day. Longer is a typo, and beyond ~290 years helm cannot
#: even parse it (Go durations are int64 nanoseconds), after a deployment was recorded.
MAX_TIMEOUT_SECONDS = 86_400
_REPO_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")

APP_TYPES: tuple[str, ...] = (
    "helm",
    "yaml",
    "noop",
    "kustomize",
    "exec",
    "action",
    "git",
    "http",
    "hook",
)
#: ``${repos.NAME}`` in a path: the checkout of the git app NAME (the original's syntax).
REPO_VARIABLE_RE = re.compile(r"\$\{repos\.([^}]*)\}")
_GIT_URL_PREFIXES = ("http://", "https://", "git://", "ssh://", "file://", "git@")


def duration_seconds(text: str) -> float:
    """The seconds a Go duration (already matched by ``_DURATION_RE``) stands for."""
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))


def _check_text(value: str, max_len: int = MAX_TEXT) -> str:
    """Printable text of at most ``max_len`` characters: it is recorded, shown in tables
    and passed to helm and kubectl as an argument."""
    problem = text_problem(value, max_len)
    if problem is not None:
        raise ValueError(problem)
    return value


def _check_label(value: str, max_len: int = DNS1123_LABEL_MAX) -> str:
    problem = dns1123_label_problem(value, max_len)
    if problem is not None:
        raise ValueError(problem)
    return value


def _check_file_list(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        if not item.strip():
            raise ValueError("file names must not be empty")
        _check_text(item, MAX_PATH)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_commands(value: tuple[str, ...]) -> tuple[str, ...]:
    for command in value:
        if not command.strip():
            raise ValueError("commands must not be empty")
        if len(command) > MAX_PATH:
            raise ValueError(f"a command is {len(command)} characters (at most {MAX_PATH})")
    return value


class PhaseHooks(_Model):
    """Commands run once per command (``sh -c`` in the app dir, each recorded as a step
    of the deployment): before its apps (a failure skips every app), after them when all
    succeeded, and when any failed."""

    pre: tuple[str, ...] = ()
    post: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()

    @field_validator("pre", "post", "on_failure")
    @classmethod
    def _commands_are_text(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_commands(value)


class CommandHooks(_Model):
    """Command-level hooks, per command: ``deploy``."""

    deploy: PhaseHooks | None = None


_SECONDS = Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS)]


class TaskCondition(_Model):
    """A status condition an object must report (``type`` with ``status``)."""

    type: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] = "Ready"
    status: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] = "True"


class TaskValidation(_Model):
    """What must hold after a task ran: the object ``kind``/``name`` (every one of the kind
    in the namespace without a name) exists; with ``wait_for_ready``, until it reports
    ``conditions`` (none: until it is healthy, ``engine.health``), within ``timeout``
    seconds. Without ``kind`` nothing is checked (the original's rule)."""

    kind: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None = None
    namespace: str | None = None
    wait_for_ready: StrictBool = False
    timeout: _SECONDS = 60
    conditions: tuple[TaskCondition, ...] = ()


class TaskWaitFor(_Model):
    """An object the task waits for before it runs: ``kind`` with ``name`` or
    ``label_selector`` (``k=v,k2=v2``), until it reports ``condition`` True."""

    kind: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    name: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None = None
    label_selector: Annotated[str, Field(min_length=1, max_length=MAX_PATH)] | None = None
    condition: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] = "Ready"
    timeout: _SECONDS = 60
    namespace: str | None = None


class TaskDependency(_Model):
    """Earlier tasks of the same list that must have succeeded (``depends_on``), and
    objects to wait for (``wait_for``), before the task runs."""

    depends_on: tuple[str, ...] = ()
    wait_for: tuple[TaskWaitFor, ...] = ()


class TaskRollback(_Model):
    """What a failed task undoes, when ``enabled`` and ``on_failure`` is ``always`` (the
    original's rule: ``manual`` and ``never`` run nothing): ``manifests`` applied, then
    ``commands`` run, each a recorded step."""

    enabled: StrictBool = False
    on_failure: Literal["always", "manual", "never"] = "always"
    manifests: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()

    @field_validator("manifests")
    @classmethod
    def _files_are_text(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_file_list(value)

    @field_validator("commands")
    @classmethod
    def _commands_are_text(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_commands(value)


class TaskRetry(_Model):
    """A command task tried up to ``max_attempts`` times, ``delay`` seconds apart (doubled
    after each try with ``backoff: exponential``)."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 1
    delay: Annotated[float, Field(ge=0, le=MAX_TIMEOUT_SECONDS)] = 0
    backoff: Literal["linear", "exponential"] = "linear"


class _TaskBase(_Model):
    name: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    validation: TaskValidation | None = None
    dependency: TaskDependency | None = None
    rollback: TaskRollback | None = None


class ManifestsTask(_TaskBase):
    """Manifest files applied down the YAML path (ownership labels, server-side apply,
    recorded with the app)."""

    type: Literal["manifests"]
    files: Annotated[tuple[str, ...], Field(min_length=1)]

    @field_validator("files")
    @classmethod
    def _files_are_text(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_file_list(value)


class InlineTask(_TaskBase):
    """One object, given inline, applied as a manifests task's are."""

    type: Literal["inline"]
    content: dict[str, Any]


class CommandTask(_TaskBase):
    """A command (``sh -c`` in the app dir), each try a recorded step; ``on_failure``:
    ``fail`` fails the hook, ``warn`` and ``ignore`` go on (recorded all the same)."""

    type: Literal["command"]
    command: Annotated[str, Field(min_length=1, max_length=MAX_PATH)]
    retry: TaskRetry | None = None
    on_failure: Literal["fail", "warn", "ignore"] = "fail"


HookTask = Annotated[ManifestsTask | InlineTask | CommandTask, Field(discriminator="type")]


def _check_tasks(value: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[str] = set()
    for task in value:
        if task.name in seen:
            raise ValueError(f"task name {task.name!r} appears twice")
        for needed in task.dependency.depends_on if task.dependency else ():
            if needed not in seen:
                raise ValueError(
                    f"task {task.name!r} depends on {needed!r}, which is not an earlier task"
                )
        seen.add(task.name)
    return value


class AppHooks(_Model):
    """What runs around an app's deploy, in this order (the original's documented one):
    ``pre_deploy_tasks``, ``pre_deploy`` (commands), ``pre_deploy_manifests``, the app,
    ``post_deploy_manifests``, ``post_deploy``, ``post_deploy_tasks``; when anything of it
    fails, ``on_deploy_failure``. Commands run with ``sh -c`` in the app dir; manifests go
    down the YAML path as the app's own objects; each run is a recorded step of the app."""

    pre_deploy: tuple[str, ...] = ()
    post_deploy: tuple[str, ...] = ()
    on_deploy_failure: tuple[str, ...] = ()
    pre_deploy_manifests: tuple[str, ...] = ()
    post_deploy_manifests: tuple[str, ...] = ()
    pre_deploy_tasks: tuple[HookTask, ...] = ()
    post_deploy_tasks: tuple[HookTask, ...] = ()

    @field_validator("pre_deploy", "post_deploy", "on_deploy_failure")
    @classmethod
    def _commands_are_text(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_commands(value)

    @field_validator("pre_deploy_manifests", "post_deploy_manifests")
    @classmethod
    def _files_are_text(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_file_list(value)

    @field_validator("pre_deploy_tasks", "post_deploy_tasks")
    @classmethod
    def _tasks_are_named_once(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        return _check_tasks(value)


class _AppBase(_Model):
    hooks: AppHooks | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    """What ``-l/--selector`` picks the app by (as helmfile's release labels); a YAML or
    kustomize app also adds them to each of its objects."""
    namespace: str | None = None
    depends_on: tuple[str, ...] = ()
    enabled: StrictBool = True
    # Bounds each of the app's calls to the cluster (a helm or kubectl run), and helm's
    # waits (--timeout); unset: helm's default, 5m.
    timeout: str | None = None

    @field_validator("namespace")
    @classmethod
    def _namespace_is_label(cls, value: str | None) -> str | None:
        return None if value is None else _check_label(value)

    @field_validator("labels")
    @classmethod
    def _labels_are_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_metadata_map(value, "label")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout_is_duration(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if value <= 0:
                raise ValueError("must be a positive duration such as 300s or 5m")
            if value > MAX_TIMEOUT_SECONDS:
                raise ValueError(f"{value} seconds is longer than a day (at most 24h)")
            return f"{value}s"
        if isinstance(value, str):
            if not _DURATION_RE.match(value):
                raise ValueError(f"{_short(value)} is not a duration such as 300s, 5m or 1h30m")
            seconds = duration_seconds(value)
            if seconds > MAX_TIMEOUT_SECONDS:
                raise ValueError(f"{_short(value)} is longer than a day (at most 24h)")
            if seconds <= 0:
                raise ValueError(f"{_short(value)} is not a positive duration")
        return value


class HelmApp(_AppBase):
    """An app deployed as a Helm release from a local chart, a packaged chart or a repo chart."""

    type: Literal["helm"]
    chart: Annotated[str, Field(min_length=1)]
    version: str | None = None
    release_name: str | None = None
    values: tuple[str, ...] = ()
    set: dict[str, Any] = Field(default_factory=dict)
    wait: StrictBool = False
    overrides: tuple[str, ...] = ()
    """Files under ``overrides/<app name>/`` (or globs there) that replace or add the
    file at the same path in the chart; the chart is built in sbkube's cache
    (``sbkube.config.chart_build``) and its digest recorded."""
    removes: tuple[str, ...] = ()
    """Paths or globs, relative to the chart's root, deleted from the built chart."""

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, value: Any) -> Any:
        # YAML reads `version: 1.10` as the float 1.1: refuse rather than guess.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f'must be a string; quote it: version: "{value}"')
        return value

    @field_validator("chart")
    @classmethod
    def _chart_is_text(cls, value: str) -> str:
        return _check_text(value, MAX_PATH)

    @field_validator("version")
    @classmethod
    def _version_is_short_text(cls, value: str | None) -> str | None:
        return None if value is None else _check_text(value)

    @field_validator("release_name")
    @classmethod
    def _release_name_is_label(cls, value: str | None) -> str | None:
        return None if value is None else _check_label(value, HELM_RELEASE_NAME_MAX)

    @field_validator("values", "overrides", "removes")
    @classmethod
    def _values_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_file_list(value)


def _check_metadata_map(value: dict[str, str], what: str) -> dict[str, str]:
    for key, item in value.items():
        if not key or not key.isprintable() or " " in key or len(key) > MAX_TEXT:
            raise ValueError(f"{_short(key)} is not a valid {what} key")
        if what == "label":
            problem = label_value_problem(item)
            if problem is not None:
                raise ValueError(f"{key}: {problem}")
    return value


class YamlApp(_AppBase):
    """An app deployed as plain Kubernetes manifests; ``labels`` and ``annotations`` are
    added to every object it applies (sbkube's ownership labels still win)."""

    type: Literal["yaml"]
    manifests: Annotated[tuple[str, ...], Field(min_length=1)]
    wait: StrictBool = False
    """Done once every object is healthy (``sbkube.engine.wait``), as ``helm --wait``."""
    adopt: StrictBool = False
    """Take over listed objects that exist and are not this app's (``deploy --adopt`` for
    every app); without it such an object fails the app, naming its owner."""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels_are_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_metadata_map(value, "label")

    @field_validator("annotations")
    @classmethod
    def _annotations_are_text(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_metadata_map(value, "annotation")

    @field_validator("manifests")
    @classmethod
    def _manifests_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_file_list(value)


class NoopApp(_AppBase):
    """An app that applies nothing: it is recorded, and others may depend on it (a step
    done by hand, a resource managed elsewhere)."""

    type: Literal["noop"]
    description: str | None = None

    @field_validator("description")
    @classmethod
    def _description_is_text(cls, value: str | None) -> str | None:
        return None if value is None else _check_text(value, MAX_PATH)


class KustomizeApp(_AppBase):
    """An app whose objects are a kustomization rendered by kubectl's built-in kustomize
    (``kubectl kustomize PATH``); they go down the YAML path (ownership labels, one
    server-side apply, prune, record), with ``labels`` and ``annotations`` added."""

    type: Literal["kustomize"]
    path: Annotated[str, Field(min_length=1)]
    wait: StrictBool = False
    """Done once every object is healthy (``sbkube.engine.wait``), as ``helm --wait``."""
    adopt: StrictBool = False
    """Take over rendered objects that exist and are not this app's (as a YAML app's)."""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _path_is_text(cls, value: str) -> str:
        return _check_text(value, MAX_PATH)

    @field_validator("labels")
    @classmethod
    def _labels_are_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_metadata_map(value, "label")

    @field_validator("annotations")
    @classmethod
    def _annotations_are_text(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_metadata_map(value, "annotation")


class ExecApp(_AppBase):
    """An app that runs shell commands, in order, in the app dir: each is recorded as a
    step (command and output tail redacted, exit code, seconds); the first that fails
    fails the app. Refused with ``--no-exec`` / ``SBKUBE_ALLOW_EXEC=false``."""

    type: Literal["exec"]
    commands: Annotated[tuple[str, ...], Field(min_length=1)]

    @field_validator("commands")
    @classmethod
    def _commands_are_text(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for command in value:
            if not command.strip():
                raise ValueError("commands must not be empty")
            if len(command) > MAX_PATH:
                raise ValueError(f"a command is {len(command)} characters (at most {MAX_PATH})")
        return value


class ActionStep(_Model):
    """One step of an action app: ``apply`` or ``delete`` the objects of one manifest
    file, in ``namespace`` (else the app's) when an object names none."""

    type: Literal["apply", "delete"] = "apply"
    path: Annotated[str, Field(min_length=1)]
    namespace: str | None = None

    @field_validator("path")
    @classmethod
    def _path_is_a_file(cls, value: str) -> str:
        if value.startswith(("kubectl ", "helm ")):
            raise ValueError(f"{_short(value)} is a command, not a file (use an exec app)")
        return _check_text(value, MAX_PATH)

    @field_validator("namespace")
    @classmethod
    def _namespace_is_label(cls, value: str | None) -> str | None:
        return None if value is None else _check_label(value)


class ActionApp(_AppBase):
    """An app made of ordered ``apply`` and ``delete`` steps over manifest files. The
    objects of its apply steps go down the YAML path (ownership labels, one server-side
    apply, prune, record); then its delete steps delete the objects their files name, in
    order. Each step is recorded (the app's ``steps``)."""

    type: Literal["action"]
    actions: Annotated[tuple[ActionStep, ...], Field(min_length=1)]
    wait: StrictBool = False
    """Done once every applied object is healthy (``sbkube.engine.wait``)."""
    adopt: StrictBool = False
    """Take over applied objects that exist and are not this app's (as a YAML app's)."""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels_are_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_metadata_map(value, "label")

    @field_validator("annotations")
    @classmethod
    def _annotations_are_text(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_metadata_map(value, "annotation")


class HookApp(_AppBase):
    """An app whose deploy is its ``tasks`` (manifests, inline, command), run in order as
    hook tasks are; then its ``validation``; ``wait_for`` before the first task. When a
    task fails, its own ``rollback`` runs, then the app's."""

    type: Literal["hook"]
    tasks: tuple[HookTask, ...] = ()
    validation: TaskValidation | None = None
    wait_for: tuple[TaskWaitFor, ...] = ()
    rollback: TaskRollback | None = None

    @field_validator("tasks")
    @classmethod
    def _tasks_are_named_once(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        return _check_tasks(value)


class GitApp(_AppBase):
    """A git repository checked out at one commit (``sbkube.sources.git``): other apps
    name files in it as ``${repos.NAME}/...`` (a chart, manifests, a kustomization). At
    most one of ``branch``, ``tag``, ``ref`` (any ref or commit) and ``commit`` (a sha);
    none: the remote's default branch. The resolved commit is recorded; ``path``, when
    given, must exist in the checkout."""

    type: Literal["git"]
    repo: Annotated[str, Field(min_length=1)]
    branch: str | None = None
    tag: str | None = None
    ref: str | None = None
    commit: str | None = None
    path: str | None = None

    @field_validator("repo")
    @classmethod
    def _repo_is_url(cls, value: str) -> str:
        _check_text(value, MAX_PATH)
        if not value.startswith(_GIT_URL_PREFIXES):
            raise ValueError(
                f"{_short(value)} is not a git URL (https://, ssh://, git://, file:// or git@)"
            )
        return value

    @field_validator("branch", "tag", "ref", "path")
    @classmethod
    def _refs_are_text(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip() or value.startswith("-"):
            raise ValueError(f"{_short(value)} is not a ref name")
        return _check_text(value, MAX_PATH)

    @field_validator("commit")
    @classmethod
    def _commit_is_sha(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-f]{7,64}", value):
            raise ValueError(f"{_short(value)} is not a commit sha (7 to 64 hex digits)")
        return value

    @model_validator(mode="after")
    def _one_ref(self) -> GitApp:
        given = [k for k in ("branch", "tag", "ref", "commit") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of branch, tag, ref and commit, not {' and '.join(given)}")
        return self

    @property
    def wanted(self) -> tuple[str, str | None]:
        """Which ref is asked for: ``(kind, name)``; ``("head", None)`` for the default."""
        for kind in ("commit", "tag", "branch", "ref"):
            value = getattr(self, kind)
            if value is not None:
                return kind, value
        return "head", None


class HttpApp(_AppBase):
    """A file downloaded from ``url`` to ``dest`` (relative to the app dir) on every
    deploy (``sbkube.sources.http``); other apps read it by that path. Its sha256 is
    recorded; ``headers`` are sent with the request (their values never recorded)."""

    type: Literal["http"]
    url: Annotated[str, Field(min_length=1)]
    dest: Annotated[str, Field(min_length=1)]
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        _check_text(value, MAX_PATH)
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{_short(value)} must start with http:// or https://")
        return value

    @field_validator("dest")
    @classmethod
    def _dest_is_relative(cls, value: str) -> str:
        _check_text(value, MAX_PATH)
        parts = value.replace("\\", "/").split("/")
        if value.startswith("/") or ".." in parts or value.endswith("/"):
            raise ValueError(f"{_short(value)} must be a file path inside the app dir")
        return value

    @field_validator("headers")
    @classmethod
    def _headers_are_text(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", key):
                raise ValueError(f"{_short(key)} is not a header name")
            if not item.isprintable():
                raise ValueError(f"{key}: the value holds a control character")
        return value


AppConfig = Annotated[
    HelmApp | YamlApp | NoopApp | KustomizeApp | ExecApp | ActionApp | GitApp | HttpApp | HookApp,
    Field(discriminator="type"),
]

APP_MODELS: dict[str, type[_AppBase]] = {
    "helm": HelmApp,
    "yaml": YamlApp,
    "noop": NoopApp,
    "kustomize": KustomizeApp,
    "exec": ExecApp,
    "action": ActionApp,
    "git": GitApp,
    "http": HttpApp,
    "hook": HookApp,
}


class SbkubeConfig(_Model):
    """The whole ``config.yaml``: a default namespace, optional chart repos and the apps."""

    namespace: str
    cluster: str | None = None
    repos: dict[str, str] = Field(default_factory=dict)
    secret_keys: list[str] | None = None
    deps: tuple[str, ...] = ()
    """Other app dirs (beside this one) deployed before it, in the same run
    (``sbkube.engine.phases``); ``deploy --no-deps`` leaves them out."""
    hooks: CommandHooks | None = None
    apps: Annotated[dict[str, AppConfig], Field(min_length=1)]
    environments: dict[str, dict[str, Any]] | None = None
    """Overlays of this file picked by ``--profile ENV`` (``sbkube.config.environments``):
    merged over it before it is read, so a loaded config never holds them."""

    @field_validator("namespace")
    @classmethod
    def _namespace_is_label(cls, value: str) -> str:
        return _check_label(value)

    @field_validator("cluster")
    @classmethod
    def _cluster_is_text(cls, value: str | None) -> str | None:
        return None if value is None else _check_text(value)

    @field_validator("repos")
    @classmethod
    def _repos_are_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not _REPO_NAME_RE.match(name) or len(name) > MAX_TEXT:
                raise ValueError(f"invalid repo name {_short(name)}")
            if len(url) > MAX_PATH or not url.isprintable():
                raise ValueError(f"repo {name!r}: url {_short(url)} is not a printable URL")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"repo {name!r}: url {url!r} must start with http:// or https://")
        return value

    @field_validator("secret_keys")
    @classmethod
    def _secret_keys_not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not key.strip() for key in value):
            raise ValueError("patterns must not be empty")
        if value is not None and len(value) > 1000:
            raise ValueError(f"{len(value)} patterns (at most 1000)")
        for key in value or ():
            _check_text(key)
        return value

    @field_validator("deps")
    @classmethod
    def _deps_are_dir_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name or "/" in name or name in (".", "..") or not name.isprintable():
                raise ValueError(f"{_short(name)} is not the name of an app dir beside this one")
        return value

    @field_validator("apps")
    @classmethod
    def _app_names_are_labels(cls, value: dict[str, AppConfig]) -> dict[str, AppConfig]:
        for name in value:
            problem = dns1123_label_problem(name)
            if problem is not None:
                raise ValueError(f"invalid app name: {problem}")
        return value
