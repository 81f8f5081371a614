"""resolve_values, load_manifests and sources_snapshot."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sbkube.config import load_config, load_manifests, resolve_values, sources_snapshot
from sbkube.config.values import deep_merge, expand_dotted
from sbkube.errors import ConfigError

MakeApp = Callable[..., Path]
REPO_ROOT = Path(__file__).resolve().parents[3]
CHART_YAML = "apiVersion: v2\nname: redis\nversion: 0.1.0\n"


def error_of(fn: Callable[[], object]) -> str:
    with pytest.raises(ConfigError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    return message


def helm_app(make_app: MakeApp, values: dict[str, str], set_: str = "{}") -> Path:
    config = (
        "namespace: demo\napps:\n  redis:\n    type: helm\n    chart: ./charts/redis\n"
        f"    values: {list(values)}\n    set: {set_}\n"
    )
    return make_app(config, {"charts/redis/Chart.yaml": CHART_YAML, **values})


def yaml_app(make_app: MakeApp, manifests: dict[str, str], extra: str = "") -> Path:
    config = (
        f"namespace: demo\napps:\n  web:\n    type: yaml\n    manifests: {list(manifests)}\n{extra}"
    )
    return make_app(config, manifests)


# ------------------------------------------------------------------ values


def test_values_precedence(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    assert resolve_values(loaded, "cache") == {
        "replicaCount": 3,  # set beats both files
        "auth": {"password": "from-set", "user": "admin"},  # dotted set key, siblings kept
        "tolerations": ["c"],  # lists are replaced, not merged
        "labels": {"tier": "cache", "team": None},  # null is kept for helm to drop the key
    }


def test_values_later_file_wins(make_app: MakeApp) -> None:
    app_dir = helm_app(
        make_app,
        {"v/a.yaml": "x: 1\nnested: {a: 1, b: 1}\n", "v/b.yaml": "x: 2\nnested: {b: 2}\n"},
    )
    assert resolve_values(load_config(app_dir), "redis") == {"x": 2, "nested": {"a": 1, "b": 2}}


def test_values_are_fresh_each_time(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    first = resolve_values(loaded, "cache")
    first["auth"]["password"] = "mutated"
    assert resolve_values(loaded, "cache")["auth"]["password"] == "from-set"
    app = loaded.config.apps["cache"]
    assert app.set["auth.password"] == "from-set"  # type: ignore[union-attr]


def test_no_values(make_app: MakeApp) -> None:
    assert resolve_values(load_config(helm_app(make_app, {})), "redis") == {}


def test_empty_values_file_is_fine(make_app: MakeApp) -> None:
    app_dir = helm_app(make_app, {"v.yaml": "# nothing yet\n"}, "{a: 1}")
    assert resolve_values(load_config(app_dir), "redis") == {"a": 1}


@pytest.mark.parametrize("content", ["- a\n- b\n", "just text\n"])
def test_values_file_must_be_mapping(make_app: MakeApp, content: str) -> None:
    loaded = load_config(helm_app(make_app, {"values/redis.yaml": content}))
    message = error_of(lambda: resolve_values(loaded, "redis"))
    assert "values/redis.yaml: values file must be a mapping" in message


def test_values_file_malformed(make_app: MakeApp) -> None:
    loaded = load_config(helm_app(make_app, {"values/redis.yaml": "a: 1\nb: [\n"}))
    message = error_of(lambda: resolve_values(loaded, "redis"))
    assert "values/redis.yaml: line " in message and "invalid YAML" in message


def test_values_file_duplicate_key(make_app: MakeApp) -> None:
    loaded = load_config(helm_app(make_app, {"values/redis.yaml": "auth:\n  a: 1\n  a: 2\n"}))
    message = error_of(lambda: resolve_values(loaded, "redis"))
    assert "values/redis.yaml: auth.a: duplicate key (first at line 2, again at line 3)" in message


def test_values_of_yaml_app_refused(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    assert "apps.api.type: 'api' is not a helm app" in error_of(
        lambda: resolve_values(loaded, "api")
    )


def test_set_dotted_keys() -> None:
    assert expand_dotted({"a.b.c": 1, "a.b.d": 2, "a.e": 3, "f": {"g.h": 4}, r"x\.y": 5}) == {
        "a": {"b": {"c": 1, "d": 2}, "e": 3},
        "f": {"g": {"h": 4}},
        "x.y": 5,
    }


def test_set_conflict(make_app: MakeApp) -> None:
    loaded = load_config(helm_app(make_app, {}, "{auth: x, auth.password: y}"))
    message = error_of(lambda: resolve_values(loaded, "redis"))
    assert "config.yaml: apps.redis.set.auth.password: conflicts with 'auth'" in message


def test_set_replaces_scalar_from_values_file(make_app: MakeApp) -> None:
    app_dir = helm_app(make_app, {"v.yaml": "auth: disabled\n"}, "{auth.password: y}")
    assert resolve_values(load_config(app_dir), "redis") == {"auth": {"password": "y"}}


def test_deep_merge_does_not_mutate() -> None:
    inner: list[int] = [1]
    base: dict[str, Any] = {"a": {"b": inner}, "c": 1}
    override: dict[str, Any] = {"a": {"d": 2}}
    before = copy.deepcopy((base, override))
    merged = deep_merge(base, override)
    assert merged == {"a": {"b": [1], "d": 2}, "c": 1}
    assert (base, override) == before
    merged["a"]["b"].append(2)
    assert inner == [1]


# ------------------------------------------------------------------ manifests


def test_manifests_of_basic_fixture(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    objects = load_manifests(loaded, "api")
    summary = [(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objects]
    assert summary == [
        ("Deployment", "api", "api"),  # namespaced: gets the app namespace
        ("Service", "api", "explicit"),  # explicit namespace kept
        ("Namespace", "api", None),  # cluster-scoped: no namespace added
        ("ClusterRole", "api-reader", None),
        ("RoleBinding", "api-reader", "api"),
    ]


def test_manifests_default_to_config_namespace(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "yaml-only")
    [obj] = load_manifests(loaded, "hello")
    assert obj["metadata"]["namespace"] == "plain"
    assert obj["data"]["created"] == "2024-01-01"


def test_manifests_are_fresh_each_time(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "yaml-only")
    load_manifests(loaded, "hello")[0]["metadata"]["labels"] = {"x": "y"}
    assert "labels" not in load_manifests(loaded, "hello")[0]["metadata"]


DEPLOYMENT = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        ("kind: Service\nmetadata: {name: x}\n", "apiVersion missing"),
        ("apiVersion: v1\nmetadata: {name: x}\n", "kind missing"),
        ("apiVersion: v1\nkind: Service\n", "metadata.name missing"),
        ("apiVersion: v1\nkind: Service\nmetadata: {labels: {}}\n", "metadata.name missing"),
        ("apiVersion: v1\nkind: Service\nmetadata: [x]\n", "metadata must be a mapping"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: 42}\n", "metadata.name must be a string"),
        ("apiVersion: 1\nkind: Service\nmetadata: {name: x}\n", "apiVersion must be a string"),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: Web_1}\n",
            "metadata.name: 'Web_1' is not a valid DNS-1123 subdomain",
        ),
        (
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {'a' * 254}}}\n",
            "metadata.name: '" + "a" * 37 + "...' is 254 characters long (at most 253)",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: Bad}\n",
            "metadata.namespace: 'Bad' is not a valid DNS-1123 label",
        ),
        ("- a\n- b\n", "expected a Kubernetes object (a mapping), got a list"),
        ("hello\n", "expected a Kubernetes object (a mapping), got str"),
    ],
)
def test_manifest_errors_name_file_and_document(
    make_app: MakeApp, second: str, problem: str
) -> None:
    loaded = load_config(yaml_app(make_app, {"manifests/web.yaml": DEPLOYMENT + "---\n" + second}))
    message = error_of(lambda: load_manifests(loaded, "web"))
    _, sep, rest = message.partition("manifests/web.yaml: document 2: ")
    assert sep, message
    assert problem in rest, message


def test_document_index_counts_empty_documents(make_app: MakeApp) -> None:
    content = DEPLOYMENT + "---\n---\n# just a comment\n---\napiVersion: v1\nkind: Service\n"
    loaded = load_config(yaml_app(make_app, {"m.yaml": content}))
    assert "m.yaml: document 4: metadata.name missing" in error_of(
        lambda: load_manifests(loaded, "web")
    )


def test_second_manifest_file_named(make_app: MakeApp) -> None:
    files = {"a.yaml": DEPLOYMENT, "b.yaml": "apiVersion: v1\nkind: Service\nmetadata: {}\n"}
    loaded = load_config(yaml_app(make_app, files))
    assert "b.yaml: document 1: metadata.name missing" in error_of(
        lambda: load_manifests(loaded, "web")
    )


def test_manifest_without_objects(make_app: MakeApp) -> None:
    loaded = load_config(yaml_app(make_app, {"a.yaml": DEPLOYMENT, "b.yaml": "---\n# empty\n"}))
    assert "b.yaml: no Kubernetes objects in manifest file" in error_of(
        lambda: load_manifests(loaded, "web")
    )


def test_manifest_malformed_yaml(make_app: MakeApp) -> None:
    loaded = load_config(yaml_app(make_app, {"a.yaml": DEPLOYMENT + "---\nkind: [\n"}))
    message = error_of(lambda: load_manifests(loaded, "web"))
    assert "a.yaml: line " in message and "invalid YAML" in message


def test_manifest_binary(make_app: MakeApp) -> None:
    app_dir = yaml_app(make_app, {"a.yaml": ""})
    (app_dir / "a.yaml").write_bytes(b"\x00\x01\x02")
    loaded = load_config(app_dir)
    assert "a.yaml: binary file" in error_of(lambda: load_manifests(loaded, "web"))


def test_duplicate_objects(make_app: MakeApp) -> None:
    loaded = load_config(yaml_app(make_app, {"a.yaml": DEPLOYMENT, "b.yaml": DEPLOYMENT}))
    message = error_of(lambda: load_manifests(loaded, "web"))
    assert "b.yaml: document 1: duplicate object Deployment demo/web" in message
    assert "a.yaml document 1" in message


def test_same_name_different_kind_is_fine(make_app: MakeApp) -> None:
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
    loaded = load_config(yaml_app(make_app, {"a.yaml": DEPLOYMENT + "---\n" + service}))
    assert [o["kind"] for o in load_manifests(loaded, "web")] == ["Deployment", "Service"]


def test_app_namespace_override(make_app: MakeApp) -> None:
    loaded = load_config(yaml_app(make_app, {"a.yaml": DEPLOYMENT}, "    namespace: other\n"))
    assert load_manifests(loaded, "web")[0]["metadata"]["namespace"] == "other"


def test_manifests_of_helm_app_refused(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    assert "apps.cache.type: 'cache' is not a yaml app" in error_of(
        lambda: load_manifests(loaded, "cache")
    )


# ------------------------------------------------------------------ sources snapshot


def test_snapshot_lists_every_file(fixtures_dir: Path) -> None:
    loaded = load_config(fixtures_dir / "basic")
    snapshot = sources_snapshot(loaded)
    assert list(snapshot) == [
        "config.yaml",
        "charts/cache/Chart.yaml",
        "values/base.yaml",
        "values/override.yaml",
        "manifests/api.yaml",
        "manifests/rbac.yaml",
    ]
    assert all(d.startswith("hmac-checksum:") and len(d) == 78 for d in snapshot.values())
    assert set(sources_snapshot(loaded, "api")) == {
        "config.yaml",
        "manifests/api.yaml",
        "manifests/rbac.yaml",
    }
    assert set(sources_snapshot(loaded, "queue")) == {"config.yaml"}


def test_snapshot_digest_is_the_keyed_checksum_of_the_file(
    fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import hmac

    loaded = load_config(fixtures_dir / "yaml-only")
    data = (fixtures_dir / "yaml-only" / "manifests" / "hello.yaml").read_bytes()
    plain = hashlib.sha256(data).hexdigest()
    monkeypatch.setenv("SBKUBE_DIGEST_KEY", "key-one")
    mac = hmac.new(b"key-one", plain.encode(), hashlib.sha256).hexdigest()
    one = sources_snapshot(loaded)["manifests/hello.yaml"]
    assert one == "hmac-checksum:" + mac and plain not in one
    monkeypatch.setenv("SBKUBE_DIGEST_KEY", "key-two")
    assert sources_snapshot(loaded)["manifests/hello.yaml"] not in (one, "sha256:" + plain)


def test_snapshot_changes_when_a_file_changes(make_app: MakeApp) -> None:
    app_dir = helm_app(make_app, {"values/redis.yaml": "a: 1\n"})
    before = sources_snapshot(load_config(app_dir))
    (app_dir / "values" / "redis.yaml").write_text("a: 2\n")
    after = sources_snapshot(load_config(app_dir))
    assert before["values/redis.yaml"] != after["values/redis.yaml"]
    assert before["config.yaml"] == after["config.yaml"]
    assert before["charts/redis/Chart.yaml"] == after["charts/redis/Chart.yaml"]
    (app_dir / "charts" / "redis" / "Chart.yaml").write_text(CHART_YAML + "description: x\n")
    assert (
        sources_snapshot(load_config(app_dir))["charts/redis/Chart.yaml"]
        != (after["charts/redis/Chart.yaml"])
    )


def test_snapshot_matches_what_was_deployed(make_app: MakeApp) -> None:
    # Files are read once per load: an edit after loading changes neither the values
    # handed out nor the digest recorded for this load.
    app_dir = helm_app(make_app, {"values/redis.yaml": "a: 1\n"})
    loaded = load_config(app_dir)
    before = sources_snapshot(loaded)
    (app_dir / "values" / "redis.yaml").write_text("a: 2\n")
    assert resolve_values(loaded, "redis") == {"a": 1}
    assert sources_snapshot(loaded) == before


def test_snapshot_of_file_outside_app_dir(tmp_path: Path) -> None:
    (tmp_path / "common.yaml").write_text("shared: true\n")
    (tmp_path / "app" / "c").mkdir(parents=True)
    (tmp_path / "app" / "c" / "Chart.yaml").write_text(CHART_YAML)
    (tmp_path / "app" / "config.yaml").write_text(
        "namespace: demo\napps:\n  r: {type: helm, chart: ./c, values: [../common.yaml]}\n"
    )
    loaded = load_config(tmp_path / "app")
    assert "../common.yaml" in sources_snapshot(loaded)
    assert resolve_values(loaded, "r") == {"shared": True}


def test_demo_example(tmp_path: Path) -> None:
    loaded = load_config(REPO_ROOT / "examples" / "demo")
    values = resolve_values(loaded, "redis")
    assert values["auth"]["password"]
    assert values["replicaCount"] == 1
    objects = load_manifests(loaded, "web")
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "Deployment", "Service"]
    assert {o["metadata"]["namespace"] for o in objects} == {"demo"}
    assert set(sources_snapshot(loaded)) == {
        "config.yaml",
        "charts/redis/Chart.yaml",
        "values/redis.yaml",
        "manifests/web.yaml",
        "manifests/svc.yaml",
    }
