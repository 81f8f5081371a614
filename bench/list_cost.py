"""What one LIST costs kubectl as the namespace fills: ``python bench/list_cost.py``.

Starts the local API server (10 ms per request), fills one namespace with 20, 500, 1,000
and 2,000 ConfigMaps (200 bytes of data each) and, at each size, times three ways of
listing them with the real kubectl: ``get configmaps,namespaces -o json`` (what a YAML
app's read was), ``get configmaps`` (the table) and ``get --raw`` of the LIST's URL (what
``KubeCluster`` uses for a kind of ``RAW_LIST_FROM`` objects or more). It prints the wall
time, kubectl's CPU time (user + system, from ``getrusage``) and the bytes printed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from sbkube.apiserver import ApiServer

SIZES = (20, 500, 1_000, 2_000)
WAYS = {
    "get -o json": ["get", "configmaps,namespaces", "-n", "bench", "-o", "json"],
    "get (table)": ["get", "configmaps", "-n", "bench"],
    "get --raw": ["get", "--raw", "/api/v1/namespaces/bench/configmaps"],
}


def main() -> None:
    kubectl = os.environ.get("SBKUBE_KUBECTL") or "kubectl"
    server = ApiServer(latency_ms=10.0).start()
    try:
        kubeconfig = Path(tempfile.mkdtemp()) / "kubeconfig"
        server.write_kubeconfig(kubeconfig)
        env = dict(os.environ, KUBECONFIG=str(kubeconfig))

        def run(argv: list[str], stdin: str | None = None) -> bytes:
            return subprocess.run(
                [kubectl, *argv], input=stdin.encode() if stdin else None,
                env=env, check=True, capture_output=True,
            ).stdout  # fmt: skip

        run(["create", "namespace", "bench"])
        made = 0
        print(f"{'objects':>8}  {'way':<12} {'wall ms':>8} {'cpu ms':>7} {'bytes':>9}")
        for size in SIZES:
            items = [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"cm-{j}", "namespace": "bench"},
                    "data": {"index": str(j), "payload": "x" * 200},
                }
                for j in range(made, size)
            ]
            run(
                ["apply", "--server-side", "-f", "-"],
                json.dumps({"kind": "List", "apiVersion": "v1", "items": items}),
            )
            made = size
            for way, argv in WAYS.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                out = run(argv)
                wall = (time.perf_counter() - start) * 1000
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
                print(f"{size:>8}  {way:<12} {wall:>8.0f} {cpu:>7.0f} {len(out):>9}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
