"""``sbkube state rekey``: re-seal every sealed secret value of the store under a new key.

The order makes it resumable (``sbkube.sealing``'s rotation): the new key is written
beside the old one, the store is re-sealed in one transaction, and only then does the new
key replace the old. Run it again after it was killed and it finishes.

``SBKUBE_FAULT_REKEY_KILL_AT=N`` (tests) kills the process with SIGKILL at the N-th step:
1 once the new key is written, then one step per value re-sealed (inside the transaction),
then once committed, then once the key file is replaced. A kill point is chosen, not timed.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import click

from sbkube.cli.common import open_db
from sbkube.cli.options import output_option
from sbkube.cli.output import emit

FAULT_ENV = "SBKUBE_FAULT_REKEY_KILL_AT"


class _Steps:
    """Counts the steps of a rotation; kills the process at the one ``FAULT_ENV`` names."""

    def __init__(self) -> None:
        raw = os.environ.get(FAULT_ENV, "")
        self.kill_at = int(raw) if raw.isdigit() else 0
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        if self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


@click.command("rekey")
@output_option
@click.pass_context
def rekey_cmd(ctx: click.Context, fmt: str) -> None:
    """Re-seal every sealed secret value under a new key, then make it the key.

    With the key file (seal.key beside digest.key), a new key is made and replaces the
    old one once the store is re-sealed. With SBKUBE_SEAL_KEY set, give the new key in
    SBKUBE_NEW_SEAL_KEY, then put it in SBKUBE_SEAL_KEY. One transaction; run it again if
    it was interrupted. Whoever shares the store must get the new key.

    \b
    Examples:
      sbkube state rekey
      SBKUBE_NEW_SEAL_KEY=$(openssl rand -hex 32) sbkube state rekey
    """
    from sbkube.sealing import begin_rotation
    from sbkube.state import rekey_store

    db = open_db(ctx)
    step = _Steps()
    rotation = begin_rotation()
    step()
    result = rekey_store(db, rotation.old, rotation.new, step=step)
    step()
    rotation.finish()
    step()
    if fmt != "table":
        data: dict[str, Any] = result.to_dict()
        emit(data, fmt)
        return
    click.echo(
        f"Re-sealed {result.resealed} value(s) under key {result.key_id}"
        + (f" ({result.unchanged} already under it)" if result.unchanged else "")
        + "."
    )
    if result.foreign:
        click.echo(
            f"warning: {result.foreign} value(s) sealed under other keys "
            f"({', '.join(result.foreign_keys)}) were left as they are",
            err=True,
        )
    if rotation.pending is None:
        click.echo("Now set SBKUBE_SEAL_KEY to the value of SBKUBE_NEW_SEAL_KEY.", err=True)
