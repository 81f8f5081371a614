"""Frozen results the engine returns to the CLI and to library callers."""

from __future__ import annotations

from dataclasses import dataclass

from sbkube.model import AppStatus, DeploymentStatus, Record, ResourceAction


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


@dataclass(frozen=True, slots=True)
class DeployResult(Record):
    """Outcome of ``sbkube.engine.deploy``; ``deployment_id`` is None for a dry run."""

    deployment_id: str | None
    status: DeploymentStatus
    dry_run: bool
    cluster: str
    namespace: str
    apps: tuple[AppOutcome, ...]
    messages: tuple[str, ...] = ()

    def app(self, name: str) -> AppOutcome | None:
        return next((a for a in self.apps if a.name == name), None)

    @property
    def ok(self) -> bool:
        return self.status == DeploymentStatus.SUCCESS
