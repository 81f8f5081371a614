"""The read side of the store: every ORM read of whole deployments, as frozen records.

:class:`DeploymentReader` answers what the engine and the CLI ask of the record: one
deployment (:meth:`~DeploymentReader.get`), a whole history (``get_many``, for ``state
report``), a reference resolved (``latest~2``, an id prefix), an app's timeline, and what
sbkube last did to a target (the last successful recording of an app, the Helm revisions
recorded, the apps a lost connection may have left unsettled). Its one filter for "this
target, not a dry run" is :func:`on_target`. The listing (``list``/``count``) delegates to
``views.py``, the ORM-free read path beside it.

Each method opens one read session (``sessions.py``), builds records from eagerly loaded
rows while it is open (``rows.py``), and closes it. Nothing it returns is an ORM instance.

Statement budgets (asserted in ``tests/unit/state/test_query_counts.py``):

* ``list()``: 1 statement whatever the number of deployments (the page of deployments
  joined to its per-status app counts; see ``views.py``).
* ``app_history()``: 1 statement, read off an index in time order.
* ``get_many()``: 4 statements whatever the number of deployments (Core rows, each
  child statement filtered by the deployments' query as a subquery).
* ``get()``: 4 statements whatever the size (deployment, apps, resources, releases via
  ``selectinload``; relationships are ``lazy="raise"`` so a lazy load is a bug, not a
  slowdown).
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, Unpack, cast

from sqlalchemy import ColumnElement, Select, Table, exists, func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from sbkube.errors import NotFoundError
from sbkube.model import AppStatus, DeploymentStatus
from sbkube.state.database import DeploymentDatabase
from sbkube.state.identity import latest_offset
from sbkube.state.records import (
    AppDeploymentRecord,
    AppHistoryEntry,
    DeploymentRecord,
    DeploymentSummary,
    HelmReleaseRecord,
    UnsettledApp,
)
from sbkube.state.rows import app_record, deployment_record, history_entry, release_record
from sbkube.state.schema import AppDeployment, DeployedResource, Deployment, HelmRelease
from sbkube.state.sessions import read_session, retry_idempotent
from sbkube.state.views import (
    DeploymentFilters,
    count_deployments,
    list_deployments,
    nth_newest_id,
)

_S = TypeVar("_S", bound=Select[Any])
_RESOURCES = cast(Table, DeployedResource.__table__)
_RELEASES = cast(Table, HelmRelease.__table__)


def on_target(
    cluster: str | None, namespace: str | None, *, dry_runs: bool = False
) -> list[ColumnElement[bool]]:
    """The conditions on ``Deployment`` for "recorded on this target, not a dry run": the
    one filter of every read that asks what sbkube did to a target. ``None`` for the
    cluster or the namespace means any; ``dry_runs=True`` keeps dry runs too."""
    conds: list[ColumnElement[bool]] = []
    if cluster is not None:
        conds.append(Deployment.cluster_id.in_(clusters_named(cluster)))
    if namespace is not None:
        conds.append(Deployment.namespace == namespace)
    if not dry_runs:
        conds.append(Deployment.dry_run.is_(False))
    return conds


def clusters_named(cluster: str) -> Select[str]:
    """The identities ``cluster`` names: itself as an identity, and every identity ever
    shown under it as a display name, so a name finds the history of the cluster(s) it
    was given to, through any later change of address or context."""
    alias = aliased(Deployment)
    return select(alias.cluster_id).where(
        or_(alias.cluster == cluster, alias.cluster_id == cluster)
    )


def row_exists(session: Session, *conds: ColumnElement[bool]) -> bool:
    """Whether a row matches ``conds`` (their columns name the table): one ``SELECT
    EXISTS``, for a read that asks, or a write that looks before it inserts."""
    return bool(session.execute(select(exists().where(*conds))).scalar())


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


def _contents(session: Session, table: Table, app_pks: Select[Any]) -> dict[int, list[Any]]:
    """The rows of ``table`` (resources or Helm releases) that belong to the apps
    ``app_pks`` selects, as plain Core rows grouped by their app's primary key, in id
    order: one statement whatever the number of apps."""
    out: dict[int, list[Any]] = {}
    stmt = select(table).where(table.c.app_deployment_pk.in_(app_pks)).order_by(table.c.id)
    for row in session.execute(stmt):
        out.setdefault(row.app_deployment_pk, []).append(row)
    return out


class DeploymentReader:
    """Reads deployment state; returns frozen records only."""

    def __init__(self, db: DeploymentDatabase) -> None:
        self.db = db

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
            resources, releases = (
                _contents(session, table, app_pks) for table in (_RESOURCES, _RELEASES)
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
    def recent_app_names(
        self, *, cluster: str, namespace: str, app_dir: str, limit: int = 20
    ) -> builtins.list[str]:
        """The names of the apps that the target's newest ``limit`` deployments (dry runs
        apart) recorded from ``app_dir``, each once, oldest first: one statement of names,
        not the deployments' contents."""
        newest_first = (Deployment.started_at.desc(), Deployment.id.desc())
        recent = (
            select(Deployment.id, Deployment.started_at, Deployment.app_dir)
            .where(*on_target(cluster, namespace))
            .order_by(*newest_first)
            .limit(limit)
            .subquery()
        )
        stmt = (
            select(AppDeployment.name)
            .join(recent, recent.c.id == AppDeployment.deployment_pk)
            .where(recent.c.app_dir == app_dir)
            .order_by(recent.c.started_at, recent.c.id, AppDeployment.id)
        )
        with read_session(self.db) as session:
            names = session.execute(stmt).scalars().all()
        return builtins.list(dict.fromkeys(names))

    @retry_idempotent
    def exists(self, deployment_id: str) -> bool:
        with read_session(self.db) as session:
            return row_exists(session, Deployment.deployment_id == deployment_id)

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
        limit: int | None = 50,
        offset: int = 0,
        **filters: Unpack[DeploymentFilters],
    ) -> builtins.list[DeploymentSummary]:
        """Deployments newest first, with per-status app counts, in one statement
        (see :func:`sbkube.state.views.list_deployments`)."""
        return list_deployments(self.db, limit=limit, offset=offset, **filters)

    @retry_idempotent
    def count(self, **filters: Unpack[DeploymentFilters]) -> int:
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
            scope: DeploymentFilters = {"cluster": cluster, "namespace": namespace, "app": app}
            real_runs: DeploymentFilters = {**scope, "include_dry_run": False}
            # An offset past any possible row count is answered without asking the store
            # (whose integers are 64-bit: a larger one would not even bind).
            too_far = offset >= 2**62
            found = None if too_far else nth_newest_id(self.db, offset, **real_runs)
            if found is not None:
                return found
            total = count_deployments(self.db, **real_runs)
            where = "".join(f" {k} {v!r}" for k, v in scope.items() if v)
            raise NotFoundError(
                f"'{ref}': only {total} deployment(s) recorded" + (f" for{where}" if where else "")
            )
        with read_session(self.db) as session:
            if row_exists(session, Deployment.deployment_id == ref):
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
                Deployment.cluster_id,
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
                Deployment.profile,
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
        self, *, cluster: str, namespace: str, apps: Sequence[str], limit: int = 20
    ) -> builtins.list[UnsettledApp]:
        """Each of ``apps``' newest recordings on a target (non-dry-run, at most ``limit``
        an app) that neither succeeded nor were skipped and have no Helm revision
        recorded: those whose outcome a lost store connection may have hidden (see
        :class:`UnsettledApp`). One statement whatever the number of apps when there are
        none, the usual case."""
        if not apps:
            return []
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
            .where(*on_target(cluster, namespace))
        )
        newest_first = (AppDeployment.started_at.desc(), AppDeployment.id.desc())
        ranked = (
            select(
                AppDeployment.id.label("pk"),
                func.row_number()
                .over(partition_by=AppDeployment.name, order_by=newest_first)
                .label("rank"),
            )
            .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
            .where(
                *on_target(cluster, namespace),
                AppDeployment.name.in_(builtins.list(dict.fromkeys(apps))),
                AppDeployment.status.in_(unsettled),
                ~exists().where(HelmRelease.app_deployment_pk == AppDeployment.id),
            )
            .subquery()
        )
        stmt = (
            select(AppDeployment, Deployment)
            .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
            .join(ranked, ranked.c.pk == AppDeployment.id)
            .where(ranked.c.rank <= limit)
            .order_by(AppDeployment.name, *newest_first)
        )
        out = []
        with read_session(self.db) as session:
            for app_row, dep_row in session.execute(stmt).all():
                end = app_row.finished_at or dep_row.finished_at
                if end is None:
                    end = session.execute(
                        later.where(
                            AppDeployment.name == app_row.name,
                            AppDeployment.started_at > app_row.started_at,
                        )
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
        self,
        *,
        cluster: str | None,
        namespace: str,
        app: str,
        before: str | None = None,
        failed: bool = False,
    ) -> AppDeploymentRecord | None:
        """The newest successful, non-dry-run recording of ``app`` on a target (with contents).

        This is what sbkube last applied for the app: the base for pruning and dry runs.
        ``cluster`` None: on any cluster (what a deploy asks before it knows the cluster).
        With ``failed``, the newest failed one instead: what a run that failed part-way
        applied, which the next deploy prunes when it leaves the manifests.
        """
        conds = [
            *on_target(cluster, namespace),
            AppDeployment.name == app,
            AppDeployment.status == str(AppStatus.FAILED if failed else AppStatus.SUCCESS),
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

    @retry_idempotent
    def last_successful_apps(
        self,
        *,
        cluster: str | None,
        namespace: str,
        apps: builtins.list[str],
        failed: bool = False,
    ) -> dict[str, AppDeploymentRecord | None]:
        """:meth:`last_successful_app` of each of ``apps`` at once (None for an app with no
        such recording): one statement picks each app's newest recording (a window over
        the apps), then its resources and releases are loaded with it, whatever the number
        of apps."""
        found: dict[str, AppDeploymentRecord | None] = dict.fromkeys(apps)
        if not apps:
            return found
        conds = [
            *on_target(cluster, namespace),
            AppDeployment.name.in_(apps),
            AppDeployment.status == str(AppStatus.FAILED if failed else AppStatus.SUCCESS),
        ]
        newest = (
            select(
                AppDeployment.id.label("app_pk"),
                func.row_number()
                .over(
                    partition_by=AppDeployment.name,
                    order_by=(Deployment.started_at.desc(), Deployment.id.desc()),
                )
                .label("rank"),
            )
            .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
            .where(*conds)
            .subquery()
        )
        app_pks = select(newest.c.app_pk).where(newest.c.rank == 1)
        app_columns = [
            c.label("app_metadata") if c.name == "metadata" else c
            for c in AppDeployment.__table__.c
        ]
        # Plain Core rows, as get_many reads them: no ORM instance for each resource row
        # of every app only to become a record.
        with read_session(self.db) as session:
            rows = session.execute(
                select(*app_columns, Deployment.deployment_id.label("of_deployment"))
                .join(Deployment, Deployment.id == AppDeployment.deployment_pk)
                .where(AppDeployment.id.in_(app_pks))
            ).all()
            resources, releases = (
                _contents(session, table, app_pks) for table in (_RESOURCES, _RELEASES)
            )
        for row in rows:
            found[row.name] = app_record(
                row,
                row.of_deployment,
                contents=True,
                resources=resources.get(row.id, ()),
                releases=releases.get(row.id, ()),
            )
        return found

    @retry_idempotent
    def reverted_by(self, deployment_id: str) -> str | None:
        """The deployment that rolled ``deployment_id`` back by its failure policy (the
        newest, when there are several), or None: one statement on its index."""
        stmt = (
            select(Deployment.deployment_id)
            .where(Deployment.reverts_id == deployment_id)
            .order_by(Deployment.started_at.desc(), Deployment.id.desc())
            .limit(1)
        )
        with read_session(self.db) as session:
            return session.execute(stmt).scalar_one_or_none()

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
