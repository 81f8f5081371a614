"""A local Kubernetes API server: enough of the API for the real helm and kubectl.

``ApiServer`` listens on a loopback port over plain HTTP (standard library only) and serves
discovery, OpenAPI, and create/get/list/watch/update/patch/delete of the built-in kinds of
current Kubernetes and of the kinds that stored CustomResourceDefinitions declare. Helm v4
and kubectl 1.33 work against it unmodified, through a kubeconfig it writes; Helm keeps its
releases there as Secrets, as on any cluster. With a path, the objects live in a JSON file,
written atomically in the background, and every write is journaled before it is answered
(so a kill -9 loses nothing acknowledged); the file is locked while served.

What it does not model (it is an API server without a cluster behind it):

* Admission and access: no webhooks, no ResourceQuota, LimitRange or Pod Security
  admission, no authentication or RBAC (any token is accepted).
* Validation is schema validation only (validation.py): types, required fields and enums of
  the built-in kinds (Kubernetes 1.33's schemas), and a CRD's openAPIV3Schema (types,
  required, enum, bounds, lengths, pattern, item counts, nullable). Not checked: the rules
  Kubernetes writes in Go or CEL: names' syntax (``Bad_Name`` is accepted), a selector
  matching its template's labels, immutable fields (a Deployment's selector, a Job's
  template), port ranges, ``x-kubernetes-validations``; nor formats (int32 range, dates,
  base64). Unknown fields are kept: neither pruned, as the real server prunes them, nor
  refused under ``fieldValidation=Strict``. A built-in kind's nulls are dropped from a
  create or update (a null entry of a string map too, which a real server stores as
  ``""``); a custom resource's are kept for its schema's ``nullable`` to judge. A CRD's
  schema defaults are not applied, and the CRD's own schema is not checked for structure.
* No pods or containers run, nothing is scheduled, no Events are written: the readiness
  controller (controller.py) writes the status that ``helm --wait`` and ``kubectl rollout
  status`` accept, at each write and at its ticks; tests hold objects Progressing,
  unready or Degraded by name. No HPA, no controller creates ReplicaSets or Pods of a
  Deployment; the scale subresource only sets the replica count.
* Delete is immediate: no finalizers, no deletionTimestamp, no grace periods, and no
  garbage collection by ownerReferences (only a namespace's contents and a CRD's objects go
  with it).
* Objects are stored at the version they were written and served at any version of their
  kind without conversion.
* Server-side apply is the simplified one of ``patch.py``; lists ignore ``limit``/
  ``continue`` (everything comes in one page); tables have the Name and Age columns only;
  no aggregated discovery, no ``log``/``exec``/``portforward``/``proxy``/``eviction``
  subresources; a watch can resume from the last 50,000 changes only (older: 410 Expired).
* Durability: a write is in the journal before it is answered, so a killed process loses
  nothing it acknowledged; the journal is not fsynced per write, so a crash of the machine
  itself can lose the writes since the last save (which is fsynced).

Fault hooks for tests (fail, block, hang, add latency) are in faults.py; the readiness
controller's holds (unready, Progressing for N ticks or until released, Degraded, a failed
Job) in controller.py, set through the same environment variables or ``hold``/``degrade``/
``release``/``tick`` here.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from sbkube.apiserver.controller import Controller
from sbkube.apiserver.discovery import CRD_GROUP, CRD_PLURAL, Registry
from sbkube.apiserver.faults import (
    DEGRADED_ENV_VAR,
    UNREADY_ENV_VAR,
    Faults,
    names,
    progressing_from_env,
    tick_seconds_from_env,
)
from sbkube.apiserver.resources import Api
from sbkube.apiserver.store import Flusher, Journal, Key, Obj, StateFile, Store, clone
from sbkube.errors import ConfigError

__all__ = ["ApiServer", "serve"]


def _command_line() -> str:
    words = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    text = " ".join(words)
    return text if len(text) <= 120 else text[:117] + "..."


class ApiServer:
    """One local API server; ``start()`` it, point clients at ``kubeconfig_text()``."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        port: int = 0,
        fail_on: set[str] | None = None,
        block_on: set[str] | None = None,
        unready: set[str] | None = None,
        latency_ms: float | None = None,
        hang_on: str | None = None,
        progressing: Mapping[str, int | None] | None = None,
        degraded: set[str] | None = None,
        tick_seconds: float | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.port = port
        self.faults = Faults(fail_on, block_on, latency_ms, hang_on)
        self.controller = Controller(
            names(unready, UNREADY_ENV_VAR),
            progressing_from_env(progressing),
            names(degraded, DEGRADED_ENV_VAR),
        )
        self.tick_seconds = tick_seconds_from_env(tick_seconds)
        self._ticker: threading.Thread | None = None
        self._ticking = threading.Event()
        self.store = Store()
        self.registry = Registry()
        self._file = StateFile(self.path) if self.path is not None else None
        self._journal = (
            Journal(self.path.with_name(self.path.name + ".journal"))
            if self.path is not None
            else None
        )
        self._flusher = (
            Flusher(self.store, self._file, self._journal)
            if self._file is not None and self._journal is not None
            else None
        )
        self.api = Api(self.store, self.registry, self.controller, self.faults, self.flush)
        self._httpd: Any = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Requests served, as "VERB PLURAL" ("list configmaps", "apply services", "get
        # secrets"), other paths (discovery, OpenAPI, version) as "other": what tests count.
        self.requests: Counter[str] = Counter()
        self._requests_lock = threading.Lock()
        # True from loading a file that does not exist yet until keep() is called.
        self._new_file = False

    def count_request(self, what: str) -> None:
        with self._requests_lock:
            self.requests[what] += 1

    def keep(self) -> None:
        """Save a new file even if nothing is ever written to it: a client has recorded
        something under this cluster's identity (its ``kube-system`` UID), which the next
        server on the file must have too. A file that exists already is left to the writes."""
        if self._new_file:
            self._new_file = False
            self.store.dirty.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        """Locks and loads the file, then serves in a daemon thread. Returns self."""
        from sbkube.apiserver.handler import Server

        if self._file is not None:
            self._file.acquire()
        try:
            self._load()
            self._httpd = Server(("127.0.0.1", self.port), self)
        except BaseException:
            if self._file is not None:
                self._file.release()
            raise
        self.port = self._httpd.server_address[1]
        if self._file is not None and self._flusher is not None:
            self._file.announce(self.url, _command_line())
            self._flusher.start()
        # stop() waits for the serving loop to notice; its poll interval is that wait.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="apiserver", daemon=True
        )
        self._thread.start()
        if self.tick_seconds > 0:
            self._ticker = threading.Thread(target=self._tick_forever, name="apiserver-tick",
                                            daemon=True)  # fmt: skip
            self._ticker.start()
        return self

    def _tick_forever(self) -> None:
        while not self._ticking.wait(self.tick_seconds):
            self.tick()

    # The readiness controller's holds (see controller.py) -----------------------------------

    def tick(self) -> int:
        """One controller tick now; returns how many objects' status it changed."""
        return self.api.refresh(self.controller.tick())

    def hold(self, name: str, ticks: int | None = None) -> None:
        """Objects called ``name`` are Progressing, for ``ticks`` ticks or until released."""
        self.controller.hold(name, ticks)
        self.api.refresh({name})

    def degrade(self, name: str) -> None:
        """Objects called ``name`` are Degraded (a Deployment past its deadline, a failed
        Job...) until released."""
        self.controller.degraded.add(name)
        self.api.refresh({name})

    def release(self, name: str) -> None:
        """Objects called ``name`` become ready now, whatever held them."""
        self.controller.release(name)
        self.api.refresh({name})

    def _load(self) -> None:
        replayed = False
        if self._file is not None and self._journal is not None:
            version, objects = self._file.read()
            self._new_file = version == 0 and not objects
            # CRDs first, so the objects of their kinds find their storage keys.
            crds = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
            for crd in crds:
                self.registry.set_crd(crd["metadata"]["name"], crd)
            placed: dict[tuple[Key, str, str], Obj] = {}
            for obj in objects:
                key = self.api.storage_key(obj)
                if key is None:
                    raise ConfigError(
                        f"{self._file.path}: object {obj.get('apiVersion')}/{obj.get('kind')} "
                        f"{obj['metadata']['name']!r} has a kind this server does not serve"
                    )
                namespace = str(obj["metadata"].get("namespace") or "")
                placed[(key, namespace, obj["metadata"]["name"])] = obj
            # Then what was acknowledged after that snapshot.
            for record in self._journal.read(version):
                where = (record["key"], str(record["namespace"]), str(record["name"]))
                if record["type"] == "DELETED":
                    placed.pop(where, None)
                else:
                    placed[where] = record["object"]
                version = int(record["rv"])
                replayed = True
            for crd in crds:
                if ((CRD_GROUP, CRD_PLURAL), "", crd["metadata"]["name"]) not in placed:
                    self.registry.set_crd(crd["metadata"]["name"], None)
            self.store.load(version, [(key, obj) for (key, _, _), obj in placed.items()])
        if self._journal is not None:
            self._journal.deferring = True
            self.store.journal = self._journal
        self.api.bootstrap()
        if self._journal is not None:
            self._journal.deferring = False
        # The namespaces every cluster starts with are not a change to save (of a new file,
        # until a client keeps its identity: keep).
        self.store.dirty.clear()
        if replayed and self._flusher is not None:
            # Fold the journal into the file now: it may end in a torn line, which the next
            # append must not follow.
            self._flusher.flush()

    def stop(self) -> None:
        """Saves the file and stops serving; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._ticking.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
        if self._httpd is not None:
            self.store.close_watchers()
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._flusher is not None:
            self._flusher.stop()
        if self._file is not None:
            self._file.release()

    def __enter__(self) -> ApiServer:
        return self.start() if self._httpd is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def kubeconfig_text(self, context: str = "memory") -> str:
        """A kubeconfig (YAML, written as JSON) for this server: any token will do."""
        import json

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "x"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "preferences": {},
        }
        return json.dumps(config, indent=2) + "\n"

    def write_kubeconfig(self, path: Path, context: str = "memory") -> None:
        """Writes the kubeconfig with mode 0600 (it is a credential file to every client)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.kubeconfig_text(context))
        os.chmod(path, 0o600)

    def objects(self) -> list[dict[str, Any]]:
        """Deep copies of every stored object, Helm's release Secrets included."""
        return [clone(obj) for _, obj in self.store.all()]

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """A deep copy of one object, or None."""
        rtype = self.registry.for_kind(api_version, kind)
        if rtype is None:
            return None
        obj = self.store.get(rtype.key, (namespace or "") if rtype.namespaced else "", name)
        return clone(obj) if obj is not None else None

    def flush(self) -> None:
        """Writes the file now (no-op without a path)."""
        if self._flusher is not None:
            self._flusher.flush()


def serve(path: Path, kubeconfig: Path, *, port: int = 0) -> int:
    """Serves ``path`` in the foreground until SIGINT or SIGTERM; then saves and returns 0."""
    server = ApiServer(Path(path), port=port).start()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.write_kubeconfig(Path(kubeconfig))
        sys.stderr.write(f"serving {path} at {server.url}; kubeconfig {kubeconfig}\n")
        sys.stderr.flush()
        while not stop.wait(3600):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
