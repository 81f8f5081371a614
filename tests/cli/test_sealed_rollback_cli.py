"""Exact rollbacks, Secrets and chart values included (issue 22, sealed values).

The real ``sbkube`` deploys to a served local API server (``memory-cluster serve``), and
the real ``kubectl`` and ``helm`` read the cluster back: a YAML app's Deployment and Secret,
and a Helm app whose values hold a password, deployed as v1 then v2 and rolled back to v1,
equal v1 field for field; the store holds none of the secret values; without the seal key
the rollback refuses, naming the Secret, and changes nothing; a Helm release deleted and
re-created behind sbkube's back is rolled back to the recorded chart and values, not to
the new release's revision of the same number.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.helm, pytest.mark.kube]

NS = "sealed"
DEP_ID = re.compile(r"dep-\d{8}-\d{6}-[0-9a-f]{6}")


def _secret_text(tag: str) -> str:
    return f"{tag}-" + "".join(secrets.choice(string.ascii_letters) for _ in range(14))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Version:
    """One version of the test app's inputs: every value the acceptance names, changed
    from one version to the next, and the secrets they hold."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.password = _secret_text(f"pw{n}")  # Secret stringData
        self.token = _secret_text(f"tok{n}")  # Secret data (base64)
        self.chart_password = _secret_text(f"chartpw{n}")  # Helm values
        self.topology = ["kubernetes.io/hostname", "topology.kubernetes.io/zone"][n - 1]
        # Both keys are in the Secret of every version; the Deployment refers to the other.
        self.ref_key = ["db-password", "api-password"][n - 1]
        self.toleration = f"dedicated-v{n}"
        self.expression = f"tier-v{n}"
        self.item = f"app-v{n}.conf"

    @property
    def secrets(self) -> list[str]:
        return [self.password, self.token, self.chart_password]

    def manifests(self) -> str:
        return textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: Secret
            metadata:
              name: app-credentials
            type: Opaque
            stringData:
              db-password: "{self.password}"
              api-password: "{self.password}-api"
            data:
              token: "{_b64(self.token)}"
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: app
            spec:
              replicas: 1
              selector:
                matchLabels: {{app: app}}
              template:
                metadata:
                  labels: {{app: app}}
                spec:
                  affinity:
                    podAntiAffinity:
                      preferredDuringSchedulingIgnoredDuringExecution:
                        - weight: 50
                          podAffinityTerm:
                            topologyKey: {self.topology}
                            labelSelector:
                              matchExpressions:
                                - key: {self.expression}
                                  operator: In
                                  values: ["a", "b"]
                  tolerations:
                    - key: {self.toleration}
                      operator: Exists
                      effect: NoSchedule
                  containers:
                    - name: app
                      image: nginx:1.27
                      env:
                        - name: DB_PASSWORD
                          valueFrom:
                            secretKeyRef:
                              name: app-credentials
                              key: {self.ref_key}
                      volumeMounts:
                        - name: conf
                          mountPath: /etc/app
                  volumes:
                    - name: conf
                      secret:
                        secretName: app-credentials
                        items:
                          - key: token
                            path: {self.item}
            """
        )

    def chart_values(self) -> dict[str, Any]:
        return {"greeting": f"hello-v{self.n}", "auth": {"password": self.chart_password}}


CHART_TEMPLATE = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Secret
    metadata:
      name: {{ .Release.Name }}-auth
    type: Opaque
    data:
      password: {{ .Values.auth.password | b64enc | quote }}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ .Release.Name }}-settings
    data:
      greeting: {{ .Values.greeting | quote }}
    """
)


def write_app(root: Path, version: Version, *, helm: bool = True, yaml: bool = True) -> Path:
    chart = root / "charts" / "vault"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: vault\nversion: 1.0.0\n")
    (chart / "templates" / "all.yaml").write_text(CHART_TEMPLATE)
    (root / "values.yaml").write_text(json.dumps(version.chart_values()))
    (root / "app.yaml").write_text(version.manifests())
    apps = ""
    if helm:
        apps += "  vault:\n    type: helm\n    chart: ./charts/vault\n    values: [values.yaml]\n"
    if yaml:
        apps += "  app:\n    type: yaml\n    manifests: [app.yaml]\n"
    (root / "config.yaml").write_text(f"namespace: {NS}\napps:\n{apps}")
    return root


