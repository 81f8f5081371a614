"""A whole platform in one run (issue 24 items 1-3): phases, one record, locks, failure policy.

The real ``sbkube`` deploys ``tests/fixtures/phases/platform`` (infra -> data -> apps, and
monitoring beside data; three app dirs and inline apps, two namespaces) to a served local
API server; the real ``helm`` and ``kubectl`` read the cluster back. A failed run under
``on_failure: rollback`` leaves the cluster as it was before the run (scope ``phase``,
then ``all``), and the record says what happened: the failed deployment and its rollback
name each other. Two runs whose targets overlap, started together 20 times, all end and
are all recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "phases"
DEP_ID = re.compile(r"dep-\d{8}-\d{6}-[0-9a-f]{6}")
NAMESPACES = ("plat-infra", "plat-apps")


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    root = Path(shutil.copytree(FIXTURE, tmp_path / "phases"))
    return root / "platform"


class Live:
    """What the real kubectl and helm say about the served cluster."""

    def __init__(self, env: dict[str, str], kubectl: str, helm: str, kubeconfig: Path) -> None:
        self.env, self.kubectl, self.helm, self.kubeconfig = env, kubectl, helm, kubeconfig

    def _run(self, *argv: str) -> str:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, timeout=300, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def objects(self) -> dict[str, Any]:
        """Every ConfigMap of both namespaces, as applied (without what the server
        writes on each change)."""
        out: dict[str, Any] = {}
        for ns in NAMESPACES:
            items = json.loads(
                self._run(
                    self.kubectl,
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "-n",
                    ns,
                    "get",
                    "configmaps",
                    "-o",
                    "json",
                )
            )["items"]
            for item in items:
                meta = item["metadata"]
                out[f"{ns}/{meta['name']}"] = {
                    "data": item.get("data"),
                    "labels": meta.get("labels"),
                }
        return out

    def helm_history(self, release: str, ns: str) -> list[dict[str, Any]]:
        return json.loads(  # type: ignore[no-any-return]
            self._run(
                self.helm,
                "--kubeconfig",
                str(self.kubeconfig),
                "history",
                release,
                "-n",
                ns,
                "-o",
                "json",
            )
        )

    def helm_state(self, release: str, ns: str) -> tuple[Any, str]:
        """The deployed revision's values and manifest."""
        values = self._run(
            self.helm, "--kubeconfig", str(self.kubeconfig), "get", "values", release,
            "-n", ns, "-o", "json",
        )  # fmt: skip
        manifest = self._run(
            self.helm, "--kubeconfig", str(self.kubeconfig), "get", "manifest", release, "-n", ns
        )
        return json.loads(values), manifest


@pytest.fixture
def live_file(cluster_file: Path) -> Any:
    """The memory-cluster file read as another process would (conftest's ``live``)."""
    from cli_helpers import LiveCluster

    return LiveCluster(cluster_file)


@pytest.fixture
def live(sbkube: Any, served: Any, kubectl_binary: str, helm_binary: str) -> Live:
    _server, kubeconfig = served()
    return Live(sbkube.env, kubectl_binary, helm_binary, kubeconfig)


