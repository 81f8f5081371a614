"""Parsing helm's output: JSON shapes recorded from helm v4 (tests/unit/cluster/data/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sbkube.cluster import helm as h
from sbkube.errors import ClusterError

DATA = Path(__file__).resolve().parent / "data"


def read_data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_status_with_metadata() -> None:
    # `helm status` strips the chart, so chart name/version come from `helm get metadata`.
    metadata = h.parse_metadata_json(read_data("metadata.json"))
    info = h.parse_status_json(read_data("status.json"), metadata)
    assert info.name == "cache"
    assert info.namespace == "data"
    assert info.revision == 3
    assert info.status == "deployed"
    assert info.chart == "demo-redis"
    assert info.chart_version == "0.1.0"
    assert info.app_version == "7.2.4"
    assert info.values == {"auth": {"password": "s3cret"}, "replicaCount": 2}
    assert info.description == "Upgrade complete"
    # 09:51:20.987654321+01:00 -> 08:51:20.987654 UTC (nanoseconds truncated)
    assert info.updated == datetime(2026, 11, 26, 8, 51, 20, 987654, tzinfo=UTC)
    assert info.updated is not None and info.updated.tzinfo is UTC


def test_status_without_metadata_leaves_chart_empty() -> None:
    info = h.parse_status_json(read_data("status.json"))
    assert info.chart == ""
    assert info.revision == 3


def test_pending_status_without_config() -> None:
    info = h.parse_status_json(read_data("status_pending.json"))
    assert info.status == "pending-upgrade"
    assert info.pending
    assert info.values == {}  # "config" is omitted when no values were given
    assert info.updated == datetime(2026, 11, 26, 10, 2, 11, 500000, tzinfo=UTC)


def test_upgrade_output_carries_chart_metadata() -> None:
    info = h.parse_status_json(read_data("upgrade.json"))
    assert (info.chart, info.chart_version, info.app_version) == ("demo-redis", "0.1.0", "7.2.4")
    assert info.revision == 1
    assert info.values == {"replicaCount": 2}
    assert info.description == "Install complete"


def test_history_oldest_first_with_split_chart() -> None:
    data = json.loads(read_data("history.json"))
    shuffled = json.dumps([data[2], data[0], data[1]])
    revisions = h.parse_history_json(shuffled, "cache", "data")
    assert [r.revision for r in revisions] == [1, 2, 3]
    assert [r.status for r in revisions] == ["superseded", "failed", "deployed"]
    assert revisions[1].chart == "demo-redis"
    assert revisions[1].chart_version == "0.2.0-rc.1"
    assert revisions[1].app_version == "7.2.5"
    assert revisions[2].app_version is None  # "" -> None
    assert revisions[2].description == "Rollback to 1"
    assert all(r.name == "cache" and r.namespace == "data" for r in revisions)
    assert all(r.values == {} for r in revisions)
    assert revisions[0].updated == datetime(2026, 11, 20, 8, 51, 20, 123456, tzinfo=UTC)


def test_empty_history() -> None:
    assert h.parse_history_json("[]", "r", "n") == []
    assert h.parse_history_json("", "r", "n") == []


@pytest.mark.parametrize(
    ("chart", "expected"),
    [
        ("demo-redis-0.1.0", ("demo-redis", "0.1.0")),
        ("redis-18.1.0", ("redis", "18.1.0")),
        ("my-app-2-1.0.0-rc.1+build.5", ("my-app-2", "1.0.0-rc.1+build.5")),
        ("chart-v1.2.3", ("chart", "v1.2.3")),
        ("MISSING", ("MISSING", "")),
    ],
)
def test_split_chart(chart: str, expected: tuple[str, str]) -> None:
    assert h.split_chart(chart) == expected


def test_values_json() -> None:
    assert h.parse_values_json(read_data("values.json")) == {
        "auth": {"password": "s3cret"},
        "replicaCount": 2,
    }
    assert h.parse_values_json(read_data("values_null.json")) == {}
    with pytest.raises(ClusterError, match="not a mapping"):
        h.parse_values_json("[1, 2]")
    with pytest.raises(ClusterError, match="invalid JSON"):
        h.parse_values_json("USER-SUPPLIED VALUES:\nnull")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T08:51:20Z", datetime(2026, 11, 26, 8, 51, 20, tzinfo=UTC)),
        ("2026-11-26T08:51:20.1Z", datetime(2026, 11, 26, 8, 51, 20, 100000, tzinfo=UTC)),
        (
            "2026-11-26T10:51:20.123456789+02:00",
            datetime(2026, 11, 26, 8, 51, 20, 123456, tzinfo=UTC),
        ),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_helm_time(text: str | None, expected: datetime | None) -> None:
    assert h.parse_helm_time(text) == expected


def test_parse_helm_time_rejects_garbage() -> None:
    with pytest.raises(ClusterError, match="unreadable time"):
        h.parse_helm_time("yesterday")


def test_parse_manifests_skips_empty_docs_and_defaults_namespace() -> None:
    text = """---
