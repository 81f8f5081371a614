"""The target a command works on, built once per command (Helm's ``action.Configuration``).

``deploy``, ``rollback``, ``uninstall``, ``diff`` and ``status`` each build one
:class:`Target` and take from it what they all share:

* the store (``DeploymentDatabase``) and its repository, hiding the secret keys of
  config.yaml (``secret_keys`` add to the defaults, never replace them);
* what the target is recorded and locked under: the cluster's IDENTITY, the UID of its
  ``kube-system`` namespace (``Cluster.identity``; the display name when the cluster
  cannot be read), so a history follows a cluster through any change of address or
  context, and a cluster rebuilt at an old address is a new target; and its display
  NAME, by ONE rule (:func:`recorded_name`): config.yaml's ``cluster:`` first, else
  ``context@host:port``. Reads and the lock go by :attr:`Target.key`, tables show the
  name. History recorded under a name before identities (or under the kube context
  alone, before that) is adopted on first contact (:meth:`Target.adopt_renamed`);
* the namespace, and each app's last successful recording there (:meth:`Target.last_applied`);
* the notes: what the command tells the user along the way (kept for its result, and
  passed to the progress callback as they come);
* the lock and the deployment record (:meth:`Target.run`): the target's deploy lock
  (waiting, or taking over a dead holder's), the recovery of what an earlier run left
  behind (``recovery``), then the tracked deployment the command's apps are recorded on;
* the options every command shares (:class:`Options`: the store, the app selection, the
  config file, ``-n``, dry run, ``--wait-lock``, ``--concurrency``...), declared once:
  a command's keywords are typed by :class:`ReadArgs`/:class:`RunArgs`, so a new shared
  option is one edit here, not one per command.

So a deployment made with ``cluster: prod`` in config.yaml is shown as ``prod`` and found,
diffed, removed and rolled back by every command on that cluster, under one lock, whatever
name another app dir gives the same cluster.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar

from sbkube.engine.results import AppOutcome, TargetResult
from sbkube.engine.runner import DEFAULT_CONCURRENCY, AppStep, check_concurrency, run_apps
from sbkube.errors import RefusedError
from sbkube.model import Command
from sbkube.redaction import DEFAULT_SECRET_KEYS
from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker

if TYPE_CHECKING:
    from sbkube.cluster.port import Cluster
    from sbkube.config.command_line import CommandLineValues
    from sbkube.config.loader import LoadedConfig
    from sbkube.config.phases import PhasesFile
    from sbkube.engine.snapshot import Snapshot
    from sbkube.state import AppDeploymentRecord, DeploymentHandle, LockHandle

Notify = Callable[[str], None]
StoreArg = DeploymentDatabase | str | os.PathLike[str] | None
R = TypeVar("R", bound=TargetResult[Any])


class ReadArgs(TypedDict, total=False):
    """The keywords of every command on an app dir (deploy, diff, status, uninstall)."""

    db: StoreArg
    """The store: a database, a URL or path; None: ``SBKUBE_STATE_URL`` or the default."""
    apps: Sequence[str] | None
    """Only these apps (``--app``); None: all of the app dir's."""
    config_file: str | None
    """The config file's name; None: found in the app dir (``config.dialects``)."""
    profile: str | None
    """``--profile ENV``: the config's ``environments.ENV`` overlay, or the original
    tool's ``sources-ENV.yaml`` (``config.environments``); recorded with the deployment."""
    selectors: Sequence[str]
    """``-l/--selector``: the apps whose labels match (``config.selection``)."""
    no_deps: bool
    """``--no-deps``: the selected apps only, without the apps they need."""
    namespace: str | None
    """``-n``: the target namespace instead of config.yaml's."""


class RenderArgs(ReadArgs, total=False):
    """The keywords of a command that renders what a deploy would apply (deploy, diff)."""

    values: CommandLineValues | None
    """``-f``/``--set`` from the command line."""