def deploy(sbkube: Any, platform: Path, live: Live, *extra: str) -> tuple[int, Any, str]:
    proc = sbkube(
        "deploy", "--app-dir", str(platform), "--kubeconfig", str(live.kubeconfig),
        *extra, "-o", "json",
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else None, proc.stderr


def change_and_break(platform: Path, *, infra: bool = False) -> None:
    """Change one app in apps and two in data, and make data's migration fail."""
    web = platform / "apps" / "web.yaml"
    web.write_text(web.read_text().replace('replicas: "1"', 'replicas: "3"'))
    values = platform / "data" / "db-values.yaml"
    values.write_text(values.read_text().replace("small", "large"))
    conf = platform / "data" / "db-config.yaml"
    conf.write_text(conf.read_text().replace('"5"', '"9"'))
    if infra:
        base = platform / "infra" / "base.yaml"
        base.write_text(base.read_text().replace("tier: one", "tier: two"))
    (platform / "data" / "FAIL").touch()


def before_state(live: Live) -> tuple[Any, Any]:
    return live.objects(), live.helm_state("db", "plat-apps")


def assert_reverted(sbkube: Any, live: Live, before: tuple[Any, Any], out: Any, scope: str) -> str:
    """The cluster is as it was before the run, and the record says what happened."""
    assert live.objects() == before[0]
    assert live.helm_state("db", "plat-apps") == before[1]
    history = live.helm_history("db", "plat-apps")
    # helm's own history: the failed run's upgrade, then the rollback to the revision before.
    assert history[-1]["status"] == "deployed"
    assert history[-1]["description"].startswith("Rollback to"), history
    assert history[-2]["status"] == "superseded"
    failed_id = out["deployment_id"]
    revert = out["rollback"]
    assert revert["scope"] == scope and revert["status"] == "success", revert
    shown = sbkube("state", "show", failed_id, "--no-resources")
    assert f"Reverted by: {revert['deployment_id']}" in shown.stdout, shown.stdout
    back = sbkube.json("state", "show", revert["deployment_id"])
    assert back["command"] == "rollback" and back["reverts_id"] == failed_id
    shown_back = sbkube("state", "show", revert["deployment_id"], "--no-resources")
    assert f"Reverts:    {failed_id}" in shown_back.stdout, shown_back.stdout
    failed = sbkube.json("state", "show", failed_id)
    assert failed["reverted_by"] == revert["deployment_id"]
    status = {a["name"]: a["status"] for a in failed["apps"]}
    assert status["db-migrate"] == "failed" and status["web"] == "skipped"
    assert {a["name"]: a["metadata"]["phase"] for a in failed["apps"]} == {
        "base": "infra",
        "db": "data",
        "db-config": "data",
        "db-migrate": "data",
        "probe": "monitoring",
        "web": "apps",
    }
    return str(revert["deployment_id"])


@pytest.mark.helm
@pytest.mark.kube
def test_a_failed_run_rolls_back_to_the_state_before_it_by_phase_then_all(
    sbkube: Any, live: Live, platform: Path
) -> None:
    rc, first, err = deploy(sbkube, platform, live)
    assert rc == 0, err
    assert first["status"] == "success" and first["rollback"] is None
    shown = sbkube("state", "show", first["deployment_id"], "--no-resources").stdout
    # state show groups the one record's apps by phase, with each phase's app dir and target.
    assert "Phase infra: app dir" in shown and "Phase apps: app dir" in shown
    assert shown.index("Phase infra") < shown.index("Phase data") < shown.index("Phase apps")
    assert f"{platform / 'data'}, target " in shown

    before = before_state(live)
    change_and_break(platform)
    rc, out, err = deploy(sbkube, platform, live)  # the file says: rollback, scope phase
    assert rc == 1, err
    assert out["status"] == "partially_failed"
    back = assert_reverted(sbkube, live, before, out, "phase")
    rolled = sbkube.json("state", "show", back)
    assert sorted(a["name"] for a in rolled["apps"]) == ["db", "db-config"]

    # Scope all: infra's change (a phase that succeeded) goes back too.
    change_and_break(platform, infra=True)
    rc, out, err = deploy(sbkube, platform, live, "--rollback-scope", "all")
    assert rc == 1, err
    assert {a["name"]: a["status"] for a in out["apps"]}["base"] == "success"
    back = assert_reverted(sbkube, live, before, out, "all")
    rolled = sbkube.json("state", "show", back)
    assert sorted(a["name"] for a in rolled["apps"]) == ["base", "db", "db-config"]

    # Once the migration passes, the same inputs deploy whole.
    (platform / "data" / "FAIL").unlink()
    rc, out, err = deploy(sbkube, platform, live)
    assert rc == 0, err
    assert live.objects()["plat-apps/web"]["data"] == {"replicas": "3"}
    assert live.objects()["plat-infra/base"]["data"] == {"tier": "two"}

    # Part of a run: its diff and its rollback plan, by phase.
    diff = sbkube.json("state", "diff", first["deployment_id"], out["deployment_id"],
                       "--phase", "data")  # fmt: skip
    diffed = {r["app"] for r in diff["resources"]}
    assert {"db", "db-config"} <= diffed <= {"db", "db-config", "db-migrate"}
    plan = sbkube.json(
        "rollback", "--app-dir", str(platform), "--kubeconfig", str(live.kubeconfig),
        "--to", first["deployment_id"], "--phase", "data", "--dry-run",
    )  # fmt: skip
    assert sorted(a["name"] for a in plan["plan"]["apps"]) == ["db", "db-config", "db-migrate"]


def _dry(sbkube: Any, platform: Path, cluster_file: Path, *extra: str) -> list[str]:
    out = sbkube.json(
        "deploy", "--app-dir", str(platform), "--memory-cluster", str(cluster_file),
        "--dry-run", *extra,
    )  # fmt: skip
    phase_of = out.get("phase_of") or {}
    return [f"{phase_of[a['name']]}/{a['name']}" for a in out["apps"] if a["name"] in phase_of]


def test_phase_picks_its_phases_and_those_it_needs(
    sbkube: Any, platform: Path, cluster_file: Path
) -> None:
    everything = _dry(sbkube, platform, cluster_file)
    assert sorted(everything) == sorted(
        [
            "infra/base",
            "data/db",
            "data/db-config",
            "data/db-migrate",
            "monitoring/probe",
            "apps/web",
        ]
    )
    assert _dry(sbkube, platform, cluster_file, "--phase", "apps") == [
        "infra/base",
        "data/db",
        "data/db-config",
        "data/db-migrate",
        "apps/web",
    ]
    assert _dry(sbkube, platform, cluster_file, "--phase", "apps", "--no-deps") == ["apps/web"]
    assert _dry(
        sbkube, platform, cluster_file, "--phase", "monitoring", "--phase", "apps", "--no-deps"
    ) == ["monitoring/probe", "apps/web"]


def test_bad_phases_are_one_line(
    sbkube: Any, platform: Path, cluster_file: Path, expect_error: Any
) -> None:
    proc = sbkube(
        "deploy", "--app-dir", str(platform), "--memory-cluster", str(cluster_file),
        "--phase", "ap",
    )  # fmt: skip
    assert proc.returncode == 2
    line = expect_error(proc.stderr)
    assert "--phase ap: no such phase" in line and "did you mean 'apps'" in line
    config = platform / "config.yaml"
    config.write_text(config.read_text().replace("depends_on: [data]", "depends_on: [dta]"))
    proc = sbkube("deploy", "--app-dir", str(platform), "--memory-cluster", str(cluster_file))
    assert proc.returncode == 2
    assert "phases.apps.depends_on[0]: unknown phase 'dta'" in expect_error(proc.stderr)
    config.write_text(
        config.read_text()
        .replace("depends_on: [dta]", "depends_on: [data]")
        .replace("    source: infra\n", "    source: infra\n    depends_on: [apps]\n")
    )
    proc = sbkube("deploy", "--app-dir", str(platform), "--memory-cluster", str(cluster_file))
    assert proc.returncode == 2
    assert "dependency cycle" in expect_error(proc.stderr)
    assert not (platform.parent.parent / "state.db").exists()


OVERLAP = """\
namespace: {record}
phases:
{phases}
"""


def _noop_dirs(root: Path, record: str, namespaces: list[str]) -> Path:
    """A file of one phase per namespace, each an app dir of one noop app."""
    top = root / record
    lines = []
    for ns in namespaces:
        app = top / ns
        app.mkdir(parents=True)
        (app / "config.yaml").write_text(
            f"namespace: {ns}\napps:\n  {record}-{ns}:\n    type: noop\n"
        )
        lines.append(f"  {ns}:\n    source: {ns}")
    (top / "config.yaml").write_text(OVERLAP.format(record=record, phases="\n".join(lines)))
    return top


@pytest.mark.kube
def test_overlapping_runs_started_together_never_deadlock_nor_lose_a_record(
    sbkube: Any, served: Any, tmp_path: Path, store: Any
) -> None:
    _server, kubeconfig = served()
    # Each run locks its own record namespace and the other's: taken in the order each
    # names them, A would hold ov-a and wait for ov-b while B holds ov-b and waits for ov-a.
    a = _noop_dirs(tmp_path, "ov-a", ["ov-b", "ov-c"])
    b = _noop_dirs(tmp_path, "ov-b", ["ov-a", "ov-c"])
    rounds = 20
    for _ in range(rounds):
        runs = [
            sbkube.spawn(
                "deploy",
                "--app-dir",
                str(top),
                "--kubeconfig",
                str(kubeconfig),
                "--wait-lock",
                "600",
                "-o",
                "json",
            )
            for top in (a, b)
        ]
        for run in runs:
            assert run.finish(timeout=900) == 0, run.stderr
    repo = store()
    for record in ("ov-a", "ov-b"):
        deps = repo.list(namespace=record, limit=None)
        assert len(deps) == rounds
        assert {d.status for d in deps} == {"success"}
        assert all(d.app_total == 2 for d in deps)
    assert sbkube.json("state", "locks") == []


def test_app_groups_follow_their_deps_inside_their_phase(
    sbkube: Any, tmp_path: Path, cluster_file: Path, expect_error: Any
) -> None:
    top = tmp_path / "groups"
    for group in ("api", "web", "cache"):
        (top / "p1" / group).mkdir(parents=True)
        (top / "p1" / group / "config.yaml").write_text(
            f"namespace: grp\napps:\n  {group}-app:\n    type: noop\n"
        )
    (top / "config.yaml").write_text(
        "namespace: grp\n"
        "phases:\n"
        "  main:\n"
        "    source: p1\n"
        "    app_groups: [api, web, cache]\n"
        "    app_group_deps: {api: [web]}\n"
    )
    order = _dry(sbkube, top, cluster_file)
    assert order == ["main/web-app", "main/api-app", "main/cache-app"]
    (top / "config.yaml").write_text(
        (top / "config.yaml").read_text().replace("{api: [web]}", "{api: [web], web: [api]}")
    )
    proc = sbkube("deploy", "--app-dir", str(top), "--memory-cluster", str(cluster_file))
    assert proc.returncode == 2
    assert "phases.main.app_group_deps: dependency cycle" in expect_error(proc.stderr)


SECRET_APP = """\
namespace: atomic
apps:
  creds:
    type: yaml
    manifests: [creds.yaml]
  check:
    type: exec
    depends_on: [creds]
    commands: ["test ! -e FAIL"]
"""


def _creds(app: Path, value: str) -> None:
    (app / "creds.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n"
        f"stringData:\n  password: {value}\n"
    )


def test_atomic_on_one_app_dir_and_a_rollback_that_itself_fails(
    sbkube: Any, tmp_path: Path, cluster_file: Path, live_file: Any, store: Any
) -> None:
    app = tmp_path / "atomic"
    app.mkdir()
    (app / "config.yaml").write_text(SECRET_APP)
    _creds(app, "first-pass-word")
    args = ("deploy", "--app-dir", str(app), "--memory-cluster", str(cluster_file))
    first = sbkube(*args)
    assert first.returncode == 0, first.stderr
    key = ("v1", "Secret", "atomic", "creds")
    before = live_file.get(key)["data"]

    # v2 fails its check; it is sealed under another key, so v1's Secret cannot be
    # unsealed to put it back: the rollback itself fails, and says so.
    _creds(app, "second-pass-word")
    (app / "FAIL").touch()
    proc = sbkube(*args, "--atomic", env={"SBKUBE_SEAL_KEY": "not-the-key"})
    assert proc.returncode == 3, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "itself failed" in line]
    assert len(said) >= 1 and said[-1].startswith("Error: the rollback dep-"), proc.stderr
    assert live_file.get(key)["data"] != before
    repo = store()
    back, failed = repo.list(namespace="atomic", limit=2)
    back_rec = repo.get(back.deployment_id)
    assert back_rec.command == "rollback" and back_rec.reverts_id == failed.deployment_id
    assert {a.name: a.status for a in back_rec.apps} == {"creds": "failed"}
    assert "cannot roll back" in (back_rec.apps[0].error_message or "")

    # With the key at hand, --atomic puts back the last state that worked: v1 (the failed
    # run's v2, which its failed rollback left live, never worked).
    _creds(app, "third-pass-word")
    proc = sbkube(*args, "--atomic")
    assert proc.returncode == 1, proc.stderr
    assert live_file.get(key)["data"] == before
    newest = repo.list(namespace="atomic", limit=1)[0]
    assert newest.command == "rollback" and newest.status == "success"


