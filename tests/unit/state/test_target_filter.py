"""The one "this target, not a dry run" filter, and the reads built on it (both backends).

Four deployments of the same app: one real run on the target ``prod``/``apps``, a dry run
on the same target, and real runs on another namespace and on another cluster. Only the
first is what sbkube did to the target.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sbkube.model import AppStatus, DeploymentStatus
from sbkube.state import DeploymentDatabase, DeploymentRepository
from sbkube.state.reads import on_target
from sbkube.state.schema import Deployment
from sbkube.state.sessions import read_session

Ids = dict[str, str]


def _deploy(
    repo: DeploymentRepository, cluster: str, namespace: str, *, dry_run: bool = False
) -> str:
    dep = repo.create_deployment(cluster=cluster, namespace=namespace, dry_run=dry_run)
    app = repo.start_app(dep.deployment_id, name="web", type="yaml", namespace=namespace)
    repo.add_helm_release(
        app.app_id, release_name="web", namespace=namespace, chart="c", revision=1, status="x"
    )
    repo.finish_app(app.app_id, AppStatus.SUCCESS)
    repo.set_status(dep.deployment_id, DeploymentStatus.SUCCESS)
    return dep.deployment_id


@pytest.fixture
def ids(repo: DeploymentRepository) -> Ids:
    return {
        "target": _deploy(repo, "prod", "apps"),
        "dry_run": _deploy(repo, "prod", "apps", dry_run=True),
        "other_namespace": _deploy(repo, "prod", "other"),
        "other_cluster": _deploy(repo, "staging", "apps"),
    }


def _matching(db: DeploymentDatabase, ids: Ids, *conds: object) -> set[str]:
    names = {v: k for k, v in ids.items()}
    with read_session(db) as session:
        found = session.execute(select(Deployment.deployment_id).where(*conds)).scalars()
        return {names[d] for d in found}


@pytest.mark.parametrize(
    ("cluster", "namespace", "dry_runs", "expected"),
    [
        ("prod", "apps", False, {"target"}),
        ("prod", "apps", True, {"target", "dry_run"}),
        ("prod", None, False, {"target", "other_namespace"}),
        (None, "apps", False, {"target", "other_cluster"}),
        (None, None, False, {"target", "other_namespace", "other_cluster"}),
        (None, None, True, {"target", "dry_run", "other_namespace", "other_cluster"}),
        ("nowhere", "apps", True, set()),
    ],
)
def test_the_filter_keeps_the_target_and_leaves_dry_runs_out(
    db: DeploymentDatabase,
    ids: Ids,
    cluster: str | None,
    namespace: str | None,
    dry_runs: bool,
    expected: set[str],
) -> None:
    assert _matching(db, ids, *on_target(cluster, namespace, dry_runs=dry_runs)) == expected


def test_reads_of_a_target_see_only_its_real_runs(repo: DeploymentRepository, ids: Ids) -> None:
    target = {"cluster": "prod", "namespace": "apps"}

    last = repo.last_successful_app(**target, app="web")
    assert last is not None and last.deployment_id == ids["target"]
    history = repo.app_history("web", **target)
    assert [h.deployment_id for h in history] == [ids["target"]]
    assert repo.recorded_revisions(**target, release_name="web", release_namespace="apps") == {1}
    release = repo.latest_release(**target, release_name="web", release_namespace="apps")
    assert release is not None and release.revision == 1
    assert [d.deployment_id for d in repo.get_many(**target, include_dry_run=False)] == [
        ids["target"]
    ]
    # Asked with dry runs, the same read takes the dry run in and still nothing else.
    assert {d.deployment_id for d in repo.get_many(**target)} == {ids["target"], ids["dry_run"]}
    # The other namespace's and cluster's runs answer for their own targets.
    other = repo.last_successful_app(cluster="prod", namespace="other", app="web")
    assert other is not None and other.deployment_id == ids["other_namespace"]
