"""W9: ``sbkube template`` of a chart of 50+ documents against ``helm template`` of the same
chart and values, each as a whole process (wall time).

The chart is ``tests/fixtures/charts/many-kinds`` (58 documents of 16 kinds, shaped like
cert-manager's: a CRD, RBAC, Deployments, webhooks, a Job...), with a values file on top of
its defaults. sbkube runs ``helm template`` itself, so the ratio is what sbkube adds to
helm: Python's start-up, imports, loading config.yaml, and parsing and writing the YAML.
"""

from __future__ import annotations

import os
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


def w9_template(ctx: Any) -> list[Result]:
    helm = os.environ.get("SBKUBE_HELM") or shutil.which("helm")
    if not helm:
        raise RuntimeError("W9 needs helm (SBKUBE_HELM or on PATH)")
    app, values = _app_dir(ctx.tmp)
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
        "python": [sys.executable, "-c", "pass"],
    }
    # Same objects on both sides, and really a chart of 50+ documents.
    sb_objects = _objects(commands["sbkube"], env)
    if sb_objects != _objects(commands["helm"], env) or len(sb_objects) < 50:
        raise RuntimeError(f"W9: sbkube and helm render different objects ({len(sb_objects)})")
    for argv in commands.values():  # warm the page cache and .pyc files
        run_once(argv, env)
    inner = 3 if ctx.quick else 5
    wall: dict[str, list[float]] = {k: [] for k in commands}
    for rnd in range(ctx.rounds):
        names = list(commands) if rnd % 2 == 0 else list(commands)[::-1]
        for _ in range(inner):
            for name in names:
                wall[name].append(run_once(commands[name], env))
    python_ms = statistics.median(wall["python"])
    ctx.extra["w9_python_start_ms"] = python_ms
    ctx.notes.append(
        f"W9: {len(sb_objects)} documents; of sbkube's time, `python -c pass` (the "
        f"interpreter's start-up alone) is {python_ms:.0f} ms"
    )
    return [
        Result(
            f"W9 `sbkube template` ({len(sb_objects)} docs) vs `helm template`",
            "ms",
            wall["sbkube"],
            wall["helm"],
            target="ratio <= 1.3",
            check="ratio",
            limit=1.3,
        )
    ]
