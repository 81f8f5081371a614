"""The deployment state store.

Public API: :class:`DeploymentDatabase` (where the store lives), :class:`DeploymentRepository`
(every read and write, returning frozen records) and :class:`DeploymentTracker` (context
managers for the deploy engine). The one rule: no ORM instance leaves this package;
callers get the frozen records of :mod:`sbkube.state.records`.

Names are imported on first access, so a command that only lists deployments
(``sbkube.state.queries``) never imports the ORM.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sbkube.model import (
        AppStatus,
        AppType,
        Command,
        DeploymentStatus,
        FrozenDict,
        ResourceAction,
    )
    from sbkube.state.database import DeploymentDatabase
    from sbkube.state.records import (
        AppDeploymentRecord,
        AppHistoryEntry,
        DeploymentRecord,
        DeploymentSummary,
        HelmReleaseRecord,
        LockRecord,
        ResourceInput,
        ResourceRecord,
    )
    from sbkube.state.repository import DeploymentRepository
    from sbkube.state.tracker import AppHandle, DeploymentHandle, DeploymentTracker

__all__ = [
    "AppDeploymentRecord",
    "AppHandle",
    "AppHistoryEntry",
    "AppStatus",
    "AppType",
    "Command",
    "DeploymentDatabase",
    "DeploymentHandle",
    "DeploymentRecord",
    "DeploymentRepository",
    "DeploymentStatus",
    "DeploymentSummary",
    "DeploymentTracker",
    "FrozenDict",
    "HelmReleaseRecord",
    "LockRecord",
    "ResourceAction",
    "ResourceInput",
    "ResourceRecord",
]

_EXPORTS = {
    "DeploymentDatabase": "database",
    "AppDeploymentRecord": "records",
    "AppHistoryEntry": "records",
    "AppStatus": "records",
    "AppType": "records",
    "Command": "records",
    "DeploymentRecord": "records",
    "DeploymentStatus": "records",
    "DeploymentSummary": "records",
    "FrozenDict": "records",
    "HelmReleaseRecord": "records",
    "LockRecord": "records",
    "ResourceAction": "records",
    "ResourceRecord": "records",
    "DeploymentRepository": "repository",
    "ResourceInput": "records",
    "AppHandle": "tracker",
    "DeploymentHandle": "tracker",
    "DeploymentTracker": "tracker",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sbkube.state' has no attribute {name!r}")
    value = getattr(import_module(f"sbkube.state.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
