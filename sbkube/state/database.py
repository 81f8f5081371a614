"""DeploymentDatabase: where the state store lives, and how sessions are opened on it.

``DeploymentDatabase(url_or_path=None)`` accepts a filesystem path or an SQLAlchemy URL
(``sqlite:///…``, ``postgresql+psycopg://…``). With neither, ``SBKUBE_STATE_URL`` is used,
else ``$XDG_STATE_HOME/sbkube/state.db`` (``~/.local/state/sbkube/state.db``), created
with mode 0600 in a 0700 directory: the store holds what was deployed, and by whom.

SQLite specifics: WAL journal, foreign keys on, a busy timeout, and writers take the
write lock when their transaction starts (``BEGIN IMMEDIATE``) so two writers queue on
the busy timeout instead of failing midway with "database is locked" on lock upgrade.
Readers use a deferred ``BEGIN`` and never block writers under WAL. Within one process,
threads (the runner's workers recording their apps at once) queue on a process-local lock
before ``BEGIN IMMEDIATE``: they take turns in order instead of polling SQLite's busy
handler, and the busy timeout is left to other processes. PostgreSQL's writers need no
such turn: each app's transaction writes only its own rows (and reads the deployment's).

Busy timeout: ``DeploymentDatabase(busy_timeout=seconds)``; when not given, the
``SBKUBE_BUSY_TIMEOUT`` environment variable (seconds, e.g. ``5``), else 30 s. It is how
long a writer queues for the SQLite write lock before failing with "locked by another
process", and on PostgreSQL the connect timeout. A value that is not a number of seconds
is a usage error (exit 2).

Read-only stores: a store file this process cannot write (a read-only file, directory or
file system; its ``-wal``/``-shm`` files included) is opened read-only, so read commands
still work on it. SQLite needs the WAL index (``-shm``) to read a WAL store: when the
directory is writable or ``-shm`` exists, the file is opened ``mode=ro`` (it sees what the
WAL holds); when neither, and the WAL is empty or gone, ``immutable=1`` (nothing can be
changing it: no writer could create the index either); when the WAL holds pages but has no
index, a private copy of the file and its WAL is read instead (:attr:`notice` says so).
No WAL switch and no migration run on such a store; a store needing a migration is refused
with one line, and so is every write (``StateError``, exit 1: the store is fine, the
permission is missing). :attr:`read_only` says why the store is read-only.

A full disk is reported as ``no space left on device for state database <path>``, whether
SQLite says "database or disk is full" or, on a file system that is full, "disk I/O
error" (a reader too must create the WAL index, which a full file system refuses). The
transaction was rolled back: the store is as it was.

Schema: Alembic migrations run on open, inside the transaction that holds the write lock
(SQLite) or an advisory lock (PostgreSQL), so concurrent first opens migrate once. The
current revision is read with one query; Alembic itself is only imported when a
migration is actually needed, which keeps read commands fast to start. A database whose
revision this sbkube does not know (written by a newer sbkube) is refused. So is a
``alembic_version`` table holding more than one row (someone edited it): picking one would
migrate or refuse by accident of row order. Both are ``StateError``, exit 1, like every
store that cannot be used as it is: the command line was right, the store is not (exit 2
is for input a user can fix by retyping it).

Sessions are opened in ``sessions.py`` (the unit of work), never here and never outside
``sbkube/state/``: this class holds what they run on, :attr:`engine` (reads),
:attr:`write_engine` (writes: ``BEGIN IMMEDIATE`` on SQLite, after :attr:`write_turn`) and
:attr:`single_read_engine` (one-statement reads, ``views.py``: no BEGIN/COMMIT on SQLite,
a small autocommit pool on PostgreSQL), and says what a database error means
(:meth:`describe_error`). :attr:`engines` lists every engine, for instrumentation. The
store's retry policy is here too: :func:`retried` runs idempotent work again on a fresh
connection when the connection was lost (the migration on open, and every read and write
through ``sessions.py``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    NoSuchModuleError,
)
from sqlalchemy.pool import StaticPool

from sbkube.errors import StateError, StoreFullError, UsageError
from sbkube.interrupts import shielded

#: The newest schema revision this sbkube knows, and every revision it can read.
HEAD_REVISION = "0011"
KNOWN_REVISIONS = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
)

DEFAULT_BUSY_TIMEOUT = 30.0
#: A write that lost its connection is tried this many times in all, within this window.
WRITE_TRIES = 3
WRITE_RETRY_WINDOW = 10.0
# What libpq/psycopg say when the server or the network dropped the connection (SQLAlchemy
# does not recognise every one of them as a disconnect, e.g. idle_session_timeout's).
_LOST_CONNECTION = (
    "terminating connection",
    "server closed the connection",
    "connection is closed",
    "connection not open",
    "consuming input failed",
    "could not receive data",
    "could not send data",
    "connection has been closed",
    "connection is lost",
    "ssl connection has been closed",
    "the connection is bad",
    "connection timed out",
    "connection refused",
    "no connection to the server",
)

T = TypeVar("T")
#: A pooled PostgreSQL connection idle for longer than this is pinged before use.
IDLE_PING_AFTER = 1.0
_MIGRATION_LOCK_KEY = (
    0x5B6B_0BE1  # PostgreSQL advisory lock id for migrations (with the schema's hash)
)


def default_state_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sbkube" / "state.db"


def env_busy_timeout() -> float:
    """``SBKUBE_BUSY_TIMEOUT`` (seconds) when set, else :data:`DEFAULT_BUSY_TIMEOUT`."""
    raw = os.environ.get("SBKUBE_BUSY_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_BUSY_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise UsageError(f"SBKUBE_BUSY_TIMEOUT: {raw!r} is not a number of seconds (e.g. 5)")
    return value


def _is_url(value: str) -> bool:
    return "://" in value or value.startswith("sqlite:")


def _first_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    msg = str(orig).strip().splitlines()
    return msg[0].strip() if msg else type(orig).__name__


def lost_connection(err: BaseException | None) -> bool:
    """Whether ``err`` (or the database error behind a StateError) says the connection to
    the server was lost, so that the same work may be tried again on a fresh one."""
    while err is not None and not isinstance(err, DBAPIError):
        err = err.__cause__
    if err is None:
        return False
    if err.connection_invalidated:
        return True
    text = str(err.orig).lower()
    return any(fragment in text for fragment in _LOST_CONNECTION)


def retried(call: Callable[[], T]) -> T:
    """``call()``, tried again on a fresh connection when the connection was lost, at
    most :data:`WRITE_TRIES` times within :data:`WRITE_RETRY_WINDOW` seconds (for
    idempotent work: reads, the schema check and migration on open, updates)."""
    deadline = time.monotonic() + WRITE_RETRY_WINDOW
    tries = 0
    while True:
        tries += 1
        try:
            return call()
        except StateError as err:
            if not lost_connection(err) or tries >= WRITE_TRIES or time.monotonic() >= deadline:
                raise
        time.sleep(min(0.05 * 2**tries, max(0.0, deadline - time.monotonic())))


def _unwritable(path: Path) -> str | None:
    """Why this process cannot write the SQLite store at ``path`` (with its directory and
    its ``-wal``/``-shm`` files), or None when it can. The path must exist."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    for candidate in (path, path.parent, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if candidate.exists() and not os.access(candidate, os.W_OK):
            what = "directory" if candidate.is_dir() else "file"
            return f"no write permission on {what} {candidate}"
    return None


