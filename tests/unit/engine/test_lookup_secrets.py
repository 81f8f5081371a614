"""A password a chart copies from a live Secret through ``lookup`` is hidden in the record
(issue 22): ``helm template`` reads nothing live, so the value is only in what Helm
installed. A packaged chart, deployed twice (the second time unchanged), each time as a
new process would (nothing learned before)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from test_keyed_checksums import _rows

from sbkube import redaction
from sbkube.engine import deploy

pytestmark = pytest.mark.helm

PASSWORD = "Lk9-looked-up-Q7zT"
TEMPLATE = """\
{{- $creds := lookup "v1" "Secret" .Release.Namespace "db-creds" }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: copy
data:
  copied: {{ dig "data" "password" "" $creds | b64dec | quote }}
"""


def test_a_looked_up_password_is_hidden_in_every_recording(
    db, db_url, cluster, helm_binary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = tmp_path / "src" / "copier"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: copier\nversion: 1.0.0\n")
    (chart / "templates" / "cm.yaml").write_text(TEMPLATE)
    app = tmp_path / "app"
    app.mkdir()
    subprocess.run(
        [helm_binary, "package", str(chart), "-d", str(app)], check=True, capture_output=True
    )
    (app / "config.yaml").write_text(
        "namespace: lk\napps:\n  copier: {type: helm, chart: ./copier-1.0.0.tgz}\n"
    )
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lk"}})
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-creds", "namespace": "lk"},
            "stringData": {"password": PASSWORD},
        }
    )
    actions = []
    for _ in range(2):
        monkeypatch.setattr(redaction, "_SEEN", {})  # a new process knows nothing
        result = deploy(app, cluster=cluster, db=db)
        assert result.ok, result
        actions.append(str(result.app("copier").release.action))
    assert actions == ["install", "unchanged"]

    live = cluster.get(("v1", "ConfigMap", "lk", "copy"))
    assert live is not None and live["data"]["copied"] == PASSWORD  # the chart did copy it
    rows = _rows(db_url)
    assert PASSWORD not in rows
    assert base64.b64encode(PASSWORD.encode()).decode() not in rows
