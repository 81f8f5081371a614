"""The deployment state store.

Public API: :class:`DeploymentDatabase` (where the store lives), :class:`DeploymentRepository`
(every read and write, returning frozen records) and :class:`DeploymentTracker` (context
managers for the deploy engine). The one rule: no ORM instance leaves this package;
callers get the frozen records of :mod:`sbkube.state.records`.
"""

from sbkube.state.database import DeploymentDatabase
from sbkube.state.records import (
    AppDeploymentRecord,
    AppHistoryEntry,
    AppStatus,
    AppType,
    Command,
    DeploymentRecord,
    DeploymentStatus,
    DeploymentSummary,
    FrozenDict,
    HelmReleaseRecord,
    LockRecord,
    ResourceAction,
    ResourceRecord,
)
from sbkube.state.repository import DeploymentRepository, ResourceInput
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
