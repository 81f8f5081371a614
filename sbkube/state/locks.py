"""One deploy or rollback at a time per target, across processes and machines.

A lock is a row in ``deploy_locks`` keyed by ``cluster/namespace``, so every process that
shares a store (one SQLite file, or one PostgreSQL database across machines) sees it. The
row names its holder — operator, host, pid, command, deployment — and carries a lease:
a background thread renews ``expires_at`` every ``lease/3`` seconds while the holder runs.

The heartbeat renews only while the holder says its run is ``alive`` (a callable given to
:meth:`DeployLocks.acquire`; the engine's says no once a call to the cluster outlived its
deadline and could not be stopped): a stuck run's lease then runs out like a dead one's,
instead of keeping the target locked for ever.

A lock is *stale*, and is taken over with a message, when its lease expired (the holder
stopped renewing: killed, frozen, or its machine is gone), or when its holder ran on
this host and that pid no longer exists (caught at once, no lease wait). Like Terraform's
state locks, a live holder is named in the error so the second operator knows whom to ask.

Acquiring is one short write transaction (``BEGIN IMMEDIATE`` on SQLite; a row lock or a
primary-key conflict on PostgreSQL), retried while ``wait`` seconds remain.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from sbkube.errors import LockError, StateError, UsageError
from sbkube.state.database import DeploymentDatabase
from sbkube.state.identity import current_host, current_operator, lock_target
from sbkube.state.reads import clusters_named
from sbkube.state.records import LockRecord
from sbkube.state.rows import lock_record
from sbkube.state.schema import DeployLock, Deployment
from sbkube.state.sessions import read_session, retried, retry_idempotent, run_write, write_session

DEFAULT_LEASE_SECONDS = 60.0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed child not yet reaped) holds nothing: treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def describe_holder(rec: LockRecord) -> str:
    since = rec.acquired_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    what = f"{rec.command or 'deploy'}"
    dep = f" ({rec.deployment_id})" if rec.deployment_id else ""
    return f"{what}{dep} by {rec.operator}@{rec.host} pid {rec.pid} since {since}"


def stale_reason(rec: LockRecord, now: datetime, host: str) -> str | None:
    if rec.expires_at <= now:
        return f"its lease expired at {rec.expires_at:%H:%M:%SZ}"
    if rec.host == host and rec.pid is not None and not pid_alive(rec.pid):
        return f"process {rec.pid} on {host} is gone"
    return None


@dataclass
class LockHandle:
    """A held lock. Use as a context manager, or call :meth:`release`."""

    locks: DeployLocks
    target: str
    holder_id: str
    taken_over: LockRecord | None = None
    alive: Callable[[], bool] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start_heartbeat(self) -> None:
        interval = max(0.05, self.locks.lease_seconds / 3)

        def beat() -> None:
            while not self._stop.wait(interval):
                if self.alive is not None and not self.alive():
                    continue  # stuck: the lease runs out, and the lock can be taken over
                try:
                    self.locks._renew(self.target, self.holder_id)
                except Exception:  # the next beat retries; expiry is the safety net
                    continue

        self._thread = threading.Thread(target=beat, name="sbkube-lock-heartbeat", daemon=True)
        self._thread.start()

    def set_deployment(self, deployment_id: str) -> None:
        self.locks._set_deployment(self.target, self.holder_id, deployment_id)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.locks._release(self.target, self.holder_id)

    def __enter__(self) -> LockHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.release()
            return
        # Another exception is on its way out (an interrupt, a store that cannot be
        # written): it says what happened. A release that fails now leaves a lock whose
        # holder is gone, which the next command takes over.
        with contextlib.suppress(StateError):
            self.release()


class DeployLocks:
    """Deploy locks stored in the state database."""

    def __init__(
        self, db: DeploymentDatabase, *, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self.host = current_host()

    @retry_idempotent
    def holder(self, cluster: str, namespace: str) -> LockRecord | None:
        with read_session(self.db) as session:
            row = session.get(DeployLock, lock_target(cluster, namespace))
            return lock_record(row) if row is not None else None

    def all(self) -> list[LockRecord]:
        """Every lock row, live or stale, by target."""
        with read_session(self.db) as session:
            rows = list(session.execute(select(DeployLock).order_by(DeployLock.target)).scalars())
            keys = {row.target.rsplit("/", 1)[0] for row in rows}
            # The name each identity was last recorded under (one query, oldest first so
            # the latest name wins).
            names = (
                dict(
                    session.execute(
                        select(Deployment.cluster_id, Deployment.cluster)
                        .where(Deployment.cluster_id.in_(keys))
                        .order_by(Deployment.id)
                    ).all()
                )
                if keys
                else {}
            )
            return [lock_record(row, _shown(row.target, names)) for row in rows]

    def force_release(self, cluster: str, namespace: str) -> LockRecord | None:
        """Delete a target's lock whatever its holder (``sbkube state unlock --force``).

        For a holder that is alive but stuck (its heartbeat thread keeps the lease fresh),
        like Terraform's ``force-unlock``. Returns the lock that was removed, if any.
        """
        with write_session(self.db) as session:
            # ``cluster`` may be a display name: the lock is under the identity it shows.
            named = session.execute(clusters_named(cluster).distinct()).scalars().all()
            row = None
            for key in dict.fromkeys([cluster, *named]):
                target = lock_target(key, namespace)
                row = session.get(DeployLock, target)
                if row is not None:
                    break
            if row is None:
                return None
            removed = lock_record(row, lock_target(cluster, namespace))
            session.execute(delete(DeployLock).where(DeployLock.target == target))
            return removed

    def acquire(
        self,
        cluster: str,
        namespace: str,
        *,
        command: str = "deploy",
        wait: float = 0.0,
        poll: float = 0.5,
        on_wait: Callable[[LockRecord], None] | None = None,
        on_takeover: Callable[[LockRecord, str], None] | None = None,
        label: str | None = None,
        alive: Callable[[], bool] | None = None,
        asked: float | None = None,
    ) -> LockHandle:
        """Take the lock of (cluster, namespace), waiting up to ``wait`` seconds; its
        heartbeat renews it while ``alive()`` holds (always when None).

        ``cluster`` is the key (the cluster's identity); ``label`` names the target in
        messages (``name/namespace``; default: the key). Raises :class:`LockError` naming
        the holder when it is still held after ``wait``. ``asked``: the wait the user asked
        for, as messages name it (default ``wait``; a run taking several locks passes what
        is left of one bound as ``wait``).
        """
        if not 0 <= wait < float("inf"):  # nan would act as 0, inf would wait for ever
            raise UsageError(f"lock wait must be a finite number of seconds (got {wait!r})")
        target = lock_target(cluster, namespace)
        shown = label or target
        holder_id = secrets.token_hex(8)
        deadline = time.monotonic() + max(0.0, wait)
        told = False
        while True:
            held, taken = self._try_acquire(target, holder_id, command)
            if held is None:
                handle = LockHandle(
                    self, target, holder_id, taken_over=taken[0] if taken else None, alive=alive
                )
                if taken and on_takeover is not None:
                    on_takeover(taken[0], taken[1])
                handle.start_heartbeat()
                return handle
            if time.monotonic() >= deadline:
                if (asked if asked is not None else wait) > 0:
                    raise LockError(
                        f"target {shown} is still locked after waiting "
                        f"{asked if asked is not None else wait:g}s: "
                        f"{describe_holder(held)} (wait longer with a larger --wait-lock, "
                        "or see 'sbkube state locks')"
                    )
                raise LockError(
                    f"target {shown} is locked: {describe_holder(held)} "
                    "(use --wait-lock SECONDS to wait for it)"
                )
            if not told and on_wait is not None:
                on_wait(held)
                told = True
            time.sleep(min(poll, max(0.01, deadline - time.monotonic())))

    def _try_acquire(
        self, target: str, holder_id: str, command: str
    ) -> tuple[LockRecord | None, tuple[LockRecord, str] | None]:
        """One attempt: (None, takeover-info) when acquired, (holder, None) when held."""
        now = datetime.now(UTC)
        fields = {
            "holder_id": holder_id,
            "operator": current_operator(),
            "host": self.host,
            "pid": os.getpid(),
            "command": command,
            "deployment_id": None,
            "acquired_at": now,
            "heartbeat_at": now,
            "expires_at": now + timedelta(seconds=self.lease_seconds),
        }

        def attempt() -> tuple[LockRecord | None, tuple[LockRecord, str] | None]:
            with write_session(self.db) as session:
                stmt = select(DeployLock).where(DeployLock.target == target)
                if self.db.dialect == "postgresql":
                    stmt = stmt.with_for_update()
                row = session.execute(stmt).scalar_one_or_none()
                if row is None:
                    session.add(DeployLock(target=target, **fields))
                    return None, None
                if row.holder_id == holder_id:
                    return None, None  # a try whose connection was lost did take it
                current = lock_record(row)
                reason = stale_reason(current, now, self.host)
                if reason is None:
                    return current, None
                for key, value in fields.items():
                    setattr(row, key, value)
                return None, (current, reason)

        try:
            # Tried again on a fresh connection when the connection is lost, as writes are.
            return retried(attempt)
        except StateError as err:
            if isinstance(err.__cause__, IntegrityError):
                return self._try_acquire(target, holder_id, command)  # lost an insert race
            raise

    def _renew(self, target: str, holder_id: str) -> None:
        now = datetime.now(UTC)
        run_write(
            self.db,
            lambda session, _retry: session.execute(
                update(DeployLock)
                .where(DeployLock.target == target, DeployLock.holder_id == holder_id)
                .values(heartbeat_at=now, expires_at=now + timedelta(seconds=self.lease_seconds))
            ),
        )

    def _set_deployment(self, target: str, holder_id: str, deployment_id: str) -> None:
        run_write(
            self.db,
            lambda session, _retry: session.execute(
                update(DeployLock)
                .where(DeployLock.target == target, DeployLock.holder_id == holder_id)
                .values(deployment_id=deployment_id)
            ),
        )

    def _release(self, target: str, holder_id: str) -> None:
        # Retried on a fresh connection: a lock left behind by a lost connection would
        # block the target until its lease expires.
        run_write(
            self.db,
            lambda session, _retry: session.execute(
                delete(DeployLock).where(
                    DeployLock.target == target, DeployLock.holder_id == holder_id
                )
            ),
        )

    @retry_idempotent
    def is_live(self, cluster: str, namespace: str) -> bool:
        """True when the target's lock is held by a live holder."""
        rec = self.holder(cluster, namespace)
        return rec is not None and stale_reason(rec, datetime.now(UTC), self.host) is None


def _shown(target: str, names: dict[str, str]) -> str:
    """``target`` (``identity/namespace``) with the identity's recorded cluster name."""
    key, _, namespace = target.rpartition("/")
    name = names.get(key)
    return lock_target(name, namespace) if name else target
