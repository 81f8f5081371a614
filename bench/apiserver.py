"""Local API server benchmark: a first deploy of N objects with the real kubectl.

    python bench/apiserver.py                    # 10,000 objects: apply, server-side apply
    python bench/apiserver.py --objects 2000 --latency-ms 5

Starts ``ApiServer`` on a fresh state file, writes one ``List`` of N objects (ConfigMaps,
with a Service and a Deployment every 50), and times, each against its own fresh server:
``kubectl apply -f`` (client-side: a GET and a POST per object), ``kubectl apply
--server-side -f`` (one apply PATCH per object), and ``kubectl get configmaps -A`` of the
result; then the final state-file write and a restart that reads the file back. Prints one
line per step; exit 1 if a command fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sbkube.apiserver import ApiServer


def objects(count: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    for index in range(count):
        name = f"obj-{index:05d}"
        if index % 50 == 1:
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
                    "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
                }
            )
        elif index % 50 == 2:
            container = {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}
            items.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {
                        "selector": {"matchLabels": {"app": name}},
                        "template": {
                            "metadata": {"labels": {"app": name}},
                            "spec": {"containers": [container]},
                        },
                    },
                }
            )
        else:
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": "default", "labels": {"bench": "yes"}},
                    "data": {"index": str(index), "payload": "x" * 200},
                }
            )
    return items


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(kubectl: str, kubeconfig: Path, *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(f"kubectl {' '.join(args)} failed: {done.stderr[-2000:]}\n")
        raise SystemExit(1)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--kubectl", default=os.environ.get("SBKUBE_KUBECTL") or "kubectl")
    args = parser.parse_args()
    kubectl = shutil.which(args.kubectl)
    if kubectl is None:
        sys.stderr.write("kubectl not found (set SBKUBE_KUBECTL)\n")
        return 1
    with tempfile.TemporaryDirectory(prefix="sbkube-apiserver-bench-") as tmp:
        root = Path(tmp)
        manifest = root / "objects.json"
        manifest.write_text(
            json.dumps({"apiVersion": "v1", "kind": "List", "items": objects(args.objects)})
        )
        print(f"{args.objects} objects, latency {args.latency_ms} ms per request")
        steps = [
            ("kubectl apply -f", ("apply", "-f", str(manifest))),
            (
                "kubectl apply --server-side -f",
                ("apply", "--server-side", "--field-manager=bench", "-f", str(manifest)),
            ),
        ]
        for label, argv in steps:
            state = root / f"{label.split()[-2]}.json"
            kubeconfig = root / "kubeconfig"
            server = ApiServer(state, latency_ms=args.latency_ms).start()
            try:
                server.write_kubeconfig(kubeconfig)
                cpu, client_cpu = time.process_time(), children_cpu()
                elapsed = run(kubectl, kubeconfig, *argv)
                cpu, client_cpu = time.process_time() - cpu, children_cpu() - client_cpu
                print(
                    f"{label:34s} {elapsed:8.2f} s  ({args.objects / elapsed:,.0f} objects/s; "
                    f"CPU: server {cpu:.1f} s, kubectl {client_cpu:.1f} s)"
                )
                listed = run(kubectl, kubeconfig, "get", "configmaps", "-A", "-o", "name")
                print(f"{'kubectl get configmaps -A':34s} {listed:8.2f} s")
            finally:
                started = time.perf_counter()
                server.stop()
                print(
                    f"{'final state file write':34s} {time.perf_counter() - started:8.2f} s"
                    f"  ({state.stat().st_size / 1e6:.1f} MB)"
                )
            started = time.perf_counter()
            with ApiServer(state) as again:
                count = len(again.objects())
            print(
                f"{'restart from the file':34s} {time.perf_counter() - started:8.2f} s"
                f"  ({count} objects)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