class Tools:
    """The real kubectl and helm against the served cluster."""

    def __init__(self, env: dict[str, str], kubectl: str, helm: str, kubeconfig: Path) -> None:
        self.env, self.kubectl, self.helm, self.kubeconfig = env, kubectl, helm, kubeconfig

    def _run(self, *argv: str) -> str:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, timeout=300, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def get(self, kind: str, name: str) -> dict[str, Any]:
        out = self._run(
            self.kubectl,
            "--kubeconfig",
            str(self.kubeconfig),
            "-n",
            NS,
            "get",
            kind,
            name,
            "-o",
            "json",
        )
        return json.loads(out)  # type: ignore[no-any-return]

    def all_objects(self) -> str:
        return self._run(
            self.kubectl, "--kubeconfig", str(self.kubeconfig), "-n", NS, "get",
            "secrets,configmaps,deployments", "-o", "json",
        )  # fmt: skip

    def helm_values(self, release: str) -> dict[str, Any]:
        out = self._run(
            self.helm, "--kubeconfig", str(self.kubeconfig), "get", "values", release,
            "-n", NS, "-o", "json",
        )  # fmt: skip
        return json.loads(out) or {}

    def helm_uninstall(self, release: str) -> None:
        self._run(self.helm, "--kubeconfig", str(self.kubeconfig), "uninstall", release, "-n", NS)


@pytest.fixture
def tools(sbkube: Any, served: Any, kubectl_binary: str, helm_binary: str) -> Tools:
    _server, kubeconfig = served()
    return Tools(sbkube.env, kubectl_binary, helm_binary, kubeconfig)


def as_applied(obj: dict[str, Any]) -> dict[str, Any]:
    """A live object without what the server writes on every change (so v1 and its
    restoration compare field for field): resourceVersion, generation, managedFields,
    status."""
    out = json.loads(json.dumps(obj))
    meta = out["metadata"]
    for field in ("resourceVersion", "generation", "managedFields"):
        meta.pop(field, None)
    meta.get("annotations", {}).pop("deployment.kubernetes.io/revision", None)
    out.pop("status", None)
    return out


def store_bytes(state_db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(state_db.parent.glob(state_db.name + "*")))


def assert_no_secret_in_store(state_db: Path, *versions: Version) -> None:
    data = store_bytes(state_db)
    encoded = base64.b64encode(data)
    for version in versions:
        for text in version.secrets:
            for form in (text, _b64(text), _b64(text).rstrip("=")):
                assert form.encode() not in data, f"{form} in the store file"
                assert _b64(form).encode()[:16] not in encoded


def deploy(sbkube: Any, app: Path, kubeconfig: Path) -> str:
    out = sbkube.json("deploy", "--app-dir", str(app), "--kubeconfig", str(kubeconfig))
    assert out["status"] == "success", out
    return str(out["deployment_id"])


def rollback(
    sbkube: Any, app: Path, kubeconfig: Path, to: str, env: dict[str, str] | None = None
) -> Any:
    return sbkube(
        "rollback", "--app-dir", str(app), "--kubeconfig", str(kubeconfig), "--to", to, "-y",
        env=env,
    )  # fmt: skip


def test_yaml_and_helm_apps_roll_back_exactly_secrets_included(
    sbkube: Any, tools: Tools, tmp_path: Path, state_db: Path
) -> None:
    v1, v2 = Version(1), Version(2)
    app = write_app(tmp_path / "app", v1)
    first = deploy(sbkube, app, tools.kubeconfig)
    want_deployment = as_applied(tools.get("deployment", "app"))
    want_secret = as_applied(tools.get("secret", "app-credentials"))
    want_chart_secret = as_applied(tools.get("secret", "vault-auth"))
    want_values = tools.helm_values("vault")
    assert want_values == v1.chart_values()
    assert want_secret["data"] == {
        "token": _b64(v1.token),
        "db-password": _b64(v1.password),
        "api-password": _b64(v1.password + "-api"),
    }

    write_app(app, v2)
    deploy(sbkube, app, tools.kubeconfig)
    assert tools.helm_values("vault") == v2.chart_values()
    assert as_applied(tools.get("deployment", "app")) != want_deployment

    proc = rollback(sbkube, app, tools.kubeconfig, first)
    assert proc.returncode == 0, proc.stderr

    assert as_applied(tools.get("deployment", "app")) == want_deployment
    # The Secret is v1's: v2's key is gone (a server-side apply by the same manager).
    assert as_applied(tools.get("secret", "app-credentials")) == want_secret
    assert tools.helm_values("vault") == want_values
    assert as_applied(tools.get("secret", "vault-auth")) == want_chart_secret
    assert_no_secret_in_store(state_db, v1, v2)
    # Nor does any output: state show, diff, export.
    for args in (("state", "show", "latest"), ("state", "diff", first, "latest")):
        out = sbkube(*args, "-o", "json")
        assert out.returncode == 0, out.stderr
        for text in (*v1.secrets, *v2.secrets):
            assert text not in out.stdout + out.stderr
    exported = sbkube("state", "export")
    assert exported.returncode == 0 and "sbkseal1:" in exported.stdout
    for text in (*v1.secrets, *v2.secrets):
        assert text not in exported.stdout


