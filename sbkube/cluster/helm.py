"""Subprocess adapter for the ``helm`` binary.

The module is split in three layers so that most of it is testable without helm:

* pure argv builders (``template_argv``, ``upgrade_install_argv``, ...) that turn a request
  into the exact command line;
* pure parsers for helm's JSON output (``parse_release_json``, ``parse_history_json``,
  ``parse_values_json``, ...), written against the shapes helm v4 prints;
* ``HelmClient``, which runs the commands and maps a non-zero exit to ClusterError.

Values always reach helm through a temporary ``--values`` file (mode 0600, removed after
the call), never through ``--set``: ``--set`` re-parses strings and would put secrets on
the process command line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import yaml

from sbkube.cluster.port import ChartRef, ReleaseInfo, default_namespace
from sbkube.errors import ClusterError

HELM_ENV_VAR = "SBKUBE_HELM"

try:  # the C loader is several times faster on large charts; fall back when libyaml is absent
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _YamlLoader = yaml.SafeLoader


# --------------------------------------------------------------------------- argv builders


def global_flags(*, kubeconfig: str | None = None, context: str | None = None) -> list[str]:
    """Flags that select the cluster; empty when helm's own defaults apply."""
    flags: list[str] = []
    if kubeconfig:
        flags += ["--kubeconfig", kubeconfig]
    if context:
        flags += ["--kube-context", context]
    return flags


def _chart_flags(chart: ChartRef) -> list[str]:
    return ["--version", chart.version] if chart.version else []


def template_argv(
    binary: str,
    chart: ChartRef,
    *,
    release_name: str,
    namespace: str,
    values_file: str,
) -> list[str]:
    """``helm template``: renders locally, so no cluster flags (it must work offline)."""
    return [
        binary,
        "template",
        release_name,
        chart.ref,
        "--namespace",
        namespace,
        "--values",
        values_file,
        *_chart_flags(chart),
    ]


def show_chart_argv(binary: str, chart: ChartRef) -> list[str]:
    """``helm show chart``: prints the chart's Chart.yaml (name, version, appVersion)."""
    return [binary, "show", "chart", chart.ref, *_chart_flags(chart)]


