"""Charts from repositories, with the real helm and a chart repository served on loopback:
``repo/chart`` through sbkube's own repository config, index refreshed for a new version,
local charts' unvendored dependencies built."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.port import ChartRef, TemplateRequest
from sbkube.errors import ClusterError, UsageError

pytestmark = pytest.mark.helm

if TYPE_CHECKING:
    from conftest import ChartRepo

CHARTS = Path(__file__).resolve().parents[2] / "fixtures" / "charts"


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """sbkube's cache directory, and the user's own helm directories (to stay untouched)."""
    cache = tmp_path / "xdg-cache"
    user = tmp_path / "user-helm"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    for var in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(var, str(user / var.lower()))
    monkeypatch.delenv("HELM_REPOSITORY_CONFIG", raising=False)
    monkeypatch.delenv("HELM_REPOSITORY_CACHE", raising=False)
    return {"sbkube": cache / "sbkube" / "helm", "user": user}


def chart_label(manifests: list[dict[str, Any]]) -> str:
    return str(manifests[0]["metadata"]["labels"]["helm.sh/chart"])


def render(helm_binary: str, chart: ChartRef) -> list[dict[str, Any]]:
    # A new client per call: a new sbkube run, which knows nothing of the previous one.
    return HelmClient(helm_binary).template(
        TemplateRequest(chart, release_name="r", namespace="n", values={})
    )


def test_repo_chart_is_resolved_through_sbkubes_own_repository_config(
    helm_binary: str, chart_repo: ChartRepo, homes: dict[str, Path]
) -> None:
    chart = ChartRef("loop/demo-redis", "0.1.0", repo_url=chart_repo.url)

    assert chart_label(render(helm_binary, chart)) == "demo-redis-0.1.0"

    config = yaml.safe_load((homes["sbkube"] / "repositories.yaml").read_text())
    assert [(r["name"], r["url"]) for r in config["repositories"]] == [("loop", chart_repo.url)]
    # The user's helm directories were never written.
    assert not homes["user"].exists() or not any(homes["user"].rglob("repositories.yaml"))


def test_index_is_fetched_again_only_for_a_version_it_lacks(
    helm_binary: str, chart_repo: ChartRepo, homes: dict[str, Path]
) -> None:
    render(helm_binary, ChartRef("loop/demo-redis", "0.1.0", repo_url=chart_repo.url))
    assert chart_repo.index_fetches() == 1  # helm repo add
    render(helm_binary, ChartRef("loop/demo-redis", "0.1.0", repo_url=chart_repo.url))
    assert chart_repo.index_fetches() == 1  # configured, and the version is in the index

    chart_repo.publish("0.2.0")
    newer = render(helm_binary, ChartRef("loop/demo-redis", "0.2.0", repo_url=chart_repo.url))

    assert chart_label(newer) == "demo-redis-0.2.0"
    assert chart_repo.index_fetches() == 2  # helm repo update, once


def test_a_version_the_repository_does_not_have_is_named(
    helm_binary: str, chart_repo: ChartRepo, homes: dict[str, Path]
) -> None:
    with pytest.raises(ClusterError) as err:
        render(helm_binary, ChartRef("loop/demo-redis", "9.9.9", repo_url=chart_repo.url))
    assert str(err.value) == (
        f"chart loop/demo-redis version 9.9.9 not found in repository loop ({chart_repo.url})"
    )


def test_a_changed_repository_url_is_followed(
    helm_binary: str, chart_repo: ChartRepo, homes: dict[str, Path]
) -> None:
    render(helm_binary, ChartRef("loop/demo-redis", "0.1.0", repo_url=chart_repo.url + "/"))
    render(helm_binary, ChartRef("loop/demo-redis", "0.1.0", repo_url=chart_repo.url))
    config = yaml.safe_load((homes["sbkube"] / "repositories.yaml").read_text())
    assert [r["url"] for r in config["repositories"]] == [chart_repo.url]


def test_local_chart_dependencies_are_built_when_not_vendored(
    helm_binary: str, chart_repo: ChartRepo, homes: dict[str, Path], tmp_path: Path
) -> None:
    parent = tmp_path / "parent"
    (parent / "templates").mkdir(parents=True)
    (parent / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "parent",
                "version": "1.0.0",
                "dependencies": [
                    {"name": "demo-redis", "version": "0.1.0", "repository": chart_repo.url}
                ],
            }
        )
    )

    manifests = render(helm_binary, ChartRef(str(parent)))

    assert "demo-redis-0.1.0" in {m["metadata"]["labels"]["helm.sh/chart"] for m in manifests}
    assert [p.name for p in (parent / "charts").iterdir()] == ["demo-redis-0.1.0.tgz"]
    fetched = len(chart_repo.requests)
    render(helm_binary, ChartRef(str(parent)))
    assert len(chart_repo.requests) == fetched  # vendored now: nothing downloaded again


def test_a_chart_without_version_refreshes_an_index_older_than_the_max_age(
    helm_binary: str,
    chart_repo: ChartRepo,
    homes: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    latest = ChartRef("loop/demo-redis", None, repo_url=chart_repo.url)
    assert chart_label(render(helm_binary, latest)) == "demo-redis-0.1.0"
    chart_repo.publish("0.2.0")
    # A fresh cached index (younger than the default hour) serves as it is.
    assert chart_label(render(helm_binary, latest)) == "demo-redis-0.1.0"
    assert chart_repo.index_fetches() == 1

    # The cache's clock, not ours: the index is made two hours old.
    index = homes["sbkube"] / "repository" / "loop-index.yaml"
    old = index.stat().st_mtime - 7200
    os.utime(index, (old, old))
    assert chart_label(render(helm_binary, latest)) == "demo-redis-0.2.0"
    assert chart_repo.index_fetches() == 2

    # A configured age: 0 (deploy --refresh) fetches it every run.
    chart_repo.publish("0.3.0")
    monkeypatch.setenv("SBKUBE_REPO_INDEX_MAX_AGE", "0")
    assert chart_label(render(helm_binary, latest)) == "demo-redis-0.3.0"
    assert chart_repo.index_fetches() == 3
    monkeypatch.setenv("SBKUBE_REPO_INDEX_MAX_AGE", "soon")
    with pytest.raises(UsageError, match="SBKUBE_REPO_INDEX_MAX_AGE='soon'"):
        render(helm_binary, latest)


def test_a_repository_chart_is_pulled_and_built_with_overrides_and_removes(
    helm_binary: str, chart_repo: ChartRepo, homes: dict[str, Path], tmp_path: Path
) -> None:
    from sbkube.config.chart_build import build_chart, builds_home, override_files

    pulled = tmp_path / "pulled"
    pulled.mkdir()
    HelmClient(helm_binary).pull(
        ChartRef("loop/demo-redis", "0.1.0", repo_url=chart_repo.url), str(pulled)
    )
    (source,) = pulled.iterdir()
    assert (source / "templates" / "clusterrole.yaml").is_file()
    app_dir = tmp_path / "app"
    notes = app_dir / "overrides" / "cache" / "templates" / "NOTES.txt"
    notes.parent.mkdir(parents=True)
    notes.write_text("built by sbkube\n")
    files = override_files(app_dir, "cache", ("templates/*.txt",), "config.yaml: apps.cache")
    built = build_chart(source, files, ("templates/cluster*.yaml",), "config.yaml: apps.cache")
    assert built.path.is_relative_to(builds_home())
    assert (built.path / "templates" / "NOTES.txt").read_text() == "built by sbkube\n"
    assert not (built.path / "templates" / "clusterrole.yaml").exists()
    # The same inputs build the same chart, once: same place, same digest.
    assert build_chart(source, files, ("templates/cluster*.yaml",), "x") == built
    manifests = HelmClient(helm_binary).template(
        TemplateRequest(ChartRef(str(built.path)), release_name="r", namespace="n", values={})
    )
    assert "ClusterRole" not in {m["kind"] for m in manifests}
