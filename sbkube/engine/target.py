"""The target a command works on, built once per command (Helm's ``action.Configuration``).

``deploy``, ``rollback``, ``uninstall``, ``diff`` and ``status`` each build one
:class:`Target` and take from it what they all share:

* the store (``DeploymentDatabase``) and its repository, hiding the secret keys of
  config.yaml (``secret_keys`` add to the defaults, never replace them);
* the name the target is recorded and locked under, by ONE rule (:func:`recorded_name`):
  config.yaml's ``cluster:`` first, else the cluster's own identity (context and API
  server), and the carrying over of history recorded under an older name
  (:meth:`Target.adopt_renamed`);
* the namespace, and each app's last successful recording there (:meth:`Target.last_applied`);
* the notes: what the command tells the user along the way (kept for its result, and
  passed to the progress callback as they come);
* the lock and the deployment record (:meth:`Target.run`): the target's deploy lock
  (waiting, or taking over a dead holder's), the recovery of what an earlier run left
  behind (``recovery``), then the tracked deployment the command's apps are recorded on.

So a deployment made with ``cluster: prod`` in config.yaml is found, shown, diffed,
removed and rolled back under ``prod``, by every command, under the same lock.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sbkube.model import Command
from sbkube.redaction import DEFAULT_SECRET_KEYS
from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker

if TYPE_CHECKING:
    from sbkube.cluster.port import Cluster
    from sbkube.config.loader import LoadedConfig
    from sbkube.state import AppDeploymentRecord, DeploymentHandle, LockHandle

Notify = Callable[[str], None]
StoreArg = DeploymentDatabase | str | os.PathLike[str] | None


def open_database(db: StoreArg) -> DeploymentDatabase:
    """The store ``db`` names (a database, a URL or path, None: the default)."""
    return db if isinstance(db, DeploymentDatabase) else DeploymentDatabase(db)


def recorded_name(cluster: Cluster, configured: str | None = None) -> str:
    """The name a deployment to ``cluster`` is recorded and locked under: config.yaml's
    ``cluster:`` when set, else the cluster's own identity (context and API server)."""
    return configured or cluster.name


def config_record(loaded: LoadedConfig, command_args: Sequence[str] = ()) -> dict[str, Any]:
    """What a deployment made from an app dir records about its input: the app dir, the
    config file and its snapshot, the sources, and the command line."""
    from sbkube.config import sources_snapshot

    return {
        "app_dir": str(loaded.app_dir),
        "config": loaded.snapshot,
        "config_file": str(loaded.config_path),
        "sources": sources_snapshot(loaded),
        "command_args": list(command_args),
    }