def test_deps_deploy_the_app_dirs_named_first_in_the_same_run(
    sbkube: Any, tmp_path: Path, cluster_file: Path, expect_error: Any
) -> None:
    top = tmp_path / "groups"
    for name, deps in (("a000-net", []), ("a100-db", ["a000-net"]), ("a200-web", ["a100-db"])):
        (top / name).mkdir(parents=True)
        (top / name / "config.yaml").write_text(
            f"namespace: grp\ndeps: {json.dumps(deps)}\napps:\n  {name}-app:\n    type: noop\n"
        )
    web = top / "a200-web"
    assert _dry(sbkube, web, cluster_file) == [
        "main/a000-net-app",
        "main/a100-db-app",
        "main/a200-web-app",
    ]
    assert _dry(sbkube, web, cluster_file, "--no-deps") == []  # a plain deploy: no phases
    plain = sbkube.json(
        "deploy", "--app-dir", str(web), "--memory-cluster", str(cluster_file), "--dry-run",
        "--no-deps",
    )  # fmt: skip
    assert [a["name"] for a in plain["apps"]] == ["a200-web-app"]
    (top / "a000-net" / "config.yaml").write_text(
        'namespace: grp\ndeps: ["a200-web"]\napps:\n  n:\n    type: noop\n'
    )
    proc = sbkube("deploy", "--app-dir", str(web), "--memory-cluster", str(cluster_file))
    assert proc.returncode == 2
    assert "deps: dependency cycle a200-web -> a100-db -> a000-net -> a200-web" in expect_error(
        proc.stderr
    )