class RunArgs(TypedDict, total=False):
    """The keywords of every command that records a deployment (deploy, rollback,
    uninstall)."""

    dry_run: bool
    wait_lock: float
    """How long to wait for a live holder of the target's lock, in seconds."""
    progress: Notify | None
    """Where the notes and the per-app progress go as they come."""
    command_args: Sequence[str]
    """The command line, as recorded."""
    concurrency: int
    """How many apps run at once."""
    no_exec: bool
    """``--no-exec``: refuse exec apps (as ``SBKUBE_ALLOW_EXEC=false`` does)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """A command's options, with their defaults (once, for every command)."""

    db: StoreArg = None
    apps: Sequence[str] | None = None
    config_file: str | None = None
    profile: str | None = None
    selectors: Sequence[str] = ()
    no_deps: bool = False
    namespace: str | None = None
    values: CommandLineValues | None = None
    dry_run: bool = False
    wait_lock: float = 0.0
    progress: Notify | None = None
    command_args: Sequence[str] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    no_exec: bool = False

    def __post_init__(self) -> None:
        check_concurrency(self.concurrency)

    def load(
        self, app_dir: str | os.PathLike[str], *, dependents: bool = False
    ) -> tuple[LoadedConfig, tuple[str, ...]]:
        """The app dir's config (``--profile``, ``-n`` and ``-f``/``--set`` applied) and
        the selected apps (``--app``, or ``-l`` with the apps they need, or with
        ``dependents`` the apps that need them), in deploy order."""
        from sbkube.config import load_config

        loaded = load_config(
            Path(app_dir),
            self.config_file,
            namespace=self.namespace,
            values=self.values,
            profile=self.profile,
        )
        picked = loaded.pick(
            list(self.apps) if self.apps else None,
            self.selectors,
            with_deps=not self.no_deps,
            dependents=dependents,
        )
        return loaded, picked


class Released(Protocol):
    """An app that may be a Helm release (prepared work, or a plan's app)."""

    @property
    def release_name(self) -> str | None: ...

    @property
    def namespace(self) -> str: ...


def open_database(db: StoreArg) -> DeploymentDatabase:
    """The store ``db`` names (a database, a URL or path, None: the default)."""
    return db if isinstance(db, DeploymentDatabase) else DeploymentDatabase(db)


def recorded_name(cluster: Cluster, configured: str | None = None) -> str:
    """The name a deployment to ``cluster`` is recorded and locked under: config.yaml's
    ``cluster:`` when set, else the cluster's own identity (context and API server)."""
    return configured or cluster.name


def config_record(
    loaded: LoadedConfig,
    cluster: Cluster,
    *,
    prepared: Iterable[str] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
) -> dict[str, Any]:
    """What a deployment made from an app dir records about its input: the app dir, the
    config file and its snapshot, and the sources.

    The snapshot holds every app's config, so the secrets of every enabled app are learned
    first, as a full deploy would learn them (:func:`sbkube.engine.prepare.learn_secrets`
    for the apps not ``prepared`` by the command): a partial deploy or an uninstall hides
    what a full deploy hides, in the snapshot and in everything it records after."""
    from sbkube.config import sources_snapshot
    from sbkube.engine.prepare import learn_secrets

    done = set(prepared)
    others = [name for name in loaded.order if name not in done]
    learn_secrets(loaded, others, cluster, concurrency=concurrency)

    return {
        "app_dir": str(loaded.app_dir),
        "config": loaded.snapshot,
        "config_file": str(loaded.config_path),
        "sources": sources_snapshot(loaded),
    }


def confirmed(confirm: Callable[[Any], bool] | None, plan: Any, command: str) -> None:
    """Ask ``confirm`` about ``plan`` (when given); a no is ``RefusedError`` (exit 2)."""
    if confirm is not None and not confirm(plan):
        raise RefusedError(f"{command} cancelled")


