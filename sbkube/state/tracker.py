"""DeploymentTracker: the context managers the deploy engine wraps around its work.

::

    with tracker.track_deployment(cluster=..., namespace=..., app_dir=..., config=...) as dep:
        with dep.track_app(name=..., type=..., namespace=..., config=...) as app:
            app.record_helm_release(release_name=..., namespace=..., chart=..., revision=...,
                                    status=..., values=...)
            app.record_resources([manifest, ...], action="create")
    dep.deployment_id   # usable after the blocks, as is every record returned anywhere

The handles (:class:`DeploymentHandle`, :class:`AppHandle`) hold ids and plain values
only; every call goes through the store's write side
(:class:`~sbkube.state.writes.DeploymentWriter`) in its own transaction, so a
crash mid-deployment leaves every app recorded so far committed and readable. One
exception: an app's resources (``record_resources``, its last step) are written in the
transaction of its outcome (``finish``), so an app costs two transactions, its start and
its end; another write of the app (a Helm revision) first writes them on their own.

Status rules: an exception inside ``track_app`` marks the app ``failed`` with its message
and re-raises. When the deployment block ends, the deployment is ``success`` if every app
succeeded, ``failed`` if none did (or the block raised before any app succeeded),
``partially_failed`` if some apps failed and others succeeded. ``KeyboardInterrupt`` and
:class:`~sbkube.errors.InterruptedDeployment` mark it ``interrupted``.

Threads: a deployment's apps may be tracked from several threads at once (the runner's
workers): each ``track_app`` runs in its worker, the handle's list of apps and each app's
kept writes are guarded by locks, and the store queues concurrent writers (see
``sbkube.state.database``).

Dry runs are not recorded unless ``record_dry_run=True``: the handle then works the same
but writes nothing and has ``recorded == False``.

When the store cannot be written (the design, for SQLite and PostgreSQL alike):

* Every write is first retried on a fresh connection (``sessions.run_write``: 3
  tries within 10 s, looking before inserting on a retry).
* A write that still fails BEFORE an app touches the cluster (the deployment's row, an
  app's row) fails that step: nothing was done, so the record (or its absence) is true.
  The app is reported failed and its dependents skipped.
* A write that still fails AFTER an app touched the cluster (its Helm revision, its
  resources, its outcome) does not make the app fail: the cluster's outcome is the
  app's outcome, and dependents run. The write is kept in memory, in order, and replayed
  (looking before inserting) before the next app starts and when the deployment ends.
* A full disk is not an outage: the write that does not fit (an app's outcome with its
  resources, the bulk of a record) would not fit later either. The app's outcome is then
  written without its resources, as ``failed`` with one line ("applied, but its record
  does not fit in the store: no space left on device ..."), and the app fails with that
  line (``AppHandle.finish`` raises it): its dependents are skipped, the apps beside it
  go on, and the deployment ends ``partially_failed`` or ``failed``, as it was.
* If it still cannot be replayed when the deployment ends, the deployment stays
  unfinished in the store and the block raises ``StateError`` naming it (exit 1). The
  next ``deploy`` of the target (``--dry-run`` too) settles it from the cluster
  (``sbkube.engine.recovery.settle_releases``): each Helm revision that helm's history
  holds, made while an app recording without a revision was running, is recorded on it
  once, with the app's status from the revision (``deployed``/``superseded``: success,
  ``failed``: failed); then the deployment is closed as interrupted like any other
  whose process is gone. So the record never says ``failed`` at revision ``-`` for a
  revision the cluster has, and a revision is recorded exactly once.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Unpack

from sbkube.errors import InterruptedDeployment, SbkubeError, StateError, StoreFullError
from sbkube.interrupts import deliver_held
from sbkube.model import (
    AppStatus,
    AppType,
    Command,
    DeploymentStatus,
    ResourceAction,
    utcnow,
)
from sbkube.state.database import DeploymentDatabase
from sbkube.state.identity import new_deployment_id
from sbkube.state.reads import DeploymentReader
from sbkube.state.records import (
    AppFields,
    DeploymentRecord,
    HelmReleaseRecord,
    ReleaseFields,
    ResourceInput,
    ResourceRecord,
)
from sbkube.state.repository import DeploymentRepository
from sbkube.state.rows import prepare_release, prepare_resources
from sbkube.state.writes import DeploymentWriter

_dry_ids = itertools.count(-1, -1)


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    if text and isinstance(exc, SbkubeError):
        # Every line: a tool's details (each schema violation helm lists) are the reason.
        return text
    if text:
        return text.splitlines()[0]
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return type(exc).__name__


@dataclass
class AppHandle:
    """One app being deployed. Records go to the store as they are made."""

    _repo: DeploymentWriter | None
    app_id: int
    deployment_id: str
    name: str
    type: AppType
    namespace: str | None
    _secret_keys: tuple[str, ...]
    status: AppStatus = AppStatus.IN_PROGRESS
    error_message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    resources: list[ResourceRecord] = field(default_factory=list)
    helm_releases: list[HelmReleaseRecord] = field(default_factory=list)
    _finished: bool = False
    # Plain-text values under secret keys of this app's Helm values: scrubbed from the
    # rendered manifests recorded afterwards (kept in memory only, never stored).
    _secret_values: set[str] = field(default_factory=set, repr=False)
    # Store writes that failed after the app touched the cluster, in order, to replay
    # (called with replay=True) when the store is back; see the module docstring.
    _unsaved: list[Callable[[bool], object]] = field(default_factory=list, repr=False)
    # Resource rows recorded and not written yet: they go to the store with the app's
    # outcome, in its transaction (recording resources is an app's last step), or before
    # any other write of the app.
    _pending_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    # The app's worker writes while another thread may replay its kept writes (flush).
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def unsaved(self) -> bool:
        """True while some of what this app did is not in the store yet."""
        return bool(self._unsaved or self._pending_rows)

    def _take_pending(self) -> list[dict[str, Any]]:
        with self._lock:
            rows, self._pending_rows = self._pending_rows, []
        return rows

    def write_pending(self) -> None:
        """Write the resource rows held for the app's outcome now, on their own."""
        repo = self._repo
        if repo is not None and self._pending_rows:
            rows = self._take_pending()
            self._save(lambda replay: repo.insert_resources(self.app_id, rows, replay=replay))

    def _save(self, write: Callable[[bool], object]) -> None:
        """Run ``write(False)`` now, or keep it for :meth:`flush` when the store cannot
        take it (or an earlier write is still waiting: writes land in order)."""
        with self._lock:
            if not self._unsaved:
                try:
                    write(False)
                    return
                except StateError:
                    pass
            self._unsaved.append(write)

    def flush(self) -> None:
        """Replay the writes kept by :meth:`_save`; raises StateError if the store still
        cannot take them (those not yet written stay kept)."""
        with self._lock:
            while self._unsaved:
                self._unsaved[0](True)
                del self._unsaved[0]

    def record_helm_release(self, **release: Unpack[ReleaseFields]) -> HelmReleaseRecord:
        from sbkube.redaction import secret_leaves

        self._secret_values |= secret_leaves(release.get("values") or {}, self._secret_keys)
        keys = self._secret_keys
        _, rec = prepare_release(None, secret_keys=keys, **release)
        repo = self._repo
        if repo is not None:
            self.write_pending()  # writes land in the order they were made
            self._save(
                lambda replay: repo.add_helm_release(
                    self.app_id, replay=replay, secret_keys=keys, **release
                )
            )
        self.helm_releases.append(rec)
        return rec

    def record_resources(
        self,
        manifests: Sequence[Mapping[str, Any] | ResourceInput],
        action: ResourceAction | str | None = None,
        *,
        source_file: str | None = None,
    ) -> tuple[ResourceRecord, ...]:
        """Record resources: written in one transaction with the app's outcome
        (:meth:`finish`), or on their own before any other write of the app.

        ``manifests`` are either plain manifests (all with the same ``action``) or
        :class:`ResourceInput` items carrying their own action and previous state.
        """
        inputs: list[ResourceInput] = []
        for m in manifests:
            if isinstance(m, ResourceInput):
                inputs.append(m)
            else:
                if action is None:
                    raise ValueError("record_resources: an action is needed for plain manifests")
                inputs.append(ResourceInput.from_manifest(m, action, source_file=source_file))
        secrets = tuple(self._secret_values)
        # Prepared once: the same rows are the records returned and what the store gets.
        rows, result = prepare_resources(None, inputs, secrets)
        if self._repo is not None:
            with self._lock:
                self._pending_rows += rows
            if self._finished:
                self.write_pending()
        self.resources.extend(result)
        return result

    def set_metadata(self, **values: Any) -> None:
        """Type-specific metadata saved with the app when it finishes (chart path, …)."""
        self.metadata.update(values)

    def finish(self, status: AppStatus | str, error_message: str | None = None) -> None:
        if self._finished:
            return
        self.status = AppStatus(status)
        self.error_message = error_message
        self._finished = True
        repo, status, metadata = self._repo, self.status, dict(self.metadata) or None
        if repo is None:
            return
        rows = self._take_pending()  # one transaction: what the app did, and its outcome
        with self._lock:
            if not self._unsaved:
                try:
                    repo.finish_app(
                        self.app_id,
                        status,
                        error_message=error_message,
                        metadata=metadata,
                        secret_keys=self._secret_keys,
                        resources=rows,
                    )
                    return
                except StoreFullError as err:
                    self._does_not_fit(err, metadata)  # raises: the app fails
                except StateError:
                    pass
        self._save(
            lambda replay: repo.finish_app(
                self.app_id,
                status,
                error_message=error_message,
                metadata=metadata,
                secret_keys=self._secret_keys,
                resources=rows,
                replay=replay,
            )
        )

    def _does_not_fit(self, err: StoreFullError, metadata: dict[str, Any] | None) -> None:
        """The app's record does not fit in the store (its disk is full): its outcome is
        written without its resources, as ``failed`` with one line that says so, and the
        app fails with that line (its dependents are skipped; apps beside it go on). What
        is kept for later if even that does not fit; see the module docstring."""
        message = f"applied, but its record does not fit in the store: {err.space}"
        self.status, self.error_message = AppStatus.FAILED, message
        self.resources.clear()
        repo = self._repo
        assert repo is not None
        self._save(
            lambda replay: repo.finish_app(
                self.app_id,
                AppStatus.FAILED,
                error_message=message,
                metadata=metadata,
                secret_keys=self._secret_keys,
                replay=replay,
            )
        )
        raise StateError(message) from err


