"""W7 and W10: whole deploys through the CLI against sbkube's local API server.

Every round starts an in-process ``ApiServer`` with its latency setting at 10 ms per request
(a remote cluster's round trip), a fresh (migrated) SQLite store and a kubeconfig, then runs
the real ``sbkube deploy`` process, which drives the real helm and kubectl against it.

* **W7**: an app dir of 16 independent Helm apps (a local chart of a ConfigMap, a Service
  and a Deployment, ``wait: true``) and 16 YAML apps of 20 ConfigMaps each, deployed with
  ``--concurrency 4`` against ``--concurrency 1`` (each on its own fresh server and store).
  Target: ratio <= 0.4. The peak memory of the ``--concurrency 4`` deploy is reported:
  sbkube's own high-water mark (``VmHWM``) and the largest sum of the resident sizes of
  sbkube and its helm/kubectl children seen at one time (sampled every 20 ms).
* **W10**: the same deploy run again, unchanged, against the first deploy (at
  ``--concurrency 4``). Target: ratio <= 0.25, and no new Helm revision (``helm list``).
* **W10b**: then one ConfigMap of one YAML app edited and deployed, against the first
  deploy. Target: ratio <= 0.35.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from data import migrated_sqlite
from harness import Result
from wl_cli import _sbkube_argv

from sbkube.apiserver import ApiServer

HELM_APPS = 16
YAML_APPS = 16
YAML_OBJECTS = 20
LATENCY_MS = 10.0

_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: bench\nversion: 0.1.0\nappVersion: '1.0'\n",
    "values.yaml": "replicaCount: 1\nimage: nginx:1.27\n",
    "templates/configmap.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  replicas: {{ .Values.replicaCount | quote }}
""",
    "templates/service.yaml": """apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app: {{ .Release.Name }}
  ports:
    - port: 80
""",
    "templates/deployment.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
        - name: web
          image: {{ .Values.image }}
""",
}


def make_app_dir(
    root: Path, helm_apps: int = HELM_APPS, yaml_apps: int = YAML_APPS, name: str = "w7-apps"
) -> Path:
    """The W7 app dir: 16 Helm apps of a local chart and 16 YAML apps of 20 ConfigMaps
    (W11: other counts of the same apps)."""
    app_dir = root / name
    for rel, text in _CHART.items():
        path = app_dir / "charts" / "bench" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    lines = ["namespace: bench", "apps:"]
    for i in range(helm_apps):
        lines += [
            f"  chart-{i:02d}:",
            "    type: helm",
            "    chart: ./charts/bench",
            "    wait: true",
        ]
    (app_dir / "manifests").mkdir(parents=True, exist_ok=True)
    for i in range(yaml_apps):
        docs = [
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"cm-{i:02d}-{j:02d}"},
                    "data": {"index": str(j), "payload": "x" * 200},
                }
            )
            for j in range(YAML_OBJECTS)
        ]
        (app_dir / "manifests" / f"app-{i:02d}.yaml").write_text(
            "\n---\n".join(docs) + "\n", encoding="utf-8"
        )
        lines += [
            f"  objects-{i:02d}:",
            "    type: yaml",
            f"    manifests: [manifests/app-{i:02d}.yaml]",
        ]
    (app_dir / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return app_dir


class Target:
    """One fresh local API server (10 ms per request), store and kubeconfig."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.server = ApiServer(latency_ms=LATENCY_MS).start()
        self.kubeconfig = self.dir / "kubeconfig"
        self.server.write_kubeconfig(self.kubeconfig)
        # Migrated beforehand, as any store in use is: the deploys time deploying.
        self.store = migrated_sqlite(self.dir / "state.db")

    def env(self) -> dict[str, str]:
        env = dict(os.environ, SBKUBE_STATE_URL=str(self.store))
        # sbkube runs from its .pyc files (compiled_sbkube), as an installed sbkube does:
        # without them every deploy compiled the modules the tree had none for.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("SBKUBE_MEMORY_LATENCY_MS", None)
        return env

    def close(self) -> None:
        self.server.stop()


def compiled_sbkube() -> None:
    """Compile sbkube's modules to .pyc files (where Python reads them: ``__pycache__``,
    or ``$PYTHONPYCACHEPREFIX``) before any deploy is timed, as pip does when it installs
    a package."""
    import compileall

    import sbkube

    compileall.compile_dir(Path(sbkube.__file__).parent, quiet=1)


