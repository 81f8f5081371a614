"""What the report reads and pairs, on the real backends: diff bases per target,
``--since``/``--app`` scopes, and masking of every digest."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sbkube.engine.record_diff import diff_deployments
from sbkube.report.gather import Scope, gather, mask
from sbkube.report.render import render
from sbkube.state import DeploymentDatabase, DeploymentRepository, ResourceInput

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _seed(repo: DeploymentRepository, n: int, *, namespace: str = "apps", start: int = 0) -> None:
    """``n`` deployments a minute apart, each with a helm app (replicas = i) and a yaml app."""
    for i in range(start, start + n):
        dep = repo.create_deployment(
            cluster="c",
            namespace=namespace,
            started_at=T0 + timedelta(minutes=i),
            deployment_id=f"dep-{namespace}-{i:04d}",
            config_snapshot={"apps": {"redis": {"set": {"replicaCount": i}}}},
        )
        app = repo.start_app(dep.deployment_id, name="redis", type="helm")
        repo.add_resources(
            app.app_id,
            [
                ResourceInput.from_manifest(
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "metadata": {"name": "redis", "namespace": namespace},
                        "spec": {"replicas": i},
                    },
                    "update" if i else "create",
                )
            ],
        )
        repo.add_helm_release(
            app.app_id,
            release_name="redis",
            namespace=namespace,
            chart="redis",
            revision=i + 1,
            status="deployed",
            values={"replicaCount": i, "auth": {"password": f"pw-{i % 2}"}},
        )
        repo.finish_app(app.app_id, "success")
        web = repo.start_app(dep.deployment_id, name="web", type="yaml")
        repo.finish_app(web.app_id, "success")
        repo.finish_deployment(dep.deployment_id, "success")


def test_each_deployment_is_diffed_with_the_previous_one_of_its_target(
    db: DeploymentDatabase,
) -> None:
    repo = DeploymentRepository(db)
    _seed(repo, 3, namespace="a")
    _seed(repo, 2, namespace="b", start=10)
    history = gather(repo, Scope())
    pairs = {e.record.deployment_id: e.previous_id for e in history.entries}
    assert pairs == {
        "dep-a-0000": None,
        "dep-a-0001": "dep-a-0000",
        "dep-a-0002": "dep-a-0001",
        "dep-b-0010": None,
        "dep-b-0011": "dep-b-0010",
    }
    diff = next(e.diff for e in history.entries if e.record.deployment_id == "dep-a-0002")
    assert diff is not None
    (release,) = diff["releases"]
    values = {v["path"]: v for v in release["values"]}
    assert (values["replicaCount"]["old"], values["replicaCount"]["new"]) == (1, 2)
    assert values["auth.password"]["secret"] is True
    assert "sha256:" not in str(diff)


def test_since_keeps_the_diff_of_the_first_deployment_in_the_window(
    db: DeploymentDatabase,
) -> None:
    repo = DeploymentRepository(db)
    _seed(repo, 4)
    history = gather(repo, Scope(since=T0 + timedelta(minutes=2), app="redis"))
    assert [e.record.deployment_id for e in history.entries] == ["dep-apps-0002", "dep-apps-0003"]
    assert history.entries[0].previous_id == "dep-apps-0001"
    assert [a.name for e in history.entries for a in e.record.apps] == ["redis", "redis"]
    html = render(history, generated_at=T0)
    assert 'id="dep-apps-0003"' in html
    assert "dep-apps-0000" not in html


def test_mask_replaces_every_digest() -> None:
    digest = "sha256:" + "0" * 64
    masked = mask({"a": [digest, {"b": digest, "c": "sha256:short"}], "d": 1})
    assert masked == {"a": ["(secret)", {"b": "(secret)", "c": "sha256:short"}], "d": 1}


def test_report_diffs_are_the_state_diffs_of_each_pair(db: DeploymentDatabase) -> None:
    """gather() diffs the whole history through one cache of YAML text; each diff must be
    what ``state diff`` of that pair alone gives (masked), also when a manifest or a
    secret comes back to an earlier value."""
    repo = DeploymentRepository(db)
    for i, (replicas, password) in enumerate([(1, "a"), (2, "b"), (1, "a"), (1, "b"), (2, "b")]):
        dep = repo.create_deployment(
            cluster="c",
            namespace="apps",
            started_at=T0 + timedelta(minutes=i),
            config_snapshot={"apps": {"redis": {"set": {"replicaCount": replicas}}}},
        )
        app = repo.start_app(dep.deployment_id, name="redis", type="yaml")
        repo.add_resources(
            app.app_id,
            [
                ResourceInput.from_manifest(
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "auth", "namespace": "apps"},
                        "data": {"password": password, "user": "admin"},
                    },
                    "update",
                ),
                ResourceInput.from_manifest(
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "metadata": {"name": "redis", "namespace": "apps"},
                        "spec": {"replicas": replicas},
                    },
                    "update",
                ),
            ],
        )
        repo.finish_app(app.app_id, "success")
        repo.finish_deployment(dep.deployment_id, "success")
    records = repo.get_many()
    history = gather(repo, Scope())
    expected = [None] + [
        mask(diff_deployments(a, b).to_dict()) for a, b in itertools.pairwise(records)
    ]
    assert [e.diff for e in history.entries] == expected
    texts = [c["diff"] for d in expected[1:] for r in d["resources"] for c in r["changed"]]
    assert sum("(secret, changed)" in t for t in texts) == 3  # a -> b -> a -> b -> b
    assert sum("replicas: 2" in t for t in texts) == 3  # 1 -> 2 -> 1 -> 1 -> 2
