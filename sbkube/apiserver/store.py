"""Where the local API server keeps its objects: memory, watch events and the state file.

Objects are indexed by storage key (group, plural), then namespace, then name, so a get, a
namespaced list or a namespace deletion never scans other kinds. A stored object is never
mutated: every write stores a new dict. That makes a snapshot a shallow list of references,
taken under the lock and serialised outside it, and lets readers serialise stored objects
without copying them.

Every change gets the next value of one global resourceVersion counter and becomes a watch
event, kept in a bounded history (for watches that resume from a resourceVersion) and handed
to the queues of matching watchers.

The state file (``{"format": 2, "resource_version": N, "objects": [...]}``) is written
atomically (temp file, fsync, os.replace) by a background flusher at most every
``FLUSH_INTERVAL`` seconds after a change, and on ``flush()``; never once per object. Each
change is first appended to ``FILE.journal`` (before it is made, so before it is answered),
which the next load replays and each save compacts: the file and its journal never hold less
than what was acknowledged, whenever the process dies. While a process serves a file it holds
an fcntl lock on ``FILE.lock``, which names the pid, URL and command, so a second server on
the same file is refused with one line that says where to go.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbkube.errors import ClusterError, ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - no advisory locks on Windows
    fcntl = None  # type: ignore[assignment]

FORMAT = 2
FLUSH_INTERVAL = 0.2
HISTORY = 50_000

Obj = dict[str, Any]
Key = tuple[str, str]  # (group, plural)


@dataclass(frozen=True, slots=True)
class Event:
    """One change: ADDED, MODIFIED or DELETED, with the object as it then was."""

    resource_version: int
    type: str
    key: Key
    namespace: str
    obj: Obj


class Watcher:
    """One watch request's view of the event stream: a queue and the filter it wants."""

    CLOSED = None  # put on the queue when the server stops

    def __init__(
        self, key: Key, namespace: str | None, predicate: Callable[[Obj], bool] | None
    ) -> None:
        self.key = key
        self.namespace = namespace
        self.predicate = predicate
        self.queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()

    def wants(self, event: Event) -> bool:
        if event.key != self.key:
            return False
        if self.namespace is not None and event.namespace != self.namespace:
            return False
        return self.predicate is None or self.predicate(event.obj)


def without_nulls(value: Any) -> Any:
    """A deep copy of JSON-shaped data without the map entries set to null: what a server
    stores of a written object (a typed field sent as null is simply not set)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (several times faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def _namespace_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


class Store:
    """Objects by (group, plural) -> namespace -> name; one lock for every read-modify-write."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.resource_version = 0
        self._objects: dict[Key, dict[str, dict[str, Obj]]] = {}
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._watchers: set[Watcher] = set()
        self.dirty = threading.Event()
        # Set by a server with a file: every change is appended there before it is made.
        self.journal: Journal | None = None

    # Reads (callers hold self.lock for consistency across calls, or accept one-call views).

    def get(self, key: Key, namespace: str, name: str) -> Obj | None:
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def select(self, key: Key, namespace: str | None) -> list[Obj]:
        by_namespace = self._objects.get(key, {})
        if namespace is not None:
            return list(by_namespace.get(namespace, {}).values())
        return [obj for names in list(by_namespace.values()) for obj in list(names.values())]

    def keys(self) -> list[Key]:
        return list(self._objects)

    def namespaced_in(self, namespace: str) -> Iterator[tuple[Key, Obj]]:
        """Every object in ``namespace``, of every kind."""
        for key, by_namespace in list(self._objects.items()):
            for obj in list(by_namespace.get(namespace, {}).values()):
                yield key, obj

    def all(self) -> list[tuple[Key, Obj]]:
        with self.lock:
            return [
                (key, obj)
                for key, by_namespace in self._objects.items()
                for names in by_namespace.values()
                for obj in names.values()
            ]

    # Writes (callers hold self.lock).

    def next_version(self) -> int:
        self.resource_version += 1
        return self.resource_version

    def put(self, key: Key, obj: Obj, event_type: str) -> None:
        """Stores ``obj`` (which already carries its new resourceVersion) and publishes it."""
        namespace = _namespace_of(obj)
        name = obj["metadata"]["name"]
        event = Event(int(obj["metadata"]["resourceVersion"]), event_type, key, namespace, obj)
        if self.journal is not None:
            self.journal.append(event)
        self._objects.setdefault(key, {}).setdefault(namespace, {})[name] = obj
        self._publish(event)

    def remove(self, key: Key, obj: Obj) -> None:
        """Removes the object ``obj`` names; ``obj`` is its final state, with a new version."""
        namespace = _namespace_of(obj)
        event = Event(int(obj["metadata"]["resourceVersion"]), "DELETED", key, namespace, obj)
        if self.journal is not None:
            self.journal.append(event)
        names = self._objects.get(key, {}).get(namespace, {})
        names.pop(obj["metadata"]["name"], None)
        if not names:
            self._objects.get(key, {}).pop(namespace, None)
        self._publish(event)

    def load(self, resource_version: int, objects: Iterable[tuple[Key, Obj]]) -> None:
        with self.lock:
            self.resource_version = resource_version
            for key, obj in objects:
                name = obj["metadata"]["name"]
                self._objects.setdefault(key, {}).setdefault(_namespace_of(obj), {})[name] = obj

    def _publish(self, event: Event) -> None:
        self._history.append(event)
        for watcher in self._watchers:
            if watcher.wants(event):
                watcher.queue.put(event)
        self.dirty.set()

    # Watches.

    def subscribe(self, watcher: Watcher, since: int | None) -> list[Event] | None:
        """Registers ``watcher``; with ``since``, returns the stored events after it.

        Returns None when the history no longer reaches back to ``since`` (the client must
        list again: 410 Expired).
        """
        with self.lock:
            self._watchers.add(watcher)
            if since is None:
                return []
            history = self._history
            if history and history[0].resource_version > since + 1 and len(history) == HISTORY:
                return None  # the events after ``since`` are no longer all kept
            return [e for e in self._history if e.resource_version > since and watcher.wants(e)]

    def unsubscribe(self, watcher: Watcher) -> None:
        with self.lock:
            self._watchers.discard(watcher)

    def close_watchers(self) -> None:
        with self.lock:
            for watcher in self._watchers:
                watcher.queue.put(Watcher.CLOSED)

    def snapshot(self) -> dict[str, Any]:
        """The state file's content; shares the (immutable) stored objects."""
        with self.lock:
            self.dirty.clear()
            return {
                "format": FORMAT,
                "resource_version": self.resource_version,
                "objects": [obj for _, obj in self.all()],
            }