@dataclass(slots=True)
class Target:
    """One command's target: where it records, what it is recorded as, and how it notes.

    Build it with :meth:`open` (or :meth:`of_config` from a loaded app dir).
    """

    cluster: Cluster
    database: DeploymentDatabase
    repo: DeploymentRepository
    name: str
    """The recorded cluster name (:func:`recorded_name`)."""
    namespace: str
    secret_keys: tuple[str, ...]
    progress: Notify | None = None
    messages: list[str] = field(default_factory=list)
    """The notes so far (shared by every :meth:`at` view of the target)."""

    @classmethod
    def open(
        cls,
        cluster: Cluster,
        *,
        db: StoreArg,
        namespace: str,
        configured_cluster: str | None = None,
        secret_keys: Sequence[str] = (),
        progress: Notify | None = None,
    ) -> Target:
        """The target ``namespace`` of ``cluster``, recorded in ``db``;
        ``configured_cluster``: config.yaml's ``cluster:``; ``secret_keys``: its
        ``secret_keys``, added to the defaults."""
        database = open_database(db)
        keys = (*DEFAULT_SECRET_KEYS, *secret_keys)
        return cls(
            cluster=cluster,
            database=database,
            repo=DeploymentRepository(database, secret_keys=keys),
            name=recorded_name(cluster, configured_cluster),
            namespace=namespace,
            secret_keys=keys,
            progress=progress,
        )

    @classmethod
    def of_config(
        cls,
        loaded: LoadedConfig,
        cluster: Cluster,
        *,
        db: StoreArg,
        progress: Notify | None = None,
    ) -> Target:
        """The target an app dir's config.yaml names (its ``cluster:``, ``namespace`` as
        the command line left it, and ``secret_keys``)."""
        config = loaded.config
        return cls.open(
            cluster,
            db=db,
            namespace=config.namespace,
            configured_cluster=config.cluster,
            secret_keys=config.secret_keys or (),
            progress=progress,
        )

    def at(self, namespace: str) -> Target:
        """The same target (store, name, notes) in ``namespace``."""
        return replace(self, namespace=namespace)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.namespace}"

    def note(self, msg: str) -> None:
        """Tell the user ``msg`` now, and keep it for the command's result."""
        self.messages.append(msg)
        if self.progress:
            self.progress(msg)

    def tracker(self) -> DeploymentTracker:
        return DeploymentTracker(self.repo)

    def last_successful_app(self, app: str) -> AppDeploymentRecord | None:
        """``app``'s last successful recording on this target (not a dry run)."""
        return self.repo.last_successful_app(cluster=self.name, namespace=self.namespace, app=app)

    def last_applied(self, apps: Iterable[str]) -> dict[str, AppDeploymentRecord | None]:
        """Each app's last successful recording on this target: what it left in place."""
        return {app: self.last_successful_app(app) for app in apps}

    def adopt_renamed(self) -> int:
        """Carry over the history sbkube recorded for this target under its old name.

        Before a cluster's identity named its API server (and before config.yaml's
        ``cluster:`` was read), deployments were recorded under the kube context alone
        (``"memory"`` for the memory cluster). When this target has no deployments yet,
        those become its own, so pruning, dry runs and rollbacks find them. Returns how
        many were carried over.
        """
        from sbkube.cluster.kube import KubeCluster

        cluster = self.cluster
        old = cluster.context_name if isinstance(cluster, KubeCluster) else cluster.name
        moved = self.repo.adopt_target(
            old_cluster=old, new_cluster=self.name, namespace=self.namespace
        )
        if moved:
            self.note(
                f"recorded {moved} earlier deployment(s) of {old}/{self.namespace} as "
                f"{self.label}: the cluster's recorded name now tells apart clusters that "
                "share a context name"
            )
        return moved

    def settle(self, helm_apps: Iterable[tuple[str, str, str]]) -> list[str]:
        """Settle from the cluster the Helm revisions lost store writes hid
        (``recovery.settle_releases``); ``helm_apps``: (app, release, release namespace)."""
        from sbkube.engine.recovery import settle_releases

        return settle_releases(
            self.database,
            self.repo,
            self.cluster,
            self.name,
            self.namespace,
            helm_apps,
            notify=self.note,
        )

    @contextmanager
    def locked(
        self, *, command: str, wait_lock: float, releases: Iterable[tuple[str, str]] = ()
    ) -> Iterator[LockHandle]:
        """Hold the target's deploy lock, after recovering what an earlier run left behind.

        Waits up to ``wait_lock`` seconds for a live holder and takes over a dead one's
        (both said in a note); then marks the target's orphaned deployments
        ``interrupted`` and rolls back the Helm ``releases`` (name, namespace) left
        pending. The lock is released when the block ends.
        """
        from sbkube.engine.recovery import mark_interrupted_deployments, recover_pending_releases
        from sbkube.state import DeployLocks, describe_holder

        lock = DeployLocks(self.database).acquire(
            self.name,
            self.namespace,
            command=command,
            wait=wait_lock,
            on_wait=lambda h: self.note(
                f"waiting up to {wait_lock:g}s for the lock: {describe_holder(h)}"
            ),
            on_takeover=lambda h, why: self.note(
                f"took over the lock of {self.label} from {describe_holder(h)}: {why}"
            ),
        )
        with lock:
            mark_interrupted_deployments(
                self.repo, cluster=self.name, namespace=self.namespace, notify=self.note
            )
            recover_pending_releases(self.cluster, releases, notify=self.note)
            yield lock

    @contextmanager
    def run(
        self,
        *,
        command: Command,
        wait_lock: float = 0.0,
        releases: Iterable[tuple[str, str]] = (),
        dry_run: bool = False,
        **record: Any,
    ) -> Iterator[DeploymentHandle]:
        """One deployment of this target: the handle its apps are recorded on.

        A real run holds the target's lock (:meth:`locked`) for as long as the block
        runs, and the lock names the deployment; a dry run takes no lock. ``record``:
        what the deployment records beside the target (``config_record``,
        ``rollback_target_id``...).
        """
        tracker = self.tracker()
        track = {
            "cluster": self.name,
            "namespace": self.namespace,
            "command": command,
            "secret_keys": self.secret_keys,
            **record,
        }
        if dry_run:
            with tracker.track_deployment(dry_run=True, **track) as dep:
                yield dep
            return
        with (
            self.locked(command=str(command), wait_lock=wait_lock, releases=releases) as lock,
            tracker.track_deployment(**track) as dep,
        ):
            lock.set_deployment(dep.deployment_id)
            yield dep
