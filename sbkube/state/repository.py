"""DeploymentRepository: every query and write of the state store, returning frozen records.

Each public method opens its own session through :class:`DeploymentDatabase`, does its
work in one transaction, builds records from eagerly loaded rows while the session is
open (``rows.py``), and closes it. Nothing it returns is an ORM instance (``records.py``).

Statement budgets (asserted in ``tests/unit/state/test_query_counts.py``):

* ``list()``: 1 statement whatever the number of deployments (the page of deployments
  joined to its per-status app counts; see ``views.py``, the ORM-free read path).
* ``app_history()``: 1 statement, read off an index in time order.
* ``get_many()``: 4 statements whatever the number of deployments (Core rows, each
  child statement filtered by the deployments' query as a subquery).
* ``get()``: 4 statements whatever the size (deployment, apps, resources, releases via
  ``selectinload``; relationships are ``lazy="raise"`` so a lazy load is a bug, not a
  slowdown).
* ``add_resources()``/``insert_resources()``: one ``executemany`` insert in one
  transaction for a whole app; ``finish_app(resources=…)`` puts the same insert in the
  transaction of the app's outcome (what the tracker does: one transaction fewer per app).

A generated deployment id that collides (24 random bits per second) is drawn again.

Everything written passes through ``sbkube.redaction`` first: manifests lose their volatile
fields and Secret payloads, values and config snapshots lose secret-looking scalars.
"""

from __future__ import annotations

import builtins
import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from sbkube import __version__
from sbkube.errors import NotFoundError, StateError
from sbkube.model import AppStatus, AppType, Command, DeploymentStatus, thaw, utcnow
from sbkube.redaction import DEFAULT_SECRET_KEYS, mask_text, redact_args, redact_values
from sbkube.state.database import DeploymentDatabase
from sbkube.state.identity import (
    current_host,
    current_operator,
    latest_offset,
    new_deployment_id,
)
from sbkube.state.records import (
    AppDeploymentRecord,
    AppHistoryEntry,
    DeploymentRecord,
    DeploymentSummary,
    HelmReleaseRecord,
    ResourceInput,
    ResourceRecord,
    UnsettledApp,
)
from sbkube.state.rows import (
    app_record,
    deployment_record,
    history_entry,
    prepare_release,
    prepare_resources,
    release_record,
)
from sbkube.state.schema import AppDeployment, DeployedResource, Deployment, HelmRelease
from sbkube.state.sessions import read_session, retry_idempotent, run_write, write_session
from sbkube.state.views import count_deployments, list_deployments, nth_newest_id

# For Core statements on the hot write path (no ORM machinery per statement).
_APPS = cast(Table, AppDeployment.__table__)
_RESOURCES = cast(Table, DeployedResource.__table__)
_DEPLOYMENTS = cast(Table, Deployment.__table__)
_OPEN_APP_STATUSES = (str(AppStatus.IN_PROGRESS), str(AppStatus.PENDING))
_S = TypeVar("_S", bound=Select[Any])


def on_target(
    cluster: str | None, namespace: str | None, *, dry_runs: bool = False
) -> builtins.list[ColumnElement[bool]]:
    """The conditions on ``Deployment`` for "recorded on this target, not a dry run": the
    one filter of every read that asks what sbkube did to a target. ``None`` for the
    cluster or the namespace means any; ``dry_runs=True`` keeps dry runs too."""
    conds: builtins.list[ColumnElement[bool]] = []
    if cluster is not None:
        conds.append(Deployment.cluster == cluster)
    if namespace is not None:
        conds.append(Deployment.namespace == namespace)
    if not dry_runs:
        conds.append(Deployment.dry_run.is_(False))
    return conds


def _of_release(
    stmt: _S, cluster: str, namespace: str, release_name: str, release_namespace: str
) -> _S:
    """``stmt`` (a select from helm_releases) narrowed to one release's recorded revisions
    on a target, dry runs apart."""
    return (
        stmt.join(AppDeployment, AppDeployment.id == HelmRelease.app_deployment_pk)
        .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
        .where(
            *on_target(cluster, namespace),
            HelmRelease.release_name == release_name,
            HelmRelease.namespace == release_namespace,
        )
    )


def _masked(message: str | None) -> str | None:
    # An error line may quote a URL, a flag or a value that was found to be a secret.
    return mask_text(message) if message else message


