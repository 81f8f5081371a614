"""Frozen results the engine returns to the CLI and to library callers.

Every command run against a target (``deploy``, ``rollback``, ``uninstall``, ``diff``,
``status``) returns a :class:`TargetResult`: one shape, with the command's own extras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sbkube.model import AppStatus, DeploymentStatus, Record, ResourceAction

if TYPE_CHECKING:
    from sbkube.cluster.port import ReleaseInfo


@dataclass(frozen=True, slots=True)
class ResourceChange(Record):
    action: ResourceAction
    api_version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def ref(self) -> str:
        return (
            f"{self.kind}/{self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind}/{self.name}"
        )


@dataclass(frozen=True, slots=True)
class ReleaseChange(Record):
    """What happened (or would happen) to a Helm release."""

    action: str  # install | upgrade | rollback | uninstall | unchanged
    release_name: str
    namespace: str
    chart: str | None
    chart_version: str | None
    from_revision: int | None
    to_revision: int | None
    status: str | None

    @classmethod
    def of(
        cls, action: str, info: ReleaseInfo, *, from_revision: int | None, to_revision: int | None
    ) -> ReleaseChange:
        """``action`` on the release revision ``info`` describes, in its status."""
        return cls(
            action=action,
            release_name=info.name,
            namespace=info.namespace,
            chart=info.chart,
            chart_version=info.chart_version,
            from_revision=from_revision,
            to_revision=to_revision,
            status=info.status,
        )


@dataclass(frozen=True, slots=True)
class AppOutcome(Record):
    name: str
    type: str
    namespace: str
    status: AppStatus
    error: str | None
    seconds: float
    changes: tuple[ResourceChange, ...] = ()
    release: ReleaseChange | None = None

    def count(self, action: ResourceAction | str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def summary(self) -> str:
        parts = [
            f"{self.count(a)} {a}"
            for a in (
                ResourceAction.CREATE,
                ResourceAction.UPDATE,
                ResourceAction.DELETE,
                ResourceAction.UNCHANGED,
            )
            if self.count(a)
        ]
        return ", ".join(parts) or "no resources"


AppT = TypeVar("AppT")


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetResult(Record, Generic[AppT]):
    """What a command run against a target returns.

    ``deployment_id`` and ``status`` are those of the deployment the command recorded
    (None when it recorded none: a dry run, a read, nothing to do); ``dry_run`` is True
    when nothing was changed; ``cluster`` is the target's recorded name; ``apps`` are
    the per-app outcomes (``AppOutcome`` for a run, the command's own per-app record for
    a read); ``messages`` are the notes said along the way; ``plan`` is the plan the
    command carried out or showed, where it made one.
    """

    deployment_id: str | None = None
    status: DeploymentStatus | None = None
    dry_run: bool = False
    cluster: str
    namespace: str
    apps: tuple[AppT, ...] = ()
    messages: tuple[str, ...] = ()
    plan: Any = None

    def app(self, name: str) -> AppT | None:
        return next((a for a in self.apps if getattr(a, "name", None) == name), None)

    @property
    def ok(self) -> bool:
        """True unless the command recorded a deployment that did not succeed."""
        return self.status is None or self.status == DeploymentStatus.SUCCESS


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployResult(TargetResult[AppOutcome]):
    """Outcome of ``sbkube.engine.deploy``; ``deployment_id`` is None for a dry run (whose
    ``status`` is what the run would have come to)."""

    status: DeploymentStatus