class StateFile:
    """The JSON file behind a store, and the lock that makes one server its only user."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._lock_fd: int | None = None
        self._write_lock = threading.Lock()

    def acquire(self) -> None:
        """Takes ``FILE.lock`` or raises ClusterError naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = self._holder(fd)
                os.close(fd)
                raise ClusterError(
                    f"{self.path} is served by pid {holder.get('pid', '?')} at "
                    f"{holder.get('url', '?')} ({holder.get('command', '?')}); "
                    "point --kubeconfig at its kubeconfig instead"
                ) from None
        self._lock_fd = fd

    @staticmethod
    def _holder(fd: int) -> dict[str, Any]:
        try:
            raw = os.pread(fd, 65536, 0)
            holder = json.loads(raw.decode("utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def announce(self, url: str, command: str) -> None:
        """Writes who serves the file into the lock file, for the refusal message."""
        if self._lock_fd is None:
            return
        info = json.dumps({"pid": os.getpid(), "url": url, "command": command}).encode()
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, info, 0)

    def release(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def read(self) -> tuple[int, list[Obj]]:
        """(resource_version, objects) from the file; a missing file is an empty cluster."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return 0, []
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{self.path}: cannot read the memory cluster file: {err}") from None
        if not raw.strip():
            return 0, []
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise ConfigError(
                f"{self.path}: not a memory cluster file (invalid JSON: {err})"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path}: not a memory cluster file (expected a JSON object)")
        if data.get("format") != FORMAT:
            if "format" not in data and ("objects" in data or "releases" in data):
                raise ConfigError(
                    f"{self.path}: a format-1 memory cluster file (written by an older sbkube); "
                    "this version keeps Helm's releases in the cluster and cannot read it: "
                    "redeploy into a new file"
                )
            raise ConfigError(
                f"{self.path}: not a memory cluster file (format {data.get('format')!r}, "
                f"expected {FORMAT})"
            )
        objects = data.get("objects")
        version = data.get("resource_version")
        if not isinstance(objects, list) or not isinstance(version, int):
            raise ConfigError(
                f"{self.path}: not a memory cluster file ('objects' must be a list and "
                "'resource_version' an integer)"
            )
        for index, obj in enumerate(objects):
            metadata = obj.get("metadata") if isinstance(obj, dict) else None
            if not isinstance(metadata, dict) or not metadata.get("name") or not obj.get("kind"):
                raise ConfigError(
                    f"{self.path}: objects[{index}] is not a Kubernetes object "
                    "(kind and metadata.name are required)"
                )
        return version, objects

    def write(self, snapshot: Mapping[str, Any]) -> None:
        """Replaces the file atomically with ``snapshot``."""
        text = json.dumps(snapshot, separators=(",", ":"))
        with self._write_lock:
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise


class Journal:
    """``FILE.journal``: every change since the last snapshot, one JSON line each.

    A change is appended (one ``write`` of the whole line, straight to the file, no buffer
    in this process) before the store makes it, so before the client hears of it: a process
    killed at any moment leaves every acknowledged change in the snapshot or the journal.
    Per-write fsync is not done (it would cost every write a disk flush); a crash of the
    machine itself can lose the writes since the last snapshot, which is fsynced.

    Lines are ``{"rv": N, "type": "ADDED"|"MODIFIED"|"DELETED", "key": [group, plural],
    "namespace": ns, "name": name, "object": {...}}`` (no object for DELETED). Replay skips
    lines at or below the snapshot's resourceVersion (a snapshot written, the journal not yet
    compacted) and a torn last line (a write cut short by the kill, so never acknowledged).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        # While True, changes wait in _pending for the first real one: the namespaces every
        # cluster starts with are no write to save, yet once there is one, kube-system's
        # uid (the cluster's identity) must outlive a kill as well.
        self.deferring = False
        self._pending: list[Event] = []

    def append(self, event: Event) -> None:
        """Writes one change (caller holds the store lock)."""
        if self.deferring:
            self._pending.append(event)
            return
        pending, self._pending = self._pending, []
        for earlier in pending:
            self._write(earlier)
        self._write(event)

    def _write(self, event: Event) -> None:
        record: dict[str, Any] = {
            "rv": event.resource_version,
            "type": event.type,
            "key": list(event.key),
            "namespace": event.namespace,
            "name": event.obj["metadata"]["name"],
        }
        if event.type != "DELETED":
            record["object"] = event.obj
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def mark(self) -> int:
        """The journal's length now: what a snapshot taken now holds (caller holds the lock)."""
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def compact(self, mark: int) -> None:
        """Drops the first ``mark`` bytes, which a written snapshot holds (caller holds the
        store lock, so nothing is appended meanwhile). The rest is written to a temp file
        that replaces the journal, so a kill midway leaves one or the other whole."""
        self._pending.clear()  # the snapshot holds them
        try:
            with open(self.path, "rb") as handle:
                handle.seek(mark)
                rest = handle.read()
        except FileNotFoundError:
            return
        self.close()
        if not rest:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(rest)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self, after: int) -> list[dict[str, Any]]:
        """The journal's changes above resourceVersion ``after``, in order."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise ConfigError(
                f"{self.path}: cannot read the memory cluster journal: {err}"
            ) from None
        # The piece after the last newline is empty, or a write that a kill cut short (and
        # so never answered): it is left out.
        complete = raw.split(b"\n")[:-1]
        records = []
        for number, line in enumerate(complete, 1):
            try:
                record = json.loads(line)
                rv = int(record["rv"])
                if record["type"] != "DELETED" and not isinstance(record.get("object"), dict):
                    raise ValueError("no object")
                key = record["key"]
                record["key"] = (str(key[0]), str(key[1]))
            except (ValueError, KeyError, TypeError, IndexError) as err:
                raise ConfigError(
                    f"{self.path}: line {number} is not a journal record ({err}); "
                    "move the journal away to open the cluster as of its last snapshot"
                ) from None
            if rv > after:
                records.append(record)
        return records


class Flusher:
    """Writes the store to its file in the background, at most every FLUSH_INTERVAL seconds,
    then drops from the journal what the file now holds."""

    def __init__(self, store: Store, state_file: StateFile, journal: Journal) -> None:
        self._store = store
        self._file = state_file
        self._journal = journal
        self._stopping = threading.Event()
        self._last_duration = 0.0
        # One flush at a time: an older snapshot must never replace a newer one.
        self._flushing = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="apiserver-flush", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def flush(self) -> None:
        with self._flushing:
            with self._store.lock:
                snapshot = self._store.snapshot()
                mark = self._journal.mark()
            self._file.write(snapshot)
            with self._store.lock:
                self._journal.compact(mark)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._store.dirty.wait()
            if self._stopping.is_set():
                return
            # Batch the writes of the next moment into one file write; a big file waits
            # longer, so that writing it never takes more than a fifth of the server's time.
            self._stopping.wait(max(FLUSH_INTERVAL, 4 * self._last_duration))
            started = time.perf_counter()
            try:
                self.flush()
            except OSError as err:  # a full disk must not kill the server; stop() retries
                sys.stderr.write(f"sbkube memory cluster: cannot save {self._file.path}: {err}\n")
                self._stopping.wait(1.0)
            self._last_duration = time.perf_counter() - started

    def stop(self) -> None:
        """Stops the thread and writes the final state."""
        # Callers stop serving first, so nothing changes after this look.
        # A server nobody wrote to leaves no file behind (bad input must not touch it).
        pending = self._store.dirty.is_set()
        self._stopping.set()
        self._store.dirty.set()  # wakes the thread, which then sees _stopping
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if pending:
            self.flush()
        self._journal.close()