# Source: c/templates/secret.yaml
---
# Source: c/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
data:
  enabled: "true"
---
apiVersion: v1
kind: Namespace
metadata:
  name: other
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata:
      name: svc
      namespace: explicit
"""
    manifests = h.parse_manifests(text, namespace="data")
    assert [(m["kind"], m["metadata"].get("namespace")) for m in manifests] == [
        ("ConfigMap", "data"),
        ("Namespace", None),
        ("Service", "explicit"),
    ]
    assert manifests[0]["data"]["enabled"] == "true"


def test_parse_manifests_rejects_invalid_yaml() -> None:
    with pytest.raises(ClusterError, match="invalid YAML"):
        h.parse_manifests("a: [1, 2\nb: c")
    with pytest.raises(ClusterError, match="not a mapping"):
        h.parse_manifests("- just\n- a list\n")


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            'Error: parse error at (broken/templates/configmap.yaml:5): function "data" not '
            "defined\n\nUse --debug flag to render out invalid YAML\n",
            'parse error at (broken/templates/configmap.yaml:5): function "data" not defined',
        ),
        (
            "WARNING: Kubernetes configuration file is group-readable. This is insecure.\n"
            "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n",
            "UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
        ),
        ("level=WARN msg=something\nsomething odd happened\n", "something odd happened"),
        ("", ""),
    ],
)
def test_first_error_line(stderr: str, expected: str) -> None:
    assert h.first_error_line(stderr) == expected


SCHEMA_STDERR = (
    "WARNING: Kubernetes configuration file is group-readable. This is insecure.\n"
    "Error: values don't meet the specifications of the schema(s) in the following chart(s):\n"
    "strict:\n"
    "- at '/replicas': got string, want integer\n"
    "- at '': additional properties 'logs' not allowed\n"
    "\n"
    "Use --debug flag to render out invalid YAML\n"
)


def test_error_text_keeps_every_line_after_the_error_line() -> None:
    # The reason helm gives for a schema failure is on the lines after "Error:"; the
    # warning before it and the --debug hint after it explain nothing.
    assert h.error_text(SCHEMA_STDERR) == (
        "values don't meet the specifications of the schema(s) in the following chart(s):\n"
        "strict:\n"
        "- at '/replicas': got string, want integer\n"
        "- at '': additional properties 'logs' not allowed"
    )


@pytest.mark.parametrize(
    "stderr",
    [
        'Error: parse error at (broken/templates/configmap.yaml:5): function "data" not '
        "defined\n\nUse --debug flag to render out invalid YAML\n",
        "level=WARN msg=something\nsomething odd happened\n",
        "",
    ],
)
def test_error_text_of_a_one_line_error_is_that_line(stderr: str) -> None:
    assert h.error_text(stderr) == h.first_error_line(stderr)


def test_a_printed_chart_that_calls_lookup_is_known(tmp_path) -> None:
    import base64
    import tarfile

    from sbkube.cluster.helm import chart_uses_lookup, templates_use_lookup

    def tpl(text: str) -> dict[str, str]:
        return {"name": "templates/x.yaml", "data": base64.b64encode(text.encode()).decode()}

    looks = '{{ $s := lookup "v1" "Secret" .Release.Namespace "db" }}'
    assert templates_use_lookup([tpl("kind: ConfigMap"), tpl(looks)])
    assert not templates_use_lookup([tpl("kind: ConfigMap # lookups"), {"data": "%%"}])
    assert not templates_use_lookup(None)
    (tmp_path / "templates").mkdir()
    (tmp_path / "values.yaml").write_text("lookup: not a template\n")
    (tmp_path / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    assert not chart_uses_lookup(tmp_path)
    (tmp_path / "charts" / "sub" / "templates").mkdir(parents=True)
    (tmp_path / "charts" / "sub" / "templates" / "s.yaml").write_text(looks)
    assert chart_uses_lookup(tmp_path)
    assert not chart_uses_lookup(tmp_path / "missing")
    package = tmp_path / "c-1.0.0.tgz"
    with tarfile.open(package, "w:gz") as archive:
        archive.add(tmp_path / "charts" / "sub", arcname="sub")
    assert chart_uses_lookup(package)
    package.write_bytes(b"not a tar")
    assert not chart_uses_lookup(package)