def test_stop_starts_no_phase_after_a_failure_and_continue_does(
    sbkube: Any, tmp_path: Path, cluster_file: Path
) -> None:
    top = tmp_path / "policy"
    inline = '    apps:\n      {name}:\n        type: exec\n        commands: ["{cmd}"]\n'
    top.mkdir()
    (top / "config.yaml").write_text(
        "namespace: pol\nsettings:\n  parallel: false\nphases:\n"
        + "  first:\n"
        + inline.format(name="breaks", cmd="exit 1")
        + "  second:\n"
        + inline.format(name="fine", cmd="true")
    )
    args = ("deploy", "--app-dir", str(top), "--memory-cluster", str(cluster_file), "-o", "json")
    stopped = sbkube(*args)
    assert stopped.returncode == 1, stopped.stderr
    apps = {a["name"]: a for a in json.loads(stopped.stdout)["apps"]}
    assert apps["breaks"]["status"] == "failed"
    assert apps["fine"]["status"] == "skipped"
    assert "phase first failed (on_failure: stop)" in apps["fine"]["error"]
    going = sbkube(*args, "--on-failure", "continue")
    assert going.returncode == 1, going.stderr
    apps = {a["name"]: a for a in json.loads(going.stdout)["apps"]}
    assert apps["fine"]["status"] == "success"


