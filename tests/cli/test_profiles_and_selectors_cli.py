"""``--profile`` and ``-l/--selector`` end to end: the real sbkube against a served memory
cluster, checked with the real helm and kubectl; the record keeps the profile, and
``state list --profile`` finds exactly those deployments."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error

pytestmark = [pytest.mark.kube, pytest.mark.helm]

CHART = Path(__file__).resolve().parents[1] / "fixtures" / "charts" / "demo-redis"
CONFIG = """\
namespace: shop
apps:
  db:
    type: yaml
    manifests: [db.yaml]
    labels: {tier: data}
  cache:
    type: helm
    chart: ./charts/demo-redis
    labels: {tier: data, team: shop}
    set: {replicaCount: 1}
  api:
    type: yaml
    manifests: [api.yaml]
    depends_on: [db]
    labels: {tier: back, team: shop}
  web:
    type: yaml
    manifests: [web.yaml]
    depends_on: [api]
    labels: {tier: front, team: shop}
environments:
  prod:
    namespace: shop-prod
    apps:
      cache: {set: {replicaCount: 2}}
"""


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    app_dir = tmp_path / "platform"
    shutil.copytree(CHART, app_dir / "charts" / "demo-redis")
    (app_dir / "config.yaml").write_text(CONFIG)
    for name in ("db", "api", "web"):
        (app_dir / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{app: {name}}}\n"
        )
    return app_dir


class Kube:
    def __init__(self, env: dict[str, str], kubectl: str, helm: str, kubeconfig: Path) -> None:
        self.env, self.kubectl_exe, self.helm_exe = env, kubectl, helm
        self.kubeconfig = str(kubeconfig)

    def _json(self, exe: str, *argv: str) -> Any:
        proc = subprocess.run(
            [exe, "--kubeconfig", self.kubeconfig, *argv, "-o", "json"],
            capture_output=True, text=True, env=self.env, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def configmaps(self, namespace: str) -> set[str]:
        items = self._json(self.kubectl_exe, "get", "configmaps", "-n", namespace)["items"]
        return {i["metadata"]["name"] for i in items if i["metadata"]["name"] in APPS}

    def releases(self, namespace: str) -> dict[str, str]:
        listed = self._json(self.helm_exe, "list", "-n", namespace)
        return {r["name"]: r["status"] for r in listed}

    def values(self, release: str, namespace: str) -> Any:
        return self._json(self.helm_exe, "get", "values", release, "-n", namespace)


APPS = {"db", "api", "web"}


def test_profile_and_selector_deploy_exactly_the_picked_apps(
    sbkube: Any, served: Any, platform: Path, kubectl_binary: str, helm_binary: str
) -> None:
    _server, kubeconfig = served()
    kube = Kube(sbkube.env, kubectl_binary, helm_binary, kubeconfig)
    base = ("--app-dir", str(platform), "--kubeconfig", str(kubeconfig))

    # web, with what it needs (api, db), in the prod environment's namespace.
    front = sbkube.json("deploy", *base, "--profile", "prod", "-l", "tier=front")
    assert [a["name"] for a in front["apps"]] == ["db", "api", "web"]
    assert front["namespace"] == "shop-prod"
    assert kube.configmaps("shop-prod") == {"db", "api", "web"}
    assert kube.releases("shop-prod") == {}

    # The data tier alone, without a profile: the Helm app is picked by its labels too.
    data = sbkube.json("deploy", *base, "-l", "tier=data", "--no-deps")
    assert [a["name"] for a in data["apps"]] == ["db", "cache"]
    assert kube.configmaps("shop") == {"db"}
    assert kube.releases("shop") == {"cache": "deployed"}
    assert kube.values("cache", "shop")["replicaCount"] == 1

    # The profile's values reach helm; OR of two selectors.
    both = sbkube.json("deploy", *base, "--profile", "prod", "-l", "team=shop,tier!=back",
                       "-l", "tier=data", "--no-deps")  # fmt: skip
    assert [a["name"] for a in both["apps"]] == ["db", "cache", "web"]
    assert kube.values("cache", "shop-prod")["replicaCount"] == 2

    # The record keeps the profile; state list filters on it.
    listed = sbkube.json("state", "list", "--profile", "prod")
    assert [d["deployment_id"] for d in listed] == [both["deployment_id"], front["deployment_id"]]
    assert {d["profile"] for d in listed} == {"prod"}
    assert sbkube.json("state", "show", data["deployment_id"])["profile"] is None
    shown = sbkube("state", "show", front["deployment_id"])
    assert ["Profile:", "prod"] in [line.split() for line in shown.stdout.splitlines()]
    table = sbkube("state", "list")
    assert "PROFILE" in table.stdout.splitlines()[0]
    history = sbkube.json("state", "history", "web")
    assert [(h["deployment_id"], h["profile"]) for h in history] == [
        (both["deployment_id"], "prod"),
        (front["deployment_id"], "prod"),
    ]

    # diff and status take the same selection.
    diff = sbkube.json("diff", *base, "--profile", "prod", "-l", "tier=back", "--no-deps")
    assert [a["name"] for a in diff["apps"]] == ["api"]
    status = sbkube.json("status", *base, "-l", "tier=data", "--no-deps")
    assert [a["name"] for a in status["apps"]] == ["db", "cache"]

    # Uninstall takes the apps that need the picked one (they would break without it).
    gone = sbkube.json("uninstall", *base, "--profile", "prod", "-l", "name=api", "-y")
    assert sorted(a["name"] for a in gone["apps"]) == ["api", "web"]
    assert kube.configmaps("shop-prod") == {"db"}
    assert kube.releases("shop-prod") == {"cache": "deployed"}
    assert kube.configmaps("shop") == {"db"}

    # Nothing matched, or an unknown profile: one line, exit 2, nothing recorded.
    count = len(sbkube.json("state", "list"))
    assert_one_line_error(sbkube("deploy", *base, "-l", "tier=nope"), "-l tier=nope", "no app")
    assert_one_line_error(
        sbkube("deploy", *base, "--profile", "staging"), "--profile staging", "known: prod"
    )
    assert len(sbkube.json("state", "list")) == count


def test_template_renders_only_the_picked_apps(sbkube: Any, platform: Path) -> None:
    rendered = sbkube.json("template", "--app-dir", str(platform), "-l", "tier=back")
    assert [(o["metadata"]["name"], o["metadata"]["namespace"]) for o in rendered] == [
        ("db", "shop"),
        ("api", "shop"),
    ]
    prod = sbkube.json("template", "--app-dir", str(platform), "--profile", "prod",
                       "-l", "name=web", "--no-deps")  # fmt: skip
    assert [(o["metadata"]["name"], o["metadata"]["namespace"]) for o in prod] == [
        ("web", "shop-prod")
    ]
