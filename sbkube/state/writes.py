"""The write side of the store: what the tracker records, and the store's repairs.

:class:`DeploymentWriter` is what :class:`~sbkube.state.tracker.DeploymentTracker` writes
through while a command runs: a deployment's row and final status, each app's start and
outcome, its resources and Helm revisions. Beside those, the writes of recovery and
maintenance: settling an app from the cluster, closing a deployment whose process died,
carrying a target's history over to a renamed cluster, deleting deployments.

Each method is one transaction (``sessions.run_write``: run again on a fresh connection
when the connection was lost, looking before inserting on a retry). What a write hands
back is a frozen record (``rows.py``), never an ORM row.

* ``add_resources()``/``insert_resources()``: one ``executemany`` insert in one
  transaction for a whole app; ``finish_app(resources=…)`` puts the same insert in the
  transaction of the app's outcome (what the tracker does: one transaction fewer per app).
* ``start_app()``: one ``INSERT … SELECT`` (no lookup of the deployment first).

A generated deployment id that collides (24 random bits per second) is drawn again.

Everything written passes through ``sbkube.redaction`` first: manifests lose their volatile
fields and Secret payloads, values and config snapshots lose secret-looking scalars.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sbkube import __version__
from sbkube.errors import NotFoundError, StateError
from sbkube.model import AppStatus, AppType, Command, DeploymentStatus, thaw, utcnow
from sbkube.redaction import DEFAULT_SECRET_KEYS, mask_text, redact_args, redact_values
from sbkube.state.database import DeploymentDatabase
from sbkube.state.identity import current_host, current_operator, new_deployment_id
from sbkube.state.reads import DeploymentReader, on_target, row_exists
from sbkube.state.records import (
    AppDeploymentRecord,
    AppFields,
    DeploymentRecord,
    HelmReleaseRecord,
    ReleaseFields,
    ResourceInput,
    ResourceRecord,
)
from sbkube.state.rows import (
    deployment_record,
    prepare_release,
    prepare_resources,
    started_app_record,
)
from sbkube.state.schema import AppDeployment, DeployedResource, Deployment, HelmRelease
from sbkube.state.sessions import retry_idempotent, run_write, write_session

# For Core statements on the hot write path (no ORM machinery per statement).
_APPS = cast(Table, AppDeployment.__table__)
_RESOURCES = cast(Table, DeployedResource.__table__)
_DEPLOYMENTS = cast(Table, Deployment.__table__)
_OPEN_APP_STATUSES = (str(AppStatus.IN_PROGRESS), str(AppStatus.PENDING))


# The once-per-app statements, built once per set of columns (bound parameters named
# v_<column>): building and cache-keying a statement costs more than running it.
_STATEMENTS: dict[tuple[str, ...], Any] = {}


def _start_app_statement(columns: tuple[str, ...]) -> Any:
    """``INSERT INTO app_deployments (deployment_pk, columns…) SELECT deployments.id,
    :v_<column>… WHERE deployment_id = :v_deployment_id RETURNING id``: no lookup first,
    no ORM unit of work, and no row when the deployment is unknown."""
    key = ("start", *columns)
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = (
            insert(_APPS)
            .from_select(
                ["deployment_pk", *columns],
                select(
                    _DEPLOYMENTS.c.id,
                    *(bindparam(f"v_{k}", type_=_APPS.c[k].type) for k in columns),
                ).where(_DEPLOYMENTS.c.deployment_id == bindparam("v_deployment_id")),
            )
            .returning(_APPS.c.id)
        )
    return statement


def _finish_app_statement(columns: tuple[str, ...]) -> Any:
    """``UPDATE app_deployments SET <column> = :v_<column>… WHERE id = :v_id``."""
    key = ("finish", *columns)
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = (
            update(_APPS)
            .where(_APPS.c.id == bindparam("v_id"))
            .values({k: bindparam(f"v_{k}", type_=_APPS.c[k].type) for k in columns})
        )
    return statement


_RESOURCE_INSERT_COLUMNS = (
    *("app_deployment_pk", "api_version", "kind", "name", "namespace", "action"),
    *("previous_state", "current_state", "checksum", "source_file", "hook", "sealed"),
)


def _resource_insert(dialect: str) -> str:
    """The INSERT of a resource row in the driver's own terms: ``?`` (sqlite3) or ``%s``
    (psycopg) placeholders; on PostgreSQL the JSON text cast to the column's JSONB (the
    value stored is the one SQLAlchemy's JSONB binding gives), on SQLite stored as the
    text it is (what the JSON type stores there)."""
    mark = "?" if dialect == "sqlite" else "%s"
    json_mark = mark if dialect == "sqlite" else f"CAST({mark} AS JSONB)"
    values = [
        json_mark if c in ("previous_state", "current_state") else mark
        for c in _RESOURCE_INSERT_COLUMNS
    ]
    return (
        f"INSERT INTO {_RESOURCES.name} ({', '.join(_RESOURCE_INSERT_COLUMNS)}) "
        f"VALUES ({', '.join(values)})"
    )


class DeploymentEnd(TypedDict, total=False):
    """How a deployment ended, besides its status: the error (masked when written) and
    the time."""

    error_message: str | None
    finished_at: datetime | None


def _masked(message: str | None) -> str | None:
    # An error line may quote a URL, a flag or a value that was found to be a secret.
    return mask_text(message) if message else message


class DeploymentWriter:
    """Writes deployment state; hands back frozen records only."""

    def __init__(self, db: DeploymentDatabase, *, secret_keys: Sequence[str] | None = None) -> None:
        self.db = db
        self.secret_keys: tuple[str, ...] = tuple(secret_keys or DEFAULT_SECRET_KEYS)
        self._reads = DeploymentReader(db)

    def create_deployment(
        self,
        *,
        cluster: str,
        namespace: str,
        cluster_id: str | None = None,
        app_dir: str | None = None,
        config_file: str | None = None,
        command: Command | str = Command.DEPLOY,
        command_args: Sequence[Any] = (),
        dry_run: bool = False,
        config_snapshot: Mapping[str, Any] | None = None,
        sources_snapshot: Mapping[str, Any] | None = None,
        operator: str | None = None,
        host: str | None = None,
        pid: int | None = None,
        rollback_target_id: str | None = None,
        reverts_id: str | None = None,
        profile: str | None = None,
        status: DeploymentStatus | str = DeploymentStatus.IN_PROGRESS,
        deployment_id: str | None = None,
        started_at: datetime | None = None,
        secret_keys: Sequence[str] | None = None,
    ) -> DeploymentRecord:
        started = started_at or utcnow()
        keys = tuple(secret_keys or self.secret_keys)
        # The snapshot first: what it holds (values under secret keys, URLs) is then known
        # when the command line is redacted, wherever it reappears there.
        snapshot = (
            redact_values(thaw(config_snapshot), keys) if config_snapshot is not None else None
        )
        row = Deployment(
            deployment_id=deployment_id or new_deployment_id(started),
            cluster=cluster,
            cluster_id=cluster_id or cluster,
            namespace=namespace,
            app_dir=app_dir,
            config_file=config_file,
            command=str(Command(command)),
            command_args=redact_args(thaw(list(command_args)), keys),
            dry_run=dry_run,
            status=str(DeploymentStatus(status)),
            config_snapshot=snapshot,
            sources_snapshot=thaw(sources_snapshot) if sources_snapshot is not None else None,
            sbkube_version=__version__,
            operator=operator if operator is not None else current_operator(),
            host=host if host is not None else current_host(),
            pid=pid if pid is not None else os.getpid(),
            started_at=started,
            rollback_target_id=rollback_target_id,
            reverts_id=reverts_id,
            profile=profile,
        )

        # A generated id has 24 random bits per second: two writers in the same second
        # almost never collide, and when they do, the unique constraint says so and the
        # loser draws again. An id given by the caller is never changed.
        def work(session: Session, retry: bool) -> DeploymentRecord:
            if retry:
                # The lost try may have committed: the row is ours if it names this process.
                found = session.execute(
                    select(Deployment).where(Deployment.deployment_id == row.deployment_id)
                ).scalar_one_or_none()
                if found is not None and (found.host, found.pid) == (row.host, row.pid):
                    return deployment_record(found, apps=False)
            session.add(row)
            session.flush()
            return deployment_record(row, apps=False)

        for attempt in range(5):
            try:
                return run_write(self.db, work)
            except StateError as err:
                collided = isinstance(err.__cause__, IntegrityError) and "deployment_id" in str(
                    err.__cause__
                )
                if deployment_id is not None or not collided or attempt == 4:
                    raise
                row.deployment_id = new_deployment_id(started)
        raise AssertionError("unreachable")

    def finish_deployment(
        self, deployment_id: str, status: DeploymentStatus | str, **end: Unpack[DeploymentEnd]
    ) -> DeploymentRecord:
        """Set a deployment's final status, its error (none unless given) and its end (now
        unless given); returns it with its apps."""
        values = {
            "status": str(DeploymentStatus(status)),
            "error_message": _masked(end.get("error_message")),
            "finished_at": end.get("finished_at") or utcnow(),
        }
        run_write(
            self.db, lambda session, _: self._update_deployment(session, deployment_id, **values)
        )
        return self._reads.get(deployment_id)

    def set_status(
        self,
        deployment_id: str,
        status: DeploymentStatus | str,
        *,
        close_open_apps: AppStatus | str | None = None,
        **end: Unpack[DeploymentEnd],
    ) -> None:
        """Change a deployment's status (e.g. ``rolled_back``, or its final status) in one
        UPDATE, without reading anything back; its error and end only when given. With
        ``close_open_apps``, its apps still ``in_progress``/``pending`` get that status in
        the same transaction."""
        error_message, finished_at = end.get("error_message"), end.get("finished_at")
        values: dict[str, Any] = {"status": str(DeploymentStatus(status))}
        if error_message is not None:
            values["error_message"] = _masked(error_message)
        if finished_at is not None:
            values["finished_at"] = finished_at

        def work(session: Session, _retry: bool) -> None:
            self._update_deployment(session, deployment_id, **values)
            if close_open_apps is not None:
                # A finished deployment has no app still running: an app whose own finish
                # was never recorded (its process stopped, or its store write failed)
                # ends with the deployment, in the same transaction.
                pk = select(Deployment.id).where(Deployment.deployment_id == deployment_id)
                session.execute(
                    update(AppDeployment)
                    .where(
                        AppDeployment.deployment_pk.in_(pk.scalar_subquery()),
                        AppDeployment.status.in_(_OPEN_APP_STATUSES),
                    )
                    .values(
                        status=str(AppStatus(close_open_apps)),
                        error_message=_masked(error_message) or "did not finish",
                        finished_at=finished_at or utcnow(),
                    )
                )

        run_write(self.db, work)

    def set_steps(
        self,
        deployment_id: str,
        steps: Sequence[Mapping[str, Any]],
        *,
        secret_keys: Sequence[str] | None = None,
    ) -> None:
        """Replace the commands a deployment ran itself (its ``steps``: command-level
        hooks), secrets masked, in one UPDATE."""
        keys = tuple(secret_keys or self.secret_keys)
        values = {"steps": redact_values(thaw(list(steps)), keys)}
        run_write(
            self.db, lambda session, _: self._update_deployment(session, deployment_id, **values)
        )

    def _update_deployment(self, session: Session, deployment_id: str, **values: Any) -> None:
        result = session.execute(
            update(Deployment).where(Deployment.deployment_id == deployment_id).values(**values)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFoundError(f"unknown deployment id '{deployment_id}'")

    def start_app(
        self,
        deployment_id: str,
        *,
        status: AppStatus | str = AppStatus.IN_PROGRESS,
        secret_keys: Sequence[str] | None = None,
        **app: Unpack[AppFields],
    ) -> AppDeploymentRecord:
        """Record an app of a deployment as started, in one statement; its record."""
        keys = tuple(secret_keys or self.secret_keys)
        name, rollback_info = app["name"], app.get("rollback_info")
        values: dict[str, Any] = {
            "name": name,
            "type": str(AppType(app["type"])),
            "namespace": app.get("namespace"),
            "status": str(AppStatus(status)),
            "config": redact_values(thaw(app.get("config") or {}), keys),
            "metadata": redact_values(thaw(app.get("metadata") or {}), keys),
            "rollback_info": thaw(rollback_info) if rollback_info is not None else None,
            "started_at": utcnow(),
        }
        params = {f"v_{k}": v for k, v in values.items()}
        params["v_deployment_id"] = deployment_id

        def work(session: Session, retry: bool) -> AppDeploymentRecord:
            app_id = None
            if retry:
                # An app appears once in a deployment: if the lost try committed, reuse it.
                app_id = session.execute(
                    select(AppDeployment.id)
                    .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
                    .where(Deployment.deployment_id == deployment_id, AppDeployment.name == name)
                ).scalar_one_or_none()
            if app_id is None:
                app_id = (
                    session.connection()
                    .execute(_start_app_statement(tuple(values)), params)
                    .scalar_one_or_none()
                )
            if app_id is None:
                raise NotFoundError(f"unknown deployment id '{deployment_id}'")
            return started_app_record(app_id, deployment_id, values)

        return run_write(self.db, work)

    def finish_app(
        self,
        app_id: int,
        status: AppStatus | str,
        *,
        error_message: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        rollback_info: Mapping[str, Any] | None = None,
        secret_keys: Sequence[str] | None = None,
        resources: Sequence[Mapping[str, Any]] = (),
        replay: bool = False,
    ) -> None:
        """Set an app's outcome; ``resources`` (rows made by
        :func:`~sbkube.state.rows.prepare_resources`) are inserted in the same transaction,
        as :meth:`insert_resources` does (``replay`` as there)."""
        rows = self._resource_rows(app_id, resources)
        values: dict[str, Any] = {
            "status": str(AppStatus(status)),
            "error_message": _masked(error_message),
            "finished_at": utcnow(),
        }
        if metadata is not None:
            values["metadata"] = redact_values(  # the column's name (app_metadata in the ORM)
                thaw(metadata), tuple(secret_keys or self.secret_keys)
            )
        if rollback_info is not None:
            values["rollback_info"] = thaw(rollback_info)

        def work(session: Session, retry: bool) -> None:
            # A Core UPDATE: the ORM's bulk-update machinery (synchronizing a session that
            # holds nothing) doubles the cost of this once-per-app statement.
            result = session.connection().execute(
                _finish_app_statement(tuple(values)),
                {"v_id": app_id, **{f"v_{k}": v for k, v in values.items()}},
            )
            if result.rowcount == 0:
                raise NotFoundError(f"unknown app deployment {app_id}")
            self._insert_rows(session, app_id, rows, retry)

        run_write(self.db, work, replay=replay)

    def add_resources(
        self,
        app_id: int,
        resources: Iterable[ResourceInput],
        *,
        secret_values: Iterable[str] = (),
        replay: bool = False,
    ) -> tuple[ResourceRecord, ...]:
        """Record a whole app's resources in one transaction (one ``executemany``).

        ``secret_values`` (e.g. the Helm values under secret keys) are scrubbed from every
        manifest, wherever a chart rendered them. ``replay``: this batch may have been
        committed by an earlier call whose acknowledgement was lost; look first.
        """
        rows, records = prepare_resources(app_id, resources, secret_values)
        self.insert_resources(app_id, rows, replay=replay)
        return records

    def insert_resources(
        self, app_id: int, rows: Sequence[Mapping[str, Any]], *, replay: bool = False
    ) -> None:
        """Insert resource rows made by :func:`~sbkube.state.rows.prepare_resources`
        (already in the store's form) for an app, as :meth:`add_resources` does: the
        tracker prepares them once, for its records and for the store alike."""
        if not rows:
            return
        mine = self._resource_rows(app_id, rows)
        run_write(
            self.db,
            lambda session, retry: self._insert_rows(session, app_id, mine, retry),
            replay=replay,
        )

    @staticmethod
    def _resource_rows(app_id: int, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """The parameters of :func:`_resource_insert` for ``rows`` (made by
        :func:`~sbkube.state.rows.prepare_resources`) of the app ``app_id``: the JSON
        documents as the column type writes them (``json.dumps``), None as SQL NULL."""
        dumps = json.dumps
        # Written out, in _RESOURCE_INSERT_COLUMNS' order: unpacking generators per row
        # cost as much as the JSON.
        return [
            (
                app_id,
                row["api_version"],
                row["kind"],
                row["name"],
                row["namespace"],
                row["action"],
                None if (prev := row["previous_state"]) is None else dumps(prev),
                None if (cur := row["current_state"]) is None else dumps(cur),
                row["checksum"],
                row["source_file"],
                row["hook"],
                row["sealed"],
            )
            for row in rows
        ]

    @staticmethod
    def _insert_rows(
        session: Session, app_id: int, rows: list[tuple[Any, ...]], retry: bool
    ) -> None:
        """One executemany of an app's resource rows; on a retry, none if the lost try
        committed them (its transaction held all of them or none)."""
        if not rows:
            return
        first = dict(zip(_RESOURCE_INSERT_COLUMNS, rows[0], strict=True))
        if retry and row_exists(
            session,
            DeployedResource.app_deployment_pk == app_id,
            DeployedResource.api_version == first["api_version"],
            DeployedResource.kind == first["kind"],
            DeployedResource.name == first["name"],
            DeployedResource.namespace == first["namespace"],
        ):
            return
        # The driver's executemany, parameters made once per row (_resource_rows): a Core
        # insert would run the JSON type's processors and SQLAlchemy's parameter machinery
        # per row and column, about as much as the insert itself. One statement for all
        # rows, so that ids keep the order the resources were given in.
        connection = session.connection()
        connection.exec_driver_sql(_resource_insert(connection.dialect.name), rows)

    def add_helm_release(
        self,
        app_id: int,
        *,
        secret_keys: Sequence[str] | None = None,
        replay: bool = False,
        **release: Unpack[ReleaseFields],
    ) -> HelmReleaseRecord:
        """Record a revision of a Helm release made by this app (``replay``: as for
        :meth:`add_resources`)."""
        row, record = prepare_release(
            app_id, secret_keys=tuple(secret_keys or self.secret_keys), **release
        )

        def work(session: Session, retry: bool) -> None:
            if retry and row_exists(
                session,
                HelmRelease.app_deployment_pk == app_id,
                HelmRelease.release_name == record.release_name,
                HelmRelease.revision == record.revision,
            ):
                return  # recorded by the try whose connection was lost
            session.execute(insert(HelmRelease), row)

        run_write(self.db, work, replay=replay)
        return record

    def settle_app(
        self,
        app_id: int,
        release: Mapping[str, Any],
        *,
        status: AppStatus | str | None,
        note: str,
    ) -> bool:
        """Record the Helm revision the cluster made for an app whose store writes were
        lost, and (``status`` not None) the app's outcome it shows; one transaction. An
        app records one revision per release: if it has one already, nothing changes, so
        two processes settling the same app record it once (the app row is locked first).
        ``release``: :class:`~sbkube.state.records.ReleaseFields`. True if written."""
        row, _ = prepare_release(app_id, secret_keys=self.secret_keys, **release)

        def work(session: Session, _retry: bool) -> bool:
            found = session.execute(
                select(AppDeployment.id).where(AppDeployment.id == app_id).with_for_update()
            ).scalar_one_or_none()
            if found is None:
                raise NotFoundError(f"unknown app deployment {app_id}")
            if row_exists(
                session,
                HelmRelease.app_deployment_pk == app_id,
                HelmRelease.release_name == row["release_name"],
                HelmRelease.namespace == row["namespace"],
            ):
                return False
            session.execute(insert(HelmRelease), row)
            if status is not None:
                session.execute(
                    update(AppDeployment)
                    .where(AppDeployment.id == app_id)
                    .values(
                        status=str(AppStatus(status)),
                        error_message=note,
                        finished_at=func.coalesce(AppDeployment.finished_at, utcnow()),
                    )
                )
            return True

        return run_write(self.db, work)

    def delete_deployments(self, deployment_ids: Iterable[str]) -> int:
        """Delete deployments (and, by cascade, their apps, resources, releases)."""
        ids = list(deployment_ids)
        if not ids:
            return 0
        with write_session(self.db) as session:
            pks = select(Deployment.id).where(Deployment.deployment_id.in_(ids))
            session.execute(
                delete(AppDeployment).where(AppDeployment.deployment_pk.in_(pks))
            )  # cascades on both backends because foreign keys are on
            result = session.execute(delete(Deployment).where(Deployment.deployment_id.in_(ids)))
            return int(result.rowcount)  # type: ignore[attr-defined]

    def adopt_target(self, *, old_cluster: str, new_cluster: str, namespace: str) -> int:
        """Record ``old_cluster``'s deployments to ``namespace`` as made on ``new_cluster``,
        when ``new_cluster`` has none there yet; returns how many were moved.

        For a cluster whose recorded name changed (sbkube used to record the kube context
        alone): its history, prune base and rollback targets carry over, in one UPDATE.
        """
        if old_cluster == new_cluster:
            return 0
        with write_session(self.db) as session:
            if row_exists(session, *on_target(new_cluster, namespace, dry_runs=True)):
                return 0
            result = session.execute(
                update(Deployment)
                .where(*on_target(old_cluster, namespace, dry_runs=True))
                .values(cluster=new_cluster, cluster_id=new_cluster)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def adopt_identity(self, *, name: str, identity: str, namespace: str | None) -> int:
        """Key by ``identity`` the deployments to ``namespace`` (None: any) still keyed by
        the display name ``name`` (recorded before identities, or while the cluster could
        not be read); returns how many. The first command that reads a cluster's identity
        calls this."""
        if name == identity:
            return 0
        in_namespace = [Deployment.namespace == namespace] if namespace is not None else []
        with write_session(self.db) as session:
            result = session.execute(
                update(Deployment)
                .where(Deployment.cluster_id == name, *in_namespace)
                .values(cluster_id=identity)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    @retry_idempotent
    def mark_interrupted(self, deployment_id: str, reason: str) -> DeploymentRecord:
        """Close a deployment left unfinished by a dead process: it and its open apps.

        The recorded reason also names the apps that had completed before it stopped.
        """
        now = utcnow()
        with write_session(self.db) as session:
            pk = session.execute(
                select(Deployment.id).where(Deployment.deployment_id == deployment_id)
            ).scalar_one_or_none()
            if pk is None:
                raise NotFoundError(f"unknown deployment id '{deployment_id}'")
            done = (
                session.execute(
                    select(AppDeployment.name)
                    .where(
                        AppDeployment.deployment_pk == pk,
                        AppDeployment.status == str(AppStatus.SUCCESS),
                    )
                    .order_by(AppDeployment.id)
                )
                .scalars()
                .all()
            )
            if done:
                reason += f"; apps completed before: {', '.join(done)}"
            session.execute(
                update(AppDeployment)
                .where(
                    AppDeployment.deployment_pk == pk,
                    AppDeployment.status.in_(_OPEN_APP_STATUSES),
                )
                .values(status=str(AppStatus.INTERRUPTED), error_message=reason, finished_at=now)
            )
            session.execute(
                update(Deployment)
                .where(Deployment.id == pk)
                .values(
                    status=str(DeploymentStatus.INTERRUPTED), error_message=reason, finished_at=now
                )
            )
        return self._reads.get(deployment_id)