@pytest.mark.kube
def test_a_run_meeting_a_held_lock_is_refused_naming_the_holder_and_holds_nothing(
    sbkube: Any, tmp_path: Path, served: Any, store: Any, state_db: Path
) -> None:
    from sbkube.state import DeployLocks, DeploymentDatabase

    _server, kubeconfig = served()  # one cluster, one identity, for every run
    top = _noop_dirs(tmp_path, "lk-a", ["lk-b", "lk-c"])
    args = ("deploy", "--app-dir", str(top), "--kubeconfig", str(kubeconfig))
    first = sbkube(*args)
    assert first.returncode == 0, first.stderr
    identity = store().list(namespace="lk-a", limit=1)[0].cluster_id
    db = DeploymentDatabase(state_db)
    # Another run holds lk-c, the last of the run's locks in their order (lk-a, lk-b, lk-c).
    held = DeployLocks(db).acquire(identity, "lk-c", command="deploy")
    try:
        proc = sbkube(*args)
        assert proc.returncode == 1, proc.stderr
        line = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
        assert len(line) == 1 and "/lk-c is locked: deploy by " in line[0], proc.stderr
        assert f"pid {os.getpid()}" in line[0]
        # What it took before (lk-a, lk-b) it let go; nothing was recorded.
        locks = sbkube.json("state", "locks")
        assert [lock["target"] for lock in locks] == [f"{identity}/lk-c"]
        assert len(store().list(namespace="lk-a", limit=None)) == 1
    finally:
        held.release()
        db.close()
    again = sbkube(*args, "--wait-lock", "30")
    assert again.returncode == 0, again.stderr

    # The whole run rolled back (to the first): each app keeps its phase in the record.
    first_id = store().list(namespace="lk-a", limit=None)[-1].deployment_id
    back = sbkube(
        "rollback", "--app-dir", str(top), "--kubeconfig", str(kubeconfig), "--to", first_id, "-y"
    )
    assert back.returncode == 0, back.stderr
    shown = sbkube.json("state", "show", "latest")
    assert shown["command"] == "rollback"
    assert {a["name"]: a["metadata"]["phase"] for a in shown["apps"]} == {
        "lk-a-lk-b": "lk-b",
        "lk-a-lk-c": "lk-c",
    }


