"""The unit of work: how code inside ``sbkube/state/`` opens a transaction on the store.

:class:`~sbkube.state.database.DeploymentDatabase` says where the store lives (its
engines, its schema); this module owns the lifecycle of what runs on it, as SQLAlchemy's
"Session Basics" advises (the session's lifecycle apart from the functions that read and
write data). Every module of the package that touches rows (the write and read sides,
locks, retention, transfer, the ORM-free ``views.py``) opens its transactions here:

* :func:`read_session`: a session in a read (deferred) transaction, ended and closed on
  exit;
* :func:`single_read`: a Core connection for a read that is ONE statement (no
  BEGIN/COMMIT on SQLite, an autocommit pool on PostgreSQL: one round trip);
* :func:`write_session`: a session in a write transaction (``BEGIN IMMEDIATE`` on
  SQLite, after this process's other writers), committed on success, rolled back on
  error;
* :func:`run_write`: ``work(session, retry)`` in a write transaction, run again on a
  fresh connection when the connection was lost (:func:`retried`, the store's retry
  policy, defined with the store in ``database.py``);
* :func:`retry_idempotent`: marks a read, or an update that sets what it sets, as safe to
  run again whole when its connection is lost.

Every one of them ends in commit or rollback and gives its connection back, on success
and on error (``tests/unit/state/test_session_management.py``); a database error leaves as
a :class:`~sbkube.errors.StateError` with one line. These names are public to the
package, not its door: ``sbkube.state`` does not export them, so a session never leaves
``sbkube/state/``, and neither does an ORM instance.

Nothing here imports ``sqlalchemy.orm`` until a session is opened: ``state list`` reads
through :func:`single_read` without it.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from sbkube.errors import StateError
from sbkube.interrupts import shielded
from sbkube.state.database import retried

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session, sessionmaker

    from sbkube.state.database import DeploymentDatabase

__all__ = [
    "read_session",
    "retried",
    "retry_idempotent",
    "run_write",
    "single_read",
    "write_session",
]

T = TypeVar("T")
P = ParamSpec("P")

# Session factories, made on a store's first session: sqlalchemy.orm is a sizeable import
# that the ORM-free read path (``state list``, see views.py) never needs.
_factories: weakref.WeakKeyDictionary[
    DeploymentDatabase, tuple[sessionmaker[Session], sessionmaker[Session]]
] = weakref.WeakKeyDictionary()
_factories_lock = threading.Lock()


def _sessionmakers(
    db: DeploymentDatabase,
) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """(reader, writer) session factories of ``db``."""
    made = _factories.get(db)
    if made is None:
        from sqlalchemy.orm import sessionmaker

        with _factories_lock:
            made = _factories.get(db)
            if made is None:
                made = _factories[db] = (sessionmaker(db.engine), sessionmaker(db.write_engine))
    return made


@contextmanager
def read_session(db: DeploymentDatabase) -> Iterator[Session]:
    """A session in a read (deferred) transaction, ended and closed on exit."""
    # Shielded as a whole, returning the connection to the pool included (a rollback
    # on PostgreSQL): a signal is raised only once the connection is idle again.
    with shielded():
        session = _sessionmakers(db)[0]()
        try:
            with session.begin():
                yield session
        except DBAPIError as err:
            raise db.error(err) from err
        except SQLAlchemyError as err:
            raise StateError(db.plain_error(err)) from err
        finally:
            session.close()


@contextmanager
def single_read(db: DeploymentDatabase) -> Iterator[Connection]:
    """A Core connection for a hot read path that runs exactly ONE statement
    (``list()``): no ORM object is built, and on SQLite no BEGIN/COMMIT is sent, since
    a single SELECT is a consistent snapshot by itself. Returned to the pool on exit."""
    try:
        with (
            shielded(),
            db.single_read_engine.connect() as raw,
            raw.execution_options(sbkube_single_read=True).begin() as _,
        ):
            yield raw
    except DBAPIError as err:
        raise db.error(err) from err


@contextmanager
def write_session(db: DeploymentDatabase) -> Iterator[Session]:
    """A session in a write transaction: committed on success, rolled back on error."""
    if db.read_only is not None:
        raise StateError(
            f"state database {db.display} is read-only ({db.read_only}); "
            "this command needs to write to it"
        )
    # SQLite: this process's writers (threads) take turns; see database.py.
    turn = db.write_turn if db.dialect == "sqlite" else nullcontext()
    with shielded(), turn:
        session = _sessionmakers(db)[1]()
        try:
            with session.begin():
                yield session
        except DBAPIError as err:
            raise db.error(err) from err
        finally:
            session.close()


def run_write(
    db: DeploymentDatabase, work: Callable[[Session, bool], T], *, replay: bool = False
) -> T:
    """Run ``work(session, retry)`` in a write transaction; when the connection is lost
    (PostgreSQL: server restart, ``pg_terminate_backend``, ``idle_session_timeout``, a
    proxy's idle timeout), run it again on a fresh connection (:func:`retried`).

    ``retry`` is True on a second or later try: the first one may have committed
    before its connection went (the acknowledgement is what got lost), so ``work``
    must then look before it inserts. Updates are idempotent as they are. ``replay``
    makes the first try look too: the tracker replays a write that failed earlier in
    the run (its last try may have committed).
    """
    tries = 0

    def once() -> T:
        nonlocal tries
        tries += 1
        with write_session(db) as session:
            return work(session, replay or tries > 1)

    return retried(once)


def retry_idempotent(method: Callable[P, T]) -> Callable[P, T]:
    """Mark an idempotent use of the store (a read, or an update that sets what it sets: a
    method of an object with ``.db``, or a function whose first argument is the store)
    as safe to run again: when its connection is lost it runs again, whole, on a fresh
    one, as writes do (:func:`retried`)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return retried(lambda: method(*args, **kwargs))

    return wrapper
