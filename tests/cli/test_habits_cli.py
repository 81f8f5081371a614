"""Habits of helm and kubectl users (issue 15), through the real ``sbkube`` script: global
options anywhere, -n, --set/-f, -o everywhere, colour, progress, -q/-v, history columns."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from sbkube.cli.options import make_cluster

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


def deploy_args(app_dir: Path, cluster_file: Path) -> tuple[str, ...]:
    return ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))


# -- global options anywhere --------------------------------------------------------------


def test_global_options_after_the_subcommand(sbkube, app_dir, cluster_file, tmp_path):
    other = tmp_path / "other.db"
    env = {"SBKUBE_STATE_URL": ""}

    deployed = sbkube(*deploy_args(app_dir, cluster_file), "--state", str(other), env=env)
    listed = sbkube("state", "list", "--state", str(other), "-o", "json", env=env)
    listed_eq = sbkube("state", "list", f"--state={other}", "--no-color", "-q", env=env)
    before = sbkube("--state", str(other), "--debug", "state", "list", env=env)
    ctx = sbkube("state", "list", "--state", str(other), "--kube-context", "k", env=env)

    assert deployed.returncode == 0, deployed.stderr
    assert other.exists()
    assert listed.returncode == 0, listed.stderr
    assert [r["command"] for r in json.loads(listed.stdout)] == ["deploy"]
    assert listed_eq.returncode == 0 and "deploy" in listed_eq.stdout
    assert before.returncode == 0 and "deploy" in before.stdout
    assert ctx.returncode == 0, ctx.stderr
    # --debug after the command still means tracebacks.
    bad = sbkube("state", "show", "nope", "--debug")
    assert "Traceback" in bad.stderr


def test_context_after_the_command_reaches_kubectl(sbkube, app_dir, tmp_path, expect_error):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")

    proc = sbkube(
        "deploy",
        "--app-dir",
        str(app_dir),
        "--kubeconfig",
        str(kubeconfig),
        "--kube-context",
        "nowhere",
    )

    # The context given after the command is the one kubectl was asked for.
    assert proc.returncode == 1
    assert "nowhere" in expect_error(proc.stderr)


def test_quiet_and_verbose_exclude_each_other(sbkube, expect_error):
    proc = sbkube("state", "list", "-q", "-v")
    assert proc.returncode == 2
    assert "exclude each other" in expect_error(proc.stderr)


# -- -n, --set, -f ------------------------------------------------------------------------


def test_namespace_option_overrides_the_config(sbkube, app_dir, cluster_file):
    deployed = sbkube.json(*deploy_args(app_dir, cluster_file), "-n", "staging")
    rendered = sbkube("template", "--app-dir", str(app_dir), "-n", "staging", "--app", "web")
    rolled = sbkube(
        "rollback",
        "-n",
        "staging",
        "--memory-cluster",
        str(cluster_file),
        "--dry-run",
        "--to",
        "latest",
    )

    assert deployed["namespace"] == "staging"
    assert {a["namespace"] for a in deployed["apps"]} == {"staging"}
    cluster = make_cluster(None, None, str(cluster_file))
    assert cluster.get(("apps/v1", "Deployment", "staging", "web")) is not None
    assert cluster.get(("apps/v1", "Deployment", "shop", "web")) is None
    shown = sbkube.json("state", "show", deployed["deployment_id"])
    assert shown["config_snapshot"]["namespace"] == "staging"
    assert shown["config_snapshot"]["command_line"] == {"namespace": "staging"}
    assert "namespace: staging" in rendered.stdout and "namespace: shop" not in rendered.stdout
    assert rolled.returncode == 0, rolled.stderr
    assert "target memory/staging" in rolled.stdout


def test_set_and_values_files_win_and_are_recorded_redacted(
    sbkube, app_dir, cluster_file, tmp_path
):
    prod = tmp_path / "prod.yaml"
    prod.write_text("greeting: from-file\nsize: 3\n")

    result = sbkube.json(
        *deploy_args(app_dir, cluster_file),
        "-f",
        str(prod),
        "--set",
        "size=9",
        "--set",
        "cache:password=hunter2-cli",
    )

    cluster = make_cluster(None, None, str(cluster_file))
    settings = cluster.get(("v1", "ConfigMap", "shop", "cache-settings"))
    assert settings is not None
    # The file beats config.yaml's values; --set beats the file.
    assert settings["data"] == {"greeting": "from-file", "size": "9"}
    shown = sbkube.json("state", "show", result["deployment_id"])
    [release] = shown["apps"][0]["helm_releases"]
    assert release["values"]["greeting"] == "from-file" and release["values"]["size"] == 9
    assert release["values"]["password"].startswith("hmac-sha256:")
    line = shown["config_snapshot"]["command_line"]["values"]
    assert line["*"] == {"greeting": "from-file", "size": 9}
    assert line["cache"]["password"].startswith("hmac-sha256:")
    assert str(prod.resolve()) in shown["sources_snapshot"] or any(
        k.endswith("prod.yaml") for k in shown["sources_snapshot"]
    )
    assert "hunter2-cli" not in json.dumps(shown)

    rendered = sbkube(
        "template",
        "--app-dir",
        str(app_dir),
        "--app",
        "cache",
        "--set",
        "greeting=hi,size=1",
        "-o",
        "json",
    )
    docs = {d["kind"]: d for d in json.loads(rendered.stdout)}
    assert docs["ConfigMap"]["data"] == {"greeting": "hi", "size": "1"}


def test_set_for_a_yaml_app_or_a_bad_pair_is_bad_input(sbkube, app_dir, expect_error):
    yaml_app = sbkube("template", "--app-dir", str(app_dir), "--set", "web:a=1")
    no_value = sbkube("template", "--app-dir", str(app_dir), "--set", "justakey")
    no_file = sbkube("template", "--app-dir", str(app_dir), "-f", "missing.yaml")

    assert yaml_app.returncode == 2 and "'web' is not a helm app" in expect_error(yaml_app.stderr)
    assert no_value.returncode == 2 and "expected NAME=VALUE" in expect_error(no_value.stderr)
    assert no_file.returncode == 2 and "missing.yaml" in expect_error(no_file.stderr)


# -- -o everywhere --------------------------------------------------------------------------


def test_output_formats_on_deploy_rollback_and_template(sbkube, app_dir, cluster_file):
    first = yaml.safe_load(sbkube(*deploy_args(app_dir, cluster_file), "-o", "yaml").stdout)
    assert first["status"] == "success" and first["apps"][0]["name"] == "cache"
    assert sbkube(*deploy_args(app_dir, cluster_file)).returncode == 0

    rolled = sbkube(
        "rollback",
        "--app-dir",
        str(app_dir),
        "--memory-cluster",
        str(cluster_file),
        "--dry-run",
        "-o",
        "yaml",
    )
    plan = yaml.safe_load(rolled.stdout)
    assert plan["dry_run"] is True and plan["plan"]["target_id"] == first["deployment_id"]

    docs = json.loads(sbkube("template", "--app-dir", str(app_dir), "-o", "json").stdout)
    assert isinstance(docs, list)
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} >= {
        ("Secret", "cache-auth"),
        ("Deployment", "web"),
        ("Secret", "worker-token"),
    }


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
    quiet = sbkube(*deploy_args(app_dir, cluster_file), "-q")
    verbose = sbkube(*deploy_args(app_dir, cluster_file), "-v", "-o", "json")

    assert quiet.returncode == 0 and quiet.stderr == ""
    assert verbose.returncode == 0, verbose.stderr
    assert re.search(r"^run: \S*helm template ", verbose.stderr, re.M)
    # Progress although -o json; [k/3] counts finished apps, which finish in any order.
    assert re.search(r"\[[123]/3\] cache \(helm\) ok", verbose.stderr)
    assert json.loads(verbose.stdout)["status"] == "success"


# -- history ------------------------------------------------------------------------------


def test_history_shows_and_filters_the_target(sbkube, app_dir, cluster_file):
    assert sbkube(*deploy_args(app_dir, cluster_file)).returncode == 0
    assert sbkube(*deploy_args(app_dir, cluster_file), "-n", "staging").returncode == 0

    table = sbkube("state", "history", "web")
    only = sbkube.json("state", "history", "web", "-n", "staging", "--cluster", "memory")
    none = sbkube("state", "history", "web", "--cluster", "elsewhere")

    header = table.stdout.splitlines()[0].split()
    assert header[:4] == ["DEPLOYMENT", "STARTED", "CLUSTER", "NAMESPACE"]
    assert re.search(r"memory\s+staging\s+deploy", table.stdout)
    assert re.search(r"memory\s+shop\s+deploy", table.stdout)
    assert [(r["cluster"], r["namespace"]) for r in only] == [("memory", "staging")]
    assert "No deployment of app 'web' recorded." in none.stdout
