"""``differences``, digest-aware as ``status`` calls it: where a live object differs from
the recorded fields (drift)."""

from __future__ import annotations

from sbkube.engine.compare import differences
from sbkube.redaction import digest


def test_equal_and_extra_live_fields_are_no_change():
    desired = {"spec": {"replicas": 1, "ports": [{"port": 80}]}}
    live = {"spec": {"replicas": 1, "ports": [{"port": 80, "protocol": "TCP"}]}, "status": {}}
    assert differences(desired, live, digests=True) == []


def test_paths_name_the_changed_fields():
    desired = {
        "metadata": {"labels": {"a": "1"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": "n:1"}]}}},
    }
    live = {
        "metadata": {"labels": {}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "n:2"}]}}},
    }
    assert differences(desired, live, digests=True) == [
        "metadata.labels.a",
        "spec.replicas",
        "spec.template.spec.containers[0].image",
    ]


def test_a_list_of_another_length_is_one_change():
    assert differences({"a": [1, 2]}, {"a": [1]}, digests=True) == ["a"]


def test_a_recorded_digest_compares_with_the_digest_of_the_live_value():
    assert differences({"v": digest("s3cret")}, {"v": "s3cret"}, digests=True) == []
    assert differences({"v": digest("s3cret")}, {"v": "other"}, digests=True) == ["v"]
