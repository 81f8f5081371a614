"""The one rule of the state layer, checked from outside.

``test_session_lifecycle``: every session a public call opens is ended (commit or
rollback) and every pooled connection is given back, on success and on error paths.

``test_object_detachment``: everything a public call returns is a frozen, picklable,
hashable value with no ORM state, equal to what a second read returns.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from sbkube.errors import NotFoundError, SbkubeError, StateError
from sbkube.model import FrozenDict
from sbkube.state import DeploymentDatabase, DeploymentRepository, DeploymentTracker, ResourceInput
from sbkube.state.rows import prepare_resources


def _configmap(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "apps"},
        "data": dict(data),
    }


@dataclass
class SessionWatch:
    """Session, Core connection and pool events, keyed by session / connection identity.

    Hot read paths (``list()``) use a Core connection instead of a Session; its
    transaction must begin and end just the same.
    """

    began: Counter[Any] = field(default_factory=Counter)
    committed: Counter[Any] = field(default_factory=Counter)
    rolled_back: Counter[Any] = field(default_factory=Counter)
    checkouts: int = 0
    checkins: int = 0

    def reset(self) -> None:
        self.began.clear()
        self.committed.clear()
        self.rolled_back.clear()
        self.checkouts = self.checkins = 0

    def unended(self) -> list[Any]:
        return [
            sid for sid, n in self.began.items() if self.committed[sid] + self.rolled_back[sid] < n
        ]


@pytest.fixture
def watch(db: DeploymentDatabase) -> Iterator[SessionWatch]:
    w = SessionWatch()

    def after_begin(session: Session, _txn: Any, _conn: Any) -> None:
        w.began[id(session)] += 1

    def after_commit(session: Session) -> None:
        w.committed[id(session)] += 1

    def after_rollback(session: Session) -> None:
        w.rolled_back[id(session)] += 1

    def conn_begin(conn: Any) -> None:
        w.began[("connection", id(conn))] += 1

    def conn_commit(conn: Any) -> None:
        w.committed[("connection", id(conn))] += 1

    def conn_rollback(conn: Any) -> None:
        w.rolled_back[("connection", id(conn))] += 1

    def checkout(*_: Any) -> None:
        w.checkouts += 1

    def checkin(*_: Any) -> None:
        w.checkins += 1

    hooks: list[tuple[Any, str, Callable[..., None]]] = [
        (Session, "after_begin", after_begin),
        (Session, "after_commit", after_commit),
        (Session, "after_rollback", after_rollback),
    ]
    for engine in db.engines:  # PostgreSQL single reads have their own autocommit pool
        hooks += [
            (engine, "begin", conn_begin),
            (engine, "commit", conn_commit),
            (engine, "rollback", conn_rollback),
            (engine.pool, "checkout", checkout),
            (engine.pool, "checkin", checkin),
        ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield w
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)


def _tracker_success(tracker: DeploymentTracker) -> str:
    with tracker.track_deployment(cluster="c", namespace="apps", config={"k": 1}) as dep:
        with dep.track_app(name="redis", type="helm", namespace="apps") as app:
            app.record_helm_release(
                release_name="redis",
                namespace="apps",
                chart="bitnami/redis",
                revision=1,
                status="deployed",
                values={"replicaCount": 1, "password": "x"},
            )
            app.record_resources([_configmap("a", k="v"), _configmap("b")], "create")
        dep.skip_app(name="skipped", type="yaml", namespace=None, reason="not needed")
    return dep.deployment_id


def _tracker_raises(tracker: DeploymentTracker) -> None:
    with tracker.track_deployment(cluster="c", namespace="apps") as dep:
        with dep.track_app(name="web", type="yaml") as app:
            app.record_resources([_configmap("web")], "create")
            raise RuntimeError("kubectl apply failed")


def _tracker_interrupted(tracker: DeploymentTracker) -> None:
    with tracker.track_deployment(cluster="c", namespace="apps") as dep:
        with dep.track_app(name="web", type="yaml"):
            raise KeyboardInterrupt


def _tracker_dry_run(tracker: DeploymentTracker) -> None:
    with tracker.track_deployment(cluster="c", namespace="apps", dry_run=True) as dep:
        with dep.track_app(name="web", type="yaml") as app:
            app.record_resources([_configmap("web")], "create")


def test_session_lifecycle(db: DeploymentDatabase, watch: SessionWatch) -> None:
    repo = DeploymentRepository(db)
    tracker = DeploymentTracker(repo)
    covered: set[str] = set()
    problems: list[str] = []

    def check(
        label: str,
        call: Callable[[], Any],
        raises: type[BaseException] | None = None,
        *,
        opens_session: bool = True,
    ) -> Any:
        method = label.split("(")[0].split(" ")[0]
        covered.add(method)
        watch.reset()
        if raises is None:
            result = call()
        else:
            with pytest.raises(raises):
                call()
            result = None
        began = sum(watch.began.values())
        if opens_session and began == 0:
            problems.append(f"{label}: no session began (is the watch working?)")
        if watch.unended():
            problems.append(f"{label}: {len(watch.unended())} session(s) began and never ended")
        if watch.checkouts != watch.checkins:
            problems.append(f"{label}: {watch.checkouts} checkouts, {watch.checkins} checkins")
        out = sum(engine.pool.checkedout() for engine in db.engines)
        if out != 0:
            problems.append(f"{label}: {out} connection(s) still out")
        return result

    dep = check("create_deployment", lambda: repo.create_deployment(cluster="c", namespace="n"))
    dep_id = dep.deployment_id
    app = check("start_app", lambda: repo.start_app(dep_id, name="a", type="helm"))
    check(
        "add_resources",
        lambda: repo.add_resources(
            app.app_id,
            [ResourceInput.from_manifest(_configmap(f"cm{i}"), "create") for i in range(3)],
        ),
    )
    rows, _ = prepare_resources(None, [ResourceInput.from_manifest(_configmap("cmx"), "create")])
    check("insert_resources", lambda: repo.insert_resources(app.app_id, rows))
    check(
        "add_helm_release",
        lambda: repo.add_helm_release(
            app.app_id, release_name="a", namespace="n", chart="x/a", revision=1, status="ok"
        ),
    )
    check("finish_app", lambda: repo.finish_app(app.app_id, "success", metadata={"m": 1}))
    check("set_status", lambda: repo.set_status(dep_id, "in_progress"))
    check("set_steps", lambda: repo.set_steps(dep_id, [{"phase": "hooks.deploy.pre"}]))
    check("finish_deployment", lambda: repo.finish_deployment(dep_id, "success"))
    check("get", lambda: repo.get(dep_id))
    check("exists", lambda: repo.exists(dep_id))
    check("list", lambda: repo.list())
    check("list (filtered)", lambda: repo.list(app="a", status="success", cluster="c"))
    check("count", lambda: repo.count(app="a"))
    check("resolve", lambda: repo.resolve("latest"))
    check("resolve (prefix)", lambda: repo.resolve(dep_id[:-2]))
    check("app_history", lambda: repo.app_history("a"))
    check(
        "last_successful_app",
        lambda: repo.last_successful_app(cluster="c", namespace="n", app="a", before=dep_id),
    )
    check(
        "last_successful_apps",
        lambda: repo.last_successful_apps(cluster="c", namespace="n", apps=["a", "b"]),
    )
    check(
        "latest_release",
        lambda: repo.latest_release(
            cluster="c", namespace="n", release_name="a", release_namespace="n"
        ),
    )
    check("unfinished", lambda: repo.unfinished())
    check("reverted_by", lambda: repo.reverted_by(dep_id))
    check("get_many", lambda: repo.get_many(cluster="c", namespace="n"))
    check("unsettled_apps", lambda: repo.unsettled_apps(cluster="c", namespace="n", apps=["a"]))
    check(
        "recent_app_names",
        lambda: repo.recent_app_names(cluster="c", namespace="n", app_dir="/apps"),
    )
    check(
        "recorded_revisions",
        lambda: repo.recorded_revisions(
            cluster="c", namespace="n", release_name="a", release_namespace="n"
        ),
    )
    check(
        "settle_app",
        lambda: repo.settle_app(
            app.app_id,
            dict(release_name="b", namespace="n", chart="x/b", revision=2, status="deployed"),
            status="success",
            note="settled",
        ),
    )
    other = repo.create_deployment(cluster="c", namespace="n")
    check("mark_interrupted", lambda: repo.mark_interrupted(other.deployment_id, "host died"))
    check("get_many", lambda: repo.get_many(cluster="c", namespace="n"))
    check(
        "adopt_target", lambda: repo.adopt_target(old_cluster="c", new_cluster="c2", namespace="n")
    )
    check("adopt_identity", lambda: repo.adopt_identity(name="c2", identity="u-1", namespace="n"))

    # Error paths: the session still ends and the connection still goes back.
    check("get (unknown id)", lambda: repo.get("dep-nope"), raises=NotFoundError)
    check("resolve (unknown)", lambda: repo.resolve("dep-00000000-nope"), raises=NotFoundError)
    check("resolve (latest~99)", lambda: repo.resolve("latest~99"), raises=NotFoundError)
    check("finish_app (unknown)", lambda: repo.finish_app(999999, "success"), raises=NotFoundError)
    check("set_status (unknown)", lambda: repo.set_status("dep-x", "failed"), raises=NotFoundError)
    check("set_steps (unknown)", lambda: repo.set_steps("dep-x", []), raises=NotFoundError)
    check(
        "finish_deployment (unknown)",
        lambda: repo.finish_deployment("dep-x", "failed"),
        raises=NotFoundError,
    )
    check(
        "start_app (unknown deployment)",
        lambda: repo.start_app("dep-x", name="a", type="helm"),
        raises=NotFoundError,
    )
    check(
        "start_app (duplicate name)",
        lambda: repo.start_app(dep_id, name="a", type="helm"),
        raises=StateError,
    )
    check(
        "add_helm_release (unknown app)",
        lambda: repo.add_helm_release(
            999999, release_name="a", namespace="n", chart="c", revision=1, status="ok"
        ),
        raises=StateError,
    )
    check(
        "settle_app (unknown app)",
        lambda: repo.settle_app(
            999999,
            dict(release_name="b", namespace="n", chart="x/b", revision=2, status="deployed"),
            status=None,
            note="",
        ),
        raises=NotFoundError,
    )
    check(
        "mark_interrupted (unknown)",
        lambda: repo.mark_interrupted("dep-x", "gone"),
        raises=NotFoundError,
    )
    # Refused before any session is opened.
    check(
        "list (bad status)",
        lambda: repo.list(status="sucess"),
        raises=SbkubeError,
        opens_session=False,
    )

    check("tracker success", lambda: _tracker_success(tracker))
    check("tracker raises", lambda: _tracker_raises(tracker), raises=RuntimeError)
    check("tracker interrupted", lambda: _tracker_interrupted(tracker), raises=KeyboardInterrupt)
    check("tracker dry run", lambda: _tracker_dry_run(tracker), opens_session=False)
    check(
        "tracker dry run recorded",
        lambda: _tracker_dry_run(DeploymentTracker(db, record_dry_run=True)),
    )

    check("delete_deployments", lambda: repo.delete_deployments([dep_id, other.deployment_id]))

    public = {
        name
        for name in dir(DeploymentRepository)
        if not name.startswith("_") and callable(getattr(DeploymentRepository, name))
    }
    assert public <= covered, f"public repository methods not checked: {public - covered}"
    assert not problems, "\n".join(problems)


# -- detachment --------------------------------------------------------------------------


def _assert_detached(value: Any, path: str = "value") -> int:
    """Recursively: no ORM state, frozen, hashable. Returns the number of records seen."""
    assert inspect(value, raiseerr=False) is None, f"{path} has ORM state"
    seen = 0
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        seen += 1
        params = type(value).__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen, f"{path}: {type(value).__name__} is not frozen"
        assert not hasattr(value, "__dict__"), f"{path}: record has a __dict__ (not slots)"
        hash(value)
        first = dataclasses.fields(value)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, first, getattr(value, first))
        with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
            value.__dict__ = {}  # type: ignore[misc]
        for f in dataclasses.fields(value):
            seen += _assert_detached(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, Mapping):
        assert isinstance(value, FrozenDict), f"{path} is a mutable {type(value).__name__}"
        hash(value)
        with pytest.raises(TypeError):
            value["__new__"] = 1  # type: ignore[index]
        for mutate in (
            lambda m: m.update(x=1),
            lambda m: m.pop(next(iter(m), "x")),
            lambda m: m.clear(),
            lambda m: m.setdefault("x", 1),
            lambda m: m.popitem(),
        ):
            with pytest.raises(TypeError):
                mutate(value)
        if value:
            with pytest.raises(TypeError):
                del value[next(iter(value))]  # type: ignore[attr-defined]
        for k, v in value.items():
            seen += _assert_detached(v, f"{path}[{k!r}]")
    elif isinstance(value, list):
        # Lists are fine as a container of results (list()), never inside a record.
        assert path.count(".") == 0 and "[" not in path, f"{path} is a mutable list"
        for i, v in enumerate(value):
            seen += _assert_detached(v, f"{path}[{i}]")
    elif isinstance(value, tuple):
        hash(value)
        for i, v in enumerate(value):
            seen += _assert_detached(v, f"{path}[{i}]")
    else:
        hash(value)
    return seen


def test_object_detachment(db: DeploymentDatabase) -> None:
    repo = DeploymentRepository(db)
    tracker = DeploymentTracker(repo)
    returned: dict[str, tuple[Any, Any]] = {}
    _no_second = object()

    def twice(call: Callable[[], Any]) -> tuple[Any, Any]:
        return call(), call()

    created = repo.create_deployment(
        cluster="c",
        namespace="apps",
        config_snapshot={"apps": {"a": {"values": {"x": [1, 2, {"y": None}]}}}},
        sources_snapshot={"repo": "https://example.test"},
        command_args=["deploy", "--dry-run=false"],
    )
    dep_id = created.deployment_id
    returned["create_deployment"] = (created, _no_second)
    started = repo.start_app(dep_id, name="a", type="helm", config={"nested": {"list": [1]}})
    returned["start_app"] = (started, _no_second)
    returned["add_resources"] = (
        repo.add_resources(
            started.app_id,
            [
                ResourceInput.from_manifest(_configmap("one", k="v"), "create"),
                ResourceInput.from_manifest(
                    _configmap("two", k="new"), "update", previous=_configmap("two", k="old")
                ),
            ],
        ),
        _no_second,
    )
    returned["add_helm_release"] = (
        repo.add_helm_release(
            started.app_id,
            release_name="a",
            namespace="apps",
            chart="x/a",
            revision=1,
            status="deployed",
            values={"list": [{"k": "v"}], "password": "p"},
        ),
        _no_second,
    )
    repo.finish_app(started.app_id, "success")
    returned["finish_deployment"] = (repo.finish_deployment(dep_id, "success"), repo.get(dep_id))
    returned["get"] = twice(lambda: repo.get(dep_id))
    # What the writes returned is what a read returns later.
    stored_app = returned["get"][0].apps[0]
    assert stored_app.resources == returned["add_resources"][0]
    assert stored_app.helm_releases == (returned["add_helm_release"][0],)
    assert stored_app.app_id == started.app_id and stored_app.config == started.config
    returned["list"] = twice(lambda: repo.list())
    returned["app_history"] = twice(lambda: repo.app_history("a"))
    returned["last_successful_app"] = twice(
        lambda: repo.last_successful_app(cluster="c", namespace="apps", app="a")
    )
    returned["resolve"] = twice(lambda: repo.resolve("latest"))
    pending = repo.create_deployment(cluster="c", namespace="apps")
    returned["unfinished"] = twice(lambda: repo.unfinished())
    returned["mark_interrupted"] = (
        repo.mark_interrupted(pending.deployment_id, "gone"),
        repo.get(pending.deployment_id),
    )

    handles: dict[str, Any] = {}
    with tracker.track_deployment(cluster="c", namespace="apps", config={"z": 1}) as dep:
        with dep.track_app(name="t", type="helm") as app:
            returned["tracker record_helm_release"] = (
                app.record_helm_release(
                    release_name="t", namespace="apps", chart="x/t", revision=4, status="ok"
                ),
                _no_second,
            )
            returned["tracker record_resources"] = (
                app.record_resources([_configmap("t1"), _configmap("t2", a="b")], "create"),
                _no_second,
            )
        handles["app"] = app
    handles["dep"] = dep
    assert dep.record is not None
    returned["tracker handle.record"] = (dep.record, repo.get(dep.deployment_id))
    got_t = repo.get(dep.deployment_id)
    assert got_t.apps[0].helm_release == returned["tracker record_helm_release"][0]
    assert got_t.apps[0].resources == returned["tracker record_resources"][0]

    records_seen = 0
    for label, (value, second) in returned.items():
        try:
            records_seen += _assert_detached(value, label)
            clone = pickle.loads(pickle.dumps(value))
            assert clone == value, f"{label}: pickle round trip changed the value"
            assert type(clone) is type(value)
            if second is not _no_second:
                assert second == value, f"{label}: not equal to a second read"
                if not isinstance(value, list):
                    assert hash(second) == hash(value), f"{label}: hash differs between reads"
        except AssertionError as err:
            raise AssertionError(f"{label}: {err}") from err
    assert records_seen >= 25, f"only {records_seen} records checked"

    # The tracker handles are mutable by design but carry no ORM state either.
    for name, handle in handles.items():
        for f in dataclasses.fields(handle):
            value = getattr(handle, f.name)
            assert inspect(value, raiseerr=False) is None, f"{name}.{f.name} has ORM state"
            for item in value if isinstance(value, list) else ():
                assert inspect(item, raiseerr=False) is None, f"{name}.{f.name}[] has ORM state"

    # Records survive their database: nothing in them refers back to it.
    frozen_get = returned["get"][0]
    db.close()
    assert frozen_get.apps[0].resources[1].previous_state["data"]["k"] == "old"
    assert pickle.loads(pickle.dumps(frozen_get)).to_dict() == frozen_get.to_dict()
