"""Every way config.yaml can be wrong gives one line that names the file and the field."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sbkube.config import load_config
from sbkube.config.schema import APP_TYPES
from sbkube.errors import ConfigError

MakeApp = Callable[..., Path]
CHART_YAML = "apiVersion: v2\nname: redis\nversion: 0.1.0\n"
M_YAML: dict[str, str | bytes] = {"m.yaml": "apiVersion: v1\nkind: X\nmetadata: {name: a}\n"}


def error_of(app_dir: Path | str, config_file: str = "config.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        load_config(app_dir, config_file)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "\n" not in message, message
    return message


HELM_APP = """\
namespace: demo
apps:
  redis:
    type: helm
    chart: ./charts/redis
"""


def helm_files() -> dict[str, str | bytes]:
    return {"charts/redis/Chart.yaml": CHART_YAML}


# ------------------------------------------------------------------ files and YAML


def test_missing_app_dir(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nope")
    assert "nope" in message and "app directory not found" in message


def test_app_dir_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert "not a directory" in error_of(target)


def test_missing_config_file(make_app: MakeApp) -> None:
    app_dir = make_app(None)
    message = error_of(app_dir)
    assert message.endswith("config.yaml: config file not found")


def test_custom_config_file_name_in_message(make_app: MakeApp) -> None:
    app_dir = make_app(None)
    assert "prod.yaml: config file not found" in error_of(app_dir, "prod.yaml")


@pytest.mark.parametrize("content", ["", "   \n", "# only a comment\n"])
def test_empty_config(make_app: MakeApp, content: str) -> None:
    message = error_of(make_app(content))
    assert "config.yaml: file is empty" in message


def test_binary_garbage(make_app: MakeApp) -> None:
    message = error_of(make_app(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"))
    assert "config.yaml: binary file" in message


def test_not_utf8(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: d\u00e9mo\n".encode("latin-1")))
    assert "config.yaml: not valid UTF-8" in message
    assert "0xe9" in message


def test_utf8_bom_is_accepted(make_app: MakeApp) -> None:
    app_dir = make_app(
        b"\xef\xbb\xbfnamespace: demo\napps:\n  a: {type: yaml, manifests: [m.yaml]}\n",
        {"m.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"},
    )
    assert load_config(app_dir).config.namespace == "demo"


def test_malformed_yaml_has_line_number(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps:\n  redis:\n    type: helm\n  chart: [\n"))
    assert "config.yaml: line " in message
    assert "invalid YAML" in message


def test_malformed_yaml_line_is_right(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps:\n  a: b\n   c: d\n"))
    assert "config.yaml: line 4," in message


def test_tab_indentation(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps:\n\tredis: {}\n"))
    assert "config.yaml: line 3" in message


@pytest.mark.parametrize(
    ("content", "got"),
    [("- a\n- b\n", "a list"), ("just a string\n", "str 'just a string'"), ("42\n", "int 42")],
)
def test_top_level_not_a_mapping(make_app: MakeApp, content: str, got: str) -> None:
    message = error_of(make_app(content))
    assert message.endswith(f"config.yaml: expected a mapping at the top level, got {got}")


def test_multiple_documents_refused(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: a\n---\nnamespace: b\n"))
    assert "config.yaml: expected one YAML document, found 2" in message


def test_huge_config_refused(make_app: MakeApp) -> None:
    app_dir = make_app("namespace: demo\n")
    with (app_dir / "config.yaml").open("ab") as handle:
        handle.truncate(11 * 1024 * 1024)
    message = error_of(app_dir)
    assert "config.yaml" in message and "over 10 MB are refused" in message


def test_config_file_is_a_directory(make_app: MakeApp) -> None:
    app_dir = make_app(None)
    (app_dir / "config.yaml").mkdir()
    assert "config.yaml: config file is not a regular file" in error_of(app_dir)


# ------------------------------------------------------------------ duplicate keys


def test_duplicate_app_names(make_app: MakeApp) -> None:
    config = """\
        namespace: demo
        apps:
          web:
            type: yaml
            manifests: [a.yaml]
          web:
            type: yaml
            manifests: [b.yaml]
        """
    message = error_of(make_app(config))
    assert message.endswith(
        "config.yaml: apps.web: duplicate app name (first at line 3, again at line 6)"
    )


def test_duplicate_key_inside_app(make_app: MakeApp) -> None:
    config = HELM_APP + "    chart: ./charts/other\n"
    message = error_of(make_app(config, helm_files()))
    assert "config.yaml: apps.redis.chart: duplicate key" in message


def test_duplicate_top_level_key(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: a\nnamespace: b\n"))
    assert "config.yaml: namespace: duplicate key (first at line 1, again at line 2)" in message


def test_merge_keys_are_not_duplicates(make_app: MakeApp) -> None:
    config = """\
        namespace: demo
        apps:
          a: &base
            type: yaml
            manifests: [m.yaml]
          b:
            <<: *base
            depends_on: [a]
        """
    loaded = load_config(make_app(config, M_YAML))
    assert loaded.order == ("a", "b")


# ------------------------------------------------------------------ schema errors


def test_unknown_top_level_field_suggests(make_app: MakeApp) -> None:
    message = error_of(make_app("namespce: demo\napps: {}\n"))
    assert message.endswith("config.yaml: namespce: unknown field (did you mean 'namespace'?)")


def test_unknown_app_field_suggests(make_app: MakeApp) -> None:
    config = "namespace: demo\napps:\n  redis:\n    type: helm\n    chrat: ./charts/redis\n"
    message = error_of(make_app(config, helm_files()))
    assert message.endswith("config.yaml: apps.redis.chrat: unknown field (did you mean 'chart'?)")


def test_unknown_app_field_without_suggestion(make_app: MakeApp) -> None:
    config = HELM_APP + "    zzzzzz: 1\n"
    message = error_of(make_app(config, helm_files()))
    assert message.endswith("config.yaml: apps.redis.zzzzzz: unknown field")


def test_field_of_the_other_app_type(make_app: MakeApp) -> None:
    config = HELM_APP + "    manifests: [a.yaml]\n"
    message = error_of(make_app(config, helm_files()))
    assert "config.yaml: apps.redis.manifests: unknown field for a 'helm' app" in message


def test_unknown_app_type_lists_valid_types(make_app: MakeApp) -> None:
    config = "namespace: demo\napps:\n  redis:\n    type: helmm\n    chart: x\n"
    message = error_of(make_app(config))
    assert message.endswith(
        "config.yaml: apps.redis.type: unknown app type 'helmm' "
        f"(valid types: {', '.join(APP_TYPES)})"
    )
    assert "(valid types: helm, yaml, noop, kustomize, exec, action, git, http" in message


def test_missing_app_type(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps:\n  redis:\n    chart: x\n"))
    needle = "config.yaml: apps.redis.type: required field missing (one of: "
    assert needle in message
    assert f"{', '.join(APP_TYPES)})" in message


def test_missing_namespace(make_app: MakeApp) -> None:
    message = error_of(make_app("apps:\n  a: {type: yaml, manifests: [m.yaml]}\n"))
    assert message.endswith("config.yaml: namespace: required field missing")


def test_missing_apps(make_app: MakeApp) -> None:
    assert error_of(make_app("namespace: demo\n")).endswith(
        "config.yaml: apps: required field missing"
    )


def test_empty_apps(make_app: MakeApp) -> None:
    assert error_of(make_app("namespace: demo\napps: {}\n")).endswith(
        "config.yaml: apps: must not be empty"
    )


def test_missing_chart(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps:\n  redis:\n    type: helm\n"))
    assert message.endswith("config.yaml: apps.redis.chart: required field missing")


def test_empty_manifests_list(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps:\n  w: {type: yaml, manifests: []}\n"))
    assert message.endswith("config.yaml: apps.w.manifests: must not be empty")


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ("enabled: 'yes'", "enabled", "expected true or false, got str 'yes'"),
        ("wait: 1", "wait", "expected true or false, got int 1"),
        ("values: values/redis.yaml", "values", "expected a list, got str 'values/redis.yaml'"),
        ("values: [1]", "values[0]", "expected a string, got int 1"),
        ("set: [a, b]", "set", "expected a mapping, got a list"),
        ("depends_on: redis", "depends_on", "expected a list, got str 'redis'"),
        ("release_name: [x]", "release_name", "expected a string, got a list"),
    ],
)
def test_wrong_types(make_app: MakeApp, line: str, field: str, expected: str) -> None:
    message = error_of(make_app(HELM_APP + f"    {line}\n", helm_files()))
    assert message.endswith(f"config.yaml: apps.redis.{field}: {expected}")


def test_apps_is_a_list(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps:\n  - redis\n"))
    assert message.endswith("config.yaml: apps: expected a mapping, got a list")


def test_app_is_a_string(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps:\n  redis: helm\n"))
    assert "config.yaml: apps.redis" in message and "mapping" in message


def test_namespace_is_a_number(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: 42\napps:\n  a: {type: yaml, manifests: [m]}\n"))
    assert message.endswith("config.yaml: namespace: expected a string, got int 42")


def test_version_must_be_quoted(make_app: MakeApp) -> None:
    message = error_of(make_app(HELM_APP + "    version: 1.10\n", helm_files()))
    assert "config.yaml: apps.redis.version: must be a string; quote it" in message


@pytest.mark.parametrize("value", ["5 minutes", "abc", "-5"])
def test_bad_timeout(make_app: MakeApp, value: str) -> None:
    message = error_of(make_app(HELM_APP + f"    timeout: '{value}'\n", helm_files()))
    assert "config.yaml: apps.redis.timeout:" in message and "duration" in message


def test_non_string_app_name(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps:\n  123: {type: yaml, manifests: [m]}\n"))
    assert message.endswith("config.yaml: apps: key 123 must be a string (quote it in the YAML)")


# ------------------------------------------------------------------ names


@pytest.mark.parametrize("name", ["Web", "web_app", "-web", "web-", "a" * 64])
def test_invalid_app_name(make_app: MakeApp, name: str) -> None:
    config = f"namespace: demo\napps:\n  {name}: {{type: yaml, manifests: [m.yaml]}}\n"
    message = error_of(make_app(config))
    assert f"config.yaml: apps.{name}: invalid app name" in message


@pytest.mark.parametrize("namespace", ["Demo", "demo.prod", "x" * 64, "''"])
def test_invalid_namespace(make_app: MakeApp, namespace: str) -> None:
    config = f"namespace: {namespace}\napps:\n  a: {{type: yaml, manifests: [m.yaml]}}\n"
    message = error_of(make_app(config))
    assert "config.yaml: namespace:" in message


def test_invalid_app_namespace(make_app: MakeApp) -> None:
    message = error_of(make_app(HELM_APP + "    namespace: Cache\n", helm_files()))
    assert "config.yaml: apps.redis.namespace: 'Cache' is not a valid DNS-1123 label" in message


def test_release_name_too_long(make_app: MakeApp) -> None:
    message = error_of(make_app(HELM_APP + f"    release_name: {'r' * 54}\n", helm_files()))
    assert "config.yaml: apps.redis.release_name:" in message and "at most 53" in message


def test_long_app_name_needs_release_name(make_app: MakeApp) -> None:
    name = "r" * 60
    config = f"namespace: demo\napps:\n  {name}:\n    type: helm\n    chart: ./charts/redis\n"
    message = error_of(make_app(config, helm_files()))
    assert f"config.yaml: apps.{name}: app name is longer than 53" in message
    fixed = config + "    release_name: redis\n"
    assert load_config(make_app(fixed)).release_name(name) == "redis"


def test_release_name_clash(make_app: MakeApp) -> None:
    config = (
        HELM_APP + "  other:\n    type: helm\n    chart: ./charts/redis\n    release_name: redis\n"
    )
    message = error_of(make_app(config, helm_files()))
    assert "config.yaml: apps.other.release_name: release 'redis' in namespace 'demo'" in message
    assert "also used by app 'redis'" in message


def test_same_release_name_in_other_namespace_is_fine(make_app: MakeApp) -> None:
    config = (
        HELM_APP + "  other:\n    type: helm\n    chart: ./charts/redis\n"
        "    release_name: redis\n    namespace: elsewhere\n"
    )
    assert load_config(make_app(config, helm_files())).order == ("redis", "other")


def test_repo_url_must_be_http(make_app: MakeApp) -> None:
    config = "namespace: demo\nrepos:\n  bitnami: charts.bitnami.com\n" + HELM_APP.split("\n", 1)[1]
    message = error_of(make_app(config, helm_files()))
    assert "config.yaml: repos.bitnami: url 'charts.bitnami.com' must start with" in message


# ------------------------------------------------------------------ dependencies


def test_depends_on_unknown_app_suggests(make_app: MakeApp) -> None:
    config = (
        HELM_APP + "  web:\n    type: yaml\n    manifests: [m.yaml]\n    depends_on: [rediss]\n"
    )
    files = {**helm_files(), "m.yaml": "apiVersion: v1\nkind: X\nmetadata: {name: a}\n"}
    message = error_of(make_app(config, files))
    assert message.endswith(
        "config.yaml: apps.web.depends_on[0]: unknown app 'rediss' (did you mean 'redis'?)"
    )


def yaml_apps(deps: dict[str, list[str]]) -> str:
    lines = ["namespace: demo", "apps:"]
    for name, needs in deps.items():
        lines.append(f"  {name}: {{type: yaml, manifests: [m.yaml], depends_on: {needs}}}")
    return "\n".join(lines) + "\n"


def test_two_app_cycle(make_app: MakeApp) -> None:
    message = error_of(make_app(yaml_apps({"a": ["b"], "b": ["a"]}), M_YAML))
    assert message.endswith("config.yaml: apps.b.depends_on: dependency cycle a -> b -> a")


def test_three_app_cycle_behind_a_root(make_app: MakeApp) -> None:
    deps = {"root": ["x"], "x": ["y"], "y": ["z"], "z": ["x"]}
    message = error_of(make_app(yaml_apps(deps), M_YAML))
    assert message.endswith("dependency cycle x -> y -> z -> x")


def test_self_dependency(make_app: MakeApp) -> None:
    message = error_of(make_app(yaml_apps({"a": ["a"]}), M_YAML))
    assert message.endswith("config.yaml: apps.a.depends_on: dependency cycle a -> a")


def test_cycle_through_disabled_app_is_still_an_error(make_app: MakeApp) -> None:
    config = yaml_apps({"a": ["b"], "b": ["a"]}).replace(
        "depends_on: ['a']}", "depends_on: ['a'], enabled: false}"
    )
    assert "dependency cycle" in error_of(make_app(config, M_YAML))


# ------------------------------------------------------------------ charts


def test_missing_local_chart(make_app: MakeApp) -> None:
    message = error_of(make_app(HELM_APP))
    assert "config.yaml: apps.redis.chart: chart './charts/redis' not found" in message


def test_chart_dir_without_chart_yaml(make_app: MakeApp) -> None:
    message = error_of(make_app(HELM_APP, {"charts/redis/values.yaml": "a: 1\n"}))
    assert "config.yaml: apps.redis.chart: './charts/redis' is not a Helm chart" in message
    assert "Chart.yaml missing" in message


def test_chart_is_a_plain_file(make_app: MakeApp) -> None:
    config = HELM_APP.replace("./charts/redis", "./charts/redis.txt")
    message = error_of(make_app(config, {"charts/redis.txt": "x"}))
    assert "config.yaml: apps.redis.chart:" in message and "packaged .tgz" in message


def test_unknown_repo(make_app: MakeApp) -> None:
    config = HELM_APP.replace("./charts/redis", "bitnami/redis")
    message = error_of(make_app(config))
    assert "config.yaml: apps.redis.chart: unknown repo 'bitnami' in 'bitnami/redis'" in message
    assert "repos: none defined" in message


def test_unknown_repo_suggests_known_one(make_app: MakeApp) -> None:
    config = (
        "namespace: demo\nrepos:\n  bitnami: https://charts.bitnami.com/bitnami\n"
        + HELM_APP.split("\n", 1)[1].replace("./charts/redis", "bitnamii/redis")
    )
    message = error_of(make_app(config))
    assert "unknown repo 'bitnamii' in 'bitnamii/redis' (did you mean 'bitnami'?)" in message


def test_bare_chart_name(make_app: MakeApp) -> None:
    message = error_of(make_app(HELM_APP.replace("./charts/redis", "redis")))
    assert "config.yaml: apps.redis.chart: chart 'redis' not found" in message


def test_relative_chart_without_dot_slash_exists(make_app: MakeApp) -> None:
    config = HELM_APP.replace("./charts/redis", "charts/redis")
    loaded = load_config(make_app(config, helm_files()))
    assert loaded.chart_ref("redis").endswith("charts/redis")


def test_chart_version_mismatch(make_app: MakeApp) -> None:
    message = error_of(make_app(HELM_APP + "    version: 1.2.3\n", helm_files()))
    assert "config.yaml: apps.redis.version: '1.2.3' does not match" in message
    assert "Chart.yaml version '0.1.0'" in message


def test_chart_yaml_malformed(make_app: MakeApp) -> None:
    message = error_of(make_app(HELM_APP, {"charts/redis/Chart.yaml": "name: [\n"}))
    assert "charts/redis/Chart.yaml: line" in message


def test_chart_yaml_without_version(make_app: MakeApp) -> None:
    message = error_of(make_app(HELM_APP, {"charts/redis/Chart.yaml": "name: redis\n"}))
    assert "charts/redis/Chart.yaml: version: required field missing" in message


def packaged_chart(version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in {
            "redis/Chart.yaml": f"apiVersion: v2\nname: redis\nversion: {version}\n",
            "redis/charts/sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 9.9.9\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_packaged_chart_version_checked(make_app: MakeApp) -> None:
    config = HELM_APP.replace("./charts/redis", "./redis-0.2.0.tgz") + "    version: 0.1.0\n"
    message = error_of(make_app(config, {"redis-0.2.0.tgz": packaged_chart("0.2.0")}))
    assert "config.yaml: apps.redis.version: '0.1.0' does not match" in message
    assert "redis-0.2.0.tgz:redis/Chart.yaml version '0.2.0'" in message


def test_packaged_chart_ok(make_app: MakeApp) -> None:
    config = HELM_APP.replace("./charts/redis", "./redis-0.2.0.tgz") + "    version: 0.2.0\n"
    loaded = load_config(make_app(config, {"redis-0.2.0.tgz": packaged_chart("0.2.0")}))
    assert loaded.chart_ref("redis").endswith("redis-0.2.0.tgz")


def test_corrupt_packaged_chart(make_app: MakeApp) -> None:
    config = HELM_APP.replace("./charts/redis", "./redis.tgz")
    message = error_of(make_app(config, {"redis.tgz": b"not a tarball at all"}))
    assert "redis.tgz: not a valid packaged chart" in message


# ------------------------------------------------------------------ values and manifests


def test_values_file_not_found(make_app: MakeApp) -> None:
    config = HELM_APP + "    values: [values/redis.yaml, values/nope.yaml]\n"
    files = {**helm_files(), "values/redis.yaml": "a: 1\n"}
    message = error_of(make_app(config, files))
    assert "config.yaml: apps.redis.values[1]: values file 'values/nope.yaml' not found" in message


def test_manifest_file_not_found(make_app: MakeApp) -> None:
    config = "namespace: demo\napps:\n  web:\n    type: yaml\n    manifests: [manifests/web.yaml]\n"
    message = error_of(make_app(config))
    assert "config.yaml: apps.web.manifests[0]: manifest file 'manifests/web.yaml' not found" in (
        message
    )


def test_huge_values_file_fails_fast(make_app: MakeApp) -> None:
    config = HELM_APP + "    values: [values/big.yaml]\n"
    app_dir = make_app(config, helm_files())
    big = app_dir / "values" / "big.yaml"
    big.parent.mkdir()
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB on paper, nothing on disk
    started = time.monotonic()
    message = error_of(app_dir)
    assert time.monotonic() - started < 2
    assert "config.yaml: apps.redis.values[0]:" in message
    assert "values/big.yaml: values file is 50.0 MB; files over 10 MB are refused" in message


def test_huge_manifest_refused(make_app: MakeApp) -> None:
    config = "namespace: demo\napps:\n  web: {type: yaml, manifests: [big.yaml]}\n"
    app_dir = make_app(config)
    with (app_dir / "big.yaml").open("wb") as handle:
        handle.truncate(10 * 1024 * 1024 + 1)
    message = error_of(app_dir)
    assert "apps.web.manifests[0]" in message and "big.yaml: manifest file is" in message


def test_disabled_app_files_are_not_checked(make_app: MakeApp) -> None:
    config = HELM_APP + "    enabled: false\n  web: {type: yaml, manifests: [m.yaml]}\n"
    loaded = load_config(make_app(config, M_YAML))
    assert loaded.order == ("web",)


# ------------------------------------------------------------------ how files are named


def test_paths_relative_to_cwd(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    app_dir = make_app("namespce: demo\n")
    monkeypatch.chdir(app_dir)
    assert error_of(".").startswith("config.yaml: namespce: unknown field")
    monkeypatch.chdir(app_dir.parent)
    assert error_of("app").startswith("app/config.yaml: namespce")


def test_paths_absolute_outside_cwd(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    app_dir = make_app("namespce: demo\n")
    monkeypatch.chdir("/")
    # tmp_path is below / too, so use a cwd that is a sibling of the app dir.
    other = app_dir.parent / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    assert error_of(app_dir).startswith(f"{app_dir.resolve()}/config.yaml: namespce")


# ------------------------------------------------------------------ hostile YAML


def test_alias_bomb_refused(make_app: MakeApp) -> None:
    lines = ["namespace: demo", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*l{level - 1}"] * 8)
        lines.append(f"l{level}: &l{level} [{refs}]")
    started = time.monotonic()
    message = error_of(make_app("\n".join(lines) + "\n"))
    assert time.monotonic() - started < 5
    assert "config.yaml: YAML aliases expand to more than" in message


def test_recursive_anchor_refused(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps: &a\n  x: *a\n"))
    assert "config.yaml: line 2: recursive YAML anchor refused" in message


def test_deep_nesting_refused(make_app: MakeApp) -> None:
    message = error_of(make_app("namespace: demo\napps: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert "config.yaml" in message


# ------------------------------------------------------------------ broken fixture dirs


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("typo", "typo/config.yaml: apps.redis.chrat: unknown field (did you mean 'chart'?)"),
        ("cycle", "cycle/config.yaml: apps.b.depends_on: dependency cycle a -> b -> a"),
    ],
)
def test_broken_fixtures(fixtures_dir: Path, fixture: str, expected: str) -> None:
    assert error_of(fixtures_dir / fixture).endswith(expected)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("wait: 'yes'", "apps.w.wait: expected true or false, got str 'yes'"),
        ("wait: true, timeout: 5 minutes", "apps.w.timeout: '5 minutes' is not a duration"),
        ("wait: true, timeout: 0", "apps.w.timeout: must be a positive duration"),
    ],
)
def test_bad_yaml_app_wait(make_app: MakeApp, fields: str, expected: str) -> None:
    config = f"namespace: demo\napps:\n  w: {{type: yaml, manifests: [m.yaml], {fields}}}\n"
    message = error_of(make_app(config, {"m.yaml": "{}\n"}))
    assert f"config.yaml: {expected}" in message
