"""``--profile ENV`` and ``-l/--selector``: which config is read and exactly which apps a
command picks, in every format (``sbkube.config.environments``, ``sbkube.config.selection``).

The platform below is the one every table here is read against (``<-``: depends on)::

    dns (noop, infra) <- db (data) <- api (back, team shop) <- web (front, team shop)
    cache (data, team shop, env dev)
    metrics (noop, ops, namespace ops) <- dashboards (ops, team obs)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sbkube.config import load_config
from sbkube.config.dialects import Dialect
from sbkube.config.schema import HelmApp
from sbkube.errors import ConfigError, UsageError

CONFIG = """\
namespace: shop
apps:
  dns: {type: noop, labels: {tier: infra}}
  db: {type: yaml, manifests: [m.yaml], labels: {tier: data}, depends_on: [dns]}
  cache: {type: yaml, manifests: [m.yaml], labels: {tier: data, team: shop, env: dev}}
  api: {type: yaml, manifests: [m.yaml], labels: {tier: back, team: shop}, depends_on: [db]}
  web: {type: yaml, manifests: [m.yaml], labels: {tier: front, team: shop}, depends_on: [api]}
  metrics: {type: noop, namespace: ops, labels: {tier: ops}}
  dashboards: {type: noop, namespace: ops, labels: {tier: ops, team: obs}, depends_on: [metrics]}
environments:
  prod:
    namespace: shop-prod
    apps:
      cache: {enabled: false}
      web: {labels: {tier: front, team: shop, canary: "yes"}}
  dev: {}
