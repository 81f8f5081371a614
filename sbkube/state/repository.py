"""DeploymentRepository: the store's two sides under the one name callers use.

The write side (:class:`~sbkube.state.writes.DeploymentWriter`, what the tracker records
through) and the read side (:class:`~sbkube.state.reads.DeploymentReader`, beside the
ORM-free ``views.py``) are apart; a caller that both reads and writes a deployment's
record (the engine's target, recovery, the CLI, tests) holds one object with both. Every
method opens its own session, does its work in one transaction and returns frozen
records (see the two modules).
"""

from __future__ import annotations

from collections.abc import Sequence

from sbkube.state.database import DeploymentDatabase
from sbkube.state.reads import DeploymentReader
from sbkube.state.writes import DeploymentWriter


class DeploymentRepository(DeploymentReader, DeploymentWriter):
    """Reads and writes deployment state; returns frozen records only."""

    def __init__(self, db: DeploymentDatabase, *, secret_keys: Sequence[str] | None = None) -> None:
        DeploymentWriter.__init__(self, db, secret_keys=secret_keys)
