"""diff_deployments: config, Helm values (secrets as markers only), resource sets,
manifest diffs and --app narrowing, over deployments recorded in a real store."""

from __future__ import annotations

import difflib
import itertools
import json
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sbkube.cli.output import render_diff as render_text
from sbkube.engine.record_diff import SECRET, Dumps, diff_deployments, mask_secrets
from sbkube.errors import NotFoundError
from sbkube.model import freeze
from sbkube.redaction import digest
from sbkube.state import (
    DeploymentDatabase,
    DeploymentRecord,
    DeploymentRepository,
    DeploymentTracker,
    ResourceInput,
)


def cm(name: str, data: dict[str, str], ns: str = "demo") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


def secret(name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "demo"},
        "data": {"password": value},
    }


def deployment(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "demo"},
        "spec": {"template": {"spec": {"containers": [{"name": "api", "image": image}]}}},
    }


def record(
    db: DeploymentDatabase,
    *,
    config: dict[str, Any],
    api: list[tuple[dict[str, Any], str]],
    cache_version: str,
    cache_revision: int,
    cache_values: dict[str, Any],
    cache_resources: list[dict[str, Any]],
) -> DeploymentRecord:
    tracker = DeploymentTracker(db)
    with tracker.track_deployment(cluster="k3s", namespace="demo", config=config) as dep:
        with dep.track_app(name="api", type="yaml", namespace="demo") as app:
            app.record_resources([ResourceInput.from_manifest(m, act) for m, act in api])
        with dep.track_app(name="cache", type="helm", namespace="demo") as app:
            app.record_helm_release(
                release_name="cache",
                namespace="demo",
                chart="./charts/cache",
                chart_version=cache_version,
                revision=cache_revision,
                status="deployed",
                values=cache_values,
            )
            app.record_resources(cache_resources, action="update")
    return DeploymentRepository(db).get(dep.deployment_id)


@pytest.fixture
def pair(db: DeploymentDatabase) -> tuple[DeploymentRecord, DeploymentRecord]:
    a = record(
        db,
        config={
            "namespace": "demo",
            "apps": {
                "api": {"type": "yaml", "manifests": ["api.yaml"]},
                "cache": {"type": "helm", "version": "1.0.0", "set": {"password": "p1"}},
            },
        },
        api=[
            (cm("settings", {"mode": "a"}), "create"),
            (deployment("api:1"), "create"),
            (cm("old-one", {"x": "1"}), "create"),
            (cm("legacy", {"x": "1"}), "create"),
            (secret("creds", "hunter2"), "create"),
        ],
        cache_version="1.0.0",
        cache_revision=1,
        cache_values={
            "image": {"tag": "7.0"},
            "replicas": 1,
            "auth": {"password": "s3cret", "token": "t1"},
            "legacy": True,
        },
        cache_resources=[cm("cache", {"v": "1"})],
    )
    b = record(
        db,
        config={
            "namespace": "demo",
            "apps": {
                "api": {"type": "yaml", "manifests": ["api.yaml"]},
                "cache": {"type": "helm", "version": "1.1.0", "set": {"password": "p2"}},
            },
        },
        api=[
            (cm("settings", {"mode": "b"}), "update"),
            (deployment("api:1"), "unchanged"),
            (cm("brand-new", {"y": "2"}), "create"),
            (cm("legacy", {"x": "1"}), "delete"),
            (secret("creds", "hunter3"), "update"),
        ],
        cache_version="1.1.0",
        cache_revision=2,
        cache_values={
            "image": {"tag": "7.2"},
            "replicas": 1,
            "auth": {"password": "s3cret", "token": "t2"},
            "extra": {"enabled": True},
        },
        cache_resources=[cm("cache", {"v": "1"})],
    )
    return a, b


SECRETS = ("p1", "p2", "s3cret", "t1", "t2", "hunter2", "hunter3")


def assert_no_secret(text: str) -> None:
    for plain in SECRETS:
        assert digest(plain) not in text
        assert f'"{plain}"' not in text and f": {plain}\n" not in text


def test_config_snapshot_unified_diff(pair: tuple[DeploymentRecord, DeploymentRecord]) -> None:
    a, b = pair
    d = diff_deployments(a, b)
    assert d.config_changed
    assert d.config_diff.startswith(f"--- {a.deployment_id}/config\n+++ {b.deployment_id}/config")
    assert "-    version: 1.0.0\n" in d.config_diff
    assert "+    version: 1.1.0\n" in d.config_diff
    # The password under `set` changed: said, not shown.
    assert "-      password: (secret)\n" in d.config_diff
    assert "+      password: (secret, changed)\n" in d.config_diff
    assert_no_secret(d.config_diff)

    same = diff_deployments(a, a)
    assert not same.config_changed and same.config_diff == ""
    assert not same.changed