def test_a_disabled_phase_is_left_out_and_a_phase_namespace_applies(
    sbkube: Any, platform: Path, cluster_file: Path, expect_error: Any
) -> None:
    config = platform / "config.yaml"
    config.write_text(
        config.read_text()
        .replace("  monitoring:\n", "  monitoring:\n    enabled: false\n")
        .replace("    source: infra\n", "    source: infra\n    settings: {namespace: plat-core}\n")
    )
    out = sbkube.json(
        "deploy", "--app-dir", str(platform), "--memory-cluster", str(cluster_file), "--dry-run"
    )
    names = {a["name"]: a["namespace"] for a in out["apps"]}
    assert "probe" not in names
    assert names["base"] == "plat-core"  # the phase's namespace, as -n would give it
    assert names["web"] == "plat-apps"
    proc = sbkube(
        "deploy", "--app-dir", str(platform), "--memory-cluster", str(cluster_file),
        "--phase", "monitoring",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "phases.monitoring.enabled: phase 'monitoring' is disabled" in expect_error(proc.stderr)


def test_status_of_a_file_of_phases_reads_the_run_and_finds_drift(
    sbkube: Any, platform: Path, live: Live
) -> None:
    code, _out, err = deploy(sbkube, platform, live)
    assert code == 0, err
    where = ["--app-dir", str(platform), "--kubeconfig", str(live.kubeconfig)]

    def status(*extra: str) -> tuple[int, Any]:
        proc = sbkube("status", *where, *extra, "-o", "json", "--exit-code")
        assert proc.returncode in (0, 1), proc.stderr
        return proc.returncode, json.loads(proc.stdout)

    code, report = status()
    assert code == 0
    assert report["namespace"] == "plat-infra"  # the run's record target
    assert {(a["phase"], a["name"]): a["state"] for a in report["apps"]} == {
        ("infra", "base"): "in-sync",
        ("data", "db"): "in-sync",
        ("data", "db-config"): "in-sync",
        ("data", "db-migrate"): "in-sync",
        ("monitoring", "probe"): "in-sync",
        ("apps", "web"): "in-sync",
    }
    # Edited behind sbkube's back: found, in its phase, by the live read.
    subprocess.run(
        [live.kubectl, "--kubeconfig", str(live.kubeconfig), "-n", "plat-apps", "patch",
         "configmap", "web", "--type", "merge", "-p", '{"data": {"replicas": "7"}}'],
        env=live.env, check=True, capture_output=True,
    )  # fmt: skip
    code, report = status()
    assert code == 1
    drifted = {a["name"]: a for a in report["apps"] if a["state"] != "in-sync"}
    assert list(drifted) == ["web"]
    assert drifted["web"]["phase"] == "apps"
    assert drifted["web"]["objects"][0]["fields"] == ["data.replicas"]
    code, report = status("--phase", "apps", "--no-deps")
    assert [(a["phase"], a["name"], a["state"]) for a in report["apps"]] == [
        ("apps", "web", "drifted")
    ]
    table = sbkube("status", *where)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].split()[:2] == ["PHASE", "APP"]
    for extra, said in (
        (("--profile", "prod"), "--profile prod: no such profile (none defined;"),
        (("--phase", "nope"), "--phase nope: no such phase"),
        (("-n", "other"), "a file of phases is recorded under its own namespace: plat-infra"),
    ):
        bad = sbkube("status", *where, *extra)
        assert bad.returncode == 2 and said in bad.stderr, bad.stderr
    plain = sbkube("status", "--app-dir", str(platform / "apps"), "--phase", "x", *where[2:])
    assert plain.returncode == 2 and "has no phases: in its config" in plain.stderr


