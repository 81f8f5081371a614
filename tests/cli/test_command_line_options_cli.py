"""Options as helm and kubectl users type them, through the real ``sbkube`` script: global
options anywhere (before or after the subcommand), ``-n``, ``--set``/``-f`` (recorded
redacted), and ``-o`` on every command."""

from __future__ import annotations

import json

import pytest
import yaml
from cli_helpers import deploy_args

from sbkube.cli.options import make_cluster

pytestmark = pytest.mark.helm


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
