"""load_config on valid app dirs: order, defaults, helpers and what it keeps."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pydantic
import pytest

from sbkube.config import HelmApp, LoadedConfig, SbkubeConfig, YamlApp, load_config
from sbkube.errors import ConfigError

MakeApp = Callable[..., Path]
REPO_ROOT = Path(__file__).resolve().parents[3]
M_YAML: dict[str, str | bytes] = {"m.yaml": "apiVersion: v1\nkind: X\nmetadata: {name: a}\n"}


def yaml_apps(deps: dict[str, list[str]], disabled: tuple[str, ...] = ()) -> str:
    lines = ["namespace: demo", "apps:"]
    for name, needs in deps.items():
        enabled = "false" if name in disabled else "true"
        lines.append(
            f"  {name}: {{type: yaml, manifests: [m.yaml], depends_on: {needs}, "
            f"enabled: {enabled}}}"
        )
    return "\n".join(lines) + "\n"


def test_basic_fixture(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    assert isinstance(loaded, LoadedConfig)
    assert loaded.app_dir == (fixtures_dir / "basic").resolve()
    assert loaded.config_path == loaded.app_dir / "config.yaml"
    assert isinstance(loaded.config, SbkubeConfig)
    # api needs cache and queue; 'legacy' is disabled.
    assert loaded.order == ("cache", "queue", "api")
    assert loaded.config.cluster == "test-cluster"
    assert loaded.config.secret_keys == ["password", "token"]
    assert loaded.config.repos == {"bitnami": "https://charts.bitnami.com/bitnami"}


def test_defaults(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    cache = loaded.config.apps["cache"]
    assert isinstance(cache, HelmApp)
    assert cache.release_name is None and loaded.release_name("cache") == "cache"
    assert cache.namespace is None and loaded.app_namespace("cache") == "basic"
    assert cache.enabled is True and cache.wait is False and cache.timeout is None
    assert cache.depends_on == ()
    queue = loaded.config.apps["queue"]
    assert isinstance(queue, HelmApp)
    assert loaded.release_name("queue") == "mq"
    assert queue.wait is True and queue.timeout == "10m" and queue.version == "14.0.0"
    api = loaded.config.apps["api"]
    assert isinstance(api, YamlApp)
    assert loaded.app_namespace("api") == "api"
    assert loaded.release_name("api") == "api"


def test_chart_refs(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    assert loaded.chart_ref("cache") == str(loaded.app_dir / "charts" / "cache")
    assert loaded.chart_ref("queue") == "bitnami/rabbitmq"
    assert loaded.local_chart_path("queue") is None
    with pytest.raises(ConfigError, match=r"apps\.api\.type: not a helm app"):
        loaded.chart_ref("api")


def test_raw_is_the_parsed_yaml(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    assert loaded.raw["apps"]["cache"]["set"] == {"replicaCount": 3, "auth.password": "from-set"}
    assert list(loaded.raw) == ["namespace", "cluster", "repos", "secret_keys", "apps"]


def test_timestamps_stay_strings(make_app: MakeApp) -> None:
    config = "namespace: demo\ncluster: 2024-01-01\napps:\n  a: {type: yaml, manifests: [m.yaml]}\n"
    loaded = load_config(make_app(config, M_YAML))
    assert loaded.raw["cluster"] == "2024-01-01"
    assert loaded.config.cluster == "2024-01-01"


def test_loaded_config_is_frozen(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.order = ()  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        loaded.config.namespace = "other"
    with pytest.raises(pydantic.ValidationError):
        loaded.config.apps["cache"].enabled = False


@pytest.mark.parametrize(
    ("deps", "disabled", "order"),
    [
        # file order when nothing depends on anything
        ({"c": [], "b": [], "a": []}, (), ("c", "b", "a")),
        # a dependency moves ahead; ties keep file order
        ({"web": ["db"], "db": [], "cache": []}, (), ("db", "web", "cache")),
        ({"a": ["c"], "b": ["c"], "c": []}, (), ("c", "a", "b")),
        # diamond
        (
            {"top": ["l", "r"], "l": ["base"], "r": ["base"], "base": []},
            (),
            ("base", "l", "r", "top"),
        ),
        # disabled apps are left out and do not hold their dependents back
        ({"web": ["db"], "db": [], "cache": []}, ("db",), ("web", "cache")),
        ({"a": [], "b": ["a"], "c": []}, ("c",), ("a", "b")),
    ],
)
def test_order(
    make_app: MakeApp, deps: dict[str, list[str]], disabled: tuple[str, ...], order: tuple[str, ...]
) -> None:
    loaded = load_config(make_app(yaml_apps(deps, disabled), M_YAML))
    assert loaded.order == order
    position = {name: i for i, name in enumerate(loaded.order)}
    for name in loaded.order:
        for dep in deps[name]:
            if dep in position:
                assert position[dep] < position[name]


def test_long_chain_order(make_app: MakeApp) -> None:
    # app-0 depends on app-1 ... on app-199: the order must be exactly reversed.
    deps = {f"app-{i}": ([f"app-{i + 1}"] if i < 199 else []) for i in range(200)}
    loaded = load_config(make_app(yaml_apps(deps), M_YAML))
    assert loaded.order == tuple(f"app-{i}" for i in reversed(range(200)))


def test_select(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    assert loaded.select(None) == ("cache", "queue", "api")
    assert loaded.select([]) == ("cache", "queue", "api")
    # deploy order, not argument order; dependencies are not added
    assert loaded.select(["api", "cache"]) == ("cache", "api")
    assert loaded.select(["api"]) == ("api",)
    assert loaded.select(["queue", "queue"]) == ("queue",)


def test_select_unknown_app_suggests(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    with pytest.raises(ConfigError) as info:
        loaded.select(["cahce"])
    assert str(info.value).endswith(
        "config.yaml: apps: unknown app 'cahce' (did you mean 'cache'?)"
    )
    assert info.value.exit_code == 2


def test_select_disabled_app(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    with pytest.raises(ConfigError, match=r"config\.yaml: apps\.legacy\.enabled: .*disabled"):
        loaded.select(["legacy"])


def test_helpers_reject_unknown_app(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    with pytest.raises(ConfigError, match="unknown app 'nope'"):
        loaded.app_namespace("nope")
    with pytest.raises(ConfigError, match="unknown app 'nope'"):
        loaded.release_name("nope")


def test_config_file_argument(make_app: MakeApp) -> None:
    app_dir = make_app(None, {**M_YAML, "prod.yaml": yaml_apps({"a": []})})
    loaded = load_config(str(app_dir), "prod.yaml")
    assert loaded.config_path == app_dir.resolve() / "prod.yaml"
    assert loaded.order == ("a",)


def test_chart_outside_app_dir(tmp_path: Path) -> None:
    (tmp_path / "shared" / "redis").mkdir(parents=True)
    (tmp_path / "shared" / "redis" / "Chart.yaml").write_text("name: redis\nversion: 2.0.0\n")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "config.yaml").write_text(
        "namespace: demo\napps:\n  r: {type: helm, chart: ../shared/redis, version: 2.0.0}\n"
    )
    loaded = load_config(app_dir)
    assert loaded.chart_ref("r") == str(tmp_path.resolve() / "shared" / "redis")


def test_oci_chart_passes_through(make_app: MakeApp) -> None:
    config = (
        "namespace: demo\napps:\n  r: {type: helm, chart: 'oci://ghcr.io/x/redis', timeout: 90}\n"
    )
    loaded = load_config(make_app(config))
    assert loaded.chart_ref("r") == "oci://ghcr.io/x/redis"
    app = loaded.config.apps["r"]
    assert isinstance(app, HelmApp) and app.timeout == "90s"


def test_demo_example_loads() -> None:
    loaded = load_config(REPO_ROOT / "examples" / "demo")
    assert loaded.order == ("redis", "web")
    assert loaded.config.namespace == "demo"
    assert loaded.app_namespace("web") == "demo"


def test_import_is_light() -> None:
    code = (
        "import sys, sbkube.config\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'alembic', 'click', 'sbkube.state', 'sbkube.cluster')]\n"
        "heavy += [m for m in sys.modules if m.startswith(('sbkube.state', 'sbkube.cluster', "
        "'sbkube.engine', 'sbkube.cli'))]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
