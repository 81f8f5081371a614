"""The guard before every apply (``sbkube.guard``): a digest or a redaction marker is never
sent to a cluster, while what ordinary manifests carry (image digests) passes."""

from __future__ import annotations

from typing import Any

import pytest

from sbkube.guard import UnsendableValue, refuse_unsendable, unsendable
from sbkube.redaction import MASK, digest

KEYED = digest("hunter2-hunter2", b"k")
LEGACY = "sha256:" + "ab" * 32


def _secret(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": data}


@pytest.mark.parametrize(
    ("value", "paths"),
    [
        (_secret(pw=KEYED), ["data.pw"]),
        (_secret(pw=LEGACY), ["data.pw"]),
        (_secret(pw=MASK), ["data.pw"]),
        ({"auth": {"password": "(secret)"}}, ["auth.password"]),
        ({"url": f"postgres://u:{KEYED}@h/db"}, ["url"]),
        ({"spec": {"topologyKey": KEYED}}, ["spec.topologyKey"]),
        ({"args": ["--token", KEYED]}, ["args[1]"]),
    ],
)
def test_digests_and_markers_are_found(value: Any, paths: list[str]) -> None:
    assert unsendable(value) == paths
    with pytest.raises(UnsendableValue, match="refusing to send Secret s"):
        refuse_unsendable(value, "Secret s")


@pytest.mark.parametrize(
    "value",
    [
        {"image": f"nginx@{LEGACY}"},
        {"image": {"digest": LEGACY}},  # an image digest: not where the store puts secrets
        {"note": MASK, "stars": "***"},  # a marker's text outside a secret position
        _secret(pw="aHVudGVyMg=="),
        {"password": "hunter2", "url": "postgres://u:pw@h/db"},
    ],
)
def test_what_ordinary_manifests_carry_passes(value: Any) -> None:
    assert unsendable(value) == []
    refuse_unsendable(value, "x")
