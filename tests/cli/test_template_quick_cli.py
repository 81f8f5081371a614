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

import pytest
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


_SPAWNS = (
    "import subprocess, sys\n"
    "seen = []\n"
    "class Popen(subprocess.Popen):\n"
    "    def __init__(self, argv, *a, **k):\n"
    "        heavy = ('yaml', 'click', 'typing', 'dataclasses', 'sbkube.cluster.helm')\n"
    "        seen.append((argv[2], sorted(m for m in heavy if m in sys.modules)))\n"
    "        super().__init__(argv, *a, **k)\n"
    "subprocess.Popen = Popen\n"
    "from sbkube.cli.entry import main\n"
    "code = main(['template', '--app-dir', sys.argv[1]])\n"
    "print(code, seen, file=sys.stderr)\n"
)


def _quick_and_full(app_dir: Path) -> tuple[str, str, str]:
    """(stderr of the quick path under _SPAWNS, its stdout, the full path's stdout)."""
    out = subprocess.run(
        [sys.executable, "-c", _SPAWNS, str(app_dir)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    full = subprocess.run(
        [sys.executable, "-m", "sbkube", "template", "--app-dir", str(app_dir), *EVERY_APP],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert full.returncode == 0, full.stderr
    return out.stderr.strip(), out.stdout, full.stdout


def test_the_console_script_starts_helm_before_the_heavy_imports(tmp_path: Path) -> None:
    """``sbkube template --app-dir DIR`` (``sbkube.cli.entry``): helm is started before
    YAML, click, the helm client, typing or dataclasses are imported (the charts guessed
    from config.yaml's lines, their values sent once the plan is made), and the process
    prints what the click command prints."""
    said, quick, full = _quick_and_full(Path(shutil.copytree(QUICK, tmp_path / "quick")))
    # Both charts (the default concurrency is 4) started with none of them loaded.
    assert said == "0 [('front', []), ('backend', [])]"
    assert quick == full


def test_a_wrong_guess_is_dropped_for_the_plans_own_render(tmp_path: Path) -> None:
    app_dir = Path(shutil.copytree(QUICK, tmp_path / "quick"))
    config = app_dir / "config.yaml"
    # A value on its own line: the line-by-line guess takes the app's name for the release.
    config.write_text(
        config.read_text().replace("release_name: backend", "release_name:\n      backend")
    )
    said, quick, full = _quick_and_full(app_dir)
    assert said.startswith("0 [('front', []), ('back', []), ('backend', [")
    assert quick == full
    assert "name: backend-settings" in quick


def test_the_guess_reads_only_plain_words() -> None:
    from sbkube.cli.entry import predict_renders

    assert predict_renders(str(QUICK), None) == [
        ("front", str(QUICK / "charts" / "site"), "quick", "0.3.0"),
        ("backend", str(QUICK / "charts" / "site"), "quick-back", None),
    ]
    assert predict_renders(str(QUICK), "missing.yaml") == []


@pytest.mark.parametrize(
    "field",
    [
        "release_name: --post-renderer=/bin/true",
        "namespace: '-x'",
        "version: --devel",
        "release_name: a b",
        "enabled: false",
        "chart: charts/site",
    ],
)
def test_nothing_helm_could_take_for_a_flag_is_guessed(tmp_path: Path, field: str) -> None:
    from sbkube.cli.entry import predict_renders

    (tmp_path / "config.yaml").write_text(
        f"namespace: n\napps:\n  a:\n    type: helm\n    chart: ./c\n    {field}\n"
    )
    assert predict_renders(str(tmp_path), None) == []


def test_only_the_plain_command_line_takes_the_quick_path(sbkube: Any, tmp_path: Path) -> None:
    from sbkube.cli.entry import _quick_options

    assert _quick_options([]) == {}
    assert _quick_options(["--app-dir", "a", "--config-file=c.yaml"]) == {
        "--app-dir": "a",
        "--config-file": "c.yaml",
    }
    for refused in (
        ["--app-dir"],  # no value
        ["--app-dir", "a", "--app-dir", "b"],  # twice
        ["--app-dir", "--help"],  # a value click would take as an option here
        ["--app-dir="],
        ["--app-dir", "a", "-v"],
        ["-o", "json"],
        ["--app-dir", "a", "extra"],
    ):
        assert _quick_options(refused) is None, refused

    app_dir = Path(shutil.copytree(QUICK, tmp_path / "quick"))
    (app_dir / "other.yaml").write_text((app_dir / "config.yaml").read_text())
    full = sbkube("template", "--app-dir", str(app_dir), *EVERY_APP)
    assert full.returncode == 0, full.stderr
    for args in (
        [f"--app-dir={app_dir}"],
        ["--config-file", "other.yaml", "--app-dir", str(app_dir)],
    ):
        quick = sbkube("template", *args)
        assert quick.returncode == 0, quick.stderr
        assert quick.stdout == full.stdout, args
    # -v goes the full path, which shows the helm commands it runs.
    verbose = sbkube("template", "--app-dir", str(app_dir), "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout == full.stdout
    assert "helm template" in verbose.stderr
    # A file given as the app dir: click's own usage error, not the quick path's.
    not_dir = sbkube("template", "--app-dir", str(app_dir / "config.yaml"))
    assert not_dir.returncode == 2
    assert "is a file" in not_dir.stderr


def test_a_chart_whose_dependencies_are_missing_is_left_to_the_helm_client(
    tmp_path: Path,
) -> None:
    from sbkube.cluster.launch import missing_dependencies, start_template

    chart = Path(shutil.copytree(QUICK / "charts" / "site", tmp_path / "site"))
    with (chart / "Chart.yaml").open("a") as meta:
        meta.write("dependencies:\n  - name: common\n    version: 1.0.0\n")
    assert missing_dependencies(chart) == ["common"]
    kw = {"release_name": "r", "namespace": "n", "version": None, "values": {}}
    assert start_template(chart=str(chart), **kw) is None  # type: ignore[arg-type]
    assert start_template(chart=str(tmp_path / "nowhere"), **kw) is None  # type: ignore[arg-type]
