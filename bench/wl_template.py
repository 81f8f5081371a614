"""W9: ``sbkube template`` of an app dir of 10 charts against the shell loop a user would
write (``for c in ...; do helm template ...; done``), and W9b: of one chart of 50+ documents
against ``helm template`` of the same chart and values; each as a whole process (wall time).

The chart is ``tests/fixtures/charts/many-kinds`` (58 documents of 16 kinds, shaped like
cert-manager's: a CRD, RBAC, Deployments, webhooks, a Job...), with a values file on top of
its defaults. sbkube runs ``helm template`` itself, so the ratio is what sbkube adds to
helm: Python's start-up, imports, loading config.yaml, and parsing and writing the YAML.
"""

from __future__ import annotations

import os
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import Result
from wl_cli import _sbkube_argv, run_once

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "tests" / "fixtures" / "charts" / "many-kinds"
RELEASE = "cert-manager"
NAMESPACE = "certs"
VALUES = """\
components:
  controller:
    replicas: 3
config:
  numberOfConcurrentWorkers: 100
"""


def _app_dir(tmp: Path) -> tuple[Path, Path]:
    app = tmp / "w9-app"
    (app / "values").mkdir(parents=True, exist_ok=True)
    values = app / "values" / "w9.yaml"
    values.write_text(VALUES, encoding="utf-8")
    (app / "config.yaml").write_text(
        f"namespace: {NAMESPACE}\n"
        "apps:\n"
        f"  {RELEASE}:\n"
        "    type: helm\n"
        f"    chart: {CHART}\n"
        "    values: [values/w9.yaml]\n",
        encoding="utf-8",
    )
    return app, values


def _objects(argv: list[str], env: dict[str, str]) -> list[tuple[str, str]]:
    import yaml

    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    docs = [d for d in yaml.load_all(out, Loader=yaml.CSafeLoader) if d]
    return sorted((d["kind"], d["metadata"]["name"]) for d in docs)


CHARTS = 10


def _many_app_dir(tmp: Path) -> tuple[Path, list[tuple[str, Path]]]:
    """W9: an app dir of ``CHARTS`` Helm apps, each its own copy of the chart (as an app
    dir of vendored charts has), all with the W9 values file; and the (release, chart)
    pairs a shell loop would render."""
    app = tmp / "w9-many"
    (app / "values").mkdir(parents=True, exist_ok=True)
    (app / "values" / "w9.yaml").write_text(VALUES, encoding="utf-8")
    lines = [f"namespace: {NAMESPACE}", "apps:"]
    pairs = []
    for i in range(CHARTS):
        chart = app / "charts" / f"chart-{i:02d}"
        if not chart.exists():
            shutil.copytree(CHART, chart)
        release = f"{RELEASE}-{i:02d}"
        lines += [
            f"  {release}:",
            "    type: helm",
            f"    chart: ./charts/chart-{i:02d}",
            "    values: [values/w9.yaml]",
        ]
        pairs.append((release, chart))
    (app / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return app, pairs


def _shell_loop(helm: str, pairs: list[tuple[str, Path]], values: Path) -> list[str]:
    """``for`` loop a user would write instead: one ``helm template`` after another."""
    body = "; ".join(
        f"{shlex.quote(helm)} template {release} {shlex.quote(str(chart))} --include-crds "
        f"-n {NAMESPACE} -f {shlex.quote(str(values))}"
        for release, chart in pairs
    )
    return ["sh", "-c", body]


def w9_template(ctx: Any) -> list[Result]:
    helm = os.environ.get("SBKUBE_HELM") or shutil.which("helm")
    if not helm:
        raise RuntimeError("W9 needs helm (SBKUBE_HELM or on PATH)")
    app, values = _app_dir(ctx.tmp)
    many, pairs = _many_app_dir(ctx.tmp)
    # .pyc files written (by the warm-up run) and used, as an installed sbkube has them:
    # without, every run compiles what changed since they were last written.
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME", "SBKUBE_MEMORY_CLUSTER"):
        env.pop(name, None)
    commands = {
        "sbkube": [*_sbkube_argv(), "template", "--app-dir", str(app)],
        "helm": [
            helm,
            *("template", RELEASE, str(CHART), "--include-crds"),
            *("-n", NAMESPACE, "-f", str(values)),
        ],
        "sbkube-many": [*_sbkube_argv(), "template", "--app-dir", str(many)],
        "helm-loop": _shell_loop(helm, pairs, many / "values" / "w9.yaml"),
        "python": [sys.executable, "-c", "pass"],
    }
    # Same objects on both sides, and really a chart of 50+ documents.
    sb_objects = _objects(commands["sbkube"], env)
    if sb_objects != _objects(commands["helm"], env) or len(sb_objects) < 50:
        raise RuntimeError(f"W9: sbkube and helm render different objects ({len(sb_objects)})")
    many_objects = _objects(commands["sbkube-many"], env)
    if many_objects != _objects(commands["helm-loop"], env):
        raise RuntimeError("W9: sbkube and the helm loop render different objects")
    for argv in commands.values():  # warm the page cache and .pyc files
        run_once(argv, env)
    inner = 3 if ctx.quick else 5
    wall: dict[str, list[float]] = {k: [] for k in commands}
    for rnd in range(ctx.rounds):
        names = list(commands) if rnd % 2 == 0 else list(commands)[::-1]
        for name in names:
            for _ in range(inner if name in ("sbkube", "helm", "python") else 1):
                wall[name].append(run_once(commands[name], env))
    python_ms = statistics.median(wall["python"])
    ctx.extra["w9_python_start_ms"] = python_ms
    ctx.notes.append(
        f"W9: {len(sb_objects)} documents per chart, {len(many_objects)} for {CHARTS} charts; "
        f"`python -c pass` (the interpreter's start-up alone) is {python_ms:.0f} ms"
    )
    return [
        Result(
            f"W9 `sbkube template` of {CHARTS} charts vs serial `helm template` loop",
            "ms",
            wall["sbkube-many"],
            wall["helm-loop"],
            target="ratio <= 1.1",
            check="ratio",
            limit=1.1,
        ),
        Result(
            f"W9b `sbkube template` of one chart ({len(sb_objects)} docs) vs `helm template`",
            "ms",
            wall["sbkube"],
            wall["helm"],
            target="ratio <= 2.5",
            check="ratio",
            limit=2.5,
        ),
    ]