def upgrade_install_argv(
    binary: str,
    chart: ChartRef,
    *,
    release_name: str,
    namespace: str,
    values_file: str,
    wait: bool = False,
    timeout: str | None = None,
    create_namespace: bool = True,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> list[str]:
    """``helm upgrade --install`` with JSON output (the new release)."""
    argv = [
        binary,
        "upgrade",
        release_name,
        chart.ref,
        "--install",
        "--namespace",
        namespace,
        "--values",
        values_file,
        *_chart_flags(chart),
    ]
    if create_namespace:
        argv.append("--create-namespace")
    if wait:
        # Bare --wait means "watcher" in helm v4 and "true" in helm v3: right for both.
        argv.append("--wait")
    if timeout:
        argv += ["--timeout", timeout]
    argv += ["--output", "json"]
    return argv + global_flags(kubeconfig=kubeconfig, context=context)


def status_argv(
    binary: str,
    release_name: str,
    namespace: str,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> list[str]:
    return [
        binary,
        "status",
        release_name,
        "--namespace",
        namespace,
        "--output",
        "json",
        *global_flags(kubeconfig=kubeconfig, context=context),
    ]


def metadata_argv(
    binary: str,
    release_name: str,
    namespace: str,
    *,
    revision: int | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> list[str]:
    """``helm get metadata``: the chart name/version that ``helm status`` leaves out."""
    argv = [binary, "get", "metadata", release_name, "--namespace", namespace]
    if revision is not None:
        argv += ["--revision", str(revision)]
    return [*argv, "--output", "json", *global_flags(kubeconfig=kubeconfig, context=context)]


def history_argv(
    binary: str,
    release_name: str,
    namespace: str,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> list[str]:
    return [
        binary,
        "history",
        release_name,
        "--namespace",
        namespace,
        "--output",
        "json",
        *global_flags(kubeconfig=kubeconfig, context=context),
    ]


def get_values_argv(
    binary: str,
    release_name: str,
    namespace: str,
    *,
    revision: int | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> list[str]:
    argv = [binary, "get", "values", release_name, "--namespace", namespace]
    if revision is not None:
        argv += ["--revision", str(revision)]
    return [*argv, "--output", "json", *global_flags(kubeconfig=kubeconfig, context=context)]


def rollback_argv(
    binary: str,
    release_name: str,
    namespace: str,
    revision: int,
    *,
    wait: bool = False,
    timeout: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> list[str]:
    argv = [binary, "rollback", release_name, str(revision), "--namespace", namespace]
    if wait:
        argv.append("--wait")
    if timeout:
        argv += ["--timeout", timeout]
    return argv + global_flags(kubeconfig=kubeconfig, context=context)


def uninstall_argv(
    binary: str,
    release_name: str,
    namespace: str,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> list[str]:
    # --ignore-not-found: uninstalling what is already gone is success, as the port promises.
    return [
        binary,
        "uninstall",
        release_name,
        "--namespace",
        namespace,
        "--ignore-not-found",
        *global_flags(kubeconfig=kubeconfig, context=context),
    ]


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
    return ReleaseInfo(
        name=str(data.get("name") or meta.get("name") or ""),
        namespace=str(data.get("namespace") or meta.get("namespace") or ""),
        revision=int(data.get("version") or meta.get("revision") or 0),
        status=str(info.get("status") or meta.get("status") or "unknown"),
        chart=str(chart_name),
        chart_version=str(chart_version),
        app_version=str(app_version) if app_version else None,
        values=dict(values) if isinstance(values, Mapping) else {},
        updated=(
            parse_helm_time(info.get("last_deployed")) or parse_helm_time(meta.get("deployedAt"))
        ),
        description=str(info.get("description") or ""),
    )


def parse_status_json(text: str, metadata: Mapping[str, Any] | None = None) -> ReleaseInfo:
    data = _load_json(text, "release status")
    if not isinstance(data, Mapping):
        raise ClusterError("helm printed a release status that is not an object")
    return parse_release_json(data, metadata)


# "demo-redis-0.1.0" -> ("demo-redis", "0.1.0"): helm history joins name and version with a
# dash and both may contain dashes, so split before the first dash-separated part that
# is a SemVer 2 version (helm requires one in Chart.yaml): MAJOR.MINOR.PATCH[-pre][+build].
_CHART_SPLIT = re.compile(r"^(?P<name>.+?)-(?P<version>v?\d+\.\d+\.\d+(?:[-+].*)?)$")


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
                status=str(entry.get("status") or "unknown"),
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


def parse_manifests(text: str, *, namespace: str | None = None) -> list[dict[str, Any]]:
    """Multi-document YAML (``helm template`` output) -> manifests.

    Empty documents (a template whose ``if`` was false) are skipped, ``kind: List`` is
    flattened, and when ``namespace`` is given namespaced objects without one get it.
    """
    try:
        documents = list(yaml.load_all(text, Loader=_YamlLoader))
    except yaml.YAMLError as exc:
        raise ClusterError(f"helm rendered invalid YAML: {_one_line(str(exc))}") from exc
    manifests: list[dict[str, Any]] = []
    for doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ClusterError(f"helm rendered a document that is not a mapping: {doc!r:.80}")
        items = doc.get("items") if doc.get("kind") == "List" else None
        for item in items if isinstance(items, list) else [doc]:
            manifests.append(default_namespace(item, namespace) if namespace else item)
    return manifests


_NOISE_PREFIXES = ("warning:", "walk.go:", "level=", "use --debug", "coalesce.go:")

# client-go's klog lines ("E1126 09:54:35.957490   21844 memcache.go:265] ...") come before
# the tool's own one-line summary and repeat on every retry.
KLOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\] ")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def first_error_line(stderr: str) -> str:
    """The line of helm's stderr that explains a failure.

    helm prints warnings and log lines before the ``Error: ...`` line and hints after it,
    so prefer the Error line, then the first line that is not known noise.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error:"):
            return line[len("Error:") :].strip()
    for line in lines:
        if not line.lower().startswith(_NOISE_PREFIXES) and not KLOG_LINE.match(line):
            return line
    return lines[0] if lines else ""


# --------------------------------------------------------------------------- runner


def resolve_binary(binary: str | None, env_var: str, default: str) -> str:
    """``binary`` if given, else ``$env_var``, else ``default``; resolved against PATH.

    Raises ClusterError naming the binary when it cannot be found, so a missing helm is one
    clear line rather than a FileNotFoundError traceback.
    """
    wanted = binary or os.environ.get(env_var) or default
    found = shutil.which(wanted)
    if found is None:
        raise ClusterError(
            f"{default} binary not found: {wanted!r} "
            f"(install {default}, put it on PATH, or set {env_var})"
        )
    return found


@contextmanager
def values_file(values: Mapping[str, Any]) -> Iterator[str]:
    """A private temporary file holding ``values``; removed on exit.

    JSON is a subset of YAML, and unlike yaml.dump it cannot turn a string such as "on" or
    "1.10" into another type on helm's side.
    """
    fd, path = tempfile.mkstemp(prefix="sbkube-values-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(values), handle, default=str)
        yield path
    finally:
        with suppress(FileNotFoundError):
            os.unlink(path)


class BinaryClient:
    """A command-line tool run against one kubeconfig/context (helm, kubectl).

    Subclasses name the tool (``NAME``), the variable that overrides its path
    (``ENV_VAR``) and how to find the reason in its stderr (``first_error_line``).
    """

    NAME = ""
    ENV_VAR = ""

    def __init__(
        self,
        binary: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        # The binary is resolved on first use, so that building a client (e.g. for a
        # MemoryCluster that never renders a chart) does not require the tool installed.
        self._binary = binary
        self._resolved: str | None = None
        self.kubeconfig = kubeconfig
        self.context = context
        self.env = dict(env) if env else {}

    @property
    def binary(self) -> str:
        """Absolute path of the binary; ClusterError if it cannot be found."""
        if self._resolved is None:
            self._resolved = resolve_binary(self._binary, self.ENV_VAR, self.NAME)
        return self._resolved

    @staticmethod
    def first_error_line(stderr: str) -> str:
        raise NotImplementedError

    def run(self, argv: Sequence[str], *, what: str, stdin: str | None = None) -> str:
        """Run ``argv``; stdout on success, ClusterError with the tool's reason otherwise."""
        env = {**os.environ, **self.env} if self.env else None
        try:
            proc = subprocess.run(
                list(argv), input=stdin, capture_output=True, text=True, env=env, check=False
            )
        except OSError as exc:
            raise ClusterError(f"{what} failed: cannot run {argv[0]}: {exc}") from exc
        if proc.returncode != 0:
            reason = self.first_error_line(proc.stderr)
            raise ClusterError(
                f"{what} failed: {reason or f'{self.NAME} exited with code {proc.returncode}'}"
            )
        return proc.stdout


class HelmClient(BinaryClient):
    """Runs helm. One instance per target cluster (kubeconfig + context)."""

    NAME = "helm"
    ENV_VAR = HELM_ENV_VAR
    first_error_line = staticmethod(first_error_line)

    # ---- chart operations (no cluster needed)

    def template(
        self,
        chart: ChartRef,
        *,
        release_name: str,
        namespace: str,
        values: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        """``helm template`` -> manifests, namespace defaulted on namespaced objects."""
        with values_file(values) as path:
            argv = template_argv(
                self.binary, chart, release_name=release_name, namespace=namespace, values_file=path
            )
            out = self.run(argv, what=f"helm template {chart.ref}")
        return parse_manifests(out, namespace=namespace)

    def show_chart(self, chart: ChartRef) -> dict[str, Any]:
        """The chart's Chart.yaml as a mapping (``name``, ``version``, ``appVersion``, ...)."""
        out = self.run(show_chart_argv(self.binary, chart), what=f"helm show chart {chart.ref}")
        data = yaml.load(out, Loader=_YamlLoader)
        if not isinstance(data, dict):
            raise ClusterError(f"helm show chart {chart.ref}: Chart.yaml is not a mapping")
        return data

    # ---- release operations

    def upgrade_install(
        self,
        chart: ChartRef,
        *,
        release_name: str,
        namespace: str,
        values: Mapping[str, Any],
        wait: bool = False,
        timeout: str | None = None,
        create_namespace: bool = True,
    ) -> ReleaseInfo:
        with values_file(values) as path:
            argv = upgrade_install_argv(
                self.binary,
                chart,
                release_name=release_name,
                namespace=namespace,
                values_file=path,
                wait=wait,
                timeout=timeout,
                create_namespace=create_namespace,
                kubeconfig=self.kubeconfig,
                context=self.context,
            )
            out = self.run(argv, what=f"helm upgrade --install {release_name}")
        info = parse_status_json(out)
        if not info.chart:
            # Older/newer helm builds may strip the chart from the printed release.
            current = self.status(release_name, namespace)
            if current is not None:
                return current
        return info

    def status(self, release_name: str, namespace: str) -> ReleaseInfo | None:
        try:
            out = self.run(
                status_argv(
                    self.binary,
                    release_name,
                    namespace,
                    kubeconfig=self.kubeconfig,
                    context=self.context,
                ),
                what=f"helm status {release_name}",
            )
        except ClusterError as exc:
            if is_release_not_found(exc):
                return None
            raise
        metadata = parse_metadata_json(
            self.run(
                metadata_argv(
                    self.binary,
                    release_name,
                    namespace,
                    kubeconfig=self.kubeconfig,
                    context=self.context,
                ),
                what=f"helm get metadata {release_name}",
            )
        )
        return parse_status_json(out, metadata)

    def history(self, release_name: str, namespace: str) -> list[ReleaseInfo]:
        """Revisions oldest first, each with its user-supplied values.

        One ``helm get values`` per revision: helm keeps at most ``--history-max`` (10 by
        default) revisions, and callers such as rollback need the values of old revisions.
        """
        try:
            out = self.run(
                history_argv(
                    self.binary,
                    release_name,
                    namespace,
                    kubeconfig=self.kubeconfig,
                    context=self.context,
                ),
                what=f"helm history {release_name}",
            )
        except ClusterError as exc:
            if is_release_not_found(exc):
                return []
            raise
        revisions = parse_history_json(out, release_name, namespace)
        return [
            replace(rev, values=self.get_values(release_name, namespace, rev.revision))
            for rev in revisions
        ]

    def get_values(
        self, release_name: str, namespace: str, revision: int | None = None
    ) -> dict[str, Any]:
        out = self.run(
            get_values_argv(
                self.binary,
                release_name,
                namespace,
                revision=revision,
                kubeconfig=self.kubeconfig,
                context=self.context,
            ),
            what=f"helm get values {release_name}",
        )
        return parse_values_json(out)

    def rollback(
        self,
        release_name: str,
        namespace: str,
        revision: int,
        *,
        wait: bool = False,
        timeout: str | None = None,
    ) -> ReleaseInfo:
        self.run(
            rollback_argv(
                self.binary,
                release_name,
                namespace,
                revision,
                wait=wait,
                timeout=timeout,
                kubeconfig=self.kubeconfig,
                context=self.context,
            ),
            what=f"helm rollback {release_name} {revision}",
        )
        info = self.status(release_name, namespace)
        if info is None:  # pragma: no cover - helm just rolled it back
            raise ClusterError(f"helm rollback {release_name}: release vanished")
        return info

    def uninstall(self, release_name: str, namespace: str) -> None:
        self.run(
            uninstall_argv(
                self.binary,
                release_name,
                namespace,
                kubeconfig=self.kubeconfig,
                context=self.context,
            ),
            what=f"helm uninstall {release_name}",
        )


def is_release_not_found(exc: ClusterError) -> bool:
    """True for helm's "release: not found" (the storage driver's ErrReleaseNotFound)."""
    return "release: not found" in exc.message or "release not found" in exc.message