def _rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB; zeros when it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1:
            parents[int(entry)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def run_deploy(
    target: Target, app_dir: Path, concurrency: int, *, sample: bool = False
) -> tuple[float, dict[str, float]]:
    """Wall time (ms) of one ``sbkube deploy``; with ``sample``, its peak memory (MB)."""
    args = ["deploy", "--app-dir", str(app_dir), "--concurrency", str(concurrency)]
    return run_sbkube(target, args, sample=sample)


def run_sbkube(
    target: Target, args: list[str], *, sample: bool = False, interval: float = 0.02
) -> tuple[float, dict[str, float]]:
    """Wall time (ms) of one ``sbkube ARGS --kubeconfig …`` against ``target``; with
    ``sample``, its peak memory (MB): its own high-water mark and the largest sum of the
    resident sizes of it and its helm/kubectl children, seen every ``interval`` s."""
    argv = [*_sbkube_argv(), *args, "--kubeconfig", str(target.kubeconfig)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=target.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peak_tree = own_hwm = 0
    if sample:
        while proc.poll() is None:
            rss, hwm = _rss_kb(proc.pid)
            own_hwm = max(own_hwm, hwm)
            tree = rss + sum(_rss_kb(child)[0] for child in _descendants(proc.pid))
            peak_tree = max(peak_tree, tree)
            time.sleep(interval)
    _out, err = proc.communicate()
    wall = (time.perf_counter() - start) * 1000.0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err[-800:]!r}")
    return wall, {"sbkube_hwm_mb": own_hwm / 1024.0, "tree_peak_mb": peak_tree / 1024.0}


def change_one(app_dir: Path) -> None:
    """Edit one ConfigMap of the first YAML app, as a one-line change in a pull request."""
    path = app_dir / "manifests" / "app-00.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"index": "0"', '"index": "zero"', 1), encoding="utf-8")


def helm_revisions(target: Target, expected: int = HELM_APPS) -> int:
    """The sum of the current revisions of every release on the target's server."""
    helm = os.environ.get("SBKUBE_HELM") or "helm"
    out = subprocess.run(
        [helm, "list", "--all-namespaces", "--output", "json"],
        env={**target.env(), "KUBECONFIG": str(target.kubeconfig)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    releases: list[dict[str, Any]] = json.loads(out or "[]")
    if len(releases) != expected:
        raise RuntimeError(f"helm list shows {len(releases)} releases, expected {expected}")
    return sum(int(r["revision"]) for r in releases)


def w7_w10_deploys(ctx: Any) -> list[Result]:
    compiled_sbkube()
    app_dir = make_app_dir(ctx.tmp)
    rounds = max(2, ctx.rounds - 2) if ctx.quick else ctx.rounds
    serial: list[float] = []
    parallel: list[float] = []
    again: list[float] = []
    one_changed: list[float] = []
    tree_mb: list[float] = []
    own_mb: list[float] = []
    new_revisions = 0
    for rnd in range(rounds):
        order = (1, 4) if rnd % 2 == 0 else (4, 1)
        for concurrency in order:
            target = Target(ctx.tmp, f"w7-r{rnd}-c{concurrency}")
            try:
                wall, memory = run_deploy(target, app_dir, concurrency, sample=concurrency == 4)
                if concurrency == 1:
                    serial.append(wall)
                    continue
                parallel.append(wall)
                tree_mb.append(memory["tree_peak_mb"])
                own_mb.append(memory["sbkube_hwm_mb"])
                before = helm_revisions(target)
                wall_again, _ = run_deploy(target, app_dir, 4)
                again.append(wall_again)
                new_revisions += helm_revisions(target) - before
                change_one(app_dir)
                wall_one, _ = run_deploy(target, app_dir, 4)
                one_changed.append(wall_one)
            finally:
                target.close()
                make_app_dir(ctx.tmp)  # the next round starts from the unchanged files
    ctx.notes.append(
        f"W10: new Helm revisions made by the unchanged redeploys: {new_revisions} "
        f"(over {rounds} rounds of {HELM_APPS} releases)"
    )
    apps = f"{HELM_APPS} Helm + {YAML_APPS}x{YAML_OBJECTS}-object YAML apps"
    label = f"{apps}, {LATENCY_MS:g} ms/request"
    unchanged = Result(
        "W10 unchanged redeploy vs first deploy (0 new revisions)",
        "ms",
        again,
        parallel,
        target="ratio <= 0.25, 0 revisions",
        check="ratio",
        limit=0.25,
    )
    if new_revisions:
        # A redeploy that upgraded a release misses W10 whatever its time.
        unchanged.limit = -1.0
        unchanged.notes.append(f"{new_revisions} new revisions")
    return [
        Result(
            f"W7 deploy --concurrency 4 vs 1 ({label})",
            "ms",
            parallel,
            serial,
            target="ratio <= 0.4",
            check="ratio",
            limit=0.4,
        ),
        Result("W7 peak RSS, sbkube + helm/kubectl children (--concurrency 4)", "MB", tree_mb),
        Result("W7 peak RSS, sbkube process alone (--concurrency 4)", "MB", own_mb),
        unchanged,
        Result(
            f"W10b one app of {HELM_APPS + YAML_APPS} changed vs first deploy",
            "ms",
            one_changed,
            parallel,
            target="ratio <= 0.35",
            check="ratio",
            limit=0.35,
        ),
    ]


if __name__ == "__main__":  # pragma: no cover - run through bench/run.py
    sys.exit("run: python bench/run.py --only W7")
