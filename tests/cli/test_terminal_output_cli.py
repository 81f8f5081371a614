"""What ``sbkube`` writes on a terminal and off it, through the real script: colour on a
terminal only (``--no-color``, ``NO_COLOR``), progress while an app runs (a line off a
terminal, elapsed time on one), ``-q`` and ``-v``."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time

import pytest
from cli_helpers import deploy_args

pytestmark = pytest.mark.helm

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def in_pty(sbkube, *args: str, env: dict[str, str] | None = None, until: str | None = None):
    """Run the script with stdin, stdout and stderr on a terminal; all it wrote (stopped
    once ``until`` appears, then killed)."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sbkube.exe, *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**sbkube.env, **(env or {})},
        cwd=sbkube.cwd,
    )
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the other end closed: the process is gone
                    break
                if not chunk:
                    break
                out += chunk
                if until is not None and until in out.decode(errors="replace"):
                    break
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        os.close(primary)
    return out.decode(errors="replace")


# -- colour ---------------------------------------------------------------------------------


def test_colour_on_a_terminal_only(sbkube, app_dir, cluster_file):
    assert sbkube(*deploy_args(app_dir, cluster_file)).returncode == 0

    tty = in_pty(sbkube, "state", "list")
    no_color = in_pty(sbkube, "state", "list", "--no-color")
    env_off = in_pty(sbkube, "state", "list", env={"NO_COLOR": "1"})
    piped = sbkube("state", "list")

    assert "\x1b[32msuccess" in tty
    assert "success" in no_color and not ANSI.search(no_color)
    assert "success" in env_off and not ANSI.search(env_off)
    assert "success" in piped.stdout and not ANSI.search(piped.stdout + piped.stderr)


def test_state_diff_is_coloured_on_a_terminal(sbkube, app_dir, cluster_file):
    assert sbkube(*deploy_args(app_dir, cluster_file)).returncode == 0
    web = app_dir / "manifests" / "web.yaml"
    web.write_text(web.read_text().replace('mode: "v1"', 'mode: "v2"'))
    assert sbkube(*deploy_args(app_dir, cluster_file)).returncode == 0

    tty = in_pty(sbkube, "state", "diff", "latest~1", "latest")
    piped = sbkube("state", "diff", "latest~1", "latest")

    assert re.search(r"\x1b\[31m-\s+mode: v1", tty)
    assert re.search(r"\x1b\[32m\+\s+mode: v2", tty)
    assert "mode: v2" in piped.stdout and not ANSI.search(piped.stdout)


# -- progress, -q, -v -------------------------------------------------------------------------


def test_off_a_terminal_a_running_app_reports_while_it_runs(sbkube, app_dir, cluster_file):
    spawned = sbkube.spawn(
        *deploy_args(app_dir, cluster_file),
        env={"SBKUBE_MEMORY_BLOCK_ON": "web-config", "SBKUBE_PROGRESS_EVERY": "1"},
    )
    spawned.wait_for("BLOCKED web-config")

    line = spawned.wait_for("web (yaml) still running")

    assert re.search(r"  web \(yaml\) still running \(\d+s\)", line)
    assert "\r" not in spawned.stderr and not ANSI.search(spawned.stderr)


def test_on_a_terminal_the_running_app_shows_its_elapsed_time(sbkube, app_dir, cluster_file):
    out = in_pty(
        sbkube,
        *deploy_args(app_dir, cluster_file),
        env={"SBKUBE_MEMORY_BLOCK_ON": "web-config"},
        until="web (yaml) 2s",
    )

    plain = ANSI.sub("", out)
    assert re.search(r"running: (.*, )?web \(yaml\) 1s", plain)
    assert "\r" in out  # rewritten in place


def test_quiet_and_verbose(sbkube, app_dir, cluster_file):
    # The first deploy installs (so it runs helm); the second changes nothing, and -q
    # keeps it silent.
    verbose = sbkube(*deploy_args(app_dir, cluster_file), "-v", "-o", "json")
    quiet = sbkube(*deploy_args(app_dir, cluster_file), "-q")

    assert quiet.returncode == 0 and quiet.stderr == ""
    assert verbose.returncode == 0, verbose.stderr
    assert re.search(r"^run: \S*helm upgrade ", verbose.stderr, re.M), verbose.stderr
    # Progress although -o json; [k/3] counts finished apps, which finish in any order.
    assert re.search(r"\[[123]/3\] cache \(helm\) ok", verbose.stderr)
    assert json.loads(verbose.stdout)["status"] == "success"