"""


def write(path: Path, name: str, text: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_text(text)
    return path


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    write(tmp_path, "m.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n")
    return write(tmp_path, "config.yaml", CONFIG)


# Each row: the -l options, --profile, --no-deps, and exactly the apps picked, in deploy order.
PICKS = [
    ((), None, False, ["dns", "db", "cache", "api", "web", "metrics", "dashboards"]),
    ((), "prod", False, ["dns", "db", "api", "web", "metrics", "dashboards"]),
    (("tier=front",), None, False, ["dns", "db", "api", "web"]),
    (("tier=front",), None, True, ["web"]),
    (("tier=data",), None, False, ["dns", "db", "cache"]),
    (("tier=data",), None, True, ["db", "cache"]),
    (("tier=data",), "prod", True, ["db"]),
    (("tier=data,env!=dev",), None, True, ["db"]),
    (("team=shop",), None, True, ["cache", "api", "web"]),
    (("team!=shop",), None, True, ["dns", "db", "metrics", "dashboards"]),
    (("team=shop", "tier=ops"), None, True, ["cache", "api", "web", "metrics", "dashboards"]),
    (("team=obs",), None, False, ["metrics", "dashboards"]),
    (("canary=yes",), "prod", True, ["web"]),
    (("name=api",), None, False, ["dns", "db", "api"]),
    (("namespace=ops",), None, True, ["metrics", "dashboards"]),
    (("type==noop",), None, True, ["dns", "metrics", "dashboards"]),
    (("tier=data,team=shop", "tier=front"), "dev", True, ["cache", "web"]),
]


@pytest.mark.parametrize(("selectors", "profile", "no_deps", "picked"), PICKS)
def test_selector_and_profile_pick_exactly_these_apps(
    platform: Path,
    selectors: tuple[str, ...],
    profile: str | None,
    no_deps: bool,
    picked: list[str],
) -> None:
    loaded = load_config(platform, profile=profile)
    assert list(loaded.pick(None, selectors, with_deps=not no_deps)) == picked


def test_uninstall_takes_the_apps_that_need_the_picked_ones(platform: Path) -> None:
    loaded = load_config(platform)
    assert loaded.pick(None, ["tier=data"], dependents=True) == ("db", "cache", "api", "web")
    assert loaded.pick(None, ["name=dns"], dependents=True) == ("dns", "db", "api", "web")
    assert loaded.pick(None, ["name=dns"], with_deps=False, dependents=True) == ("dns",)


@pytest.mark.parametrize(
    ("selectors", "message"),
    [
        (["tier=nope"], r"^-l tier=nope: no app matches \(of dns, db, cache"),
        (["tier=data,env=prod", "team=x"], r"^-l tier=data,env=prod -l team=x: no app matches"),
        (["tier"], r"^--selector 'tier': 'tier' is not label=value or label!=value$"),
        (["tier=a b"], r"is not label=value"),
        (["-bad=x"], r"'-bad' is not a label key"),
        (["tier=bad-"], r"'bad-' is not a label value"),
    ],
)
def test_a_selector_that_is_wrong_or_matches_nothing_is_one_line(
    platform: Path, selectors: list[str], message: str
) -> None:
    loaded = load_config(platform)
    with pytest.raises(UsageError, match=message) as err:
        loaded.pick(None, selectors)
    assert "\n" not in str(err.value) and err.value.exit_code == 2


def test_app_and_selector_together_are_refused(platform: Path) -> None:
    with pytest.raises(UsageError, match="--app and --selector each pick apps"):
        load_config(platform).pick(["web"], ["tier=front"])


def test_a_profile_overlays_our_config(platform: Path) -> None:
    plain, prod = load_config(platform), load_config(platform, profile="prod")
    assert plain.config.namespace == "shop" and prod.config.namespace == "shop-prod"
    assert plain.config.apps["cache"].enabled and not prod.config.apps["cache"].enabled
    # A mapping merges, key by key.
    assert prod.config.apps["web"].labels == {"tier": "front", "team": "shop", "canary": "yes"}
    assert prod.config.apps["web"].depends_on == ("api",)
    # What is recorded is what was deployed: the merged file, no environments left in it.
    assert prod.snapshot["namespace"] == "shop-prod" and "environments" not in prod.snapshot
    assert load_config(platform, profile="dev").config == plain.config


def test_values_and_set_of_a_helm_app_in_a_profile(tmp_path: Path) -> None:
    write(tmp_path / "chart", "Chart.yaml", "apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    write(tmp_path, "base.yaml", "a: 1\n")
    write(tmp_path, "prod.yaml", "a: 2\n")
    write(
        tmp_path,
        "config.yaml",
        "namespace: n\napps:\n  app:\n    type: helm\n    chart: ./chart\n"
        "    values: [base.yaml]\n    set: {replicas: 1, image: {tag: v1}}\n"
        "environments:\n  prod:\n    cluster: k3s-prod\n    apps:\n      app:\n"
        "        values: [base.yaml, prod.yaml]\n        set: {replicas: 3}\n",
    )
    app = load_config(tmp_path, profile="prod").config.apps["app"]
    assert isinstance(app, HelmApp)
    # A list replaces; a mapping merges (as helm merges values).
    assert app.values == ("base.yaml", "prod.yaml")
    assert app.set == {"replicas": 3, "image": {"tag": "v1"}}
    assert load_config(tmp_path, profile="prod").config.cluster == "k3s-prod"


@pytest.mark.parametrize(
    ("environments", "message"),
    [
        ("environments: [prod]\n", r"config\.yaml: environments: must be a mapping"),
        ("environments:\n  prod: 3\n", r"config\.yaml: environments\.prod: must be a mapping"),
        (
            "environments:\n  prod: {apps: {nope: {enabled: false}}}\n",
            r"config\.yaml: environments\.prod\.apps\.nope: no such app in apps",
        ),
        ("environments:\n  a/b: {}\n", r"environments\.a/b: not a profile name"),
        (
            "environments:\n  prod: {environments: {}}\n",
            r"environments\.prod\.environments: environments do not nest",
        ),
    ],
)
def test_a_wrong_environments_block_is_one_line(
    platform: Path, environments: str, message: str
) -> None:
    (platform / "config.yaml").write_text(CONFIG.split("environments:")[0] + environments)
    with pytest.raises(ConfigError, match=message):
        load_config(platform, profile="prod")


def test_a_mistake_in_an_environment_says_it_was_applied(platform: Path) -> None:
    (platform / "config.yaml").write_text(
        CONFIG.replace("web: {labels:", "web: {chrat: x, labels:")
    )
    load_config(platform)  # the file itself is fine
    with pytest.raises(ConfigError) as err:
        load_config(platform, profile="prod")
    text = str(err.value)
    assert "\n" not in text
    assert "apps.web.chrat" in text and text.endswith("(with environments.prod applied)")


@pytest.mark.parametrize("profile", ["staging", "../x", ""])
def test_an_unknown_profile_names_it_and_the_known_ones(platform: Path, profile: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(platform, profile=profile)
    text = str(err.value)
    assert "\n" not in text and err.value.exit_code == 2
    if profile == "staging":
        assert text.endswith("config.yaml: --profile staging: no such profile (known: dev, prod)")
    else:
        assert text.startswith(f"--profile {profile!r}: not a profile name")


def test_a_profile_in_a_config_without_environments(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n")
    write(tmp_path, "config.yaml", "namespace: n\napps:\n  a: {type: yaml, manifests: [m.yaml]}\n")
    with pytest.raises(ConfigError, match=r"no such profile \(none defined; add environments\.x"):
        load_config(tmp_path, profile="x")


SINGLE = """\
apiVersion: sbkube/v1
metadata: {name: orders}
settings: {namespace: orders, cluster: orders-test}
apps:
  ready: {type: noop, labels: {tier: infra}}
  store: {type: helm, chart: ./chart, labels: {tier: data}, set_values: {size: 1},
          depends_on: [ready]}
  web: {type: yaml, files: [m.yaml], labels: {tier: front}, depends_on: [store]}
