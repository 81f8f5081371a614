"""SIGTERM during a deploy on PostgreSQL: never a traceback, one ``error:`` line, exit 143,
and a store that stays true (the deployment ``interrupted``, the earlier ones untouched but
for what the next deploy learns from the cluster: an app whose helm install the signal
cut short is settled from ``helm history``, see ``sbkube.engine.recovery``).

Ten deploys of one app dir onto one memory cluster, each sent SIGTERM at another point:
once its Nth line of ``-v`` output (every helm and kubectl command it runs, then each app's
progress line) has been printed, N = 1..10, so the signal lands before the record exists,
while a chart renders, while helm installs or upgrades, while kubectl applies, between
apps and while they are recorded. The tests wait on those lines, never on a clock.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.helm]

RUNS = 10


def exported(sbkube: Any) -> dict[str, str]:
    """Every recorded deployment as ``state export`` writes it, by id."""
    proc = sbkube("state", "export")
    assert proc.returncode == 0, proc.stderr
    return {json.loads(line)["deployment_id"]: line for line in proc.stdout.splitlines()}


def settled_back(before: str, after: str) -> str:
    """``after`` with each app the next deploy settled from the cluster put back as
    ``before`` held it. Settling may only record the revision helm made while the run was
    cut short, and the outcome helm shows, on an app that had none."""
    old, new = json.loads(before), json.loads(after)
    for was, now in zip(old["apps"], new["apps"], strict=True):
        if (now.get("error_message") or "").startswith("settled from the cluster"):
            assert was["status"] == "interrupted" and was["helm_releases"] == [], (was, now)
            assert len(now["helm_releases"]) == 1, now
            assert now["helm_releases"][0]["release_name"] == was["name"], now
            assert now["status"] in ("failed", "success"), now
            for key in ("status", "error_message", "helm_releases", "finished_at"):
                now[key] = was[key]
    return json.dumps(new, sort_keys=True)


def test_sigterm_mid_deploy_on_postgresql_is_one_line_and_the_store_stays_true(
    sbkube: Any, app_dir: Path, cluster_file: Path, pg_schema_url: str
) -> None:
    env = {"SBKUBE_STATE_URL": pg_schema_url}
    sbkube.env.update(env)
    deploy = ("-v", "deploy", "--app-dir", str(app_dir), "--memory-cluster", str(cluster_file))
    interrupted = 0
    for n in range(1, RUNS + 1):
        before = exported(sbkube)
        run = sbkube.spawn(*deploy)
        # The Nth line of output: the run is that far along.
        run.wait_for_lines(n, timeout=300)
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish(timeout=300)

        where = f"signal after line {n}; stderr:\n{run.stderr}"
        assert "Traceback" not in run.stderr, where
        assert "Exception" not in run.stderr, where
        errors = [line for line in run.err_lines if line.startswith("error:")]
        assert errors == ["error: interrupted by SIGTERM"], where
        assert run.err_lines[-1] == "error: interrupted by SIGTERM", where
        assert code == 143, where

        after = exported(sbkube)
        # Earlier records are intact, byte for byte, but for a revision settled from the
        # cluster (helm made it while the earlier run was cut short).
        unchanged = {k: json.dumps(json.loads(v), sort_keys=True) for k, v in before.items()}
        assert {k: settled_back(before[k], after[k]) for k in before} == unchanged, where
        new = [json.loads(after[k]) for k in after if k not in before]
        assert len(new) <= 1, where
        for record in new:
            statuses = [app["status"] for app in record["apps"]]
            assert "in_progress" not in statuses and "pending" not in statuses, where
            assert record["status"] == "interrupted", where
            interrupted += 1
    assert interrupted > 0, "no signal landed while a deployment was recorded"

    # The store and the cluster still work: a deploy ends the story, recovering what the
    # interrupted ones left (a pending Helm release).
    final = sbkube(*deploy)
    assert final.returncode == 0, final.stderr
    assert json.loads(exported(sbkube)[max(exported(sbkube))])["status"] == "success"
