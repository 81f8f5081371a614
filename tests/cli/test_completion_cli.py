"""``sbkube completion`` and what the completion script completes (real script, as the
shell calls it: ``_SBKUBE_COMPLETE=bash_complete COMP_WORDS=... COMP_CWORD=N``)."""

from __future__ import annotations

import pytest


def complete(sbkube, words: str) -> list[str]:
    """The values completed for the last word of ``words`` (bash protocol)."""
    parts = words.split(" ")
    proc = sbkube(
        env={
            "_SBKUBE_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(parts) - 1),
        }
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    # Lines are "type,value".
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if "," in line]


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F"),
        ("zsh", "#compdef sbkube"),
        ("fish", "complete --no-files --command sbkube"),
    ],
)
def test_completion_script(sbkube, shell, marker):
    proc = sbkube("completion", shell)

    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout
    assert "_SBKUBE_COMPLETE" in proc.stdout


def test_completion_of_an_unknown_shell_is_bad_input(sbkube, expect_error):
    proc = sbkube("completion", "tcsh")
    assert proc.returncode == 2 and "tcsh" in expect_error(proc.stderr)


@pytest.mark.helm
def test_completes_commands_ids_apps_and_namespaces(sbkube, app_dir, cluster_file):
    assert "uninstall" in complete(sbkube, "sbkube un")
    assert complete(sbkube, "sbkube state show l")[:1] == ["latest"]
    deploy = ("deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    assert sbkube(*deploy).returncode == 0
    assert sbkube(*deploy).returncode == 0
    ids = [r["deployment_id"] for r in sbkube.json("state", "list")]

    shown = complete(sbkube, "sbkube state show ")
    dep_prefix = complete(sbkube, f"sbkube state show {ids[0][:12]}")
    to = complete(sbkube, "sbkube rollback --to latest")
    apps = complete(sbkube, f"sbkube deploy --app-dir {app_dir} --app ")
    apps_w = complete(sbkube, f"sbkube status --app-dir {app_dir} --app w")
    namespaces = complete(sbkube, f"sbkube deploy --app-dir {app_dir} -n ")

    assert shown[:2] == ["latest", "latest~1"] and set(ids) <= set(shown)
    assert set(ids) <= set(dep_prefix) and "latest" not in dep_prefix
    assert to == ["latest", "latest~1"]
    assert apps == ["cache", "web", "worker"]
    assert apps_w == ["web", "worker"]
    assert namespaces == ["shop"]


def test_completion_never_prints_an_error(sbkube, tmp_path):
    # No config.yaml there: nothing to complete, and nothing on stderr.
    assert complete(sbkube, f"sbkube deploy --app-dir {tmp_path} --app ") == []
