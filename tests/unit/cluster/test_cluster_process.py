"""Every helm and kubectl run has a deadline (``sbkube.cluster.process``): the calling
thread's bound (an app's ``timeout``) or the default, told to the tool itself and enforced
on the process. Real processes; the bounds are short, and a broken deadline shows as a
wrong result (the command ends by itself after a minute), never as a speed assertion."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

from sbkube.cluster import helm, kubectl
from sbkube.cluster.process import (
    DEFAULT_CALL_TIMEOUT,
    BinaryClient,
    call_timeout,
    calls_bounded,
    duration_text,
    overdue,
)
from sbkube.errors import ClusterError


class Shell(BinaryClient):
    NAME = "sh"
    ENV_VAR = "SBKUBE_TEST_SHELL"


def test_the_bound_is_the_threads_else_the_default() -> None:
    assert call_timeout() == (DEFAULT_CALL_TIMEOUT, False)
    with calls_bounded(5.0):
        assert call_timeout() == (5.0, True)
        seen: list[tuple[float, bool]] = []
        other = threading.Thread(target=lambda: seen.append(call_timeout()))
        other.start()
        other.join()
        assert seen == [(DEFAULT_CALL_TIMEOUT, False)]  # another thread: another app
        with calls_bounded(None):
            assert call_timeout() == (DEFAULT_CALL_TIMEOUT, False)
    assert call_timeout() == (DEFAULT_CALL_TIMEOUT, False)


@pytest.mark.parametrize(
    ("seconds", "text"), [(5.0, "5s"), (1.5, "1.5s"), (300.0, "300s"), (86_400.0, "86400s")]
)
def test_durations_as_the_tools_read_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_kubectl_is_told_its_bound() -> None:
    apply = kubectl.apply_argv("kubectl", server_side=True)
    assert kubectl.bounded_argv(apply, 5.0)[-1] == "--request-timeout=5s"
    delete = kubectl.delete_many_argv("kubectl")
    assert kubectl.bounded_argv(delete, 7.0)[-2:] == ["--request-timeout=7s", "--timeout=7s"]
    # Its own bound stays (the reachability probe); config commands ask no server.
    probe = kubectl.version_argv("kubectl")
    assert kubectl.bounded_argv(probe, 5.0) == probe
    view = kubectl.config_view_argv("kubectl")
    assert kubectl.bounded_argv(view, 5.0) == view


def test_helm_release_changes_are_told_their_bound() -> None:
    rollback = helm.rollback_argv("helm", "web", "shop", 2)
    assert helm.bounded_argv(rollback, 5.0)[-2:] == ["--timeout", "5s"]
    uninstall = helm.uninstall_argv("helm", "web", "shop")
    assert helm.bounded_argv(uninstall, 90.0)[-2:] == ["--timeout", "90s"]
    # An app's own --timeout is kept; reads take no --timeout (the process deadline bounds
    # them).
    timed = helm.rollback_argv("helm", "web", "shop", 2, timeout="1m")
    assert helm.bounded_argv(timed, 5.0) == timed
    status = helm.status_argv("helm", "web", "shop")
    assert helm.bounded_argv(status, 5.0) == status


def test_a_command_that_outlives_its_bound_is_stopped_and_fails() -> None:
    with calls_bounded(0.5), pytest.raises(ClusterError) as err:
        Shell().run(["sh", "-c", "sleep 60; echo finished"], what="sleep")
    assert err.value.message == (
        "sleep failed: no answer within 0.5s (the app's timeout); sh was stopped"
    )


def test_a_command_that_ignores_sigterm_and_leaves_a_child_is_still_ended() -> None:
    # sh ignores SIGTERM and its sleep keeps the output pipe open after sh is killed.
    script = "trap '' TERM; sleep 60; echo finished"
    with calls_bounded(0.5), pytest.raises(ClusterError, match=r"no answer within 0\.5s"):
        Shell().run(["sh", "-c", script], what="stubborn")


def test_a_command_within_its_bound_runs_as_always() -> None:
    with calls_bounded(300.0):
        proc = Shell().execute(["sh", "-c", "echo fine; exit 3"], what="echo")
    assert (proc.returncode, proc.stdout) == (3, "fine\n")


def test_overdue_tells_a_call_that_outlived_its_deadline(tmp_path: Path) -> None:
    done = tmp_path / "done"
    failures: list[BaseException] = []

    def call() -> None:
        script = f"while [ ! -e '{done}' ]; do sleep 0.05; done"
        try:
            Shell().run(["sh", "-c", script], what="wait")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    assert not overdue(now=math.inf)
    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    end = time.monotonic() + 300
    while not overdue(now=math.inf):  # the call is registered once its process started
        assert caller.is_alive() and time.monotonic() < end
        time.sleep(0.01)
    # Within its deadline now; past it and the time to stop it, the run would be stuck.
    assert not overdue()
    assert overdue(now=time.monotonic() + DEFAULT_CALL_TIMEOUT * 2)
    done.touch()
    caller.join(300)
    assert not caller.is_alive() and failures == []
    assert not overdue(now=math.inf)


def test_a_thread_asked_to_stop_starts_and_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After a SIGTERM marked the Stop a thread works under (read-ahead's, a run's worker's),
    its next command is never started, nor logged as run: the command said it was
    interrupted, and nothing runs on after that line."""
    from sbkube.errors import InterruptedDeployment
    from sbkube.interrupts import Stop, working_under

    marker = tmp_path / "ran"
    stop = Stop()
    stop.reason = InterruptedDeployment("interrupted by SIGTERM", exit_code=143)
    with caplog.at_level("DEBUG"), working_under(stop):
        with pytest.raises(InterruptedDeployment):
            Shell("/bin/sh").run(["/bin/sh", "-c", f"touch {marker}"], what="touch")
    assert not marker.exists()
    assert not [r for r in caplog.records if "touch" in r.getMessage()]
