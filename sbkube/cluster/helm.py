"""Subprocess adapter for the ``helm`` binary.

The module is split in three layers so that most of it is testable without helm:

* pure argv builders (``template_argv``, ``upgrade_install_argv``, ...) that turn a request
  into the exact command line;
* pure parsers for helm's JSON output (``parse_release_json``, ``parse_history_json``,
  ``parse_values_json``, ...), written against the shapes helm v4 prints;
* ``HelmClient``, which runs the commands (through ``process.BinaryClient``, which also holds
  the flags that select the cluster and passes them to the builders as ``flags``).

Values always reach helm on stdin (``--values -``), never through a file (a killed sbkube
would leave it behind) nor ``--set`` (which re-parses strings and would put secrets on the
process command line).

Charts are made ready before use (``HelmClient.prepare_chart``): a ``repo/chart`` ref's
repository is added, from config.yaml's ``repos:``, to a helm repository config that sbkube
owns (``$XDG_CACHE_HOME/sbkube/helm``: the user's own helm repositories are never read or
changed), and its index is refreshed when the version asked for is not in it, or, for a
chart without ``version:``, when the cached index is older than
``SBKUBE_REPO_INDEX_MAX_AGE`` seconds (default 3600; ``deploy --refresh``: 0), so a newer
published chart is picked up; a local chart whose ``dependencies`` are not in its
``charts/`` gets ``helm dependency build``; ``oci://`` refs go to helm as they are.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sbkube import yamlio
from sbkube.cluster.launch import (
    HELM_ENV_VAR,
    helm_environment,
    missing_dependencies,
    template_command,
)
from sbkube.cluster.port import (
    ChartRef,
    HookInfo,
    ReleaseInfo,
    ReleaseStatus,
    TemplateRequest,
    UpgradeRequest,
)
from sbkube.cluster.process import (
    VALUES_FROM_STDIN,
    BinaryClient,
    duration_text,
    target_flags,
    values_json,
)
from sbkube.cluster.process import error_text as process_error_text
from sbkube.cluster.process import first_error_line as process_first_error_line
from sbkube.errors import ClusterError, UsageError
from sbkube.manifests import Scope, parse_rendered

# --------------------------------------------------------------------------- argv builders


_CONTEXT_FLAG = "--kube-context"


def global_flags(*, kubeconfig: str | None = None, context: str | None = None) -> list[str]:
    """Flags that select the cluster; empty when helm's own defaults apply."""
    return target_flags(kubeconfig=kubeconfig, context=context, context_flag=_CONTEXT_FLAG)


def _chart_flags(chart: ChartRef) -> list[str]:
    return ["--version", chart.version] if chart.version else []


def template_argv(binary: str, request: TemplateRequest, *, values_file: str) -> list[str]:
    """``helm template``: renders locally, so no cluster flags (it must work offline).

    ``--include-crds``: the chart's ``crds/`` are part of what a first install puts on the
    cluster, so the rendered set shows them too."""
    return template_command(
        binary,
        release_name=request.release_name,
        chart=request.chart.ref,
        namespace=request.namespace,
        version=request.chart.version,
        values_file=values_file,
    )


def _without_crds(chart_dir: Path) -> bool:
    """A chart directory that holds no ``crds/`` and no ``charts/``: ``helm show crds``
    (the chart's ``crds/`` files, and its subcharts') would print nothing."""
    return chart_dir.is_dir() and not any(
        os.path.lexists(chart_dir / name) for name in ("crds", "charts")
    )


def show_crds_argv(binary: str, chart: ChartRef) -> list[str]:
    """``helm show crds``: the chart's ``crds/`` files, which Helm installs on first install."""
    return [binary, "show", "crds", chart.ref, *_chart_flags(chart)]


def pull_argv(binary: str, chart: ChartRef, into: str) -> list[str]:
    """``helm pull --untar``: a repository or OCI chart unpacked into directory ``into``
    (offline of any cluster: no cluster flags)."""
    return [binary, "pull", chart.ref, "--untar", "--untardir", into, *_chart_flags(chart)]


