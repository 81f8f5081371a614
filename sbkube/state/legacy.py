"""The original sbkube's history, imported: ``sbkube state import --from-sbkube-db FILE``.

The original tool (PyPI ``sbkube`` 0.4-0.9) recorded deployments in an SQLite file
(``~/.sbkube/deployments.db``) of four tables: ``deployments`` -> ``app_deployments`` ->
``deployed_resources`` and ``helm_releases``. 0.10 and later added ``app_deployments.app_group``
and the tables ``workspace_deployments`` -> ``phase_deployments`` (a multi-phase run: its
phases name app dirs, not apps, and are not linked to the deployments above).

Shape: :func:`read_legacy` opens the file read-only (``mode=ro``: the file is never
written, not even a journal), checks that it is such a database and turns every row into
the rows of our store (:class:`~sbkube.state.transfer.ParsedDeployment`), all before anything is
written, so a bad file imports nothing. :func:`import_legacy` then writes each deployment
in its own transaction through the transfer layer's writer: an id already in the store is
skipped, so a second import adds nothing.

What maps (and how the import is marked):

* a deployment keeps its id when it has our shape; the original's
  ``dep-YYYYMMDDHHMMSS-xxxxxxxx`` becomes ``dep-YYYYMMDD-HHMMSS-xxxxxxxx`` (the same
  digits); any other id becomes ``dep-<its time>-<sha256 of the id>``. Its
  ``command_args`` are ``["--from-sbkube-db", ORIGINAL_ID, *the original's args]``: the
  marker that it was imported (``state show`` prints it), and the original id;
* ``timestamp`` is the start (the original kept no end); the original's ``pending`` or
  ``in_progress`` (a run that never finished) become ``interrupted``;
* each app keeps its name, namespace, status, config and metadata; its original type,
  status, row id and app group go to ``metadata.imported``. A type with ``helm`` in its
  name is a Helm app, every other type a YAML app;
* resources and Helm releases go through :func:`~sbkube.state.rows.prepare_resources` and
  :func:`~sbkube.state.rows.prepare_release` like anything the engine records: volatile
  fields dropped, secrets digested and sealed; config snapshots, metadata and error
  messages are redacted the same way. Nothing of the original's secrets is stored plain;
* a Helm release's ``chart`` becomes the chart's name (what helm reports), its original
  reference going to the app's ``metadata.chart_ref`` (where a rollback looks for it);
* the ``--profile`` a run was given (its ``command_args``), or a workspace run's
  ``environment``, is the deployment's profile (``state list --profile``);
* a workspace deployment of 0.10+ becomes a deployment without apps, on the target
  ``workspace/<environment or default>``, its phases in ``metadata``-less form kept in
  ``config_snapshot.phases`` (so list/show/history/diff show them; nothing there to roll back).

What a rollback can do with an imported deployment is decided in
:mod:`sbkube.engine.rollback_plan`: a Helm app with a recorded revision, a YAML app with
recorded manifests; anything else is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from sbkube.errors import UsageError
from sbkube.model import AppStatus, AppType, Command, DeploymentStatus, ResourceAction, thaw
from sbkube.redaction import (
    DEFAULT_SECRET_KEYS,
    mask_text,
    redact_args,
    redact_values,
    secret_leaves,
)
from sbkube.state.database import DeploymentDatabase
from sbkube.state.identity import is_deployment_id
from sbkube.state.records import ResourceInput
from sbkube.state.rows import prepare_release, prepare_resources
from sbkube.state.transfer import ImportResult, ParsedDeployment, write_parsed

#: The first element of an imported deployment's ``command_args``.
MARKER = "--from-sbkube-db"
_SQLITE_HEADER = b"SQLite format 3\x00"
_ORIGINAL_ID = re.compile(r"dep-(\d{8})(\d{6})-([0-9a-f]{6,32})")
_NEEDED = {
    "deployments": {"id", "deployment_id", "timestamp", "cluster", "namespace", "command"},
    "app_deployments": {"id", "deployment_id", "app_name", "app_type"},
}
_DEPLOYMENT_STATUS = {
    "pending": DeploymentStatus.INTERRUPTED,
    "in_progress": DeploymentStatus.INTERRUPTED,
    "cancelled": DeploymentStatus.INTERRUPTED,
    "success": DeploymentStatus.SUCCESS,
    "failed": DeploymentStatus.FAILED,
    "rolled_back": DeploymentStatus.ROLLED_BACK,
    "partially_failed": DeploymentStatus.PARTIALLY_FAILED,
}
_APP_STATUS = {
    "pending": AppStatus.INTERRUPTED,
    "in_progress": AppStatus.INTERRUPTED,
    "success": AppStatus.SUCCESS,
    "failed": AppStatus.FAILED,
    "partially_failed": AppStatus.FAILED,
    "rolled_back": AppStatus.FAILED,
    "skipped": AppStatus.SKIPPED,
}
_COMMANDS = {"rollback": Command.ROLLBACK, "delete": Command.UNINSTALL}
_COMMANDS[str(Command.UNINSTALL)] = Command.UNINSTALL


def imported_from(command_args: Sequence[Any]) -> str | None:
    """The original's id of an imported deployment (None for one of ours)."""
    if len(command_args) >= 2 and command_args[0] == MARKER:
        return str(command_args[1])
    return None


