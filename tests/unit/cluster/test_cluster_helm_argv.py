"""The helm command lines, built without running helm."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from sbkube.cluster import helm as h
from sbkube.cluster.port import ChartRef, TemplateRequest, UpgradeRequest
from sbkube.cluster.process import VALUES_FROM_STDIN, values_json
from sbkube.errors import ClusterError


def test_global_flags() -> None:
    assert h.global_flags() == []
    assert h.global_flags(kubeconfig="/k", context="ctx") == [
        "--kubeconfig",
        "/k",
        "--kube-context",
        "ctx",
    ]


def test_template_argv_has_no_cluster_flags() -> None:
    argv = h.template_argv(
        "helm",
        TemplateRequest(
            ChartRef("bitnami/redis", version="18.1.0"), release_name="cache", namespace="data"
        ),
        values_file="/tmp/v.json",
    )
    assert argv == [
        "helm",
        "template",
        "cache",
        "bitnami/redis",
        "--namespace",
        "data",
        "--values",
        "/tmp/v.json",
        # The chart's crds/ are part of what an install puts on the cluster.
        "--include-crds",
        "--version",
        "18.1.0",
    ]


def test_show_crds_argv() -> None:
    argv = h.show_crds_argv("helm", ChartRef("repo/app", version="1.2.3"))
    assert argv == ["helm", "show", "crds", "repo/app", "--version", "1.2.3"]


def test_upgrade_install_argv_forces_conflicts_only_when_asked() -> None:
    def argv(force_conflicts: bool = False, dry_run: bool = False) -> list[str]:
        request = UpgradeRequest(
            ChartRef("./c"), release_name="r", namespace="n", force_conflicts=force_conflicts
        )
        return h.upgrade_install_argv("helm", request, values_file="v", dry_run=dry_run)

    assert "--force-conflicts" not in argv()
    forced = argv(force_conflicts=True, dry_run=True)
    assert "--force-conflicts" in forced and "--dry-run=server" in forced


def test_template_argv_without_version() -> None:
    argv = h.template_argv(
        "helm",
        TemplateRequest(ChartRef("./charts/x"), release_name="r", namespace="n"),
        values_file="v",
    )
    assert "--version" not in argv


def test_upgrade_install_argv_full() -> None:
    argv = h.upgrade_install_argv(
        "/bin/helm",
        UpgradeRequest(
            ChartRef("repo/app", version="1.0.0", repo_url="https://example.com"),
            release_name="app",
            namespace="prod",
            wait=True,
            timeout="5m",
        ),
        values_file="/tmp/values.json",
        flags=h.global_flags(kubeconfig="/home/u/.kube/config", context="k3s"),
    )
    assert argv == [
        "/bin/helm",
        "upgrade",
        "app",
        "repo/app",
        "--install",
        "--namespace",
        "prod",
        "--values",
        "/tmp/values.json",
        "--version",
        "1.0.0",
        "--create-namespace",
        "--wait",
        "--timeout",
        "5m",
        "--output",
        "json",
        "--kubeconfig",
        "/home/u/.kube/config",
        "--kube-context",
        "k3s",
    ]
    assert "https://example.com" not in argv  # repo_url is informational


def test_upgrade_install_argv_minimal() -> None:
    argv = h.upgrade_install_argv(
        "helm",
        UpgradeRequest(ChartRef("./c"), release_name="r", namespace="n", create_namespace=False),
        values_file="v",
    )
    assert argv == [
        "helm",
        "upgrade",
        "r",
        "./c",
        "--install",
        "--namespace",
        "n",
        "--values",
        "v",
        "--output",
        "json",
    ]


def test_status_history_values_metadata_argv() -> None:
    assert h.status_argv("helm", "r", "n", flags=h.global_flags(context="c")) == [
        "helm",
        "status",
        "r",
        "--namespace",
        "n",
        "--output",
        "json",
        "--kube-context",
        "c",
    ]
    assert h.history_argv("helm", "r", "n") == [
        "helm",
        "history",
        "r",
        "--namespace",
        "n",
        "--output",
        "json",
    ]
    assert h.get_values_argv("helm", "r", "n", revision=3) == [
        "helm",
        "get",
        "values",
        "r",
        "--namespace",
        "n",
        "--revision",
        "3",
        "--output",
        "json",
    ]
    assert "--revision" not in h.get_values_argv("helm", "r", "n")
    assert h.metadata_argv("helm", "r", "n", flags=h.global_flags(kubeconfig="/k"))[:4] == [
        "helm",
        "get",
        "metadata",
        "r",
    ]
    assert h.metadata_argv("helm", "r", "n", flags=h.global_flags(kubeconfig="/k"))[-2:] == [
        "--kubeconfig",
        "/k",
    ]


def test_rollback_and_uninstall_argv() -> None:
    assert h.rollback_argv("helm", "r", "n", 2, wait=True, timeout="1m") == [
        "helm",
        "rollback",
        "r",
        "2",
        "--namespace",
        "n",
        "--wait",
        "--timeout",
        "1m",
    ]
    assert h.rollback_argv("helm", "r", "n", 2, force_conflicts=True)[-1] == "--force-conflicts"
    assert h.uninstall_argv("helm", "r", "n", flags=h.global_flags(context="c")) == [
        "helm",
        "uninstall",
        "r",
        "--namespace",
        "n",
        "--ignore-not-found",
        "--kube-context",
        "c",
    ]


def test_show_chart_argv() -> None:
    assert h.show_chart_argv("helm", ChartRef("x.tgz", version="1")) == [
        "helm",
        "show",
        "chart",
        "x.tgz",
        "--version",
        "1",
    ]


def test_values_go_to_helm_as_json_on_stdin() -> None:
    values = {"auth": {"password": "s3cret"}, "flag": "on", "version": "1.10"}
    # Strings stay strings: "on" and "1.10" would change type through a naive YAML dump.
    assert json.loads(values_json(values)) == values
    assert VALUES_FROM_STDIN == "-"


@pytest.mark.helm
def test_helm_renders_values_from_stdin_and_writes_no_values_file(
    helm: h.HelmClient, demo_chart: ChartRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real helm reads ``--values -``; nothing lands in the temp dir on the way."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # re-read TMPDIR
    try:
        rendered = helm.template(
            TemplateRequest(
                demo_chart,
                release_name="r",
                namespace="n",
                values={"auth": {"password": "fromStdin99"}},
            )
        )
    finally:
        tempfile.tempdir = None
    assert "fromStdin99" in json.dumps(rendered)
    assert list(tmp_path.iterdir()) == []


def test_resolve_binary_names_missing_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBKUBE_HELM", "helm-that-does-not-exist")
    client = h.HelmClient()
    with pytest.raises(ClusterError, match="helm-that-does-not-exist") as err:
        _ = client.binary
    assert "SBKUBE_HELM" in str(err.value)
    assert err.value.exit_code == 1


def test_explicit_binary_wins_over_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exe = tmp_path / "my-helm"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("SBKUBE_HELM", "helm-that-does-not-exist")
    assert h.HelmClient(binary=str(exe)).binary == str(exe)
