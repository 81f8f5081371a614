"""ORM tables of the state store. Private to ``sbkube/state/``: nothing else imports this.

Four tables hold a deployment (deployments -> app_deployments -> deployed_resources and
helm_releases); ``deploy_locks`` holds one row per locked (cluster, namespace) target.
A Helm release row is unique per *app deployment*, so the same release appears in every
deployment that touched it. Indexes follow the real queries: newest-first listing, by
(cluster, namespace), by app name.

Any change here needs a new Alembic revision in ``migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from sbkube.state.columns import JsonType, UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JsonType()}


class Deployment(Base):
    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(String(64), unique=True)
    cluster: Mapped[str] = mapped_column(String(253))
    """The display name: config.yaml's ``cluster:``, else ``context@host:port``."""
    # Nullable in the table (migration 0008 adds it in place, which SQLite allows only so);
    # every row written has one.
    cluster_id: Mapped[str] = mapped_column(String(253), nullable=True)
    """The identity: the cluster's ``kube-system`` namespace UID, or the display name
    when the cluster could not be read (adopted on first contact, ``adopt_identity``)."""
    namespace: Mapped[str] = mapped_column(String(253))
    app_dir: Mapped[str | None] = mapped_column(Text)
    config_file: Mapped[str | None] = mapped_column(Text)
    command: Mapped[str] = mapped_column(String(16))
    command_args: Mapped[Any] = mapped_column(JsonType, nullable=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    config_snapshot: Mapped[Any] = mapped_column(JsonType, nullable=True)
    sources_snapshot: Mapped[Any] = mapped_column(JsonType, nullable=True)
    sbkube_version: Mapped[str] = mapped_column(String(32))
    operator: Mapped[str | None] = mapped_column(String(253))
    host: Mapped[str | None] = mapped_column(String(253))
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rollback_target_id: Mapped[str | None] = mapped_column(String(64))
    # The failed deployment this one undid (a run's failure policy rolled it back); the
    # failed one finds it through the index (migration 0009).
    reverts_id: Mapped[str | None] = mapped_column(String(64))
    profile: Mapped[str | None] = mapped_column(String(63))
    """``--profile ENV`` (migration 0010); None without one."""
    steps: Mapped[Any] = mapped_column(JsonType, nullable=True)
    """The commands the deployment ran itself (command-level hooks), in order (0011)."""

    apps: Mapped[list[AppDeployment]] = relationship(
        back_populates="deployment",
        order_by="AppDeployment.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )

    __table_args__ = (
        Index("ix_deployments_started", "started_at", "id"),
        Index("ix_deployments_target_started", "cluster", "namespace", "started_at"),
        Index("ix_deployments_identity_started", "cluster_id", "namespace", "started_at"),
        Index("ix_deployments_status", "status"),
        Index("ix_deployments_rollback_target", "rollback_target_id"),
        Index("ix_deployments_reverts", "reverts_id"),
    )


class AppDeployment(Base):
    __tablename__ = "app_deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_pk: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(253))
    type: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str | None] = mapped_column(String(253))
    status: Mapped[str] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    config: Mapped[Any] = mapped_column(JsonType, nullable=True)
    # "metadata" is reserved on declarative classes; the column keeps the schema's name.
    app_metadata: Mapped[Any] = mapped_column("metadata", JsonType, nullable=True)
    rollback_info: Mapped[Any] = mapped_column(JsonType, nullable=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    deployment: Mapped[Deployment] = relationship(back_populates="apps", lazy="raise")
    resources: Mapped[list[DeployedResource]] = relationship(
        order_by="DeployedResource.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )
    helm_releases: Mapped[list[HelmRelease]] = relationship(
        order_by="HelmRelease.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )

    __table_args__ = (
        UniqueConstraint("deployment_pk", "name", name="uq_app_deployments_deployment_name"),
        Index("ix_app_deployments_name", "name", "deployment_pk"),
        Index("ix_app_deployments_name_started", "name", "started_at", "id"),
    )


class DeployedResource(Base):
    __tablename__ = "deployed_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_deployment_pk: Mapped[int] = mapped_column(
        ForeignKey("app_deployments.id", ondelete="CASCADE")
    )
    api_version: Mapped[str] = mapped_column(String(253))
    kind: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(253))
    namespace: Mapped[str | None] = mapped_column(String(253))
    action: Mapped[str] = mapped_column(String(16))
    previous_state: Mapped[Any] = mapped_column(JsonType, nullable=True)
    current_state: Mapped[Any] = mapped_column(JsonType, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(80))
    source_file: Mapped[str | None] = mapped_column(Text)
    # A Helm hook's helm.sh/hook value; NULL for release objects and YAML apps' objects.
    hook: Mapped[str | None] = mapped_column(String(253))
    # The secret leaves redaction replaced in previous_state/current_state, encrypted
    # (sbkube.sealing); NULL when nothing was replaced, or recorded before sealing.
    sealed: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_deployed_resources_app", "app_deployment_pk"),)


class HelmRelease(Base):
    __tablename__ = "helm_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_deployment_pk: Mapped[int] = mapped_column(
        ForeignKey("app_deployments.id", ondelete="CASCADE")
    )
    release_name: Mapped[str] = mapped_column(String(53))
    namespace: Mapped[str] = mapped_column(String(253))
    chart: Mapped[str] = mapped_column(Text)
    chart_version: Mapped[str | None] = mapped_column(String(64))
    app_version: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer)
    values: Mapped[Any] = mapped_column(JsonType, nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    # sha256 of the chart's files (directory or .tgz); NULL when sbkube could not read them.
    chart_digest: Mapped[str | None] = mapped_column(String(80))
    # The secret leaves redaction replaced in values, encrypted (sbkube.sealing).
    sealed: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint(
            "app_deployment_pk", "release_name", "namespace", name="uq_helm_releases_app_release"
        ),
        Index("ix_helm_releases_release", "release_name", "namespace"),
    )


class DeployLock(Base):
    __tablename__ = "deploy_locks"

    target: Mapped[str] = mapped_column(String(512), primary_key=True)
    holder_id: Mapped[str] = mapped_column(String(64))
    operator: Mapped[str | None] = mapped_column(String(253))
    host: Mapped[str | None] = mapped_column(String(253))
    pid: Mapped[int | None] = mapped_column(Integer)
    command: Mapped[str | None] = mapped_column(String(16))
    deployment_id: Mapped[str | None] = mapped_column(String(64))
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]