def test_helm_values_chart_and_revision(pair: tuple[DeploymentRecord, DeploymentRecord]) -> None:
    a, b = pair
    (rel,) = diff_deployments(a, b).releases
    assert (rel.app, rel.release_name, rel.namespace, rel.change) == (
        "cache",
        "cache",
        "demo",
        "changed",
    )
    assert (rel.chart_version_a, rel.chart_version_b) == ("1.0.0", "1.1.0")
    assert (rel.revision_a, rel.revision_b) == (1, 2)
    changes = {v.path: v for v in rel.values}
    assert set(changes) == {"image.tag", "legacy", "extra", "auth.token"}
    assert (changes["image.tag"].change, changes["image.tag"].old, changes["image.tag"].new) == (
        "changed",
        "7.0",
        "7.2",
    )
    assert changes["legacy"].change == "removed" and changes["legacy"].old is True
    assert changes["extra"].change == "added" and changes["extra"].new == {"enabled": True}
    token = changes["auth.token"]
    assert token.secret and token.change == "changed"
    assert token.old is None and token.new is None
    assert rel.unchanged_secrets == ("auth.password",)


def test_secret_values_shown_only_as_changed_or_unchanged(
    pair: tuple[DeploymentRecord, DeploymentRecord],
) -> None:
    a, b = pair
    d = diff_deployments(a, b)
    text = render_text(d)
    assert f"~ auth.token: {SECRET} changed" in text
    assert f"= auth.password: {SECRET} unchanged" in text
    assert_no_secret(text)
    assert_no_secret(json.dumps(d.to_dict()))


def test_resource_set_added_removed_changed(
    pair: tuple[DeploymentRecord, DeploymentRecord],
) -> None:
    a, b = pair
    res = {r.app: r for r in diff_deployments(a, b).resources}
    api = res["api"]
    assert api.change == "changed"
    assert [r.name for r in api.added] == ["brand-new"]
    # legacy is recorded in B, but as a delete: it is gone, so it is "removed".
    assert sorted(r.name for r in api.removed) == ["legacy", "old-one"]
    assert sorted(c.resource.name for c in api.changed) == ["creds", "settings"]
    assert api.unchanged == 1
    cache = res["cache"]
    assert (cache.change, cache.added, cache.removed, cache.changed, cache.unchanged) == (
        "unchanged",
        (),
        (),
        (),
        1,
    )


def test_changed_manifest_unified_diff(pair: tuple[DeploymentRecord, DeploymentRecord]) -> None:
    a, b = pair
    api = next(r for r in diff_deployments(a, b).resources if r.app == "api")
    changed = {c.resource.name: c for c in api.changed}
    settings = changed["settings"]
    assert settings.checksum_a != settings.checksum_b
    assert settings.diff.startswith(f"--- {a.deployment_id}/api/ConfigMap/demo/settings\n")
    assert "-  mode: a\n" in settings.diff and "+  mode: b\n" in settings.diff
    creds = changed["creds"].diff
    assert "-  password: (secret)\n" in creds and "+  password: (secret, changed)\n" in creds
    assert_no_secret(creds)
    text = render_text(diff_deployments(a, b))
    assert "== Manifest diffs ==" in text and "+  mode: b" in text


def test_app_narrowing(pair: tuple[DeploymentRecord, DeploymentRecord]) -> None:
    a, b = pair
    d = diff_deployments(a, b, apps=["api"])
    assert d.apps == ("api",)
    assert [r.app for r in d.resources] == ["api"]
    assert d.releases == ()
    # The config section keeps only the narrowed app's entry; api's config did not change.
    assert not d.config_changed

    only_cache = diff_deployments(a, b, apps=["cache"])
    assert [r.app for r in only_cache.resources] == ["cache"]
    assert [r.release_name for r in only_cache.releases] == ["cache"]
    assert "version: 1.1.0" in only_cache.config_diff and "api.yaml" not in only_cache.config_diff

    with pytest.raises(NotFoundError, match="'nope' is in neither"):
        diff_deployments(a, b, apps=["nope"])


