"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Frozen copy of schema.JsonType: a migration must not change when the models do.
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_locks",
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("holder_id", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=253), nullable=True),
        sa.Column("host", sa.String(length=253), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("command", sa.String(length=16), nullable=True),
        sa.Column("deployment_id", sa.String(length=64), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.String(length=64), nullable=False),
        sa.Column("cluster", sa.String(length=253), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("app_dir", sa.Text(), nullable=True),
        sa.Column("config_file", sa.Text(), nullable=True),
        sa.Column("command", sa.String(length=16), nullable=False),
        sa.Column("command_args", JSON_TYPE, nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("config_snapshot", JSON_TYPE, nullable=True),
        sa.Column("sources_snapshot", JSON_TYPE, nullable=True),
        sa.Column("sbkube_version", sa.String(length=32), nullable=False),
        sa.Column("operator", sa.String(length=253), nullable=True),
        sa.Column("host", sa.String(length=253), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rollback_target_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id"),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployments_rollback_target", ["rollback_target_id"], unique=False
        )
        batch_op.create_index("ix_deployments_started", ["started_at", "id"], unique=False)
        batch_op.create_index("ix_deployments_status", ["status"], unique=False)
        batch_op.create_index(
            "ix_deployments_target_started", ["cluster", "namespace", "started_at"], unique=False
        )

    op.create_table(
        "app_deployments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("config", JSON_TYPE, nullable=True),
        sa.Column("metadata", JSON_TYPE, nullable=True),
        sa.Column("rollback_info", JSON_TYPE, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["deployment_pk"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_pk", "name", name="uq_app_deployments_deployment_name"),
    )
    with op.batch_alter_table("app_deployments", schema=None) as batch_op:
        batch_op.create_index("ix_app_deployments_name", ["name", "deployment_pk"], unique=False)

    op.create_table(
        "deployed_resources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_deployment_pk", sa.Integer(), nullable=False),
        sa.Column("api_version", sa.String(length=253), nullable=False),
        sa.Column("kind", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("previous_state", JSON_TYPE, nullable=True),
        sa.Column("current_state", JSON_TYPE, nullable=True),
        sa.Column("checksum", sa.String(length=80), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["app_deployment_pk"], ["app_deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deployed_resources", schema=None) as batch_op:
        batch_op.create_index("ix_deployed_resources_app", ["app_deployment_pk"], unique=False)

    op.create_table(
        "helm_releases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_deployment_pk", sa.Integer(), nullable=False),
        sa.Column("release_name", sa.String(length=53), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("chart", sa.Text(), nullable=False),
        sa.Column("chart_version", sa.String(length=64), nullable=True),
        sa.Column("app_version", sa.String(length=64), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("values", JSON_TYPE, nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["app_deployment_pk"], ["app_deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "app_deployment_pk", "release_name", "namespace", name="uq_helm_releases_app_release"
        ),
    )
    with op.batch_alter_table("helm_releases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_helm_releases_release", ["release_name", "namespace"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("helm_releases", schema=None) as batch_op:
        batch_op.drop_index("ix_helm_releases_release")

    op.drop_table("helm_releases")
    with op.batch_alter_table("deployed_resources", schema=None) as batch_op:
        batch_op.drop_index("ix_deployed_resources_app")

    op.drop_table("deployed_resources")
    with op.batch_alter_table("app_deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_app_deployments_name")

    op.drop_table("app_deployments")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_target_started")
        batch_op.drop_index("ix_deployments_status")
        batch_op.drop_index("ix_deployments_started")
        batch_op.drop_index("ix_deployments_rollback_target")

    op.drop_table("deployments")
    op.drop_table("deploy_locks")
