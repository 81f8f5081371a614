"""Generated deployment ids that collide are drawn again; given ids are never changed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sbkube.errors import StateError
from sbkube.state import DeploymentDatabase, DeploymentRepository
from sbkube.state import writes as writes_module


def _ids(*values: str) -> Iterator[str]:
    yield from values


def test_a_colliding_generated_id_is_drawn_again(
    db: DeploymentDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = _ids(
        "dep-20261126-000000-aaaaaa", "dep-20261126-000000-aaaaaa", "dep-20261126-000000-bbbbbb"
    )
    monkeypatch.setattr(writes_module, "new_deployment_id", lambda at=None: next(drawn))
    repo = DeploymentRepository(db)
    first = repo.create_deployment(cluster="c", namespace="n")
    second = repo.create_deployment(cluster="c", namespace="n")
    assert (first.deployment_id, second.deployment_id) == (
        "dep-20261126-000000-aaaaaa",
        "dep-20261126-000000-bbbbbb",
    )
    assert repo.count() == 2


def test_a_given_id_that_exists_is_refused(db: DeploymentDatabase) -> None:
    repo = DeploymentRepository(db)
    repo.create_deployment(cluster="c", namespace="n", deployment_id="dep-fixed")
    with pytest.raises(StateError, match=r"deployment_id|deployments"):
        repo.create_deployment(cluster="c", namespace="n", deployment_id="dep-fixed")
    assert repo.count() == 1