def test_diff_of_a_file_of_phases_compares_each_phase_with_the_run(
    sbkube: Any, platform: Path, live: Live
) -> None:
    code, _out, err = deploy(sbkube, platform, live)
    assert code == 0, err
    where = ["--app-dir", str(platform), "--kubeconfig", str(live.kubeconfig)]
    same = sbkube("diff", *where, "--exit-code", "-o", "json")
    assert same.returncode == 0, same.stderr
    assert not json.loads(same.stdout)["changed"]
    web = platform / "apps" / "web.yaml"
    web.write_text(web.read_text().replace('replicas: "1"', 'replicas: "3"'))
    proc = sbkube("diff", *where, "--exit-code", "-o", "json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["namespace"] == "plat-infra"
    changed = [(a["phase"], a["name"]) for a in result["apps"] if a["changed"]]
    assert changed == [("apps", "web")]
    assert [o["fields"] for o in result["apps"][-1]["objects"]] == [["data.replicas"]]
    assert len(result["apps"]) == 6
    alone = sbkube.json("diff", *where, "--phase", "data", "--no-deps")
    assert [(a["phase"], a["name"]) for a in alone["apps"]] == [
        ("data", "db"),
        ("data", "db-config"),
        ("data", "db-migrate"),
    ]
    table = sbkube("diff", *where, "--phase", "apps", "--no-deps")
    assert "== phase apps: web (yaml)" in table.stdout, table.stderr
    # Nothing was applied: the live object is still the deployed one.
    assert live.objects()["plat-apps/web"]["data"] == {"replicas": "1"}


def test_template_of_a_file_of_phases_renders_what_the_run_applies(
    sbkube: Any, platform: Path, live: Live
) -> None:
    proc = sbkube("template", "--app-dir", str(platform))
    assert proc.returncode == 0, proc.stderr
    headers = re.findall(r"^# sbkube app: (\S+) \((\w+), namespace (\S+), phase (\w+)\)$",
                         proc.stdout, re.MULTILINE)  # fmt: skip
    assert headers == [
        ("base", "yaml", "plat-infra", "infra"),
        ("db", "helm", "plat-apps", "data"),
        ("db-config", "yaml", "plat-apps", "data"),
        ("db-migrate", "exec", "plat-apps", "data"),
        ("probe", "yaml", "plat-infra", "monitoring"),
        ("web", "yaml", "plat-apps", "apps"),
    ]
    code, _out, err = deploy(sbkube, platform, live)
    assert code == 0, err
    rendered = sbkube.json("template", "--app-dir", str(platform), "-o", "json")
    configmaps = {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}": {
            "data": d.get("data"),
            "labels": d["metadata"].get("labels"),
        }
        for d in rendered
        if d["kind"] == "ConfigMap"
    }
    # Every ConfigMap the run applied, as kubectl reads it back, is the rendered one (Helm
    # adds its own managed-by label to what it installs).
    live_now = live.objects()
    assert live_now["plat-apps/db-kv"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"}
    live_now["plat-apps/db-kv"]["labels"] = None
    assert {k: live_now.get(k) for k in configmaps} == configmaps
    assert len(configmaps) == 5
    alone = sbkube.json("template", "--app-dir", str(platform), "--phase", "apps", "--no-deps",
                        "-o", "json")  # fmt: skip
    assert [d["metadata"]["name"] for d in alone] == ["web"]


def test_a_profile_reaches_the_file_and_each_app_dir_that_defines_it(
    sbkube: Any, platform: Path, live: Live
) -> None:
    with (platform / "config.yaml").open("a") as fh:
        fh.write("environments:\n  prod:\n    phases:\n      monitoring: {enabled: false}\n")
    with (platform / "data" / "config.yaml").open("a") as fh:
        fh.write(
            "environments:\n  prod:\n    apps:\n      db:\n        set: {data: {mode: large}}\n"
        )
    code, out, err = deploy(sbkube, platform, live, "--profile", "prod")
    assert code == 0, err
    # The file's overlay left monitoring out; data's gave db its value; the app dirs
    # without a prod environment (infra, apps) deployed as they are.
    assert sorted(a["name"] for a in out["apps"]) == [
        "base", "db", "db-config", "db-migrate", "web",
    ]  # fmt: skip
    values, _manifest = live.helm_state("db", "plat-apps")
    assert values == {"data": {"mode": "large"}}
    objects = live.objects()
    assert objects["plat-apps/db-kv"]["data"] == {"mode": "large"}
    assert "plat-infra/probe" not in objects
    listed = sbkube.json("state", "list", "--profile", "prod")
    assert [d["deployment_id"] for d in listed] == [out["deployment_id"]]
    assert listed[0]["profile"] == "prod"
    where = ["--app-dir", str(platform), "--kubeconfig", str(live.kubeconfig)]
    report = sbkube.json("status", *where, "--profile", "prod")
    assert {a["name"]: a["state"] for a in report["apps"]} == {
        "base": "in-sync", "db": "in-sync", "db-config": "in-sync",
        "db-migrate": "in-sync", "web": "in-sync",
    }  # fmt: skip
    rendered = sbkube.json("template", "--app-dir", str(platform), "--profile", "prod",
                           "--phase", "data", "--no-deps", "-o", "json")  # fmt: skip
    assert rendered[0]["data"] == {"mode": "large"}
    bad = sbkube("deploy", *where, "--profile", "nope")
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .endswith("config.yaml: --profile nope: no such profile (known: prod)")
    ), bad.stderr