def show_chart_argv(binary: str, chart: ChartRef) -> list[str]:
    """``helm show chart``: prints the chart's Chart.yaml (name, version, appVersion)."""
    return [binary, "show", "chart", chart.ref, *_chart_flags(chart)]


def upgrade_install_argv(
    binary: str,
    request: UpgradeRequest,
    *,
    values_file: str,
    dry_run: bool = False,
    flags: Sequence[str] = (),
) -> list[str]:
    """``helm upgrade --install`` with JSON output (the new release; with ``dry_run`` the
    release the server-side dry run says it would make)."""
    argv = [
        binary,
        "upgrade",
        request.release_name,
        request.chart.ref,
        "--install",
        "--namespace",
        request.namespace,
        "--values",
        values_file,
        *_chart_flags(request.chart),
    ]
    if request.create_namespace:
        argv.append("--create-namespace")
    if request.wait:
        # Bare --wait means "watcher" in helm v4 and "true" in helm v3: right for both.
        argv.append("--wait")
    if request.timeout:
        argv += ["--timeout", request.timeout]
    if request.force_conflicts:
        argv.append("--force-conflicts")
    if dry_run:
        argv.append("--dry-run=server")
    argv += ["--output", "json"]
    return [*argv, *flags]


def repo_add_argv(binary: str, name: str, url: str) -> list[str]:
    """``helm repo add --force-update``: (re)points ``name`` at ``url``, fetching its index."""
    return [binary, "repo", "add", "--force-update", name, url]


def repo_update_argv(binary: str, name: str) -> list[str]:
    """``helm repo update NAME``: fetches that repository's index again."""
    return [binary, "repo", "update", name]


def search_argv(binary: str, chart: ChartRef) -> list[str]:
    """``helm search repo``: the chart's versions in the cached index (``--version``: that one)."""
    argv = [binary, "search", "repo", chart.ref, "--output", "json"]
    if chart.version:
        argv += ["--version", chart.version]
    return argv


def dependency_build_argv(binary: str, chart_dir: str) -> list[str]:
    """``helm dependency build``: fills a local chart's ``charts/`` from its dependencies."""
    return [binary, "dependency", "build", chart_dir]


def read_argv(
    command: str,
    binary: str,
    release_name: str,
    namespace: str,
    *,
    revision: int | None = None,
    flags: Sequence[str] = (),
) -> list[str]:
    """``helm COMMAND RELEASE --namespace NS [--revision N] --output json``: the shape every
    read of one release shares (``status``, ``history``, ``get values``, ``get metadata``)."""
    argv = [binary, *command.split(), release_name, "--namespace", namespace]
    if revision is not None:
        argv += ["--revision", str(revision)]
    return [*argv, "--output", "json", *flags]


status_argv = partial(read_argv, "status")
"""``helm status``: the current revision, without its chart."""
history_argv = partial(read_argv, "history")
"""``helm history``: every stored revision."""
metadata_argv = partial(read_argv, "get metadata")
"""``helm get metadata``: the chart name/version that ``helm status`` leaves out."""
get_values_argv = partial(read_argv, "get values")
"""``helm get values``: a revision's user-supplied values."""


def pending_argv(binary: str, namespace: str, *, flags: Sequence[str] = ()) -> list[str]:
    """``helm list --pending``: the releases of ``namespace`` left pending-install,
    pending-upgrade or pending-rollback, in one call (one request to the cluster)."""
    return [binary, "list", "--pending", "--namespace", namespace, "--output", "json", *flags]


