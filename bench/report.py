"""``sbkube state report`` on 1,000 deployments: write time and file size (issue 16).

    python bench/report.py                      # 1,000 deployments, 3 rounds
    python bench/report.py --size 200 --rounds 5
    python bench/report.py --distinct           # no manifest ever recurs

The history is written through ``DeploymentRepository`` (the real write path, redaction
included) in the shape of the README walkthrough: a Helm app with four resources (its
Secret among them) and a YAML app with three, ``replicaCount`` and the web image changing
from one deployment to the next, a Service pruned and recreated now and then, and every
twentieth deployment a rollback. The changing settings cycle, as a history that goes back
and forth does; ``--distinct`` makes every changed value new instead, the worst case for
the report's cache of YAML text. Targets: write the report in under 3 s, under 5 MB.
Prints one line per round and the medians (wall clock, and the process's CPU time, which
says what a busy shared machine adds); exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbkube.report import Scope, write_report
from sbkube.state import DeploymentDatabase, DeploymentRepository, ResourceInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET_SECONDS = 3.0
TARGET_BYTES = 5 * 1024 * 1024

Cycle = Callable[[int], int]


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": "demo", "labels": {"app.kubernetes.io/instance": name}}


def _redis(i: int, v: Cycle) -> list[dict[str, Any]]:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta("redis"),
        "spec": {
            "replicas": 1 + v(3),
            "selector": {"matchLabels": {"app.kubernetes.io/instance": "redis"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/instance": "redis"}},
                "spec": {
                    "containers": [
                        {
                            "name": "redis",
                            "image": "redis:7.2-alpine",
                            "ports": [{"containerPort": 6379}],
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                        }
                    ]
                },
            },
        },
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta("redis-auth"),
            "data": {"password": f"cHct{v(5)}"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("redis-config"),
            "data": {"redis.conf": f"maxmemory {64 + v(4)}mb\nappendonly no\n"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("redis"),
            "spec": {"ports": [{"port": 6379}]},
        },
        deployment,
    ]


def _web(i: int, v: Cycle) -> list[dict[str, Any]]:
    out = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("web-config"),
            "data": {"GREETING": "hello"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("web"),
            "spec": {
                "replicas": 2,
                "template": {
                    "spec": {
                        "containers": [{"name": "web", "image": f"nginx:1.{27 + v(2)}-alpine"}]
                    }
                },
            },
        },
    ]
    if i % 7:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta("web"),
                "spec": {"ports": [{"port": 80}]},
            }
        )
    return out


def seed(repo: DeploymentRepository, size: int, *, distinct: bool = False) -> None:
    last_deploy: str | None = None
    for i in range(size):

        def v(n: int, i: int = i) -> int:
            # The changing settings cycle (a history comes back to what it was) or, with
            # distinct, never repeat: then no manifest recurs and each is dumped once.
            return i if distinct else i % n

        rollback = i % 20 == 19 and last_deploy is not None
        config = {
            "namespace": "demo",
            "apps": {
                "redis": {
                    "type": "helm",
                    "chart": "./charts/redis",
                    "set": {"replicaCount": 1 + v(3)},
                },
                "web": {
                    "type": "yaml",
                    "manifests": ["manifests/web.yaml"] + (["manifests/svc.yaml"] if i % 7 else []),
                },
            },
        }
        dep = repo.create_deployment(
            cluster="k3s",
            namespace="demo",
            command="rollback" if rollback else "deploy",
            command_args=["--app-dir", "demo", f"--set=auth.password=pw-{i}"],
            config_snapshot=config,
            started_at=T0 + timedelta(minutes=10 * i),
            rollback_target_id=last_deploy if rollback else None,
        )
        for name, kind, manifests in (("redis", "helm", _redis(i, v)), ("web", "yaml", _web(i, v))):
            app = repo.start_app(dep.deployment_id, name=name, type=kind, namespace="demo")
            repo.add_resources(
                app.app_id,
                [ResourceInput.from_manifest(m, "update" if i else "create") for m in manifests],
            )
            if kind == "helm":
                repo.add_helm_release(
                    app.app_id,
                    release_name="redis",
                    namespace="demo",
                    chart="redis",
                    chart_version="0.1.0",
                    app_version="7.2",
                    revision=i + 1,
                    status="deployed",
                    values={"replicaCount": 1 + v(3), "auth": {"password": f"pw-{v(5)}"}},
                )
            repo.finish_app(app.app_id, "success")
        repo.finish_deployment(dep.deployment_id, "success")
        if not rollback:
            last_deploy = dep.deployment_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--distinct", action="store_true", help="no changed value ever comes back")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = DeploymentDatabase(Path(tmp) / "state.db")
        repo = DeploymentRepository(db)
        t = time.perf_counter()
        seed(repo, args.size, distinct=args.distinct)
        print(f"seeded {args.size} deployments in {time.perf_counter() - t:.1f}s")
        out = Path(tmp) / "report.html"
        times, cpu = [], []
        for n in range(args.rounds):
            t, c = time.perf_counter(), time.process_time()
            count = write_report(repo, out, Scope())
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            print(
                f"round {n + 1}: {count} deployments written in {times[-1]:.2f}s "
                f"({cpu[-1]:.2f}s CPU)"
            )
        size = out.stat().st_size
        db.close()
    median = statistics.median(times)
    ok_time, ok_size = median < TARGET_SECONDS, size < TARGET_BYTES
    print(
        f"report of {args.size} deployments: {median:.2f}s median "
        f"({min(times):.2f}-{max(times):.2f}; CPU {statistics.median(cpu):.2f}s), "
        f"target < {TARGET_SECONDS:.0f}s: "
        f"{'PASS' if ok_time else 'FAIL'}; {size / 1024 / 1024:.2f} MB, target < 5 MB: "
        f"{'PASS' if ok_size else 'FAIL'}"
    )
    return 0 if ok_time and ok_size else 1


if __name__ == "__main__":
    sys.exit(main())