@dataclass
class DeploymentHandle:
    """One deployment being recorded; ``deployment_id`` is a plain string."""

    _repo: DeploymentWriter | None
    deployment_id: str
    cluster: str
    namespace: str
    dry_run: bool
    started_at: datetime
    _secret_keys: tuple[str, ...]
    apps: list[AppHandle] = field(default_factory=list)
    status: DeploymentStatus = DeploymentStatus.IN_PROGRESS
    error_message: str | None = None
    _finished: bool = False
    _record: DeploymentRecord | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    # Apps are opened from several worker threads at once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def recorded(self) -> bool:
        return self._repo is not None

    @property
    def record(self) -> DeploymentRecord | None:
        """The finished deployment as stored (read on first use; None for an unrecorded dry
        run or before the deployment block ended). Not read eagerly: a deploy of 1,000
        resources should not pay for reading them all back unless someone asks."""
        if self._repo is None or not self._finished:
            return None
        if self._record is None:
            self._record = DeploymentReader(self._repo.db).get(self.deployment_id)
        return self._record

    @contextmanager
    def track_app(self, **app_fields: Unpack[AppFields]) -> Iterator[AppHandle]:
        # A signal that arrives while the app row is written is raised once it is, so the
        # app is in self.apps and the deployment's end closes it.
        app = self._open_app(**app_fields)
        try:
            yield app
        except (KeyboardInterrupt, InterruptedDeployment) as exc:
            app.finish(AppStatus.INTERRUPTED, _error_text(exc))
            raise
        except BaseException as exc:
            app.finish(AppStatus.FAILED, _error_text(exc))
            raise
        else:
            app.finish(AppStatus.SUCCESS)

    def skip_app(
        self,
        *,
        name: str,
        type: AppType | str,
        namespace: str | None,
        reason: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an app that was not attempted (e.g. a dependency failed)."""
        app = self._open_app(
            name=name, type=type, namespace=namespace, status=AppStatus.SKIPPED, metadata=metadata
        )
        app.finish(AppStatus.SKIPPED, reason)

    def _open_app(
        self, *, status: AppStatus = AppStatus.IN_PROGRESS, **fields: Unpack[AppFields]
    ) -> AppHandle:
        """Start recording an app (or number it, in an unrecorded dry run); its handle.

        What earlier apps could not write is replayed first; if the store still cannot
        take it, the app's own row is tried all the same (and, failing, fails the app
        before it touches the cluster)."""
        with suppress(StateError):
            self.flush()
        if self._repo is not None:
            app_id = self._repo.start_app(
                self.deployment_id, status=status, secret_keys=self._secret_keys, **fields
            ).app_id
        else:
            app_id = next(_dry_ids)
        app = AppHandle(
            self._repo,
            app_id,
            self.deployment_id,
            fields["name"],
            AppType(fields["type"]),
            fields.get("namespace"),
            self._secret_keys,
            status=status,
            metadata=dict(fields.get("metadata") or {}),
        )
        with self._lock:
            self.apps.append(app)
        return app

    def set_steps(self, steps: Sequence[Mapping[str, Any]]) -> None:
        """Record the commands the deployment ran itself (command-level hooks), in the
        order they ran; each call replaces the list. Nothing in an unrecorded dry run."""
        self.steps = [dict(s) for s in steps]
        if self._repo is not None:
            self._repo.set_steps(self.deployment_id, self.steps, secret_keys=self._secret_keys)

    def flush(self) -> None:
        """Replay every app's kept writes (see :meth:`AppHandle.flush`)."""
        with self._lock:
            apps = list(self.apps)
        for app in apps:
            app.flush()

    def computed_status(self) -> DeploymentStatus:
        with self._lock:
            statuses = [a.status for a in self.apps]
        failed = sum(s in (AppStatus.FAILED, AppStatus.SKIPPED) for s in statuses)
        ok = sum(s == AppStatus.SUCCESS for s in statuses)
        if any(s == AppStatus.INTERRUPTED for s in statuses):
            return DeploymentStatus.INTERRUPTED
        if failed and ok:
            return DeploymentStatus.PARTIALLY_FAILED
        if failed:
            return DeploymentStatus.FAILED
        return DeploymentStatus.SUCCESS


