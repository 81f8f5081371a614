"""``sbkube state …``: the command group over the deployment history, one module per family.

``read`` (list, show, history), ``diff``, ``report``, ``prune``, ``transfer`` (export, import),
``rekey`` and ``locks`` (locks, unlock) each define plain click commands; this table registers
them and imports a module only when its command runs.
"""

from __future__ import annotations

import click

from sbkube.cli.common import LazyCommand, LazyGroup

_COMMANDS: dict[str, LazyCommand] = {
    "list": LazyCommand(
        "sbkube.cli.state.read", "list_cmd", "List recorded deployments, newest first."
    ),
    "show": LazyCommand(
        "sbkube.cli.state.read",
        "show_cmd",
        "Show one deployment: its apps, Helm releases and resources.",
    ),
    "history": LazyCommand(
        "sbkube.cli.state.read",
        "history_cmd",
        "One app's timeline: every deployment that touched it, newest first.",
    ),
    "diff": LazyCommand(
        "sbkube.cli.state.diff", "diff_cmd", "Show what changed from deployment A to deployment B."
    ),
    "prune": LazyCommand(
        "sbkube.cli.state.prune",
        "prune_cmd",
        "Delete old deployments from the history, per app and target.",
    ),
    "export": LazyCommand(
        "sbkube.cli.state.transfer", "export_cmd", "Write the history as JSON Lines on stdout."
    ),
    "import": LazyCommand(
        "sbkube.cli.state.transfer",
        "import_cmd",
        "Import a history written by `sbkube state export`.",
    ),
    "report": LazyCommand(
        "sbkube.cli.state.report",
        "report_cmd",
        "Write the history as one HTML page: timeline, app histories, details, diffs.",
    ),
    "rekey": LazyCommand(
        "sbkube.cli.state.rekey",
        "rekey_cmd",
        "Re-seal every sealed secret value under a new key, then make it the key.",
    ),
    "locks": LazyCommand(
        "sbkube.cli.state.locks", "locks_cmd", "List deploy locks and whether their holder lives."
    ),
    "unlock": LazyCommand(
        "sbkube.cli.state.locks", "unlock_cmd", "Remove a target's deploy lock (needs --force)."
    ),
}


@click.group(cls=LazyGroup, table=_COMMANDS)
def state() -> None:
    """List, show, diff, report, export and prune recorded deployments; see and clear deploy locks.

    Every deployment sbkube runs (and every rollback) is recorded with its apps, Helm
    releases and resources. These commands read that record.
    """