def mapped_id(original: str, started: datetime) -> str:
    """Our id for the original's deployment id (see the module docstring)."""
    if is_deployment_id(original):
        return original
    m = _ORIGINAL_ID.fullmatch(original)
    if m is not None:
        return f"dep-{m.group(1)}-{m.group(2)}-{m.group(3)}"
    tail = hashlib.sha256(original.encode()).hexdigest()[:12]
    return f"dep-{started:%Y%m%d-%H%M%S}-{tail}"


# -- reading the original's file ---------------------------------------------------------


def _not_ours(path: str, why: str) -> UsageError:
    return UsageError(f"{path}: not a deployment database of the original sbkube ({why})")


def _connect(path: str) -> sqlite3.Connection:
    p = Path(path)
    try:
        if not p.is_file():
            raise UsageError(f"{path}: no such file" if not p.exists() else f"{path}: not a file")
        with p.open("rb") as fh:
            header = fh.read(len(_SQLITE_HEADER))
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    if header != _SQLITE_HEADER:
        raise _not_ours(path, "not an SQLite file")
    uri = f"file:{quote(str(p.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.row_factory = sqlite3.Row
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as err:
        raise _not_ours(path, str(err)) from None
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r["name"]) for r in conn.execute(f'PRAGMA table_info("{table}")')}


def _json(value: Any) -> Any:
    if value is None or not isinstance(value, str | bytes):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise UsageError(f"{where}: {value!r} is not a time") from None
    # The original wrote naive UTC (datetime.utcnow()).
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _text(value: Any, limit: int) -> str:
    return str(value)[:limit]


def _profile(value: Any) -> str | None:
    """The profile a run of the original was made with (its ``--profile``, a workspace's
    ``environment``), as ours records one."""
    return _text(value, 63) if isinstance(value, str) and value else None


def _chart_name(ref: str) -> str:
    name = PurePosixPath(ref.rstrip("/")).name or ref
    if name.endswith(".tgz"):
        name = re.sub(r"-v?\d[^-]*\.tgz\Z", "", name).removesuffix(".tgz")
    return name


def _action(value: str, previous: Any) -> ResourceAction:
    if value in (str(ResourceAction.CREATE), str(ResourceAction.UPDATE)):
        return ResourceAction(value)
    if value == str(ResourceAction.DELETE):
        return ResourceAction.DELETE
    # apply / rollback: a create when nothing was there before.
    return ResourceAction.CREATE if previous is None else ResourceAction.UPDATE


