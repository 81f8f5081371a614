"""Concurrent apps (issue 14 item 1) through the real console script, real helm and kubectl
against the memory cluster: the depends_on graph, failures, overlap, Ctrl-C, --concurrency
1 and 0, and one ``helm template`` per chart.

The apps are built here: YAML apps holding one ConfigMap ``<app>-cm`` each and Helm apps of
the shop fixture's ``cache`` chart (release ``<app>``), so the server's fault hooks
(``SBKUBE_MEMORY_FAIL_ON``/``SBKUBE_MEMORY_BLOCK_ON``) pick an app by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import LiveCluster

from sbkube.cli.output import Progress

pytestmark = pytest.mark.helm

CHART = Path(__file__).resolve().parents[1] / "fixtures" / "engine" / "shop" / "charts" / "cache"


def make_app_dir(root: Path, apps: dict[str, tuple[str, tuple[str, ...]]]) -> Path:
    """An app dir with ``apps``: name -> (``helm`` | ``yaml``, depends_on), in this order."""
    app_dir = root / "concurrent"
    (app_dir / "manifests").mkdir(parents=True)
    shutil.copytree(CHART, app_dir / "charts" / "cache")
    lines = ["namespace: conc", "apps:"]
    for name, (kind, deps) in apps.items():
        lines.append(f"  {name}:")
        if kind == "helm":
            lines += ["    type: helm", "    chart: ./charts/cache"]
        else:
            lines += ["    type: yaml", f"    manifests: [manifests/{name}.yaml]"]
            (app_dir / "manifests" / f"{name}.yaml").write_text(
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-cm\n"
                f"data:\n  app: {name}\n"
            )
        if deps:
            lines.append(f"    depends_on: [{', '.join(deps)}]")
    (app_dir / "config.yaml").write_text("\n".join(lines) + "\n")
    return app_dir


def _create_namespace(cluster_file: Path, name: str) -> None:
    from sbkube.cluster.memory import MemoryCluster

    with MemoryCluster(cluster_file) as cluster:
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def _names(cluster_file: Path) -> set[str]:
    return {o["metadata"]["name"] for o in LiveCluster(cluster_file).objects()}


# a -> b -> c, a -> d; e independent, f -> e. a is a Helm app; the others YAML.
GRAPH = {
    "a": ("helm", ()),
    "b": ("yaml", ("a",)),
    "c": ("yaml", ("b",)),
    "d": ("yaml", ("a",)),
    "e": ("yaml", ()),
    "f": ("yaml", ("e",)),
}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_failed_app_skips_exactly_its_dependents(
    backend: str,
    request: pytest.FixtureRequest,
    sbkube: Any,
    tmp_path: Path,
    cluster_file: Path,
    state_db: Path,
) -> None:
    url = str(request.getfixturevalue("pg_schema_url")) if backend == "postgres" else str(state_db)
    app_dir = make_app_dir(tmp_path, GRAPH)
    env = {"SBKUBE_STATE_URL": url, "SBKUBE_MEMORY_FAIL_ON": "b-cm"}

    proc = sbkube(
        "deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file), env=env
    )

    assert proc.returncode == 1, proc.stderr
    assert re.search(r"\] b \(yaml\) FAILED after", proc.stderr)
    assert "] c (yaml) skipped: dependency b failed" in proc.stderr
    data = sbkube.json("state", "show", "latest", env={"SBKUBE_STATE_URL": url})
    assert data["status"] == "partially_failed"
    statuses = {a["name"]: a["status"] for a in data["apps"]}
    assert statuses == {
        "a": "success",
        "b": "failed",
        "c": "skipped",
        "d": "success",
        "e": "success",
        "f": "success",
    }
    errors = {a["name"]: a["error_message"] for a in data["apps"]}
    assert "injected failure for b-cm" in errors["b"]
    assert errors["c"] == "skipped: dependency b failed"
    # The cluster agrees: everything but b's and c's objects, and a's release.
    names = _names(cluster_file)
    assert {"a-settings", "d-cm", "e-cm", "f-cm"} <= names
    assert not {"b-cm", "c-cm"} & names
    release = LiveCluster(cluster_file).release("a", "conc")
    assert (release.revision, release.status) == (1, "deployed")
    # The table lists the apps in config order, whatever order they ended in.
    rows = [line.split()[0] for line in proc.stdout.splitlines()[2:8]]
    assert rows == list(GRAPH)


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (helm and kubectl started by sbkube)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_two_apps_run_at_once_and_ctrl_c_interrupts_both(
    sbkube: Any, tmp_path: Path, cluster_file: Path, store: Any
) -> None:
    app_dir = make_app_dir(tmp_path, {"x": ("helm", ()), "y": ("yaml", ()), "z": ("yaml", ("x",))})
    base = ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    # The namespace exists, as on a cluster in use: a missing one would make y wait for x,
    # the first app to need it (deployer.namespace_turns).
    _create_namespace(cluster_file, "conc")
    running = sbkube.spawn(*base, env={"SBKUBE_MEMORY_BLOCK_ON": "x,y-cm"})
    # Both held by the server at the same time: the two apps overlap.
    running.wait_for("BLOCKED x")
    running.wait_for("BLOCKED y-cm")
    children = _children(running.proc.pid)
    assert children, "helm and kubectl should be running"

    running.proc.send_signal(signal.SIGINT)

    assert running.finish() == 130
    assert "Traceback" not in running.stderr
    assert [pid for pid in children if _alive(pid)] == []
    [summary] = sbkube.json("state", "list")
    assert summary["status"] == "interrupted"
    shown = sbkube.json("state", "show", summary["deployment_id"])
    # z (after x) never started: not recorded, as in any interrupted run.
    assert {a["name"]: a["status"] for a in shown["apps"]} == {
        "x": "interrupted",
        "y": "interrupted",
    }
    assert store().unfinished() == []
    # The lock went with the process: the next deploy proceeds at once.
    again = sbkube(*base)
    assert again.returncode == 0, again.stderr
    assert "locked" not in again.stderr
    assert {"x-settings", "y-cm", "z-cm"} <= _names(cluster_file)


def test_concurrency_1_runs_one_app_at_a_time_in_config_order(
    sbkube: Any, tmp_path: Path, cluster_file: Path
) -> None:
    apps = {name: ("yaml", ()) for name in ("p4", "p2", "p3", "p1")}
    app_dir = make_app_dir(tmp_path, apps)
    base = ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    running = sbkube.spawn(
        *base, "--concurrency", "1", env={"SBKUBE_MEMORY_BLOCK_ON": "p4-cm,p2-cm"}
    )
    running.wait_for("BLOCKED p4-cm")
    running.proc.send_signal(signal.SIGINT)
    assert running.finish() == 130
    # p2 never started while p4 ran (and nothing starts after Ctrl-C).
    assert "BLOCKED p2-cm" not in running.stderr
    shown = sbkube.json("state", "show", "latest")
    assert [(a["name"], a["status"]) for a in shown["apps"]] == [("p4", "interrupted")]

    proc = sbkube(*base, "--concurrency", "1")

    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "] p" in line]
    assert [re.search(r"\[(\d)/4\] (p\d) ", line).groups() for line in lines] == [
        ("1", "p4"),
        ("2", "p2"),
        ("3", "p3"),
        ("4", "p1"),
    ]
    shown = sbkube.json("state", "show", "latest")
    assert [a["name"] for a in shown["apps"]] == ["p4", "p2", "p3", "p1"]


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_an_invalid_concurrency_is_one_line_and_exit_2(
    sbkube: Any, app_dir: Path, cluster_file: Path, state_db: Path, expect_error: Any, value: str
) -> None:
    for command in ("deploy", "uninstall"):
        proc = sbkube(
            command,
            "--app-dir",
            str(app_dir),
            "--memory-cluster",
            str(cluster_file),
            "--concurrency",
            value,
        )
        assert proc.returncode == 2
        line = expect_error(proc.stderr)
        assert "--concurrency" in line and "1 or more" in line, line
    assert not cluster_file.exists() and not state_db.exists()


@pytest.mark.parametrize("value", [0, 257, 10**9])
def test_the_library_refuses_an_invalid_concurrency(
    app_dir: Path, tmp_path: Path, value: int
) -> None:
    """The library bounds ``concurrency`` as the CLI bounds ``--concurrency`` (1 to 256)."""
    from sbkube.cluster.kube import KubeCluster
    from sbkube.engine.deployer import deploy
    from sbkube.errors import UsageError

    with pytest.raises(UsageError, match=f"concurrency: {value} is not a number of apps") as err:
        deploy(app_dir, cluster=KubeCluster(offline=True), db=tmp_path / "s.db", concurrency=value)
    assert "at most 256" in err.value.message
    assert not (tmp_path / "s.db").exists()


def test_each_chart_is_rendered_once_per_deploy(
    sbkube: Any, tmp_path: Path, cluster_file: Path, helm_binary: str
) -> None:
    log = tmp_path / "helm-argv.log"
    wrapper = tmp_path / "helm-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {helm_binary} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    app_dir = make_app_dir(
        tmp_path, {"h1": ("helm", ()), "h2": ("helm", ()), "h3": ("helm", ("h1",))}
    )

    proc = sbkube(
        "deploy",
        "--app-dir",
        str(app_dir),
        "--memory-cluster",
        str(cluster_file),
        env={"SBKUBE_HELM": str(wrapper)},
    )

    assert proc.returncode == 0, proc.stderr
    runs = log.read_text().splitlines()
    templates = sorted(line.split()[1] for line in runs if line.startswith("template "))
    assert templates == ["h1", "h2", "h3"]
    installs = [line for line in runs if line.startswith("upgrade ")]
    assert len(installs) == 3


def test_the_first_render_error_by_app_order_is_reported(
    sbkube: Any, tmp_path: Path, cluster_file: Path, expect_error: Any
) -> None:
    strict = Path(__file__).resolve().parents[1] / "fixtures" / "charts" / "strict"
    app = tmp_path / "strict-apps"
    app.mkdir()
    (app / "values.yaml").write_text("logs: true\n")
    body = "".join(
        f"  {name}:\n    type: helm\n    chart: {strict}\n    values: [values.yaml]\n"
        for name in ("zeta", "alpha", "mid")
    )
    (app / "config.yaml").write_text(f"namespace: demo\napps:\n{body}")

    proc = sbkube("deploy", "--app-dir", str(app), "--memory-cluster", str(cluster_file))

    assert proc.returncode == 2
    first = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(first) == 1 and "apps.zeta.chart" in first[0], proc.stderr


def test_the_status_line_shows_every_running_app(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(True, tty=True, color=False)
    progress.app_started("cache (helm)")
    progress.app_started("worker (yaml)")
    assert re.fullmatch(
        r"\s*\d+\.\ds  running: cache \(helm\) \d+s, worker \(yaml\) \d+s",
        progress.status_line(),
    )
    progress.app_ended("cache (helm)")
    progress("[1/2] cache (helm) ok in 0.1s: 2 create")
    err = capsys.readouterr().err
    # The status line is drawn in place (erased, even without colour), the finished app's
    # line printed in full.
    assert "\r\x1b[2K" in err and "running: cache (helm)" in err
    assert "[1/2] cache (helm) ok in 0.1s" in err
    assert re.search(r"running: worker \(yaml\) \d+s$", err.rstrip("\n"))
    progress.app_ended("worker (yaml)")


def test_off_a_terminal_there_is_no_status_line(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(True, tty=False, every=60, color=False)
    progress.app_started("cache (helm)")
    progress.app_started("worker (yaml)")
    progress.app_ended("worker (yaml)")
    progress("[1/2] worker (yaml) ok in 0.0s: 1 create")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\r" not in err and "running" not in err
