"""One writer process of ``test_reliability_concurrency.py`` (run as a script, not collected).

``python writer_worker.py URL WORKER DEPLOYMENTS APPS RESOURCES GO_FILE`` opens the store
(racing the other workers on the first open and its migration), prints ``ready``, waits
for GO_FILE so that every worker writes at the same time, records its deployments through
:class:`DeploymentTracker`, and prints one JSON line with their ids and its timings.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    url, worker = sys.argv[1], int(sys.argv[2])
    deployments, apps, resources = (int(v) for v in sys.argv[3:6])
    go_file = Path(sys.argv[6])

    from sbkube.state import DeploymentDatabase, DeploymentTracker

    db = DeploymentDatabase(url)
    tracker = DeploymentTracker(db)
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not go_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit("go file never appeared")
        time.sleep(0.005)

    started = time.monotonic()
    ids: list[str] = []
    for d in range(deployments):
        with tracker.track_deployment(
            cluster="concurrency",
            namespace=f"ns-{worker}",
            app_dir=f"/apps/w{worker}",
            config={"worker": worker, "deployment": d},
        ) as dep:
            for a in range(apps):
                with dep.track_app(name=f"app-{a}", type="yaml", namespace=f"ns-{worker}") as app:
                    app.record_resources(
                        [
                            {
                                "apiVersion": "v1",
                                "kind": "ConfigMap",
                                "metadata": {
                                    "name": f"w{worker}-d{d}-a{a}-r{r}",
                                    "namespace": f"ns-{worker}",
                                },
                                "data": {"worker": str(worker), "index": str(r)},
                            }
                            for r in range(resources)
                        ],
                        action="create",
                    )
        ids.append(dep.deployment_id)
    elapsed = time.monotonic() - started
    db.close()
    print(json.dumps({"worker": worker, "ids": ids, "seconds": elapsed}), flush=True)


if __name__ == "__main__":
    main()
