"""The digest of a local chart's files (``sbkube.config.charts``)."""

from __future__ import annotations

import os
from pathlib import Path

from sbkube.config.charts import chart_digest


def make_chart(root: Path) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (root / "values.yaml").write_text("a: 1\n")
    (root / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    return root


def test_same_files_same_digest_wherever_they_are(tmp_path: Path) -> None:
    one = chart_digest(make_chart(tmp_path / "one"))
    assert one is not None and one.startswith("hmac-checksum:") and len(one) == 78
    assert chart_digest(make_chart(tmp_path / "two")) == one


def test_a_changed_added_or_renamed_file_changes_it(tmp_path: Path) -> None:
    chart = make_chart(tmp_path / "c")
    before = chart_digest(chart)
    (chart / "templates" / "cm.yaml").write_text("kind: Secret\n")
    changed = chart_digest(chart)
    assert changed != before
    (chart / "templates" / "extra.yaml").write_text("")
    added = chart_digest(chart)
    assert added not in (before, changed)
    (chart / "templates" / "extra.yaml").rename(chart / "templates" / "other.yaml")
    assert chart_digest(chart) not in (before, changed, added)


def test_a_packaged_chart_is_digested_by_its_bytes(tmp_path: Path) -> None:
    package = tmp_path / "c-0.1.0.tgz"
    package.write_bytes(b"not really gzip")
    digest = chart_digest(package)
    package.write_bytes(b"not really gzip either")
    assert chart_digest(package) not in (None, digest)


def test_a_symlink_loop_ends_and_a_missing_chart_has_none(tmp_path: Path) -> None:
    chart = make_chart(tmp_path / "c")
    os.symlink(chart, chart / "templates" / "loop")
    assert chart_digest(chart) is not None
    assert chart_digest(tmp_path / "missing") is None
