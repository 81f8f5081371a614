"""One exception family for everything sbkube reports to a user.

Every error carries a user message and an exit code: 2 for bad input or usage (unknown id,
invalid config, refused rollback), 1 for failures of the world (database, cluster, lock
held). The message's first line says what failed and why; a tool's error (helm's schema
check, say) may add detail lines after it, which are never cut. The CLI prints
``error: <first line>`` with the detail lines indented below, and exits with the code; no
traceback unless ``--debug``.
"""

from __future__ import annotations


class SbkubeError(Exception):
    """Base class: ``str(err)`` is the message shown to the user (see the module docstring)."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message

    @property
    def summary(self) -> str:
        """The message's first line: what failed and why, for tables and progress lines."""
        return self.message.split("\n", 1)[0]


class UsageError(SbkubeError):
    """Bad input from the user: arguments, ids, files. Exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """config.yaml (or a file it names) is invalid. The message names the file and the field."""


class FieldRefusals(ConfigError):
    """Several fields of a config refused at once: one line each, naming its file and field
    (the CLI prints every line, the first after ``error:``)."""


class NotFoundError(UsageError):
    """An id or name that the store does not know."""


class RefusedError(UsageError):
    """A request that is understood but refused (e.g. an unsafe rollback without --force)."""


class StateError(SbkubeError):
    """The state database cannot be opened, read or written."""


class StoreFullError(StateError):
    """The store's disk is full: a write did not fit (a smaller one still may).

    ``space`` says where and what the database said, without the advice of the message.
    """

    def __init__(self, message: str, *, space: str) -> None:
        super().__init__(message)
        self.space = space


class LockError(SbkubeError):
    """Another operator holds the deploy lock for the target."""


class ClusterError(SbkubeError):
    """helm, kubectl or the cluster failed."""


class InterruptedDeployment(SbkubeError):
    """The process was asked to stop (SIGTERM / Ctrl-C) in the middle of a deployment."""

    exit_code = 130