def _by_parent(rows: Sequence[Any]) -> dict[int, builtins.list[Any]]:
    """Child rows grouped by their app's primary key, in the order read."""
    out: dict[int, builtins.list[Any]] = {}
    for row in rows:
        out.setdefault(row.app_deployment_pk, []).append(row)
    return out


class DeploymentRepository:
    """Reads and writes deployment state; returns frozen records only."""

    def __init__(self, db: DeploymentDatabase, *, secret_keys: Sequence[str] | None = None) -> None:
        self.db = db
        self.secret_keys: tuple[str, ...] = tuple(secret_keys or DEFAULT_SECRET_KEYS)

    # -- writes ------------------------------------------------------------------------

    def create_deployment(
        self,
        *,
        cluster: str,
        namespace: str,
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
        self,
        deployment_id: str,
        status: DeploymentStatus | str,
        *,
        error_message: str | None = None,
        finished_at: datetime | None = None,
    ) -> DeploymentRecord:
        """Set a deployment's final status; returns it with its apps."""
        values = {
            "status": str(DeploymentStatus(status)),
            "error_message": _masked(error_message),
            "finished_at": finished_at or utcnow(),
        }
        run_write(
            self.db, lambda session, _: self._update_deployment(session, deployment_id, **values)
        )
        return self.get(deployment_id)

    def set_status(
        self,
        deployment_id: str,
        status: DeploymentStatus | str,
        *,
        error_message: str | None = None,
        finished_at: datetime | None = None,
        close_open_apps: AppStatus | str | None = None,
    ) -> None:
        """Change a deployment's status (e.g. ``rolled_back``, or its final status) in one
        UPDATE, without reading anything back. With ``close_open_apps``, its apps still
        ``in_progress``/``pending`` get that status in the same transaction."""
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
        name: str,
        type: AppType | str,
        namespace: str | None = None,
        config: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        rollback_info: Mapping[str, Any] | None = None,
        status: AppStatus | str = AppStatus.IN_PROGRESS,
        secret_keys: Sequence[str] | None = None,
    ) -> AppDeploymentRecord:
        keys = tuple(secret_keys or self.secret_keys)
        values: dict[str, Any] = {
            "name": name,
            "type": str(AppType(type)),
            "namespace": namespace,
            "status": str(AppStatus(status)),
            "config": redact_values(thaw(config or {}), keys),
            "metadata": redact_values(thaw(metadata or {}), keys),
            "rollback_info": thaw(rollback_info) if rollback_info is not None else None,
            "started_at": utcnow(),
        }
        # One statement, INSERT ... SELECT the deployment's key: no lookup first, and no
        # ORM unit of work; no row when the deployment is unknown.
        insert_app = (
            insert(_APPS)
            .from_select(
                ["deployment_pk", *values],
                select(
                    _DEPLOYMENTS.c.id, *(literal(v, _APPS.c[k].type) for k, v in values.items())
                ).where(_DEPLOYMENTS.c.deployment_id == deployment_id),
            )
            .returning(_APPS.c.id)
        )

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
                app_id = session.connection().execute(insert_app).scalar_one_or_none()
            if app_id is None:
                raise NotFoundError(f"unknown deployment id '{deployment_id}'")
            # The record of the values given, as the ORM row it replaces gave it.
            row = {**values, "app_metadata": values["metadata"], "id": app_id}
            return app_record(
                SimpleNamespace(**row, error_message=None, finished_at=None),
                deployment_id,
                contents=False,
            )

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
                update(_APPS).where(_APPS.c.id == app_id).values(**values)
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
    def _resource_rows(app_id: int, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [{**row, "app_deployment_pk": app_id} for row in rows]

    @staticmethod
    def _insert_rows(
        session: Session, app_id: int, rows: list[dict[str, Any]], retry: bool
    ) -> None:
        """One executemany of an app's resource rows; on a retry, none if the lost try
        committed them (its transaction held all of them or none)."""
        if not rows:
            return
        first = rows[0]
        if (
            retry
            and session.execute(
                select(
                    exists().where(
                        DeployedResource.app_deployment_pk == app_id,
                        DeployedResource.api_version == first["api_version"],
                        DeployedResource.kind == first["kind"],
                        DeployedResource.name == first["name"],
                        DeployedResource.namespace == first["namespace"],
                    )
                )
            ).scalar()
        ):
            return
        # Core's executemany on the table, one per set of columns that have a value: a None
        # column is left out of its INSERT (SQL NULL; given, a JSON column would store JSON
        # 'null'), as the ORM's bulk insert does, without the ORM's per-key resolution
        # (most of the cost of recording an app's resources).
        # Runs of consecutive rows, so that ids keep the order the resources were given in.
        batches: list[list[dict[str, Any]]] = []
        for row in rows:
            kept = {key: value for key, value in row.items() if value is not None}
            if batches and batches[-1][0].keys() == kept.keys():
                batches[-1].append(kept)
            else:
                batches.append([kept])
        connection = session.connection()
        for batch in batches:
            connection.execute(insert(_RESOURCES), batch)

    def add_helm_release(
        self,
        app_id: int,
        *,
        release_name: str,
        namespace: str,
        chart: str,
        revision: int,
        status: str,
        chart_version: str | None = None,
        app_version: str | None = None,
        values: Mapping[str, Any] | None = None,
        secret_keys: Sequence[str] | None = None,
        replay: bool = False,
        chart_digest: str | None = None,
    ) -> HelmReleaseRecord:
        """Record a revision of a Helm release made by this app (``replay``: as for
        :meth:`add_resources`)."""
        row, record = prepare_release(
            app_id,
            release_name=release_name,
            namespace=namespace,
            chart=chart,
            revision=revision,
            status=status,
            chart_version=chart_version,
            app_version=app_version,
            values=values,
            secret_keys=tuple(secret_keys or self.secret_keys),
            chart_digest=chart_digest,
        )

        def work(session: Session, retry: bool) -> None:
            if (
                retry
                and session.execute(
                    select(
                        exists().where(
                            HelmRelease.app_deployment_pk == app_id,
                            HelmRelease.release_name == release_name,
                            HelmRelease.revision == revision,
                        )
                    )
                ).scalar()
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
        ``release`` holds :meth:`add_helm_release`'s keyword arguments. True if written."""
        row, _ = prepare_release(app_id, **{"secret_keys": self.secret_keys, **release})

        def work(session: Session, _retry: bool) -> bool:
            found = session.execute(
                select(AppDeployment.id).where(AppDeployment.id == app_id).with_for_update()
            ).scalar_one_or_none()
            if found is None:
                raise NotFoundError(f"unknown app deployment {app_id}")
            if session.execute(
                select(
                    exists().where(
                        HelmRelease.app_deployment_pk == app_id,
                        HelmRelease.release_name == row["release_name"],
                        HelmRelease.namespace == row["namespace"],
                    )
                )
            ).scalar():
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
        ids = builtins.list(deployment_ids)
        if not ids:
            return 0
        with write_session(self.db) as session:
            pks = select(Deployment.id).where(Deployment.deployment_id.in_(ids))
            session.execute(
                delete(AppDeployment).where(AppDeployment.deployment_pk.in_(pks))
            )  # cascades on both backends because foreign keys are on
            result = session.execute(delete(Deployment).where(Deployment.deployment_id.in_(ids)))
            return int(result.rowcount)  # type: ignore[attr-defined]

    # -- reads ---------------------------------------------------------------------------

    @retry_idempotent
    def get(self, deployment_id: str) -> DeploymentRecord:
        """One deployment with its apps, resources and Helm releases (4 statements)."""
        stmt = (
            select(Deployment)
            .where(Deployment.deployment_id == deployment_id)
            .options(
                selectinload(Deployment.apps).selectinload(AppDeployment.resources),
                selectinload(Deployment.apps).selectinload(AppDeployment.helm_releases),
            )
        )
        with read_session(self.db) as session:
            row = session.execute(stmt).scalar_one_or_none()
            if row is not None:
                return deployment_record(row, apps=True)
            raise NotFoundError(self._unknown_id_message(session, deployment_id))

    @retry_idempotent
    def get_many(
        self,
        *,
        cluster: str | None = None,
        namespace: str | None = None,
        app: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_dry_run: bool = True,
        limit: int | None = None,
    ) -> builtins.list[DeploymentRecord]:
        """Whole deployments (apps, resources, releases), OLDEST first, in 4 statements.

        The read behind ``state report``: one history, every detail, whatever its length.
        Each child statement repeats the filtered query as a subquery instead of sending
        ids in batches, so the number of statements does not grow with the history; and
        the rows are read as plain Core rows (no ORM instances, identity map or
        collections to build for thousands of rows that only become records).
        ``limit`` keeps the newest ``limit`` deployments.
        """
        conds = [
            *on_target(cluster, namespace, dry_runs=include_dry_run),
            *([Deployment.started_at >= since] if since is not None else []),
            *([Deployment.started_at < until] if until is not None else []),
        ]
        if app is not None:
            conds.append(
                exists().where(
                    AppDeployment.deployment_pk == Deployment.id, AppDeployment.name == app
                )
            )
        newest_first = (Deployment.started_at.desc(), Deployment.id.desc())
        stmt = select(*Deployment.__table__.c).where(*conds).order_by(*newest_first)
        pks = select(Deployment.id).where(*conds)
        if limit is not None:
            stmt = stmt.limit(limit)
            pks = pks.order_by(*newest_first).limit(limit)
        app_pks = select(AppDeployment.id).where(AppDeployment.deployment_pk.in_(pks))
        app_columns = [
            c.label("app_metadata") if c.name == "metadata" else c
            for c in AppDeployment.__table__.c
        ]
        with read_session(self.db) as session:
            rows = session.execute(stmt).all()
            apps = session.execute(
                select(*app_columns)
                .where(AppDeployment.deployment_pk.in_(pks))
                .order_by(AppDeployment.id)
            ).all()
            resources = _by_parent(
                session.execute(
                    select(DeployedResource.__table__)
                    .where(DeployedResource.app_deployment_pk.in_(app_pks))
                    .order_by(DeployedResource.id)
                ).all()
            )
            releases = _by_parent(
                session.execute(
                    select(HelmRelease.__table__)
                    .where(HelmRelease.app_deployment_pk.in_(app_pks))
                    .order_by(HelmRelease.id)
                ).all()
            )
        ids = {row.id: row.deployment_id for row in rows}
        app_records: dict[int, builtins.list[AppDeploymentRecord]] = {}
        for a in apps:
            if a.deployment_pk not in ids:
                # A deployment recorded between two of the statements (PostgreSQL reads
                # each statement's own snapshot): not in this history, as with the ORM.
                continue
            app_records.setdefault(a.deployment_pk, []).append(
                app_record(
                    a,
                    ids[a.deployment_pk],
                    contents=True,
                    resources=resources.get(a.id, ()),
                    releases=releases.get(a.id, ()),
                )
            )
        return [
            deployment_record(row, apps=True, app_records=app_records.get(row.id, ()))
            for row in reversed(rows)
        ]

    @retry_idempotent
    def exists(self, deployment_id: str) -> bool:
        with read_session(self.db) as session:
            return bool(
                session.execute(
                    select(exists().where(Deployment.deployment_id == deployment_id))
                ).scalar()
            )

    @staticmethod
    def _unknown_id_message(session: Session, deployment_id: str) -> str:
        recent = (
            session.execute(
                select(Deployment.deployment_id)
                .order_by(Deployment.started_at.desc(), Deployment.id.desc())
                .limit(500)
            )
            .scalars()
            .all()
        )
        close = difflib.get_close_matches(deployment_id, recent, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        if not recent:
            hint = " (the store has no deployments yet)"
        return f"unknown deployment id '{deployment_id}'{hint}"

    @retry_idempotent
    def list(
        self,
        *,
        cluster: str | None = None,
        namespace: str | None = None,
        app: str | None = None,
        status: str | Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        command: str | None = None,
        include_dry_run: bool = True,
        limit: int | None = 50,
        offset: int = 0,
    ) -> builtins.list[DeploymentSummary]:
        """Deployments newest first, with per-status app counts, in one statement
        (see :func:`sbkube.state.views.list_deployments`)."""
        return list_deployments(
            self.db,
            cluster=cluster,
            namespace=namespace,
            app=app,
            status=status,
            since=since,
            until=until,
            command=command,
            include_dry_run=include_dry_run,
            limit=limit,
            offset=offset,
        )

    @retry_idempotent
    def count(self, **filters: Any) -> int:
        """How many deployments match (same filters as :meth:`list`)."""
        return count_deployments(self.db, **filters)

    @retry_idempotent
    def resolve(
        self,
        ref: str,
        *,
        cluster: str | None = None,
        namespace: str | None = None,
        app: str | None = None,
    ) -> str:
        """Turn ``latest``, ``latest~N``, a full id or a unique id prefix into a full id."""
        offset = latest_offset(ref)
        if offset is not None:
            scope = {"cluster": cluster, "namespace": namespace, "app": app}
            # An offset past any possible row count is answered without asking the store
            # (whose integers are 64-bit: a larger one would not even bind).
            too_far = offset >= 2**62
            found = (
                None if too_far else nth_newest_id(self.db, offset, include_dry_run=False, **scope)
            )
            if found is not None:
                return found
            total = count_deployments(self.db, include_dry_run=False, **scope)
            where = "".join(f" {k} {v!r}" for k, v in scope.items() if v)
            raise NotFoundError(
                f"'{ref}': only {total} deployment(s) recorded" + (f" for{where}" if where else "")
            )
        with read_session(self.db) as session:
            if session.execute(select(exists().where(Deployment.deployment_id == ref))).scalar():
                return ref
            if len(ref) >= 8:
                matches = (
                    session.execute(
                        select(Deployment.deployment_id)
                        .where(Deployment.deployment_id.startswith(ref, autoescape=True))
                        .limit(2)
                    )
                    .scalars()
                    .all()
                )
                if len(matches) == 1:
                    return str(matches[0])
                if len(matches) > 1:
                    raise NotFoundError(f"deployment id prefix '{ref}' is ambiguous")
            raise NotFoundError(self._unknown_id_message(session, ref))

    @retry_idempotent
    def app_history(
        self,
        app: str,
        *,
        cluster: str | None = None,
        namespace: str | None = None,
        limit: int | None = 50,
        include_dry_run: bool = False,
    ) -> builtins.list[AppHistoryEntry]:
        """One app's timeline, newest first, in one statement."""
        res_count = (
            select(func.count())
            .where(DeployedResource.app_deployment_pk == AppDeployment.id)
            .correlate(AppDeployment)
            .scalar_subquery()
        )
        stmt = (
            select(
                Deployment.deployment_id,
                Deployment.cluster,
                Deployment.namespace,
                Deployment.command,
                Deployment.status,
                AppDeployment.name,
                AppDeployment.type,
                AppDeployment.status.label("app_status"),
                Deployment.started_at,
                Deployment.operator,
                HelmRelease.chart,
                HelmRelease.chart_version,
                HelmRelease.revision,
                res_count.label("resource_count"),
            )
            .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
            .outerjoin(HelmRelease, HelmRelease.app_deployment_pk == AppDeployment.id)
            .where(
                AppDeployment.name == app,
                *on_target(cluster, namespace, dry_runs=include_dry_run),
            )
            # The app's own start time, not the deployment's: it is what
            # ix_app_deployments_name_started returns in order, so the newest N rows are read
            # straight off the index whatever the length of the history.
            .order_by(AppDeployment.started_at.desc(), AppDeployment.id.desc())
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with read_session(self.db) as session:
            rows = session.execute(stmt).all()
        return [history_entry(r) for r in rows]

    @retry_idempotent
    def latest_release(
        self, *, cluster: str, namespace: str, release_name: str, release_namespace: str
    ) -> HelmReleaseRecord | None:
        """The newest recorded revision of a Helm release on a target, whatever the outcome
        (a failed upgrade's revision included): what a dry run's plan counts from."""
        stmt = (
            _of_release(select(HelmRelease), cluster, namespace, release_name, release_namespace)
            .order_by(Deployment.started_at.desc(), Deployment.id.desc())
            .limit(1)
        )
        with read_session(self.db) as session:
            row = session.execute(stmt).scalar_one_or_none()
            return release_record(row) if row is not None else None

    @retry_idempotent
    def unsettled_apps(
        self, *, cluster: str, namespace: str, app: str, limit: int = 20
    ) -> builtins.list[UnsettledApp]:
        """The app's newest recordings on a target (non-dry-run, at most ``limit``) that
        neither succeeded nor were skipped and have no Helm revision recorded: those whose
        outcome a lost store connection may have hidden (see :class:`UnsettledApp`). One
        statement when there are none, the usual case."""
        unsettled = (
            str(AppStatus.IN_PROGRESS),
            str(AppStatus.PENDING),
            str(AppStatus.FAILED),
            str(AppStatus.INTERRUPTED),
        )
        # The next recording of the same app on the target: the latest its revision can be.
        later = (
            select(func.min(AppDeployment.started_at))
            .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
            .where(
                *on_target(cluster, namespace),
                AppDeployment.name == app,
            )
        )
        stmt = (
            select(AppDeployment, Deployment)
            .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
            .where(
                *on_target(cluster, namespace),
                AppDeployment.name == app,
                AppDeployment.status.in_(unsettled),
                ~exists().where(HelmRelease.app_deployment_pk == AppDeployment.id),
            )
            .order_by(AppDeployment.started_at.desc(), AppDeployment.id.desc())
            .limit(limit)
        )
        out = []
        with read_session(self.db) as session:
            for app_row, dep_row in session.execute(stmt).all():
                end = app_row.finished_at or dep_row.finished_at
                if end is None:
                    end = session.execute(
                        later.where(AppDeployment.started_at > app_row.started_at)
                    ).scalar_one_or_none()
                out.append(
                    UnsettledApp(
                        app_id=app_row.id,
                        app_name=app_row.name,
                        app_status=AppStatus(app_row.status),
                        started_at=app_row.started_at,
                        window_end=end,
                        deployment_id=dep_row.deployment_id,
                        deployment_status=DeploymentStatus(dep_row.status),
                        host=dep_row.host,
                        pid=dep_row.pid,
                    )
                )
        return out

    @retry_idempotent
    def recorded_revisions(
        self, *, cluster: str, namespace: str, release_name: str, release_namespace: str
    ) -> set[int]:
        """Every revision of a Helm release recorded on a target (dry runs apart)."""
        stmt = _of_release(
            select(HelmRelease.revision), cluster, namespace, release_name, release_namespace
        )
        with read_session(self.db) as session:
            return set(session.execute(stmt).scalars().all())

    @retry_idempotent
    def last_successful_app(
        self, *, cluster: str, namespace: str, app: str, before: str | None = None
    ) -> AppDeploymentRecord | None:
        """The newest successful, non-dry-run recording of ``app`` on a target (with contents).

        This is what sbkube last applied for the app: the base for pruning and dry runs.
        """
        conds = [
            *on_target(cluster, namespace),
            AppDeployment.name == app,
            AppDeployment.status == str(AppStatus.SUCCESS),
        ]
        with read_session(self.db) as session:
            if before is not None:
                started = session.execute(
                    select(Deployment.started_at).where(Deployment.deployment_id == before)
                ).scalar_one_or_none()
                if started is not None:
                    conds.append(Deployment.started_at < started)
            stmt = (
                select(AppDeployment, Deployment.deployment_id)
                .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
                .where(*conds)
                .order_by(Deployment.started_at.desc(), Deployment.id.desc())
                .limit(1)
                .options(
                    selectinload(AppDeployment.resources), selectinload(AppDeployment.helm_releases)
                )
            )
            row = session.execute(stmt).first()
            if row is None:
                return None
            return app_record(row[0], row[1], contents=True)

    def unfinished(
        self, *, cluster: str | None = None, namespace: str | None = None
    ) -> builtins.list[DeploymentSummary]:
        """Deployments still ``pending``/``in_progress`` (candidates for recovery)."""
        return self.list(
            cluster=cluster,
            namespace=namespace,
            status=[DeploymentStatus.PENDING, DeploymentStatus.IN_PROGRESS],
            limit=None,
        )

    def adopt_target(self, *, old_cluster: str, new_cluster: str, namespace: str) -> int:
        """Record ``old_cluster``'s deployments to ``namespace`` as made on ``new_cluster``,
        when ``new_cluster`` has none there yet; returns how many were moved.

        For a cluster whose recorded name changed (sbkube used to record the kube context
        alone): its history, prune base and rollback targets carry over, in one UPDATE.
        """
        if old_cluster == new_cluster:
            return 0
        with write_session(self.db) as session:
            taken = session.execute(
                select(exists().where(*on_target(new_cluster, namespace, dry_runs=True)))
            ).scalar_one()
            if taken:
                return 0
            result = session.execute(
                update(Deployment)
                .where(*on_target(old_cluster, namespace, dry_runs=True))
                .values(cluster=new_cluster)
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
                    AppDeployment.status.in_([str(AppStatus.IN_PROGRESS), str(AppStatus.PENDING)]),
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
        return self.get(deployment_id)
