"""Carrying a target's history over to the cluster's new recorded name (both backends)."""

from __future__ import annotations

from sbkube.state import DeploymentRepository


def _deployment(repo: DeploymentRepository, cluster: str, namespace: str) -> str:
    return repo.create_deployment(cluster=cluster, namespace=namespace).deployment_id


def test_adopt_moves_one_targets_history_once(repo: DeploymentRepository) -> None:
    old_team = [_deployment(repo, "default", "team") for _ in range(2)]
    other_ns = _deployment(repo, "default", "other")

    moved = repo.adopt_target(old_cluster="default", new_cluster="default@h:6443", namespace="team")

    assert moved == 2
    assert {repo.get(d).cluster for d in old_team} == {"default@h:6443"}
    assert repo.get(other_ns).cluster == "default"  # another target: untouched
    # Once the new name has a history, nothing more is taken: a second cluster that used
    # to share the context name keeps what it records from now on.
    later = _deployment(repo, "default", "team")
    assert (
        repo.adopt_target(old_cluster="default", new_cluster="default@h:6443", namespace="team")
        == 0
    )
    assert repo.get(later).cluster == "default"


def test_adopt_to_the_same_name_does_nothing(repo: DeploymentRepository) -> None:
    dep = _deployment(repo, "memory", "team")
    assert repo.adopt_target(old_cluster="memory", new_cluster="memory", namespace="team") == 0
    assert repo.get(dep).cluster == "memory"


def test_adopt_identity_keys_a_names_records_by_the_clusters_uid(
    repo: DeploymentRepository,
) -> None:
    legacy = [_deployment(repo, "prod", "shop") for _ in range(2)]
    elsewhere = _deployment(repo, "prod", "other")
    rebuilt = repo.create_deployment(cluster="prod", cluster_id="uid-old", namespace="shop")

    assert repo.adopt_identity(name="prod", identity="uid-new", namespace="shop") == 2

    assert {repo.get(d).cluster_id for d in legacy} == {"uid-new"}
    assert {repo.get(d).cluster for d in legacy} == {"prod"}  # the name shown stays
    assert repo.get(elsewhere).cluster_id == "prod"  # another namespace: its own contact
    # Records already keyed by another cluster's identity are that cluster's.
    assert repo.get(rebuilt.deployment_id).cluster_id == "uid-old"
    # The name finds both clusters' records; an identity finds its own only.
    assert {d.cluster_id for d in repo.list(cluster="prod", namespace="shop")} == {
        "uid-new",
        "uid-old",
    }
    assert {d.deployment_id for d in repo.list(cluster="uid-new")} == set(legacy)
    assert repo.adopt_identity(name="prod", identity="uid-new", namespace="shop") == 0