def parse_release_names(text: str) -> list[str]:
    """Release names from ``helm list -o json``."""
    try:
        data = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise ClusterError(f"helm list printed invalid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ClusterError("helm list printed JSON that is not a list")
    return [str(r["name"]) for r in data if isinstance(r, dict) and r.get("name")]


def rollback_argv(
    binary: str,
    release_name: str,
    namespace: str,
    revision: int,
    *,
    wait: bool = False,
    timeout: str | None = None,
    dry_run: bool = False,
    force_conflicts: bool = False,
    flags: Sequence[str] = (),
) -> list[str]:
    argv = [binary, "rollback", release_name, str(revision), "--namespace", namespace]
    if force_conflicts:
        argv.append("--force-conflicts")
    if wait:
        argv.append("--wait")
    if timeout:
        argv += ["--timeout", timeout]
    if dry_run:
        argv.append("--dry-run=server")
    return [*argv, *flags]


def uninstall_argv(
    binary: str,
    release_name: str,
    namespace: str,
    *,
    dry_run: bool = False,
    keep_history: bool = False,
    flags: Sequence[str] = (),
) -> list[str]:
    # --ignore-not-found: uninstalling what is already gone is success, as the port promises.
    # --keep-history: the release's revisions stay, so `helm rollback` can bring it back.
    argv = [binary, "uninstall", release_name, "--namespace", namespace, "--ignore-not-found"]
    if keep_history:
        argv.append("--keep-history")
    if dry_run:
        argv.append("--dry-run")
    return [*argv, *flags]


#: The helm commands that take ``--timeout`` (how long they wait for the cluster).
_TIMED = frozenset({"install", "upgrade", "rollback", "uninstall"})


def bounded_argv(argv: list[str], seconds: float) -> list[str]:
    """``argv`` with ``--timeout`` set to ``seconds`` when it changes a release and names
    no timeout of its own: helm's waits (``--wait``, hooks) end within the call's bound,
    and helm reports the timeout itself. Other commands take no ``--timeout``: the
    process's deadline bounds them (``process.BinaryClient.execute``)."""
    if len(argv) < 2 or argv[1] not in _TIMED or "--timeout" in argv:
        return argv
    return [*argv, "--timeout", duration_text(seconds)]


# --------------------------------------------------------------------------- parsers

_FRACTION = re.compile(r"\.(\d+)")


def parse_helm_time(value: object) -> datetime | None:
    """A Go ``time.Time`` as helm prints it (RFC 3339, nanoseconds) -> aware UTC datetime.

    Returns None for missing, empty and Go zero times (``0001-01-01T00:00:00Z``).
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Go prints up to 9 fractional digits; datetime takes at most 6.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ClusterError(f"helm printed an unreadable time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year <= 1:
        return None
    return parsed.astimezone(UTC)


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise ClusterError(f"helm printed invalid JSON for {what}: {exc}") from exc


def parse_values_json(text: str) -> dict[str, Any]:
    """``helm get values -o json``: an object, or ``null`` when no values were supplied."""
    data = _load_json(text, "values")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ClusterError(f"helm printed values that are not a mapping: {text[:80]!r}")
    return data


def parse_metadata_json(text: str) -> dict[str, Any]:
    """``helm get metadata -o json``: ``{name, chart, version, appVersion, namespace,
    revision, status, deployedAt, ...}``."""
    data = _load_json(text, "release metadata")
    if not isinstance(data, dict):
        raise ClusterError("helm printed release metadata that is not an object")
    return data


def parse_release_json(
    data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
) -> ReleaseInfo:
    """A release object (``helm status -o json``, ``helm upgrade -o json``) -> ReleaseInfo.

    ``helm status`` strips the chart from its output, so the chart name and versions come
    from ``data["chart"]["metadata"]`` when present, else from ``metadata`` (the output of
    ``helm get metadata``).
    """
    info = data.get("info") or {}
    chart_meta: Mapping[str, Any] = {}
    chart = data.get("chart")
    if isinstance(chart, Mapping) and isinstance(chart.get("metadata"), Mapping):
        chart_meta = chart["metadata"]
    meta = metadata or {}
    chart_name = chart_meta.get("name") or meta.get("chart") or ""
    chart_version = chart_meta.get("version") or meta.get("version") or ""
    app_version = chart_meta.get("appVersion") or meta.get("appVersion") or None
    values = data.get("config")
    namespace = str(data.get("namespace") or meta.get("namespace") or "")
    return ReleaseInfo(
        name=str(data.get("name") or meta.get("name") or ""),
        namespace=namespace,
        revision=int(data.get("version") or meta.get("revision") or 0),
        status=ReleaseStatus(str(info.get("status") or meta.get("status") or "unknown")),
        chart=str(chart_name),
        chart_version=str(chart_version),
        app_version=str(app_version) if app_version else None,
        values=dict(values) if isinstance(values, Mapping) else {},
        updated=(
            parse_helm_time(info.get("last_deployed")) or parse_helm_time(meta.get("deployedAt"))
        ),
        description=str(info.get("description") or ""),
        manifest=tuple(parse_manifests(str(data.get("manifest") or ""), namespace=namespace)),
        hooks=parse_hooks(data.get("hooks"), namespace),
        apply_method=str(data["apply_method"]) if data.get("apply_method") else None,
        uses_lookup=isinstance(chart, Mapping) and templates_use_lookup(chart.get("templates")),
    )


_LOOKUP = re.compile(rb"\blookup\b")


def templates_use_lookup(templates: object) -> bool:
    """True when a printed chart's ``templates`` (``[{name, data: base64}]``, its
    dependencies' included) call ``lookup``."""
    if not isinstance(templates, list):
        return False
    for template in templates:
        data = template.get("data") if isinstance(template, Mapping) else None
        if isinstance(data, str):
            with suppress(binascii.Error, ValueError):
                if _LOOKUP.search(base64.b64decode(data)):
                    return True
    return False


def chart_uses_lookup(path: Path) -> bool:
    """True when a local chart's templates (its subcharts' included) call ``lookup``: a
    chart directory, or a packaged ``.tgz``; False for one that cannot be read."""
    import tarfile  # here: rendering a chart (sbkube template) never opens an archive

    try:
        if path.is_dir():
            return any(
                _LOOKUP.search(f.read_bytes())
                for f in path.rglob("*")
                if f.is_file() and "templates" in f.relative_to(path).parts
            )
        if path.is_file() and tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile() and "templates" in member.name.split("/"):
                        handle = archive.extractfile(member)
                        if handle is not None and _LOOKUP.search(handle.read()):
                            return True
    except (OSError, tarfile.TarError):
        return False
    return False


def parse_hooks(hooks: object, namespace: str) -> tuple[HookInfo, ...]:
    """The ``hooks`` of a printed release -> HookInfo, in Helm's order."""
    if not isinstance(hooks, list):
        return ()
    parsed: list[HookInfo] = []
    for hook in hooks:
        if not isinstance(hook, Mapping):
            continue
        events = tuple(str(e) for e in hook.get("events") or ())
        last_run = hook.get("last_run")
        ran = not isinstance(last_run, Mapping) or bool(last_run.get("phase"))
        for manifest in parse_manifests(str(hook.get("manifest") or ""), namespace=namespace):
            parsed.append(HookInfo(events=events, manifest=manifest, ran=ran))
    return tuple(parsed)


RELEASE_SECRET_LABELS: Mapping[str, str] = {"owner": "helm"}
"""The labels Helm's default storage driver (Secrets, ``helm.sh/release.v1``) puts on every
release revision it stores, beside ``name``, ``version``, ``status`` and ``modifiedAt``."""


def parse_release_secret(secret: Mapping[str, Any]) -> ReleaseInfo | None:
    """One revision from Helm's storage Secret (``data.release``: base64 of helm's own
    base64 of the gzipped release JSON); None when it cannot be read as one."""
    data = (secret.get("data") or {}).get("release")
    if not isinstance(data, str):
        return None
    try:
        raw = base64.b64decode(base64.b64decode(data))
        if raw[:2] == b"\x1f\x8b":
            import gzip  # here: only Helm's storage is gzipped

            raw = gzip.decompress(raw)
        release = json.loads(raw)
    except (binascii.Error, ValueError, OSError, EOFError):
        return None
    return parse_release_json(release) if isinstance(release, Mapping) else None


def current_releases(
    secrets: Sequence[Mapping[str, Any]],
) -> dict[tuple[str, str], ReleaseInfo]:
    """``{(namespace, release): current revision}`` from Helm's storage Secrets: per
    release, the revision with the highest ``version`` label (what ``helm status`` shows),
    the only one decoded."""
    newest: dict[tuple[str, str], tuple[int, Mapping[str, Any]]] = {}
    for secret in secrets:
        if secret.get("type") not in (None, "helm.sh/release.v1"):
            continue
        meta = secret.get("metadata") or {}
        labels = meta.get("labels") or {}
        try:
            version = int(labels.get("version") or 0)
        except ValueError:
            continue
        key = (str(meta.get("namespace") or ""), str(labels.get("name") or ""))
        if key[1] and (key not in newest or newest[key][0] < version):
            newest[key] = (version, secret)
    found: dict[tuple[str, str], ReleaseInfo] = {}
    for key, (_version, secret) in newest.items():
        info = parse_release_secret(secret)
        if info is not None:
            found[key] = info
    return found


def release_histories(
    secrets: Sequence[Mapping[str, Any]],
) -> dict[tuple[str, str], list[ReleaseInfo]]:
    """``{(namespace, release): every stored revision, oldest first}`` from Helm's storage
    Secrets, each decoded (what ``helm history`` lists, with each revision's values as
    ``helm get values --revision`` prints them)."""
    found: dict[tuple[str, str], list[ReleaseInfo]] = {}
    for secret in secrets:
        if secret.get("type") not in (None, "helm.sh/release.v1"):
            continue
        meta = secret.get("metadata") or {}
        name = str((meta.get("labels") or {}).get("name") or "")
        info = parse_release_secret(secret) if name else None
        if info is not None:
            found.setdefault((str(meta.get("namespace") or ""), name), []).append(info)
    for revisions in found.values():
        revisions.sort(key=lambda r: r.revision)
    return found


def parse_status_json(text: str, metadata: Mapping[str, Any] | None = None) -> ReleaseInfo:
    data = _load_json(text, "release status")
    if not isinstance(data, Mapping):
        raise ClusterError("helm printed a release status that is not an object")
    return parse_release_json(data, metadata)


# "demo-redis-0.1.0" -> ("demo-redis", "0.1.0"): helm history joins name and version with a
# dash and both may contain dashes, so split before the first dash-separated part that
# is a SemVer 2 version (helm requires one in Chart.yaml): MAJOR.MINOR.PATCH[-pre][+build].
_CHART_SPLIT = re.compile(r"^(?P<name>.+?)-(?P<version>v?\d+\.\d+\.\d+(?:[-+].*)?)\Z")


def split_chart(chart: str) -> tuple[str, str]:
    """``helm history``'s CHART column (``name-version``) -> ``(name, version)``."""
    match = _CHART_SPLIT.match(chart)
    if not match:
        return chart, ""
    return match.group("name"), match.group("version")


def parse_history_json(text: str, release_name: str, namespace: str) -> list[ReleaseInfo]:
    """``helm history -o json`` -> revisions oldest first, with empty values (history does
    not carry them; HelmClient.history fills them in)."""
    data = _load_json(text, "release history")
    if data is None:
        return []
    if not isinstance(data, list):
        raise ClusterError("helm printed a release history that is not a list")
    revisions = []
    for entry in data:
        chart, chart_version = split_chart(str(entry.get("chart") or ""))
        revisions.append(
            ReleaseInfo(
                name=release_name,
                namespace=namespace,
                revision=int(entry.get("revision") or 0),
                status=ReleaseStatus(str(entry.get("status") or "unknown")),
                chart=chart,
                chart_version=chart_version,
                app_version=str(entry.get("app_version") or "") or None,
                values={},
                updated=parse_helm_time(entry.get("updated")),
                description=str(entry.get("description") or ""),
            )
        )
    revisions.sort(key=lambda r: r.revision)
    return revisions


def parse_search_json(text: str, ref: str) -> list[str]:
    """``helm search repo -o json`` -> the versions listed for exactly ``ref``
    (the search matches by substring, so ``repo/redis`` also finds ``repo/redis-cluster``)."""
    data = _load_json(text, "chart search")
    if not isinstance(data, list):
        return []
    return [
        str(entry.get("version"))
        for entry in data
        if isinstance(entry, Mapping) and entry.get("name") == ref
    ]


INDEX_MAX_AGE_VAR = "SBKUBE_REPO_INDEX_MAX_AGE"
"""Seconds a repository's cached index serves a chart without ``version:`` before it is
fetched again (default one hour); ``deploy --refresh`` sets it to 0."""


def index_max_age() -> float:
    text = os.environ.get(INDEX_MAX_AGE_VAR, "").strip()
    if not text:
        return 3600.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise UsageError(f"{INDEX_MAX_AGE_VAR}={text!r}: not a number of seconds (>= 0)")
    return seconds


def configured_repositories(config_file: Path) -> dict[str, str]:
    """``{name: url}`` of a helm repository config file (``repositories.yaml``)."""
    try:
        data = yamlio.load(config_file.read_text(encoding="utf-8"))
    except (OSError, yamlio.YAMLError):
        return {}
    entries = data.get("repositories") if isinstance(data, Mapping) else None
    return {
        str(e.get("name")): str(e.get("url"))
        for e in entries or []
        if isinstance(e, Mapping) and e.get("name")
    }


def parse_manifests(text: str, *, namespace: str | None = None) -> list[dict[str, Any]]:
    """Multi-document YAML (``helm template`` output) -> manifests.

    Empty documents (a template whose ``if`` was false) are skipped, ``kind: List`` (and
    ``*List``) documents are expanded into their items, and when ``namespace`` is given
    namespaced objects without one get it (cluster-scoped ones lose any they name).
    """
    manifests = parse_rendered(text, "helm")
    if namespace:
        # The chart's own CRDs and the offline list; the engine places them again with the
        # cluster's discovery, which knows every kind the cluster serves.
        scope = Scope.of(manifests, None)
        manifests = [scope.place(m, namespace) for m in manifests]
    # What a chart put in a Secret is a secret wherever else it shows up (the values it
    # came from, an error line), whatever key it had in the values.
    from sbkube.redaction import learn_manifests

    learn_manifests(manifests)
    return manifests


# Lines helm prints before its "Error: ..." line that never explain a failure.
NOISE_PREFIXES = ("warning:", "walk.go:", "level=", "use --debug", "coalesce.go:")


def first_error_line(stderr: str) -> str:
    """The line of helm's stderr that explains a failure (see ``process.first_error_line``)."""
    return process_first_error_line(stderr, noise=NOISE_PREFIXES)


def error_text(stderr: str) -> str:
    """helm's whole error: the explaining line and the lines that detail it (see
    ``process.error_text``), as ``HelmClient`` reports a failure."""
    return process_error_text(stderr, noise=NOISE_PREFIXES)


# --------------------------------------------------------------------------- client


class HelmClient(BinaryClient):
    """Runs helm. One instance per target cluster (kubeconfig + context)."""

    NAME = "helm"
    ENV_VAR = HELM_ENV_VAR
    CONTEXT_FLAG = _CONTEXT_FLAG
    NOISE = NOISE_PREFIXES

    def __init__(
        self,
        binary: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(binary, kubeconfig, context, env)
        self._prepared: set[tuple[str, str | None]] = set()
        self._repos: dict[str, str] = {}  # repositories known to be in the config, this run
        # Charts are rendered and installed from several threads (concurrent apps): one
        # chart is made ready (repo added, dependencies built) once, by one of them.
        self._preparing = threading.RLock()

    def bounded(self, argv: list[str], seconds: float) -> list[str]:
        """A release change waits at most ``seconds`` (see :func:`bounded_argv`)."""
        return bounded_argv(argv, seconds)

    def environment(self) -> dict[str, str]:
        return helm_environment(self.env)

    # ---- charts made ready (repositories, dependencies)

    def prepare_chart(self, chart: ChartRef) -> None:
        """Make ``chart`` usable by helm; see the module docstring. Once per chart and
        version per client: a deploy renders and then installs the same chart."""
        key = (chart.ref, chart.version)
        if key in self._prepared:
            return
        with self._preparing:
            if key not in self._prepared:
                self._prepare(chart)
                self._prepared.add(key)

    def _prepare(self, chart: ChartRef) -> None:
        if chart.repo_name is not None:
            self._prepare_repo_chart(chart, chart.repo_name)
        elif Path(chart.ref).is_dir():
            missing = missing_dependencies(Path(chart.ref))
            if missing:
                self.run(
                    dependency_build_argv(self.binary, chart.ref),
                    what=f"helm dependency build {chart.ref} (for {', '.join(missing)})",
                )

    def _prepare_repo_chart(self, chart: ChartRef, name: str) -> None:
        assert chart.repo_url is not None
        url = chart.repo_url
        fresh = False
        if self._repos.get(name) != url:
            config = Path(self.environment()["HELM_REPOSITORY_CONFIG"])
            if configured_repositories(config).get(name) != url:
                self.run(repo_add_argv(self.binary, name, url), what=f"helm repo add {name}")
                fresh = True
            self._repos[name] = url
        if not chart.version:
            # Any version: the newest the index lists, so an old index hides newer charts.
            if not fresh and self._index_stale(name):
                self.run(repo_update_argv(self.binary, name), what=f"helm repo update {name}")
            return
        if self._has_version(chart):
            return
        if not fresh:
            # The cached index may predate the release of the version asked for.
            self.run(repo_update_argv(self.binary, name), what=f"helm repo update {name}")
            if self._has_version(chart):
                return
        raise ClusterError(
            f"chart {chart.ref} version {chart.version} not found in repository {name} ({url})"
        )

    def _index_stale(self, name: str) -> bool:
        """Whether repository ``name``'s cached index is older than
        :func:`index_max_age` (or missing)."""
        index = Path(self.environment()["HELM_REPOSITORY_CACHE"]) / f"{name}-index.yaml"
        try:
            age = time.time() - index.stat().st_mtime
        except OSError:
            return True
        return age >= index_max_age()

    def _has_version(self, chart: ChartRef) -> bool:
        out = self.run(search_argv(self.binary, chart), what=f"helm search repo {chart.ref}")
        return bool(parse_search_json(out, chart.ref))

    # ---- chart operations (no cluster needed)

    def template(self, request: TemplateRequest) -> list[dict[str, Any]]:
        """``helm template`` -> manifests, namespace defaulted on namespaced objects."""
        return parse_manifests(self.template_text(request), namespace=request.namespace)

    def template_text(self, request: TemplateRequest) -> str:
        """What ``helm template`` prints, as it prints it (nothing parsed nor learned)."""
        self.prepare_chart(request.chart)
        argv = template_argv(self.binary, request, values_file=VALUES_FROM_STDIN)
        return self.run(
            argv, what=f"helm template {request.chart.ref}", stdin=values_json(request.values)
        )

    def pull(self, chart: ChartRef, into: str) -> None:
        """Unpack ``chart`` (a repository or OCI chart) into directory ``into``."""
        self.prepare_chart(chart)
        self.run(pull_argv(self.binary, chart, into), what=f"helm pull {chart.ref}")

    def show_chart(self, chart: ChartRef) -> dict[str, Any]:
        """The chart's Chart.yaml as a mapping (``name``, ``version``, ``appVersion``, ...)."""
        self.prepare_chart(chart)
        out = self.run(show_chart_argv(self.binary, chart), what=f"helm show chart {chart.ref}")
        data = yamlio.load(out)
        if not isinstance(data, dict):
            raise ClusterError(f"helm show chart {chart.ref}: Chart.yaml is not a mapping")
        return data

    def show_crds(self, chart: ChartRef) -> list[dict[str, Any]]:
        """The chart's ``crds/`` objects (``[]`` when it has none). A local chart directory
        with neither ``crds/`` nor ``charts/`` (no subchart to bring any, once its
        dependencies are built) has none, and helm, which spends ~65 ms of every run
        starting, is not asked."""
        self.prepare_chart(chart)
        if chart.repo_name is None and _without_crds(Path(chart.ref)):
            return []
        out = self.run(show_crds_argv(self.binary, chart), what=f"helm show crds {chart.ref}")
        return parse_manifests(out)

    # ---- release operations

    def upgrade_install(self, request: UpgradeRequest) -> ReleaseInfo:
        self.prepare_chart(request.chart)
        argv = upgrade_install_argv(
            self.binary,
            request,
            values_file=VALUES_FROM_STDIN,
            dry_run=self.dry_run,
            flags=self.flags,
        )
        out = self.run(
            argv,
            what=f"helm upgrade --install {request.release_name}",
            stdin=values_json(request.values),
        )
        info = parse_status_json(out)
        if self.dry_run:
            # Helm reports a dry run's revision as still pending; the plan is what the
            # finished upgrade would be.
            return replace(info, status=ReleaseStatus.DEPLOYED)
        if not info.chart:
            # Older/newer helm builds may strip the chart from the printed release.
            current = self.status(request.release_name, request.namespace)
            if current is not None:
                return current
        return info

    def _read_release(self, argv: list[str], what: str) -> str | None:
        """What a read command printed; None when the release does not exist."""
        try:
            return self.run(argv, what=what)
        except ClusterError as exc:
            if is_release_not_found(exc):
                return None
            raise

    def status(
        self, release_name: str, namespace: str, *, chart: bool = True
    ) -> ReleaseInfo | None:
        """The current revision; without ``chart``, one helm process instead of two and the
        chart's name, version and app version left empty (``helm status`` leaves them out,
        ``helm get metadata`` has them)."""
        argv = status_argv(self.binary, release_name, namespace, flags=self.flags)
        out = self._read_release(argv, f"helm status {release_name}")
        if out is None or not chart:
            return None if out is None else parse_status_json(out)
        argv = metadata_argv(self.binary, release_name, namespace, flags=self.flags)
        metadata = self.run(argv, what=f"helm get metadata {release_name}")
        return parse_status_json(out, parse_metadata_json(metadata))

    def pending(self, namespace: str) -> list[str]:
        """Names of the releases of ``namespace`` left in a pending state."""
        argv = pending_argv(self.binary, namespace, flags=self.flags)
        return parse_release_names(self.run(argv, what=f"helm list --pending -n {namespace}"))

    def history(self, release_name: str, namespace: str) -> list[ReleaseInfo]:
        """Revisions oldest first, each with its user-supplied values.

        One ``helm get values`` per revision: helm keeps at most ``--history-max`` (10 by
        default) revisions, and callers such as rollback need the values of old revisions.
        """
        argv = history_argv(self.binary, release_name, namespace, flags=self.flags)
        out = self._read_release(argv, f"helm history {release_name}")
        if out is None:
            return []
        revisions = parse_history_json(out, release_name, namespace)
        return [
            replace(rev, values=self.get_values(release_name, namespace, rev.revision))
            for rev in revisions
        ]

    def get_values(
        self, release_name: str, namespace: str, revision: int | None = None
    ) -> dict[str, Any]:
        argv = get_values_argv(
            self.binary, release_name, namespace, revision=revision, flags=self.flags
        )
        return parse_values_json(self.run(argv, what=f"helm get values {release_name}"))

    def rollback(
        self,
        release_name: str,
        namespace: str,
        revision: int,
        *,
        wait: bool = False,
        timeout: str | None = None,
        force_conflicts: bool = False,
    ) -> None:
        """``helm rollback`` alone (it prints no release: ``KubeCluster.helm_rollback``
        reads what it made)."""
        self.run(
            rollback_argv(
                self.binary,
                release_name,
                namespace,
                revision,
                wait=wait,
                timeout=timeout,
                dry_run=self.dry_run,
                force_conflicts=force_conflicts,
                flags=self.flags,
            ),
            what=f"helm rollback {release_name} {revision}",
        )

    def uninstall(self, release_name: str, namespace: str, *, keep_history: bool = False) -> None:
        self.run(
            uninstall_argv(
                self.binary,
                release_name,
                namespace,
                dry_run=self.dry_run,
                keep_history=keep_history,
                flags=self.flags,
            ),
            what=f"helm uninstall {release_name}",
        )


def is_release_not_found(exc: ClusterError) -> bool:
    """True for helm's "release: not found" (the storage driver's ErrReleaseNotFound)."""
    return "release: not found" in exc.message or "release not found" in exc.message