def test_without_the_seal_key_the_rollback_refuses_and_changes_nothing(
    sbkube: Any, tools: Tools, tmp_path: Path, state_db: Path
) -> None:
    v1, v2 = Version(1), Version(2)
    app = write_app(tmp_path / "app", v1, helm=False)
    first = deploy(sbkube, app, tools.kubeconfig)
    write_app(app, v2, helm=False)
    deploy(sbkube, app, tools.kubeconfig)
    live_before = tools.all_objects()
    exported_before = sbkube("state", "export").stdout
    key = tmp_path / "config" / "sbkube" / "seal.key"
    assert key.exists()
    key.rename(key.with_suffix(".away"))

    proc = rollback(sbkube, app, tools.kubeconfig, first)

    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Secret sealed/app-credentials" in lines[0]
    assert "Deployment" not in lines[0]  # its recorded state holds no secret
    assert tools.all_objects() == live_before
    assert sbkube("state", "export").stdout == exported_before
    assert not key.exists()  # reading never makes a key

    # Another key than the one that sealed them: the same refusal.
    other = rollback(sbkube, app, tools.kubeconfig, first, env={"SBKUBE_SEAL_KEY": "other"})
    assert other.returncode == 2 and "Secret sealed/app-credentials" in other.stderr
    assert tools.all_objects() == live_before

    # The key back: the rollback restores v1's Secret.
    key.with_suffix(".away").rename(key)
    proc = rollback(sbkube, app, tools.kubeconfig, first)
    assert proc.returncode == 0, proc.stderr
    assert tools.get("secret", "app-credentials")["data"] == {
        "token": _b64(v1.token),
        "db-password": _b64(v1.password),
        "api-password": _b64(v1.password + "-api"),
    }


def test_a_release_recreated_behind_sbkubes_back_is_upgraded_to_the_recorded_values(
    sbkube: Any, tools: Tools, tmp_path: Path
) -> None:
    v1, v2 = Version(1), Version(2)
    app = write_app(tmp_path / "app", v1, yaml=False)
    first = deploy(sbkube, app, tools.kubeconfig)
    want_values = tools.helm_values("vault")
    want = {
        name: as_applied(tools.get(kind, name))
        for kind, name in (("secret", "vault-auth"), ("configmap", "vault-settings"))
    }
    tools.helm_uninstall("vault")
    write_app(app, v2, yaml=False)
    deploy(sbkube, app, tools.kubeconfig)  # a new release: its revision 1 holds v2
    assert tools.helm_values("vault") == v2.chart_values()

    plan = sbkube(
        "rollback", "--app-dir", str(app), "--kubeconfig", str(tools.kubeconfig),
        "--to", first, "--dry-run",
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert re.search(r"^vault\s+helm\s+helm-upgrade\s", plan.stdout, re.M), plan.stdout
    assert "revision 1 holds other values than recorded" in plan.stderr

    proc = rollback(sbkube, app, tools.kubeconfig, first)
    assert proc.returncode == 0, proc.stderr

    assert tools.helm_values("vault") == want_values
    for name, obj in want.items():
        kind = "secret" if name == "vault-auth" else "configmap"
        got = as_applied(tools.get(kind, name))
        # A re-created object: its identity is new, its content is the first deployment's.
        for field in ("uid", "creationTimestamp"):
            got["metadata"].pop(field, None)
            obj["metadata"].pop(field, None)
        assert got == obj
    rolled = sbkube.json("state", "show", DEP_ID.findall(proc.stdout)[-1])
    info = rolled["apps"][0]["rollback_info"]
    assert info["action"] == "helm-upgrade"
    assert "other values" in info["reason"]
    assert rolled["apps"][0]["helm_releases"][0]["revision"] == 2