def _low_on_space(path: Path) -> bool:
    """Whether the file system holding ``path`` has (next to) no space left for us."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _enable_wal(cursor: Any, timeout: float) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another connection holds a lock.

    SQLite does not apply the busy timeout to a journal-mode change: a process that opens
    a brand-new store while another one is migrating it gets "database is locked" at
    once. Retry for as long as the busy timeout allows.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


class DeploymentDatabase:
    """An opened, migrated state store. Cheap to keep for the life of a process."""

    def __init__(
        self,
        url_or_path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout: float | None = None,
        echo: bool = False,
    ) -> None:
        raw = (
            os.fspath(url_or_path)
            if url_or_path is not None
            else os.environ.get("SBKUBE_STATE_URL") or str(default_state_path())
        )
        self.busy_timeout = busy_timeout if busy_timeout is not None else env_busy_timeout()
        self.path: Path | None = None
        #: Why the store is opened read-only (e.g. "read-only file system"); None when not.
        self.read_only: str | None = None
        #: What a user should be told once about how the store was opened (or None).
        self.notice: str | None = None
        self._snapshot: tempfile.TemporaryDirectory[str] | None = None
        #: SQLite: this process's writers (threads) take turns; see the module docstring.
        self.write_turn = threading.RLock()
        url = self._parse(raw)
        if self.path is not None:
            self.read_only = _unwritable(self.path)
            if self.read_only is not None:
                url = self._read_only_url(self.path)
        self._url = url
        self.dialect = url.get_backend_name()
        self.url = url.render_as_string(hide_password=True)
        self.display = str(self.path) if self.path is not None else self.url
        try:
            self.engine = self._create_engine(url, echo=echo)
        except (ArgumentError, NoSuchModuleError, ImportError) as err:
            hint = ""
            if self.dialect == "postgresql" and "psycopg" in str(err):
                hint = (
                    " (PostgreSQL needs the psycopg driver: pip install 'sbkube[postgres]', "
                    "or pip install '.[postgres]' from a checkout)"
                )
            raise StateError(self.plain_error(err) + hint) from err
        #: Writers on SQLite ask for BEGIN IMMEDIATE through this execution option.
        self.write_engine = self.engine.execution_options(sbkube_write=True)
        #: Single-statement reads (``sessions.single_read``): on PostgreSQL a small pool of
        #: autocommit connections, so one statement costs one round trip instead of three
        #: (BEGIN, the statement, ROLLBACK on return); on SQLite the main engine, whose
        #: begin hook skips BEGIN for them. Made now (create_engine does not connect), so
        #: `engines` is complete.
        self.single_read_engine = (
            self._create_engine(url, echo=echo, isolation_level="AUTOCOMMIT", pool_size=1)
            if self.dialect == "postgresql"
            else self.engine
        )
        with shielded():
            retried(self._migrate)

    # -- opening ---------------------------------------------------------------------

    def _parse(self, raw: str) -> URL:
        if not _is_url(raw):
            self.path = self._prepare_file(Path(raw).expanduser())
            return URL.create("sqlite+pysqlite", database=str(self.path))
        try:
            url = make_url(raw)
        except ArgumentError as err:
            raise StateError(f"state database URL {raw!r} is not a valid URL") from err
        backend = url.get_backend_name()
        # postgres:// (Heroku, libpq, most hosting) and postgresql:// mean PostgreSQL through
        # psycopg 3, the supported driver.
        if url.drivername in ("postgres", "postgresql"):
            url = url.set(drivername="postgresql+psycopg")
            backend = url.get_backend_name()
        if backend == "sqlite":
            database = url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                self.path = self._prepare_file(Path(database).expanduser())
                url = url.set(database=str(self.path))
        elif backend != "postgresql":
            raise StateError(
                f"state database URL {url.render_as_string(hide_password=True)}: "
                f"unsupported database {backend!r} (use sqlite or postgresql)"
            )
        return url

    def _read_only_url(self, path: Path) -> URL:
        """How to read a store this process cannot write (see the module docstring)."""
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        query = {"mode": "ro", "uri": "true"}
        if not os.access(path.parent, os.W_OK) and not shm.exists():
            if wal.exists() and wal.stat().st_size > 0:
                # Committed pages sit in a WAL that SQLite cannot index here: read a copy.
                self._snapshot = tempfile.TemporaryDirectory(prefix="sbkube-ro-")
                copy = Path(self._snapshot.name) / path.name
                try:
                    shutil.copyfile(path, copy)
                    shutil.copyfile(wal, f"{copy}-wal")
                except OSError as err:
                    raise StateError(
                        f"state database {path} is read-only ({self.read_only}) and its "
                        f"write-ahead log cannot be read: {err.strerror or err}"
                    ) from err
                self.notice = (
                    f"state database {path} is read-only ({self.read_only}) and its "
                    "write-ahead log has no index; reading a private copy"
                )
                path = copy
            else:
                query["immutable"] = "1"
        return URL.create("sqlite+pysqlite", database=f"file:{quote(str(path))}", query=query)

    @staticmethod
    def _prepare_file(path: Path) -> Path:
        path = path.absolute()
        if path.exists():
            if path.is_dir():
                raise StateError(f"state database {path} is a directory, not a file")
            return path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Create the file ourselves so it is 0600 from its first byte (SQLite would use
            # the umask); the -wal and -shm files inherit the database file's mode.
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as err:
            raise StateError(f"cannot create state database {path}: {err.strerror or err}") from err
        return path

    def _create_engine(self, url: URL, *, echo: bool, **options: Any) -> Engine:
        if url.get_backend_name() == "sqlite":
            kwargs: dict[str, Any] = {}
            if url.database in (None, "", ":memory:"):
                kwargs["poolclass"] = StaticPool
            engine = create_engine(
                url,
                echo=echo,
                connect_args={"timeout": self.busy_timeout, "check_same_thread": False},
                **kwargs,
            )
            busy_ms = int(self.busy_timeout * 1000)
            read_only = self.read_only is not None

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would defer it
                # past the first write, which turns lock waits into SQLITE_BUSY errors).
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                try:
                    cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
                    cur.execute("PRAGMA foreign_keys = ON")
                    if read_only:
                        # Switching the journal is a write: a read-only store stays as is.
                        cur.execute("PRAGMA query_only = ON")
                    else:
                        _enable_wal(cur, self.busy_timeout)
                        cur.execute("PRAGMA synchronous = NORMAL")
                finally:
                    cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                options = conn.get_execution_options()
                if options.get("sbkube_single_read", False):
                    return  # one SELECT is atomic on its own: no BEGIN/COMMIT round trip
                conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sbkube_write") else "BEGIN")

            return engine
        # No pool_pre_ping: it costs a round trip per transaction (a deploy runs ~60). A
        # connection is pinged only when it sat idle in the pool (e.g. during a long
        # `helm --wait`), where a server's idle_session_timeout or a proxy's idle timeout
        # may have closed it; back-to-back transactions pay nothing.
        engine = create_engine(
            url,
            echo=echo,
            pool_recycle=1800,
            connect_args={"connect_timeout": max(1, int(self.busy_timeout))},
            **options,
        )

        @event.listens_for(engine, "checkin")
        def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
            record.info["sbkube_idle_since"] = time.monotonic()

        @event.listens_for(engine, "checkout")
        def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            since = record.info.get("sbkube_idle_since")
            if since is None or time.monotonic() - since < IDLE_PING_AFTER:
                return
            try:
                cur = dbapi_conn.cursor()
                try:
                    cur.execute("SELECT 1")
                finally:
                    cur.close()
            except Exception as err:
                # The pool discards this connection and checks out a fresh one.
                raise DisconnectionError(str(err)) from err

        return engine

    def _migrate(self) -> None:
        try:
            # SQLite: an up-to-date store (the usual case) is recognised in a read
            # transaction, so opening one (every read command does) never queues behind a
            # writer's lock. (Not on PostgreSQL: only a migration holds its advisory lock,
            # and a lookup made before that lock would leave to_regclass a stale answer.)
            if self.dialect == "sqlite":
                with self.engine.begin() as conn:
                    current = self._current_revision(conn)
                    if current == HEAD_REVISION:
                        return
                if self.read_only is not None:
                    raise StateError(self._refuse_migration(current))
            with self.write_engine.begin() as conn:
                if self.dialect == "postgresql":
                    # Keyed by the schema too: stores in other schemas of one database
                    # (one per team, or per test) migrate without queueing behind each other.
                    conn.execute(
                        text(
                            "SELECT pg_advisory_xact_lock("
                            ":k, hashtext(coalesce(current_schema(), '')))"
                        ),
                        {"k": _MIGRATION_LOCK_KEY},
                    )
                current = self._current_revision(conn)
                if current == HEAD_REVISION:
                    return
                if current is not None and current not in KNOWN_REVISIONS:
                    raise StateError(self._unknown_revision(conn, current))
                if current is None and self._has_foreign_tables(conn):
                    raise StateError(
                        f"state database {self.display} has a 'deployments' table but no "
                        "sbkube schema revision; refusing to touch it"
                    )
                self._run_alembic(conn)
        except StateError:
            raise
        except DBAPIError as err:
            raise self.error(err) from err

    def _current_revision(self, conn: Connection) -> str | None:
        if conn.dialect.name == "sqlite":
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).scalar()
        else:
            exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
        if not exists:
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(rows) > 1:
            # Alembic keeps exactly one row; more means someone edited the table, and
            # picking one would migrate (or refuse) by accident of row order.
            raise StateError(
                f"state database {self.display}: alembic_version holds {len(rows)} "
                f"schema revisions ({', '.join(sorted(map(str, rows)))}), expected one; "
                "repair it by hand"
            )
        return rows[0] if rows else None

    def _refuse_migration(self, current: str | None) -> str:
        where = f"state database {self.display} is read-only ({self.read_only})"
        if current is None:
            return f"{where} and holds no sbkube schema yet; open it once with write access"
        if current not in KNOWN_REVISIONS:
            return (
                f"{where} and has schema revision {current}, newer than this sbkube "
                f"understands (latest {HEAD_REVISION}); upgrade sbkube to use it"
            )
        return (
            f"{where} and needs a schema upgrade ({current} -> {HEAD_REVISION}); "
            "open it once with write access"
        )

    def _unknown_revision(self, conn: Connection, current: str) -> str:
        """Why a revision this sbkube does not know is refused: a newer sbkube's (our
        revisions are 4-digit numbers, and a newer one keeps our tables) or another
        application's Alembic history."""
        from sqlalchemy import inspect

        ours = current.isdigit() and len(current) == 4 and current > HEAD_REVISION
        if ours and inspect(conn).has_table("deployments"):
            return (
                f"state database {self.display} has schema revision {current}, "
                f"newer than this sbkube understands (latest {HEAD_REVISION}); "
                "upgrade sbkube to use it"
            )
        return (
            f"state database {self.display} belongs to another application (Alembic "
            f"revision {current!r} is not an sbkube revision); refusing to touch it: "
            "point --state at a database of its own"
        )

    @staticmethod
    def _has_foreign_tables(conn: Connection) -> bool:
        from sqlalchemy import inspect

        return bool(inspect(conn).has_table("deployments"))

    @staticmethod
    def _run_alembic(conn: Connection) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    def plain_error(self, err: BaseException) -> str:
        """One line for an error of the store: where, and what it said."""
        return f"state database {self.display}: {_first_line(err)}"

    def error(self, err: BaseException) -> StateError:
        """The error to raise for a database error: :class:`StoreFullError` when the disk
        is full (a smaller write may still fit), else :class:`StateError`; one line
        (:meth:`describe_error`)."""
        message = self.describe_error(err)
        if self._disk_full(err):
            return StoreFullError(message, space=self._no_space(err))
        return StateError(message)

    def _no_space(self, err: BaseException) -> str:
        return f"no space left on device for state database {self.display} ({_first_line(err)})"

    def _disk_full(self, err: BaseException) -> bool:
        line = _first_line(err)
        # PostgreSQL: DiskFull ("could not extend file ...: No space left on device").
        if getattr(getattr(err, "orig", None), "sqlstate", None) == "53100":
            return True
        return "database or disk is full" in line or (
            "disk I/O error" in line and self.path is not None and _low_on_space(self.path.parent)
        )

    def describe_error(self, err: BaseException) -> str:
        """One line for a database error: what it means for the user (a locked store, a
        full disk, a file that is not a database), else what it said."""
        line = _first_line(err)
        if "file is not a database" in line:
            return f"state database {self.display} is not an SQLite database ({line})"
        if "database is locked" in line:
            return (
                f"state database {self.display} is locked by another process "
                f"(waited {self.busy_timeout:g}s): {line}"
            )
        if self._disk_full(err):
            return f"{self._no_space(err)}; nothing was written: free some space and retry"
        if "readonly database" in line:
            return f"state database {self.display} is read-only: {line}"
        return self.plain_error(err)

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine this store executes on (for instrumentation: statement counts)."""
        if self.single_read_engine is self.engine:
            return (self.engine,)
        return (self.engine, self.single_read_engine)

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()
        if self._snapshot is not None:
            self._snapshot.cleanup()
            self._snapshot = None

    def __enter__(self) -> DeploymentDatabase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DeploymentDatabase({self.display!r})"