def test_the_original_files_settings_name_the_runs_cluster(
    sbkube: Any, tmp_path: Path, kube: Any
) -> None:
    root = tmp_path / "orig"
    for name in ("one", "two"):
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text(
            f"namespace: {name}\napps:\n  cm-{name}: {{type: yaml, manifests: [cm.yaml]}}\n"
        )
        (root / name / "cm.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{name}}}\n"
        )
    (root / "sbkube.yaml").write_text(
        "apiVersion: sbkube/v1\n"
        "settings:\n"
        "  namespace: orig\n"
        "  kubeconfig: ./cluster.kubeconfig\n"
        "  kubeconfig_context: memory\n"
        "phases:\n"
        "  one: {source: one}\n"
        "  two: {source: two, depends_on: [one]}\n"
    )
    k = kube(root)
    # No --kubeconfig and no KUBECONFIG: the file's settings say where the run goes.
    proc = sbkube("deploy", "--app-dir", str(root), "-o", "json", env={"KUBECONFIG": ""})
    assert proc.returncode == 0, proc.stderr
    for name in ("one", "two"):
        items = k.kubectl("get", "configmaps", "-n", name)["items"]
        assert [i["metadata"]["name"] for i in items] == [f"cm-{name}"]


def test_uninstall_of_a_file_of_phases_is_one_recorded_run_that_rollback_undoes(
    sbkube: Any, platform: Path, live: Live
) -> None:
    code, _out, err = deploy(sbkube, platform, live)
    assert code == 0, err
    before = live.objects()
    where = ["--app-dir", str(platform), "--kubeconfig", str(live.kubeconfig)]
    plan = sbkube.json("uninstall", *where, "--phase", "data", "--dry-run")
    # data and the phase that needs it (apps), later phases first; infra and monitoring stay.
    assert [(a["phase"], a["name"]) for a in plan["plan"]["apps"]] == [
        ("apps", "web"),
        ("data", "db-config"),
        ("data", "db"),
    ]
    assert live.objects() == before  # a dry run changes nothing
    proc = sbkube("uninstall", *where, "--phase", "data", "-y", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["namespace"] == "plat-infra"
    now = live.objects()
    assert sorted(now) == ["plat-infra/base", "plat-infra/probe"]
    assert [r["status"] for r in live.helm_history("db", "plat-apps")] == ["uninstalled"]
    shown = sbkube.json("state", "show", result["deployment_id"])
    assert shown["command"] == "uninstall"
    assert {a["name"]: a["metadata"]["phase"] for a in shown["apps"]} == {
        "web": "apps",
        "db-config": "data",
        "db": "data",
    }
    # The run's history holds the removal: a rollback of the file brings it all back.
    back = sbkube("rollback", *where, "-y", "-o", "json")
    assert back.returncode == 0, back.stderr
    assert live.objects() == before
    bad = sbkube("uninstall", *where, "--app", "web", "--dry-run")
    assert bad.returncode == 2 and "give --phase NAME" in bad.stderr, bad.stderr
