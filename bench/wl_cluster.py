"""Workloads against sbkube's local API server, slowed to a remote cluster's round trip.

W8: a YAML app of 300 objects (ConfigMaps, with a Service and a Deployment every 50),
deployed by ``sbkube deploy`` (the CLI, a fresh SQLite store, migrated beforehand as any
store in use is) against one ``kubectl apply
--server-side -f`` of the same file, each on a fresh in-process ``ApiServer(latency_ms=10)``.
sbkube reads the live state (one LIST per kind), applies in one kubectl process and records
every object; the reference only applies. Target: sbkube <= 1.5x.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml
from apiserver import objects
from data import migrated_sqlite
from harness import Result
from wl_cli import _sbkube_argv, run_once

from sbkube.apiserver import ApiServer

W8_OBJECTS = 300
LATENCY_MS = 10.0


def _kubectl() -> str:
    found = shutil.which(os.environ.get("SBKUBE_KUBECTL") or "kubectl")
    if found is None:
        raise RuntimeError("kubectl not found (set SBKUBE_KUBECTL)")
    return found


def _app_dir(root: Path, count: int) -> Path:
    app = root / "w8-app"
    app.mkdir(parents=True, exist_ok=True)
    config = {"namespace": "default", "apps": {"bulk": {"type": "yaml", "manifests": ["all.yaml"]}}}
    (app / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (app / "all.yaml").write_text(
        json.dumps({"apiVersion": "v1", "kind": "List", "items": objects(count)})
    )
    return app


def _applied(server: ApiServer) -> int:
    return sum(
        1
        for o in server.objects()
        if (o.get("metadata") or {}).get("namespace") == "default" and o["kind"] != "Secret"
    )


def w8_yaml_apply(ctx: Any) -> list[Result]:
    """W8: ``sbkube deploy`` of a 300-object YAML app vs ``kubectl apply --server-side``."""
    count = W8_OBJECTS
    kubectl = _kubectl()
    root = ctx.tmp / "w8"
    app = _app_dir(root, count)
    env = {**os.environ, "SBKUBE_KUBECTL": kubectl, "NO_COLOR": "1"}
    sbkube_ms: list[float] = []
    kubectl_ms: list[float] = []
    requests: dict[str, int] = {}
    for round_no in range(ctx.rounds):
        # Alternate which goes first, so neither always runs on a warmer machine.
        sides = ("sbkube", "kubectl") if round_no % 2 == 0 else ("kubectl", "sbkube")
        for side in sides:
            kubeconfig = root / f"kubeconfig-{side}-{round_no}"
            with ApiServer(None, latency_ms=LATENCY_MS) as server:
                server.write_kubeconfig(kubeconfig)
                if side == "sbkube":
                    state = migrated_sqlite(root / f"state-{round_no}.db")
                    argv = [*_sbkube_argv(), "deploy", "--app-dir", str(app), "-q"]
                    argv += ["--kubeconfig", str(kubeconfig), "--state", str(state)]
                    sbkube_ms.append(run_once(argv, env))
                    requests = dict(server.requests)
                else:
                    argv = [kubectl, "--kubeconfig", str(kubeconfig), "apply", "--server-side"]
                    argv += ["--field-manager=bench", "-f", str(app / "all.yaml")]
                    kubectl_ms.append(run_once(argv, env))
                if _applied(server) != count:
                    raise RuntimeError(f"W8 {side}: {_applied(server)} objects live, not {count}")
    lists = {k: v for k, v in sorted(requests.items()) if k.startswith(("list", "get"))}
    applies = sum(v for k, v in requests.items() if k.startswith("apply"))
    ctx.notes.append(
        f"W8: {count} objects, {LATENCY_MS:g} ms per request; sbkube's requests besides "
        f"discovery: {applies} applies, reads {lists}"
    )
    return [
        Result(
            workload=f"W8 YAML app of {count} objects (deploy vs kubectl apply --server-side)",
            unit="ms",
            sbkube=sbkube_ms,
            reference=kubectl_ms,
            target="<= 1.5x",
            check="ratio",
            limit=1.5,
        )
    ]


if __name__ == "__main__":
    import tempfile
    from types import SimpleNamespace

    from harness import render_table

    with tempfile.TemporaryDirectory(prefix="sbkube-w8-") as tmp:
        ctx = SimpleNamespace(rounds=int(sys.argv[1]) if len(sys.argv) > 1 else 3, tmp=Path(tmp))
        ctx.notes = []
        rows = w8_yaml_apply(ctx)
        print(render_table(rows))
        print("\n".join(ctx.notes))