def test_app_added_and_removed(db: DeploymentDatabase) -> None:
    tracker = DeploymentTracker(db)
    with tracker.track_deployment(cluster="k3s", namespace="demo") as d1:
        with d1.track_app(name="one", type="yaml") as app:
            app.record_resources([cm("a", {})], action="create")
    with tracker.track_deployment(cluster="k3s", namespace="demo") as d2:
        with d2.track_app(name="two", type="yaml") as app:
            app.record_resources([cm("b", {})], action="create")
    repo = DeploymentRepository(db)
    d = diff_deployments(repo.get(d1.deployment_id), repo.get(d2.deployment_id))
    res = {r.app: r for r in d.resources}
    assert res["one"].change == "removed" and [r.name for r in res["one"].removed] == ["a"]
    assert res["two"].change == "added" and [r.name for r in res["two"].added] == ["b"]


def test_to_dict_is_json_ready(pair: tuple[DeploymentRecord, DeploymentRecord]) -> None:
    a, b = pair
    data = json.loads(json.dumps(diff_deployments(a, b).to_dict()))
    assert set(data) == {
        *("a", "b", "apps", "config_changed", "config_diff", "releases", "resources", "sources")
    }
    assert data["a"]["deployment_id"] == a.deployment_id
    assert data["releases"][0]["values"][0]["path"] == "auth.token"
    assert data["resources"][0]["changed"][0]["resource"]["kind"] == "ConfigMap"


# -- one cache of YAML text across many diffs (state report) ------------------------------

DIGESTS = (digest("one"), digest("two"))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False, width=16)
    | st.sampled_from(["", "a", "yes", "1", "a: b", "x\ny\n", "ünï"])
    | st.sampled_from(DIGESTS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "1"]), inner, max_size=3)
    ),
    max_leaves=12,
)


def reference(a: Any, b: Any) -> str:
    """What one diff of ``a`` and ``b`` shows, made from scratch: both sides masked as a
    pair, dumped, and compared."""
    ma, mb = mask_secrets(a, b)

    def lines(v: Any) -> list[str]:
        if v is None or not isinstance(v, dict | list | str | int | float | bool):
            return []
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        text = yaml.dump(
            v, Dumper=dumper, sort_keys=True, allow_unicode=True, default_flow_style=False
        )
        return text.splitlines(keepends=True)

    out = difflib.unified_diff(lines(ma), lines(mb), fromfile="A", tofile="B")
    return "".join(x if x.endswith("\n") else x + "\n" for x in out)


# Manifests of one resource share their shape: a few top-level keys, so that digests
# often meet a different digest (or none) at the same place on the other side.
documents = st.dictionaries(st.sampled_from(["a", "b"]), json_values, max_size=2)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), json_values, documents), min_size=2, max_size=5),
    order=st.lists(st.integers(0, 4), min_size=2, max_size=8),
)
@example(values=[{"a": DIGESTS[0]}, {"a": DIGESTS[1]}], order=[0, 1, 1, 0])
def test_shared_dumps_show_what_each_diff_alone_shows(values: list[Any], order: list[int]) -> None:
    """A report diffs a chain of deployments through one Dumps: values come back (by
    identity, as the next diff's older side, and by content), and a digest is "changed"
    in one pair and not in the next; each diff must still read as if made alone."""
    frozen = [freeze(v) for v in values]
    chain = [frozen[i % len(frozen)] for i in order]
    dumps = Dumps()
    for a, b in itertools.pairwise(chain):
        assert dumps.unified(a, b, "A", "B") == reference(a, b)


def test_a_digest_reads_changed_in_the_pair_where_it_changed_only(
    db: DeploymentDatabase,
) -> None:
    """Secret v1 -> v2 -> v2 -> v1 through one Dumps: the newer side of a pair says
    "(secret, changed)" where the digest changed, though the same manifest was dumped
    before as a plain "(secret)"."""
    tracker = DeploymentTracker(db)
    ids = []
    for value in ("v1", "v2", "v2", "v1"):
        with tracker.track_deployment(cluster="k3s", namespace="demo") as dep:
            with dep.track_app(name="api", type="yaml", namespace="demo") as app:
                app.record_resources([ResourceInput.from_manifest(secret("s", value), "update")])
        ids.append(dep.deployment_id)
    repo = DeploymentRepository(db)
    records = [repo.get(i) for i in ids]
    dumps = Dumps()
    diffs = [diff_deployments(a, b, dumps=dumps) for a, b in itertools.pairwise(records)]
    texts = [[c.diff for r in d.resources for c in r.changed] for d in diffs]
    assert len(texts[0]) == 1 and "+  password: (secret, changed)" in texts[0][0]
    assert texts[1] == []  # same checksum: unchanged
    assert len(texts[2]) == 1 and "+  password: (secret, changed)" in texts[2][0]
    assert texts == [
        [c.diff for r in diff_deployments(a, b).resources for c in r.changed]
        for a, b in itertools.pairwise(records)
    ]