environments:
  prod:
    settings: {namespace: orders-prod, cluster: orders-prod}
    apps:
      store: {set_values: {size: 3}}
"""


def test_the_originals_sbkube_yaml_takes_a_profile_and_selectors(tmp_path: Path) -> None:
    write(tmp_path / "chart", "Chart.yaml", "apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    write(tmp_path, "m.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n")
    write(tmp_path, "sbkube.yaml", SINGLE)
    plain, prod = load_config(tmp_path), load_config(tmp_path, profile="prod")
    assert plain.dialect == prod.dialect == Dialect.SINGLE
    assert (plain.config.namespace, prod.config.namespace) == ("orders", "orders-prod")
    store = prod.config.apps["store"]
    assert isinstance(store, HelmApp) and store.set["size"] == 3
    # The original's labels pick its apps too, a Helm app's included.
    assert prod.pick(None, ["tier=data"]) == ("ready", "store")
    assert prod.pick(None, ["tier=data"], with_deps=False) == ("store",)
    assert prod.pick(None, ["tier!=infra"], with_deps=False) == ("store", "web")
    with pytest.raises(
        ConfigError, match=r"sbkube\.yaml: --profile dev: no such profile \(known: prod\)"
    ):
        load_config(tmp_path, profile="dev")


def test_the_originals_pair_takes_sources_env_and_environments(tmp_path: Path) -> None:
    write(tmp_path / "chart", "Chart.yaml", "apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    write(
        tmp_path,
        "config.yaml",
        "namespace: n\nglobal_labels: {team: pay}\napps:\n"
        "  app: {type: helm, chart: ./chart, labels: {tier: data}}\n"
        "  job: {type: noop}\n"
        "environments:\n  qa:\n    namespace: n-qa\n",
    )
    write(tmp_path, "sources.yaml", "cluster: plain\n")
    write(tmp_path, "sources-prod.yaml", "cluster: prod\n")
    assert load_config(tmp_path).config.cluster == "plain"
    prod = load_config(tmp_path, profile="prod")
    assert prod.dialect == Dialect.PAIR and prod.config.cluster == "prod"
    qa = load_config(tmp_path, profile="qa")
    assert (qa.config.cluster, qa.config.namespace) == ("plain", "n-qa")
    # global_labels are every app's labels.
    assert qa.pick(None, ["team=pay"]) == ("app", "job")
    assert qa.pick(None, ["tier=data"]) == ("app",)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, profile="dev")
    assert str(err.value).endswith("config.yaml: --profile dev: no such profile (known: prod, qa)")


def test_convert_says_what_became_of_the_environments(tmp_path: Path) -> None:
    from sbkube.config.convert import convert

    write(tmp_path / "chart", "Chart.yaml", "apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    write(tmp_path, "m.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n")
    write(tmp_path, "sbkube.yaml", SINGLE)
    plain, prod = convert(tmp_path), convert(tmp_path, profile="prod")
    note = "# environments (prod): "
    assert f"{note}not carried over; run `sbkube config convert --profile ENV`" in plain
    assert f"{note}environments.prod applied; not carried over" in prod
    assert "namespace: orders\n" in plain and "namespace: orders-prod\n" in prod