def _app(
    conn: sqlite3.Connection,
    app: sqlite3.Row,
    name: str,
    started: datetime,
    keys: tuple[str, ...],
    where: str,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    cols = app.keys()
    original_type = str(app["app_type"])
    raw_status = str(app["status"] if "status" in cols else "success")
    if raw_status not in _APP_STATUS:
        raise UsageError(f"{where}: status {raw_status!r} is not one the original writes")
    config = _json(app["app_config"]) if "app_config" in cols else None
    metadata = _json(app["deployment_metadata"]) if "deployment_metadata" in cols else None
    metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
    imported: dict[str, Any] = {"id": app["id"], "type": original_type, "status": raw_status}
    if "app_group" in cols and app["app_group"] is not None:
        imported["app_group"] = app["app_group"]
    metadata["imported"] = imported
    releases: list[dict[str, Any]] = []
    secrets: set[str] = set()
    for rel in conn.execute(
        "SELECT * FROM helm_releases WHERE app_deployment_id = ? ORDER BY id", (app["id"],)
    ):
        values = _json(rel["values"])
        values = values if isinstance(values, Mapping) else {}
        secrets |= secret_leaves(values, keys)
        chart_ref = str(rel["chart"])
        metadata.setdefault("chart_ref", chart_ref)
        row, _ = prepare_release(
            None,
            secret_keys=keys,
            release_name=_text(rel["release_name"], 53),
            namespace=str(rel["namespace"]),
            chart=_chart_name(chart_ref),
            chart_version=rel["chart_version"],
            app_version=rel["app_version"],
            revision=int(rel["revision"]),
            values=values,
            status=_text(rel["status"], 32),
        )
        releases.append(row)
    inputs = []
    for res in conn.execute(
        "SELECT * FROM deployed_resources WHERE app_deployment_id = ? ORDER BY id", (app["id"],)
    ):
        previous, current = _json(res["previous_state"]), _json(res["current_state"])
        inputs.append(
            ResourceInput(
                api_version=str(res["api_version"]),
                kind=str(res["kind"]),
                name=str(res["name"]),
                namespace=res["namespace"],
                action=_action(str(res["action"]), previous),
                previous_state=previous if isinstance(previous, Mapping) else None,
                current_state=current if isinstance(current, Mapping) else None,
                source_file=res["source_file"],
            )
        )
    resources, _ = prepare_resources(None, inputs, secrets)
    rollback_info = _json(app["rollback_info"]) if "rollback_info" in cols else None
    error = app["error_message"] if "error_message" in cols else None
    row = {
        "name": name,
        "type": str(AppType.HELM if "helm" in original_type.lower() else AppType.YAML),
        "namespace": app["namespace"],
        "status": str(_APP_STATUS[raw_status]),
        "error_message": mask_text(str(error)) if error else None,
        "config": redact_values(thaw(config), keys) if config is not None else {},
        "app_metadata": redact_values(thaw(metadata), keys),
        "rollback_info": redact_values(thaw(rollback_info), keys) if rollback_info else None,
        "started_at": started,
        "finished_at": None,
    }
    return row, resources, releases


def _deployments(
    conn: sqlite3.Connection, path: str, keys: tuple[str, ...]
) -> Iterator[ParsedDeployment]:
    cols = _columns(conn, "deployments")
    for dep in conn.execute("SELECT * FROM deployments ORDER BY timestamp, id"):
        original = str(dep["deployment_id"])
        where = f"{path}: deployment {original}"
        started = _time(dep["timestamp"], f"{where}: timestamp")
        raw_status = str(dep["status"] if "status" in cols else "success")
        if raw_status not in _DEPLOYMENT_STATUS:
            raise UsageError(f"{where}: status {raw_status!r} is not one the original writes")
        args = _json(dep["command_args"]) if "command_args" in cols else None
        original_args = [f"--{k}={v}" for k, v in args.items()] if isinstance(args, Mapping) else []
        command = str(dep["command"])
        if command not in _COMMANDS and command != str(Command.DEPLOY):
            original_args.insert(0, f"--command={command}")
        snapshot = _json(dep["config_snapshot"]) if "config_snapshot" in cols else None
        sources = _json(dep["sources_snapshot"]) if "sources_snapshot" in cols else None
        error = dep["error_message"] if "error_message" in cols else None
        deployment = {
            "deployment_id": mapped_id(original, started),
            "cluster": _text(dep["cluster"], 253),
            "cluster_id": _text(dep["cluster"], 253),
            "namespace": _text(dep["namespace"], 253),
            "app_dir": dep["app_config_dir"] if "app_config_dir" in cols else None,
            "config_file": dep["config_file_path"] if "config_file_path" in cols else None,
            "command": str(_COMMANDS.get(command, Command.DEPLOY)),
            "command_args": redact_args([MARKER, original, *original_args], keys),
            "dry_run": bool(dep["dry_run"]) if "dry_run" in cols else False,
            "status": str(_DEPLOYMENT_STATUS[raw_status]),
            "error_message": mask_text(str(error)) if error else None,
            "config_snapshot": redact_values(thaw(snapshot), keys) if snapshot else None,
            "sources_snapshot": redact_values(thaw(sources), keys) if sources else None,
            "sbkube_version": _text(dep["sbkube_version"] or "unknown", 32)
            if "sbkube_version" in cols
            else "unknown",
            "operator": dep["operator"] if "operator" in cols else None,
            "host": None,
            "pid": None,
            "started_at": started,
            "finished_at": None,
            "rollback_target_id": None,
            "profile": _profile(args.get("profile") if isinstance(args, Mapping) else None),
        }
        apps = []
        seen: dict[str, int] = {}
        for app in conn.execute(
            "SELECT * FROM app_deployments WHERE deployment_id = ? ORDER BY id", (dep["id"],)
        ):
            name = str(app["app_name"])
            # The original let an app appear twice in a run; ours names each once.
            seen[name] = seen.get(name, 0) + 1
            shown = name if seen[name] == 1 else f"{name}~{seen[name]}"
            apps.append(_app(conn, app, _text(shown, 253), started, keys, f"{where}: app {name}"))
        yield ParsedDeployment(deployment, apps)


def _workspaces(
    conn: sqlite3.Connection, path: str, keys: tuple[str, ...]
) -> Iterator[ParsedDeployment]:
    """0.10+: a workspace run and its phase rows, as one deployment without apps."""
    tables = _tables(conn)
    if "workspace_deployments" not in tables:
        return
    has_phases = "phase_deployments" in tables
    for ws in conn.execute("SELECT * FROM workspace_deployments ORDER BY timestamp, id"):
        original = str(ws["workspace_deployment_id"])
        where = f"{path}: workspace deployment {original}"
        started = _time(ws["timestamp"], f"{where}: timestamp")
        raw_status = str(ws["status"])
        if raw_status not in _DEPLOYMENT_STATUS:
            raise UsageError(f"{where}: status {raw_status!r} is not one the original writes")
        phases = []
        if has_phases:
            for ph in conn.execute(
                "SELECT * FROM phase_deployments WHERE workspace_deployment_id = ? "
                "ORDER BY execution_order, id",
                (ws["id"],),
            ):
                skip = ("id", "workspace_deployment_id")
                phase = {k: ph[k] for k in ph.keys() if k not in skip}  # noqa: SIM118 (a Row)
                for k in ("depends_on", "app_groups"):
                    phase[k] = _json(phase.get(k))
                for k in ("started_at", "completed_at"):
                    if phase.get(k) is not None:
                        phase[k] = _time(phase[k], f"{where}: {k}").isoformat()
                phases.append(phase)
        config = _json(ws["workspace_config"])
        snapshot = {"workspace": config, "phases": phases}
        finished = ws["completed_at"]
        deployment = {
            "deployment_id": mapped_id(original, started),
            "cluster": "workspace",
            "cluster_id": "workspace",
            "namespace": _text(ws["environment"] or "default", 253),
            "app_dir": None,
            "config_file": ws["workspace_file"],
            "command": str(Command.DEPLOY),
            "command_args": redact_args(
                [MARKER, original, f"--workspace={ws['workspace_name']}"], keys
            ),
            "dry_run": bool(ws["dry_run"]),
            "status": str(_DEPLOYMENT_STATUS[raw_status]),
            "error_message": mask_text(str(ws["error_message"])) if ws["error_message"] else None,
            "config_snapshot": redact_values(thaw(snapshot), keys),
            "sources_snapshot": None,
            "sbkube_version": _text(ws["sbkube_version"] or "unknown", 32),
            "operator": ws["operator"],
            "host": None,
            "pid": None,
            "started_at": started,
            "finished_at": _time(finished, f"{where}: completed_at") if finished else None,
            "rollback_target_id": None,
            "profile": _profile(ws["environment"]),
        }
        yield ParsedDeployment(deployment, [])


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def read_legacy(path: str, *, secret_keys: Sequence[str] | None = None) -> list[ParsedDeployment]:
    """Every deployment of the original's database at ``path``, as rows of ours, oldest
    first. Raises :class:`~sbkube.errors.UsageError` (one line naming the file) when it is
    not such a database or holds a value the original never writes."""
    keys = tuple(secret_keys or DEFAULT_SECRET_KEYS)
    conn = _connect(path)
    try:
        tables = _tables(conn)
        if "deployments" not in tables and "workspace_deployments" not in tables:
            raise _not_ours(path, "no deployments table")
        if "deployments" in tables:
            for table, needed in _NEEDED.items():
                missing = needed - _columns(conn, table)
                if missing:
                    raise _not_ours(path, f"{table} has no column {sorted(missing)[0]}")
            parsed = list(_deployments(conn, path, keys))
        else:
            parsed = []
        parsed += list(_workspaces(conn, path, keys))
    except sqlite3.Error as err:
        raise _not_ours(path, str(err)) from None
    finally:
        conn.close()
    parsed.sort(key=lambda p: (p.deployment["started_at"], p.deployment_id))
    return parsed


def import_legacy(
    db: DeploymentDatabase, path: str, *, secret_keys: Sequence[str] | None = None
) -> ImportResult:
    """Import the original's database at ``path`` into ``db``; deployments already there
    (by id) are skipped. The whole file is read and checked before anything is written."""
    parsed = read_legacy(path, secret_keys=secret_keys)
    imported: list[str] = []
    skipped: list[str] = []
    for item in parsed:
        (imported if write_parsed(db, item) else skipped).append(item.deployment_id)
    return ImportResult(
        imported=len(imported),
        skipped=len(skipped),
        imported_ids=tuple(imported),
        skipped_ids=tuple(skipped),
    )
