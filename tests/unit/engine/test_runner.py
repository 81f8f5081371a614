"""The concurrent scheduler (``engine/runner.py``) on its own, with fake steps.

Each step is a plain function that notes when it runs; the apps are recorded by a real
tracker on a real SQLite file, so what the store holds afterwards is checked too. The
order of events is observed through the progress hooks, which the scheduler calls in the
main thread (``app_started`` when it submits a step, ``app_ended`` when it collects one),
and through events and barriers between the steps: nothing here waits on the clock.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sbkube.engine.results import AppOutcome
from sbkube.engine.runner import AppStep, StepChanges, check_concurrency, run_apps
from sbkube.errors import ClusterError, UsageError
from sbkube.interrupts import current_stop
from sbkube.model import MAX_CONCURRENCY, AppStatus, DeploymentStatus
from sbkube.state import (
    AppHandle,
    DeploymentDatabase,
    DeploymentRecord,
    DeploymentRepository,
    DeploymentTracker,
)

#: A bound for waits between steps, only ever reached when the scheduler is wrong (the
#: test then fails instead of hanging); a correct run never waits for it.
STUCK = 60.0


@dataclass
class Journal:
    """What happened, in order: the scheduler's view (main thread) and the steps' own."""

    events: list[tuple[str, str]] = field(default_factory=list)  # ("start"|"end", name)
    lines: list[str] = field(default_factory=list)  # progress lines
    ran: list[str] = field(default_factory=list)  # steps, as their run began (workers)
    lock: threading.Lock = field(default_factory=threading.Lock)
    collected: dict[str, threading.Event] = field(default_factory=dict)

    # The progress protocol of run_apps: a callable, plus the two hooks.
    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def app_started(self, label: str) -> None:
        self.events.append(("start", label.split()[0]))

    def app_ended(self, label: str) -> None:
        self.events.append(("end", label.split()[0]))
        self.ended(label.split()[0]).set()

    def ended(self, name: str) -> threading.Event:
        """Set once the scheduler has collected the app ``name``."""
        with self.lock:
            return self.collected.setdefault(name, threading.Event())

    def note_run(self, name: str) -> None:
        with self.lock:
            self.ran.append(name)

    def started(self) -> list[str]:
        return [name for what, name in self.events if what == "start"]

    def most_at_once(self) -> int:
        running, most = 0, 0
        for what, _ in self.events:
            running += 1 if what == "start" else -1
            most = max(most, running)
        return most


@dataclass
class Runner:
    """Fake steps that write to one journal, run under a tracked deployment."""

    store: DeploymentDatabase
    journal: Journal = field(default_factory=Journal)
    deployment_id: str | None = None

    def step(
        self,
        name: str,
        *,
        fail: bool = False,
        depends_on: tuple[str, ...] = (),
        after: tuple[str, ...] = (),
        body: Callable[[], None] | None = None,
    ) -> AppStep:
        def run(handle: AppHandle) -> StepChanges:
            assert handle.name == name
            self.journal.note_run(name)
            if body is not None:
                body()
            if fail:
                raise ClusterError(f"{name} broke")
            return (), None

        return AppStep(
            name=name, type="yaml", namespace="demo", run=run, depends_on=depends_on, after=after
        )

    def run(self, steps: list[AppStep], *, concurrency: int) -> tuple[AppOutcome, ...]:
        tracker = DeploymentTracker(self.store)
        with tracker.track_deployment(cluster="k3s", namespace="demo") as dep:
            self.deployment_id = dep.deployment_id
            return run_apps(steps, dep, progress=self.journal, concurrency=concurrency)

    def record(self) -> DeploymentRecord:
        assert self.deployment_id is not None
        return DeploymentRepository(self.store).get(self.deployment_id)

    def recorded(self) -> dict[str, AppStatus]:
        return {app.name: AppStatus(app.status) for app in self.record().apps}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeploymentDatabase]:
    db = DeploymentDatabase(tmp_path / "state.db")
    yield db
    db.close()


@pytest.fixture
def runner(store: DeploymentDatabase) -> Runner:
    return Runner(store)


def statuses(outcomes: tuple[AppOutcome, ...]) -> dict[str, AppStatus]:
    return {o.name: o.status for o in outcomes}


# -- ordering ------------------------------------------------------------------------------


def test_one_at_a_time_runs_in_config_order(runner: Runner) -> None:
    # "b" depends on "c", which comes later in the file: only earlier apps are waited for,
    # so with one at a time the order is the file's, whatever the dependencies say.
    steps = [
        runner.step("a"),
        runner.step("b", depends_on=("c", "not-an-app")),
        runner.step("c"),
        runner.step("d", depends_on=("a",)),
    ]
    outcomes = runner.run(steps, concurrency=1)

    assert runner.journal.ran == ["a", "b", "c", "d"]
    assert runner.journal.events == [(what, name) for name in "abcd" for what in ("start", "end")]
    assert [o.name for o in outcomes] == ["a", "b", "c", "d"]
    assert set(statuses(outcomes).values()) == {AppStatus.SUCCESS}
    assert [line.split(" ok ")[0] for line in runner.journal.lines] == [
        "[1/4] a (yaml)",
        "[2/4] b (yaml)",
        "[3/4] c (yaml)",
        "[4/4] d (yaml)",
    ]
    assert runner.record().status == DeploymentStatus.SUCCESS


def test_a_dependent_starts_only_after_its_dependency_succeeded(runner: Runner) -> None:
    steps = [runner.step("db"), runner.step("web", depends_on=("db",)), runner.step("worker")]
    runner.run(steps, concurrency=4)

    events = runner.journal.events
    assert events.index(("start", "web")) > events.index(("end", "db"))
    # The independent app did not wait for either.
    assert events.index(("start", "worker")) < events.index(("end", "db"))


def test_outcomes_come_back_in_step_order_whatever_the_order_apps_end(runner: Runner) -> None:
    # "slow" ends last: it waits until the scheduler has collected "fast".
    steps = [
        runner.step("slow", body=lambda: _wait(runner.journal.ended("fast"))),
        runner.step("fast"),
    ]
    outcomes = runner.run(steps, concurrency=2)

    assert [o.name for o in outcomes] == ["slow", "fast"]
    assert runner.journal.lines[0].startswith("[1/2] fast (yaml) ok")
    assert runner.journal.lines[1].startswith("[2/2] slow (yaml) ok")


# -- failures and skips ------------------------------------------------------------------


def test_a_failure_skips_its_dependents_transitively_and_nothing_else(runner: Runner) -> None:
    steps = [
        runner.step("db", fail=True),
        runner.step("api", depends_on=("db",)),
        runner.step("web", depends_on=("api",)),
        runner.step("cache"),
        runner.step("report", depends_on=("cache",)),
    ]
    outcomes = runner.run(steps, concurrency=2)

    assert statuses(outcomes) == {
        "db": AppStatus.FAILED,
        "api": AppStatus.SKIPPED,
        "web": AppStatus.SKIPPED,
        "cache": AppStatus.SUCCESS,
        "report": AppStatus.SUCCESS,
    }
    by_name = {o.name: o for o in outcomes}
    assert by_name["db"].error == "db broke"
    assert by_name["api"].error == "skipped: dependency db failed"
    assert by_name["web"].error == "skipped: dependency api failed"
    # The skipped apps never ran, and never took a worker.
    assert sorted(runner.journal.ran) == ["cache", "db", "report"]
    assert "api" not in runner.journal.started() and "web" not in runner.journal.started()
    assert any(
        "db (yaml) FAILED after" in line and "db broke" in line for line in runner.journal.lines
    )
    assert any("web (yaml) skipped: dependency api failed" in line for line in runner.journal.lines)
    # The store holds the same, and the deployment is partly failed.
    assert runner.recorded() == statuses(outcomes)
    record = runner.record()
    assert record.status == DeploymentStatus.PARTIALLY_FAILED
    api = record.app("api")
    assert api is not None and api.error_message == "skipped: dependency db failed"


def test_a_dependent_of_two_is_skipped_when_either_fails(runner: Runner) -> None:
    steps = [
        runner.step("a"),
        runner.step("b", fail=True),
        runner.step("c", depends_on=("a", "b")),
    ]
    outcomes = runner.run(steps, concurrency=1)
    assert statuses(outcomes)["c"] == AppStatus.SKIPPED
    assert runner.journal.ran == ["a", "b"]


def test_after_orders_but_never_skips(runner: Runner) -> None:
    # "web" only waits for "ns" (the app that creates the namespace both need): it starts
    # once "ns" has ended, and runs although "ns" failed.
    steps = [
        runner.step("ns", fail=True),
        runner.step("web", after=("ns",)),
        runner.step("other"),
    ]
    outcomes = runner.run(steps, concurrency=4)

    assert statuses(outcomes) == {
        "ns": AppStatus.FAILED,
        "web": AppStatus.SUCCESS,
        "other": AppStatus.SUCCESS,
    }
    events = runner.journal.events
    assert events.index(("start", "web")) > events.index(("end", "ns"))
    assert events.index(("start", "other")) < events.index(("end", "ns"))
    assert runner.recorded()["web"] == AppStatus.SUCCESS


def test_a_dependency_on_a_later_or_unknown_app_is_not_waited_for(runner: Runner) -> None:
    steps = [runner.step("a", depends_on=("b", "ghost")), runner.step("b", fail=True)]
    outcomes = runner.run(steps, concurrency=1)
    assert statuses(outcomes) == {"a": AppStatus.SUCCESS, "b": AppStatus.FAILED}


# -- the concurrency bound ---------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_never_more_than_the_limit_at_once_and_the_limit_is_used(
    runner: Runner, limit: int
) -> None:
    # Every app meets `limit` - 1 others at a barrier: it passes only when `limit` apps run
    # at the same time (a scheduler that ran fewer would break the barrier). Inside the
    # steps, a counter sees how many run at once (a scheduler that ran more would show it).
    barrier = threading.Barrier(limit, timeout=STUCK)
    lock = threading.Lock()
    now = [0]
    seen: list[int] = []

    def body() -> None:
        with lock:
            now[0] += 1
            seen.append(now[0])
        barrier.wait()
        with lock:
            now[0] -= 1

    steps = [runner.step(f"app{i}", body=body) for i in range(limit * 3)]
    outcomes = runner.run(steps, concurrency=limit)

    assert set(statuses(outcomes).values()) == {AppStatus.SUCCESS}
    assert max(seen) == limit
    assert runner.journal.most_at_once() == limit
    assert len(runner.record().apps) == limit * 3


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2", None, MAX_CONCURRENCY + 1, 10**9, 2**63])
def test_check_concurrency_refuses_what_is_not_a_whole_number_of_apps(bad: object) -> None:
    with pytest.raises(UsageError, match="is not a number of apps at once") as err:
        check_concurrency(bad)  # type: ignore[arg-type]
    assert err.value.exit_code == 2
    assert "\n" not in str(err.value)


def test_check_concurrency_takes_a_whole_number() -> None:
    assert check_concurrency(1) == 1
    assert check_concurrency(16) == 16
    assert check_concurrency(MAX_CONCURRENCY) == MAX_CONCURRENCY


def test_run_apps_checks_the_concurrency_before_anything_runs(runner: Runner) -> None:
    with pytest.raises(UsageError):
        runner.run([runner.step("a")], concurrency=0)
    assert runner.journal.ran == []
    assert runner.record().apps == ()


# -- interrupts ----------------------------------------------------------------------------


def _wait(event: threading.Event) -> None:
    assert event.wait(STUCK), "the step waited for something that never happened"


def _tool_until_stopped(started: threading.Event) -> Callable[[], None]:
    """A step body that runs a child process the way helm and kubectl are run: adopted by
    the run's Stop, which terminates it when the run is asked to stop."""

    def body() -> None:
        stop = current_stop()
        assert stop is not None, "a step runs under the run's Stop"
        with subprocess.Popen(["sleep", str(int(STUCK))], text=True) as proc:
            stop.adopt(proc)
            started.set()
            try:
                proc.wait(STUCK)
            finally:
                stop.release(proc)
                proc.kill()
        stop.check()  # InterruptedDeployment: the tool was stopped, the app is interrupted

    return body