class DeploymentTracker:
    """Creates deployment records around the engine's work. Safe to share in a process."""

    def __init__(
        self,
        db: DeploymentDatabase | DeploymentRepository,
        *,
        record_dry_run: bool = False,
        secret_keys: Sequence[str] | None = None,
    ) -> None:
        self.repository = db if isinstance(db, DeploymentRepository) else DeploymentRepository(db)
        self.record_dry_run = record_dry_run
        self.secret_keys = tuple(secret_keys or self.repository.secret_keys)

    @contextmanager
    def track_deployment(
        self,
        *,
        cluster: str,
        namespace: str,
        cluster_id: str | None = None,
        app_dir: str | None = None,
        config: Mapping[str, Any] | None = None,
        config_file: str | None = None,
        command: Command | str = Command.DEPLOY,
        command_args: Sequence[Any] = (),
        dry_run: bool = False,
        sources: Mapping[str, Any] | None = None,
        rollback_target_id: str | None = None,
        reverts_id: str | None = None,
        operator: str | None = None,
        secret_keys: Sequence[str] | None = None,
        profile: str | None = None,
    ) -> Iterator[DeploymentHandle]:
        keys = tuple(secret_keys or self.secret_keys)
        record = not dry_run or self.record_dry_run
        repo = self.repository if record else None
        if repo is not None:
            rec = repo.create_deployment(
                cluster=cluster,
                cluster_id=cluster_id,
                namespace=namespace,
                app_dir=app_dir,
                config_file=config_file,
                command=command,
                command_args=command_args,
                dry_run=dry_run,
                config_snapshot=config,
                sources_snapshot=sources,
                rollback_target_id=rollback_target_id,
                reverts_id=reverts_id,
                operator=operator,
                secret_keys=keys,
                profile=profile,
            )
            dep_id, started = rec.deployment_id, rec.started_at
        else:
            started = utcnow()
            dep_id = new_deployment_id(started)
        handle = DeploymentHandle(repo, dep_id, cluster, namespace, dry_run, started, keys)
        try:
            # A signal held while the deployment row was written is raised here, where the
            # handlers below record it as interrupted.
            deliver_held()
            yield handle
        except (KeyboardInterrupt, InterruptedDeployment) as exc:
            self._finish_quietly(handle, DeploymentStatus.INTERRUPTED, _error_text(exc))
            raise
        except BaseException as exc:
            status = handle.computed_status() if handle.apps else DeploymentStatus.FAILED
            if status == DeploymentStatus.SUCCESS:
                status = DeploymentStatus.FAILED  # the block itself failed after its apps
            self._finish_quietly(handle, status, _error_text(exc))
            raise
        else:
            status = handle.computed_status()
            errors = [f"{a.name}: {a.error_message}" for a in handle.apps if a.error_message]
            try:
                self._finish(handle, status, "; ".join(errors) or None)
            except StateError as err:
                raise StateError(
                    f"{err.message}; deployment {handle.deployment_id} stays unfinished in "
                    "the store (the next deploy settles it from the cluster)"
                ) from err

    @staticmethod
    def _finish(handle: DeploymentHandle, status: DeploymentStatus, error: str | None) -> None:
        handle.status, handle.error_message = status, error
        if handle._repo is not None:
            # What the apps did first: the deployment is closed only over a full record.
            for app in handle.apps:
                app.write_pending()  # an app that never finished: its resources all the same
            handle.flush()
            handle._repo.set_status(
                handle.deployment_id,
                status,
                error_message=error,
                finished_at=utcnow(),
                close_open_apps=(
                    AppStatus.INTERRUPTED
                    if status == DeploymentStatus.INTERRUPTED
                    else AppStatus.FAILED
                ),
            )
        handle._finished = True

    @classmethod
    def _finish_quietly(
        cls, handle: DeploymentHandle, status: DeploymentStatus, error: str | None
    ) -> None:
        """:meth:`_finish` while another exception is on its way out: a store that cannot
        be written now must not replace it (an interrupt must stay an interrupt). The
        deployment then stays unfinished, and recovery closes it later."""
        try:
            cls._finish(handle, status, error)
        except StateError:
            handle.status, handle.error_message = status, error
