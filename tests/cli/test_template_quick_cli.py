"""``sbkube template`` of a plain app dir of Helm apps takes the plan of
``sbkube.config.quick`` (no config models); its output is the full path's, byte for byte.

``--app`` naming every enabled app goes the full path (``load_config``, ``prepare_apps``)
and must print the same stream, JSON and files; a config the plan does not vouch for, or
a chart that fails to render, gets the full path's own error line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "tests" / "fixtures" / "apps" / "quick-helm"
EVERY_APP = ("--app", "back", "--app", "front")  # the enabled apps: the full path


def test_the_plain_path_prints_what_the_full_path_prints(sbkube: Any, tmp_path: Path) -> None:
    app_dir = Path(shutil.copytree(QUICK, tmp_path / "quick"))
    quick = sbkube("template", "--app-dir", str(app_dir))
    full = sbkube("template", "--app-dir", str(app_dir), *EVERY_APP)
    assert quick.returncode == full.returncode == 0, quick.stderr + full.stderr
    assert quick.stdout == full.stdout
    docs = [d for d in yaml.safe_load_all(quick.stdout) if d]
    assert [(d["kind"], d["metadata"].get("namespace")) for d in docs] == [
        *[("Secret", "quick-back"), ("ConfigMap", "quick-back"), ("ClusterRole", None)],
        ("ServiceAccount", "quick-back"),
        *[("Secret", "quick"), ("ConfigMap", "quick"), ("ClusterRole", None)],
        ("ServiceAccount", "quick"),
    ]
    assert "# sbkube app: back (helm, namespace quick-back)" in quick.stdout
    front = next(d for d in docs if d["metadata"]["name"] == "front-settings")["data"]
    assert front == {"greeting": "hi from front", "replicas": "2"}  # values files, then set

    for extra in (["--concurrency", "1"], ["-n", "elsewhere"], ["-o", "json"]):
        quick = sbkube("template", "--app-dir", str(app_dir), *extra)
        full = sbkube("template", "--app-dir", str(app_dir), *EVERY_APP, *extra)
        assert quick.returncode == full.returncode == 0, quick.stderr + full.stderr
        assert quick.stdout == full.stdout, extra
    assert len(json.loads(quick.stdout)) == 8

    for fmt in ("yaml", "json"):
        out_quick, out_full = tmp_path / f"quick-{fmt}", tmp_path / f"full-{fmt}"
        quick = sbkube("template", "--app-dir", str(app_dir), "-o", fmt, "--output-dir", out_quick)
        full = sbkube(
            "template", "--app-dir", str(app_dir), *EVERY_APP, "-o", fmt, "--output-dir", out_full
        )
        assert quick.returncode == full.returncode == 0, quick.stderr + full.stderr
        assert quick.stderr.replace(str(out_quick), "OUT") == full.stderr.replace(
            str(out_full), "OUT"
        )
        for written in out_quick.iterdir():
            again = out_full / written.name
            assert written.read_bytes() == again.read_bytes(), written.name
            assert written.stat().st_mode == again.stat().st_mode, written.name


def test_the_plain_path_builds_no_config_model(tmp_path: Path) -> None:
    """Nor imports the engine, the cluster adapter or redaction (it learns nothing: it
    shows only what it rendered, and a failure goes the full path)."""
    code = (
        "import sys\nfrom sbkube.cli.root import cli\n"
        "try:\n    cli.main(['template', '--app-dir', sys.argv[1]], standalone_mode=False)\n"
        "finally:\n"
        "    heavy = ('pydantic', 'sbkube.config.schema', 'sbkube.engine', 'sbkube.cluster.kube',\n"
        "             'sbkube.redaction')\n"
        "    print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(QUICK)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert "# sbkube app: front (helm, namespace quick)" in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_errors_are_the_full_paths_own(sbkube: Any, tmp_path: Path) -> None:
    app_dir = Path(shutil.copytree(QUICK, tmp_path / "quick"))
    config = app_dir / "config.yaml"
    text = config.read_text()
    # A release name the loader refuses: the plan does not vouch, the loader says why.
    config.write_text(
        text.replace("release_name: backend\n    namespace: quick-back", "release_name: front")
    )
    clash = sbkube("template", "--app-dir", str(app_dir))
    assert clash.returncode == 2
    assert (
        "apps.back.release_name: release 'front' in namespace 'quick' is also used" in clash.stderr
    )
    assert (
        clash.stderr.strip()
        == sbkube("template", "--app-dir", str(app_dir), *EVERY_APP).stderr.strip()
    )
    # A chart that fails to render: the plan renders, helm fails, the full path reports.
    config.write_text(text)
    (app_dir / "charts" / "site" / "templates" / "broken.yaml").write_text('{{ fail "no" }}\n')
    broken = sbkube("template", "--app-dir", str(app_dir))
    assert broken.returncode == 2
    assert "apps.back.chart: chart './charts/site' failed to render" in broken.stderr
    assert broken.stderr == sbkube("template", "--app-dir", str(app_dir), *EVERY_APP).stderr