@dataclass(frozen=True, slots=True)
class HeldLocks:
    """The locks a command holds (:meth:`Target.locked`), in the order taken."""

    handles: tuple[LockHandle, ...]

    def set_deployment(self, deployment_id: str) -> None:
        for handle in self.handles:
            handle.set_deployment(deployment_id)


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
    options: Options = field(default_factory=Options)
    messages: list[str] = field(default_factory=list)
    """The notes so far (shared by every :meth:`at` view of the target)."""
    identity: str | None = None
    """The cluster's ``kube-system`` UID, None when it could not be read."""

    @classmethod
    def open(
        cls,
        cluster: Cluster,
        *,
        namespace: str,
        configured_cluster: str | None = None,
        secret_keys: Sequence[str] = (),
        options: Options | None = None,
    ) -> Target:
        """The target ``namespace`` of ``cluster``, recorded in ``options.db``;
        ``configured_cluster``: config.yaml's ``cluster:``; ``secret_keys``: its
        ``secret_keys``, added to the defaults."""
        options = options or Options()
        database = open_database(options.db)
        keys = (*DEFAULT_SECRET_KEYS, *secret_keys)
        return cls(
            cluster=cluster,
            database=database,
            repo=DeploymentRepository(database, secret_keys=keys),
            name=recorded_name(cluster, configured_cluster),
            namespace=namespace,
            secret_keys=keys,
            options=options,
            identity=cluster.identity(),
        )

    @classmethod
    def of_config(cls, loaded: LoadedConfig, cluster: Cluster, options: Options) -> Target:
        """The target an app dir's config.yaml names (its ``cluster:``, ``namespace`` as
        the command line left it, and ``secret_keys``)."""
        config = loaded.config
        return cls.open(
            cluster,
            namespace=config.namespace,
            configured_cluster=config.cluster,
            secret_keys=config.secret_keys or (),
            options=options,
        )

    @classmethod
    def of_phases(cls, phases_file: PhasesFile, cluster: Cluster, options: Options) -> Target:
        """The target a multi-dir run is recorded on: the cluster, the file's namespace
        (its ``cluster:`` and ``secret_keys``), whatever the app dirs' namespaces."""
        return cls.open(
            cluster,
            namespace=phases_file.namespace,
            configured_cluster=phases_file.cluster,
            secret_keys=phases_file.secret_keys,
            options=options,
        )

    def at(self, namespace: str) -> Target:
        """The same target (store, name, notes) in ``namespace``."""
        return replace(self, namespace=namespace)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.namespace}"

    @property
    def key(self) -> str:
        """What the target's records and lock go by: the identity, else the name."""
        return self.identity or self.name

    @property
    def progress(self) -> Notify | None:
        return self.options.progress

    def note(self, msg: str) -> None:
        """Tell the user ``msg`` now, and keep it for the command's result."""
        self.messages.append(msg)
        if self.progress:
            self.progress(msg)

    def result(self, kind: type[R], dep: DeploymentHandle | None = None, **fields: Any) -> R:
        """The command's result: this target, the notes, and (for a tracked deployment
        ``dep``) its id and status; ``fields``: the rest."""
        if dep is not None:
            fields.update(
                deployment_id=None if dep.dry_run else dep.deployment_id,
                status=dep.status,
                dry_run=dep.dry_run,
            )
        return kind(
            cluster=self.name, namespace=self.namespace, messages=tuple(self.messages), **fields
        )

    def tracker(self) -> DeploymentTracker:
        return DeploymentTracker(self.repo)

    def last_successful_app(self, app: str) -> AppDeploymentRecord | None:
        """``app``'s last successful recording on this target (not a dry run)."""
        return self.repo.last_successful_app(cluster=self.key, namespace=self.namespace, app=app)

    def failed_since(
        self, app: str, previous: AppDeploymentRecord | None
    ) -> AppDeploymentRecord | None:
        """``app``'s last failed recording on this target when it is newer than
        ``previous`` (its last successful one): the objects it applied before it failed."""
        failed = self.repo.last_successful_app(
            cluster=self.key, namespace=self.namespace, app=app, failed=True
        )
        if failed is None or (
            previous is not None and failed.deployment_id < previous.deployment_id
        ):
            return None
        return failed

    def last_applied(self, apps: Iterable[str]) -> dict[str, AppDeploymentRecord | None]:
        """Each app's last successful recording on this target: what it left in place
        (read at once, whatever the number of apps)."""
        return self.repo.last_successful_apps(
            cluster=self.key, namespace=self.namespace, apps=list(apps)
        )

    def failed_since_each(
        self, previous: Mapping[str, AppDeploymentRecord | None]
    ) -> dict[str, AppDeploymentRecord | None]:
        """:meth:`failed_since` of every app of ``previous`` (its last successful
        recordings), read at once."""
        failed = self.repo.last_successful_apps(
            cluster=self.key, namespace=self.namespace, apps=list(previous), failed=True
        )
        out: dict[str, AppDeploymentRecord | None] = {}
        for app, rec in failed.items():
            last = previous[app]
            newer = rec is not None and (last is None or rec.deployment_id >= last.deployment_id)
            out[app] = rec if newer else None
        return out

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
        if self.identity is not None:
            # Records keyed by the name (made before identities, or while the cluster
            # could not be read) become this cluster's: quietly, as nothing shown changes.
            moved += self.repo.adopt_identity(
                name=self.name, identity=self.identity, namespace=self.namespace
            )
        return moved

    def note_other_cluster(self) -> None:
        """When this target has no record but its name does, on another cluster (one
        rebuilt at the same address, or a context pointed elsewhere): say so, once."""
        if self.identity is None or self.repo.count(
            cluster=self.key, namespace=self.namespace, include_dry_run=False
        ):
            return
        other = self.repo.list(
            cluster=self.name, namespace=self.namespace, include_dry_run=False, limit=1
        )
        if other and other[0].cluster_id != self.key:
            self.note(
                f"the record of {self.label} belongs to another cluster (kube-system "
                f"{other[0].cluster_id}); this cluster ({self.identity}) has none"
            )

    def settle(self, helm_apps: Iterable[tuple[str, str, str]]) -> list[str]:
        """Settle from the cluster the Helm revisions lost store writes hid
        (``recovery.settle_releases``); ``helm_apps``: (app, release, release namespace)."""
        from sbkube.engine.recovery import settle_releases

        return settle_releases(
            self.database,
            self.repo,
            self.cluster,
            self.key,
            self.namespace,
            helm_apps,
            notify=self.note,
        )

    @contextmanager
    def locked(
        self,
        *,
        command: str,
        releases: Iterable[Released] = (),
        also: Iterable[str] = (),
        before_recovery: Callable[[], Snapshot | None] | None = None,
    ) -> Iterator[HeldLocks]:
        """Hold the target's deploy lock, after recovering what an earlier run left behind.

        Waits up to ``--wait-lock`` seconds for a live holder and takes over a dead one's
        (both said in a note); then marks the target's orphaned deployments
        ``interrupted`` and rolls back those of the Helm ``releases`` left pending (found
        in the snapshot ``before_recovery`` reads, when given: deploy's batched reads). The
        lock is released when the block ends.

        ``also``: the other namespaces of the cluster the command touches (a multi-dir
        run's app dirs): every lock is taken in ONE canonical order, the sorted lock
        targets, so two runs whose targets overlap never hold one each and wait for the
        other's; ``--wait-lock`` bounds the whole wait. Every lock held names the
        deployment (:meth:`HeldLocks.set_deployment`), so whoever is refused by any of
        them is told which run holds it.
        """
        from sbkube.cluster.process import overdue
        from sbkube.engine.recovery import mark_interrupted_deployments, recover_pending_releases
        from sbkube.state import DeployLocks, describe_holder

        wait_lock = self.options.wait_lock
        locks = DeployLocks(self.database)
        # One cluster: sorting the namespaces sorts the lock targets (``cluster/namespace``).
        namespaces = sorted({self.namespace, *also})
        deadline = time.monotonic() + wait_lock
        with ExitStack() as stack:
            held: dict[str, LockHandle] = {}
            for namespace in namespaces:
                label = f"{self.name}/{namespace}"
                held[namespace] = stack.enter_context(
                    locks.acquire(
                        self.key,
                        namespace,
                        command=command,
                        label=label,
                        wait=max(0.0, deadline - time.monotonic()) if wait_lock else 0.0,
                        asked=wait_lock,
                        on_wait=lambda h: self.note(
                            f"waiting up to {wait_lock:g}s for the lock: {describe_holder(h)}"
                        ),
                        on_takeover=lambda h, why, label=label: self.note(  # type: ignore[misc]
                            f"took over the lock of {label} from {describe_holder(h)}: {why}"
                        ),
                        # A run stuck in a call that could not be stopped stops renewing.
                        alive=lambda: not overdue(),
                    )
                )
            for namespace in namespaces:
                mark_interrupted_deployments(
                    self.repo, cluster=self.key, namespace=namespace, notify=self.note
                )
            helm = [(r.release_name, r.namespace) for r in releases if r.release_name]
            snapshot = before_recovery() if before_recovery is not None else None
            recover_pending_releases(self.cluster, helm, notify=self.note, snapshot=snapshot)
            yield HeldLocks(tuple(held.values()))

    @contextmanager
    def run(
        self,
        *,
        command: Command,
        releases: Iterable[Released] = (),
        also: Iterable[str] = (),
        before_recovery: Callable[[], Snapshot | None] | None = None,
        **record: Any,
    ) -> Iterator[DeploymentHandle]:
        """One deployment of this target: the handle its apps are recorded on.

        A real run holds the target's lock (:meth:`locked`) for as long as the block
        runs, and the lock names the deployment; a dry run takes no lock and records
        nothing. ``record``: what the deployment records beside the target and the
        command line (``config_record``, ``rollback_target_id``...). ``before_recovery``
        (see :meth:`locked`) runs first in a dry run too.
        """
        tracker = self.tracker()
        track = {
            "cluster": self.name,
            "cluster_id": self.key,
            "namespace": self.namespace,
            "command": command,
            "command_args": list(self.options.command_args),
            "secret_keys": self.secret_keys,
            "profile": self.options.profile,
            **record,
        }
        if self.options.dry_run:
            if before_recovery is not None:
                before_recovery()
            with tracker.track_deployment(dry_run=True, **track) as dep:
                yield dep
            return
        with (
            self.locked(
                command=str(command),
                releases=releases,
                also=also,
                before_recovery=before_recovery,
            ) as lock,
            tracker.track_deployment(**track) as dep,
        ):
            lock.set_deployment(dep.deployment_id)
            yield dep

    def run_apps(
        self, steps: Sequence[AppStep], dep: DeploymentHandle, *, concurrency: int | None = None
    ) -> tuple[AppOutcome, ...]:
        """Run ``steps`` on ``dep`` (``runner.run_apps``), ``--concurrency`` at once."""
        at_once = self.options.concurrency if concurrency is None else concurrency
        return run_apps(steps, dep, progress=self.progress, concurrency=at_once)