class CtrlC(Journal):
    """Progress that presses Ctrl-C (in the main thread, where the signal lands) when the
    line of ``at`` is printed."""

    def __init__(self, at: str) -> None:
        super().__init__()
        self.at = at

    def __call__(self, line: str) -> None:
        super().__call__(line)
        if f" {self.at} (" in line:
            raise KeyboardInterrupt


def test_a_stop_interrupts_the_running_apps_and_starts_no_other(runner: Runner) -> None:
    # Three at once: "quick" ends once both tools run; Ctrl-C comes as its line is printed.
    runner.journal = CtrlC(at="quick")
    tool1, tool2 = threading.Event(), threading.Event()

    def quick() -> None:
        _wait(tool1)
        _wait(tool2)

    steps = [
        runner.step("quick", body=quick),
        runner.step("tool1", body=_tool_until_stopped(tool1)),
        runner.step("tool2", body=_tool_until_stopped(tool2)),
        runner.step("later"),
        runner.step("last", depends_on=("quick",)),
    ]
    with pytest.raises(KeyboardInterrupt):
        runner.run(steps, concurrency=3)

    # The running apps were interrupted, the rest never started (and is not recorded).
    assert sorted(runner.journal.ran) == ["quick", "tool1", "tool2"]
    assert runner.journal.started() == ["quick", "tool1", "tool2"]
    assert runner.recorded() == {
        "quick": AppStatus.SUCCESS,
        "tool1": AppStatus.INTERRUPTED,
        "tool2": AppStatus.INTERRUPTED,
    }
    assert runner.record().status == DeploymentStatus.INTERRUPTED
    tool1_app = runner.record().app("tool1")
    assert tool1_app is not None and tool1_app.error_message == "interrupted (Ctrl-C)"
    # Every running app was reported as it ended, interrupted.
    ended = [line for line in runner.journal.lines if "interrupted after" in line]
    assert sorted(line.split()[1] for line in ended) == ["tool1", "tool2"]


def test_a_bug_in_a_step_stops_the_run_like_an_interrupt(runner: Runner) -> None:
    tool = threading.Event()

    def bug() -> None:
        _wait(tool)
        raise RuntimeError("a bug, not an app failure")

    steps = [
        runner.step("tool", body=_tool_until_stopped(tool)),
        runner.step("buggy", body=bug),
        runner.step("later"),
    ]
    with pytest.raises(RuntimeError, match="a bug"):
        runner.run(steps, concurrency=2)

    assert "later" not in runner.journal.ran
    recorded = runner.recorded()
    assert recorded["tool"] == AppStatus.INTERRUPTED
    assert recorded["buggy"] == AppStatus.FAILED
    assert "later" not in recorded
