"""The original sbkube's formats read into our model (``config.dialects``,
``config.original``): which format a dir holds, the original's names and defaults, and
one refusal line per field we do not support."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbkube.config import load_config
from sbkube.config.dialects import Dialect
from sbkube.config.schema import GitApp, HelmApp, HttpApp, NoopApp, YamlApp
from sbkube.errors import ConfigError


def chart(root: Path) -> None:
    (root / "chart" / "templates").mkdir(parents=True)
    (root / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")


def write(root: Path, name: str, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(text)
    return path


SINGLE = """\
apiVersion: sbkube/v1
settings:
  namespace: team
apps:
  app:
    type: helm
    chart: ./chart
"""


def test_sbkube_yaml_is_found_and_its_helm_defaults_hold(tmp_path: Path) -> None:
    chart(tmp_path)
    write(tmp_path, "sbkube.yaml", SINGLE)
    loaded = load_config(tmp_path)
    assert loaded.dialect == Dialect.SINGLE
    assert loaded.config.namespace == "team"
    app = loaded.config.apps["app"]
    assert isinstance(app, HelmApp)
    # The original's defaults: wait true, timeout 5m (ours: no wait, helm's timeout).
    assert app.wait is True and app.timeout == "5m"


def test_settings_namespace_defaults_to_default(tmp_path: Path) -> None:
    chart(tmp_path)
    write(tmp_path, "sbkube.yaml", "apiVersion: sbkube/v1\napps:\n  a: {type: noop}\n")
    loaded = load_config(tmp_path)
    assert loaded.config.namespace == "default"
    assert isinstance(loaded.config.apps["a"], NoopApp)


def test_our_config_yaml_is_read_as_ours_unchanged(tmp_path: Path) -> None:
    chart(tmp_path)
    write(tmp_path, "config.yaml", "namespace: n\napps:\n  app: {type: helm, chart: ./chart}\n")
    loaded = load_config(tmp_path)
    assert loaded.dialect == Dialect.OURS
    app = loaded.config.apps["app"]
    assert isinstance(app, HelmApp) and app.wait is False
    assert loaded.snapshot == {
        "namespace": "n",
        "apps": {"app": {"type": "helm", "chart": "./chart"}},
    }


def test_a_sources_yaml_beside_makes_config_yaml_the_originals(tmp_path: Path) -> None:
    chart(tmp_path)
    write(tmp_path, "config.yaml", "namespace: n\napps:\n  app: {type: helm, chart: ./chart}\n")
    write(tmp_path, "sources.yaml", "cluster: c1\nhelm_repos: {r: 'https://charts.example.com'}\n")
    loaded = load_config(tmp_path)
    assert loaded.dialect == Dialect.PAIR
    assert loaded.config.cluster == "c1"
    assert loaded.config.repos == {"r": "https://charts.example.com"}
    app = loaded.config.apps["app"]
    assert isinstance(app, HelmApp) and app.wait is True


def test_an_original_only_field_makes_config_yaml_the_originals(tmp_path: Path) -> None:
    chart(tmp_path)
    write(
        tmp_path,
        "config.yaml",
        "namespace: n\napps:\n  app:\n    type: helm\n    chart: ./chart\n"
        "    set_values: ['a.b=1', 'flag=true', 'name=x']\n    notes: hi\n",
    )
    loaded = load_config(tmp_path)
    assert loaded.dialect == Dialect.PAIR
    app = loaded.config.apps["app"]
    assert isinstance(app, HelmApp)
    assert app.set == {"a.b": 1, "flag": True, "name": "x"}


def test_profile_picks_sources_env_yaml_and_a_missing_one_is_named(tmp_path: Path) -> None:
    chart(tmp_path)
    write(tmp_path, "config.yaml", "namespace: n\napps:\n  app: {type: helm, chart: ./chart}\n")
    write(tmp_path, "sources.yaml", "cluster: plain\n")
    write(tmp_path, "sources-prod.yaml", "cluster: prod\n")
    assert load_config(tmp_path, profile="prod").config.cluster == "prod"
    with pytest.raises(
        ConfigError, match=r"config\.yaml: --profile dev: no such profile \(known: prod\)"
    ):
        load_config(tmp_path, profile="dev")


def test_config_file_picks_explicitly(tmp_path: Path) -> None:
    chart(tmp_path)
    write(tmp_path, "sbkube.yaml", SINGLE)
    write(tmp_path, "config.yaml", "namespace: ours\napps:\n  app: {type: helm, chart: ./chart}\n")
    assert load_config(tmp_path).config.namespace == "team"  # sbkube.yaml first
    assert load_config(tmp_path, "config.yaml").config.namespace == "ours"
    write(tmp_path, "other.yaml", SINGLE.replace("team", "other"))
    loaded = load_config(tmp_path, "other.yaml")
    assert loaded.dialect == Dialect.SINGLE and loaded.config.namespace == "other"


def test_files_labels_and_annotations_of_a_yaml_app(tmp_path: Path) -> None:
    write(tmp_path / "m", "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    write(
        tmp_path,
        "config.yaml",
        "namespace: n\nglobal_labels: {g: '1'}\napps:\n  y:\n    type: yaml\n"
        "    files: [m/cm.yaml]\n    labels: {l: '2'}\n",
    )
    app = load_config(tmp_path).config.apps["y"]
    assert isinstance(app, YamlApp)
    assert app.manifests == ("m/cm.yaml",) and app.labels == {"g": "1", "l": "2"}


def test_unsupported_fields_are_refused_one_line_each(tmp_path: Path) -> None:
    chart(tmp_path)
    write(
        tmp_path,
        "sbkube.yaml",
        """\
apiVersion: sbkube/v1
settings:
  on_failure: explode
  global_values: {a: 1}
  helm_repos:
    private: {url: 'https://charts.example.com', password: hunter2}
