"""Orchestration over config, cluster port and tracker: deploy, rollback, plan, diff.

``deploy(app_dir, *, cluster, db, apps=None, dry_run=False)``,
``rollback(db, cluster, *, deployment_id=None, to=None, apps=None, dry_run=False)`` and
``uninstall(app_dir, *, cluster, db, apps=None, dry_run=False)`` return frozen results;
all three run their apps through ``runner.run_apps``. ``status.status(app_dir, *, cluster, db)``
reports drift and health (``status.py``), reading only. Each builds one ``target.Target`` and
returns a ``results.TargetResult``. Imported lazily so
that ``import sbkube.engine`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbkube._lazy import lazy_exports

if TYPE_CHECKING:
    from sbkube.engine.deployer import deploy
    from sbkube.engine.results import AppOutcome, DeployResult, TargetResult
    from sbkube.engine.rollback_run import RollbackResult, rollback
    from sbkube.engine.status import DriftReport
    from sbkube.engine.target import Target
    from sbkube.engine.uninstall import UninstallResult, uninstall

_EXPORTS: dict[str, str] = {
    "deploy": "deployer",
    "rollback": "rollback_run",
    "DeployResult": "results",
    "AppOutcome": "results",
    "TargetResult": "results",
    "Target": "target",
    "RollbackResult": "rollback_run",
    "DriftReport": "status",
    "uninstall": "uninstall",
    "UninstallResult": "uninstall",
}

__all__ = [
    "AppOutcome",
    "DeployResult",
    "DriftReport",
    "RollbackResult",
    "Target",
    "TargetResult",
    "UninstallResult",
    "deploy",
    "rollback",
    "uninstall",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
