"""The deployment state store: its one door.

:class:`DeploymentDatabase` (where the store lives), :class:`DeploymentRepository`
(every read and write of whole deployments, returning frozen records: the write side of
``writes.py`` and the read side of ``reads.py`` under one name),
:class:`DeploymentTracker` (context managers for the deploy engine, writing through the
write side), the records, and
the store's documented operations: the one-statement listing (``list_deployments``),
deploy locks, retention (``state prune``), transfer (``state export|import``) and key
rotation (``state rekey``).
Everything else in ``sbkube/state/`` is private to the package. The one rule: no ORM
instance leaves it; callers get frozen records. The words the records speak (statuses,
actions, :class:`~sbkube.model.FrozenDict`) are in :mod:`sbkube.model`.

Names are imported on first access (:mod:`sbkube._lazy`), so a command that only lists
deployments never imports the ORM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbkube._lazy import lazy_exports

if TYPE_CHECKING:
    from sbkube.state.database import DeploymentDatabase
    from sbkube.state.legacy import import_legacy, imported_from
    from sbkube.state.locks import DeployLocks, LockHandle, describe_holder, pid_alive, stale_reason
    from sbkube.state.records import (
        AppDeploymentRecord,
        AppHistoryEntry,
        DeploymentRecord,
        DeploymentSummary,
        HelmReleaseRecord,
        LockRecord,
        ResourceInput,
        ResourceRecord,
        UnsettledApp,
    )
    from sbkube.state.rekey import RekeyResult, rekey_store
    from sbkube.state.repository import DeploymentRepository
    from sbkube.state.retention import PruneCandidate, PrunePlan, apply_prune, plan_prune
    from sbkube.state.tracker import AppHandle, DeploymentHandle, DeploymentTracker
    from sbkube.state.transfer import (
        ImportResult,
        check_lines,
        dump_line,
        export_deployments,
        import_deployments,
    )
    from sbkube.state.views import list_deployments

_EXPORTS = {
    "DeploymentDatabase": "database",
    "DeploymentRepository": "repository",
    "DeploymentTracker": "tracker",
    "DeploymentHandle": "tracker",
    "AppHandle": "tracker",
    "AppDeploymentRecord": "records",
    "AppHistoryEntry": "records",
    "DeploymentRecord": "records",
    "DeploymentSummary": "records",
    "HelmReleaseRecord": "records",
    "LockRecord": "records",
    "ResourceInput": "records",
    "ResourceRecord": "records",
    "UnsettledApp": "records",
    "list_deployments": "views",
    "DeployLocks": "locks",
    "LockHandle": "locks",
    "describe_holder": "locks",
    "pid_alive": "locks",
    "stale_reason": "locks",
    "PruneCandidate": "retention",
    "PrunePlan": "retention",
    "apply_prune": "retention",
    "plan_prune": "retention",
    "RekeyResult": "rekey",
    "rekey_store": "rekey",
    "ImportResult": "transfer",
    "check_lines": "transfer",
    "dump_line": "transfer",
    "export_deployments": "transfer",
    "import_deployments": "transfer",
    "import_legacy": "legacy",
    "imported_from": "legacy",
}

__all__ = [
    "AppDeploymentRecord",
    "AppHandle",
    "AppHistoryEntry",
    "DeployLocks",
    "DeploymentDatabase",
    "DeploymentHandle",
    "DeploymentRecord",
    "DeploymentRepository",
    "DeploymentSummary",
    "DeploymentTracker",
    "HelmReleaseRecord",
    "ImportResult",
    "LockHandle",
    "LockRecord",
    "PruneCandidate",
    "PrunePlan",
    "RekeyResult",
    "ResourceInput",
    "ResourceRecord",
    "UnsettledApp",
    "apply_prune",
    "check_lines",
    "describe_holder",
    "dump_line",
    "export_deployments",
    "import_deployments",
    "import_legacy",
    "imported_from",
    "list_deployments",
    "pid_alive",
    "plan_prune",
    "rekey_store",
    "stale_reason",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