apps:
  app:
    type: helm
    chart: ./chart
    atomic: true
    context: elsewhere
    colour: blue
""",
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    lines = err.value.message.splitlines()
    fields = sorted(line.split(": ")[1] for line in lines)
    assert fields == [
        "apps.app.atomic",
        "apps.app.colour",
        "apps.app.context",
        "settings.global_values",
        "settings.helm_repos.private.password",
        "settings.on_failure",
    ]
    assert all(line.startswith("sbkube.yaml: ") or "/sbkube.yaml: " in line for line in lines)
    # A secret in a refused field is never echoed.
    assert "hunter2" not in err.value.message


def test_unknown_app_type_lists_the_originals(tmp_path: Path) -> None:
    write(tmp_path, "sbkube.yaml", "apiVersion: sbkube/v1\napps:\n  a: {type: docker}\n")
    with pytest.raises(
        ConfigError,
        match=r"apps\.a\.type: unknown app type 'docker' \(valid types: helm, yaml, noop",
    ):
        load_config(tmp_path)


def test_oci_registry_charts_become_oci_references(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sbkube.yaml",
        "apiVersion: sbkube/v1\nsettings:\n  oci_registries: {gh: ghcr.io/acme/charts}\n"
        "apps:\n  a: {type: helm, chart: gh/web, version: '1.0.0'}\n",
    )
    app = load_config(tmp_path).config.apps["a"]
    assert isinstance(app, HelmApp) and app.chart == "oci://ghcr.io/acme/charts/web"


def test_git_apps_read_git_repos_and_the_originals_ref_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sbkube.yaml",
        """\
apiVersion: sbkube/v1
settings:
  git_repos:
    infra: {url: 'https://git.example.com/infra.git', branch: stable}
    bare: 'https://git.example.com/bare.git'
apps:
  by-name: {type: git, repo: infra}
  by-default: {type: git, repo: bare, path: deploy}
  ref-wins: {type: git, repo: infra, branch: dev, ref: v1.2.0}
  by-url: {type: git, repo: 'file:///srv/repo.git', commit: 0123abcd}
  site:
    type: yaml
    files: ['${repos.by-name}/site.yaml']
  download: {type: http, url: 'https://example.com/crd.yaml', dest: crds/crd.yaml}
""",
    )
    loaded = load_config(tmp_path)
    apps = loaded.config.apps
    got = {
        name: (app.repo, app.wanted, app.path)
        for name, app in apps.items()
        if isinstance(app, GitApp)
    }
    assert got == {
        "by-name": ("https://git.example.com/infra.git", ("branch", "stable"), None),
        "by-default": ("https://git.example.com/bare.git", ("branch", "main"), "deploy"),
        "ref-wins": ("https://git.example.com/infra.git", ("ref", "v1.2.0"), None),
        "by-url": ("file:///srv/repo.git", ("commit", "0123abcd"), None),
    }
    http = apps["download"]
    assert isinstance(http, HttpApp) and http.dest == "crds/crd.yaml"
    # The site's file is in a checkout not fetched yet: checked once it is (engine.fetch).
    assert loaded.waits_for_sources("site") == ("by-name",)
    with pytest.raises(ConfigError, match=r"\$\{repos\.by-name\}: the checkout of git app"):
        loaded.resolve_path("${repos.by-name}/site.yaml")


def test_git_refusals_name_their_field(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sbkube.yaml",
        """\
apiVersion: sbkube/v1
settings:
  git_repos:
    private: {url: 'https://git.example.com/p.git', password: hunter2}
apps:
  a: {type: git, repo: unknown}
  b: {type: yaml, files: ['${repos.a}/x.yaml']}
""",
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    fields = sorted(line.split(": ")[1] for line in err.value.message.splitlines())
    assert fields == ["apps.a.repo", "settings.git_repos.private.password"]
    assert "hunter2" not in err.value.message


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("${repos.web}/x.yaml", "${repos.web} names no git app"),
        ("${repos.gti}/x.yaml", "names no git app (did you mean 'git'?)"),
        ("${repo.git}/x.yaml", "is not ${repos.NAME}"),
        ("${repos.git/x.yaml", "is not ${repos.NAME}"),
    ],
)
def test_a_repo_variable_names_a_git_app(tmp_path: Path, path: str, needle: str) -> None:
    write(
        tmp_path,
        "config.yaml",
        "namespace: demo\napps:\n  git: {type: git, repo: 'file:///r.git'}\n"
        f"  web: {{type: yaml, manifests: ['{path}']}}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert needle in err.value.message and "apps.web" in err.value.message


def test_convert_writes_git_and_http_apps_in_our_terms(tmp_path: Path) -> None:
    from sbkube.config.convert import convert

    original = tmp_path / "original"
    write(
        original,
        "sbkube.yaml",
        """\
apiVersion: sbkube/v1
settings:
  namespace: team
  git_repos:
    infra: {url: 'https://git.example.com/infra.git', branch: stable}
apps:
  src: {type: git, repo: infra, branch: dev, ref: v2}
  dl: {type: http, url: 'https://example.com/a.yaml', dest: a.yaml, headers: {X-A: b}}
""",
    )
    text = convert(original)
    assert "#   apps.src.repo: repo: https://git.example.com/infra.git (git_repos.infra)" in text
    assert "#   apps.src.branch: ref: wins; branch is not used" in text
    ours = tmp_path / "ours"
    write(ours, "config.yaml", text)
    theirs, mine = load_config(original).config, load_config(ours).config
    assert load_config(ours).dialect == Dialect.OURS
    assert mine.apps == theirs.apps
    src = mine.apps["src"]
    assert isinstance(src, GitApp) and src.wanted == ("ref", "v2")
