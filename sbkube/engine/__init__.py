"""Orchestration over config, cluster port and tracker: deploy, rollback, plan, diff.

``deploy(app_dir, *, cluster, db, apps=None, dry_run=False)`` and
``rollback(db, cluster, *, deployment_id=None, to=None, apps=None, dry_run=False)``
return frozen results. Imported lazily so that ``import sbkube.engine`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DeployResult", "deploy", "rollback"]


def __getattr__(name: str) -> Any:
    if name == "deploy":
        from sbkube.engine.deployer import deploy

        return deploy
    if name == "rollback":
        from sbkube.engine.rollbacks import rollback

        return rollback
    if name == "DeployResult":
        from sbkube.engine.results import DeployResult

        return DeployResult
    raise AttributeError(name)
