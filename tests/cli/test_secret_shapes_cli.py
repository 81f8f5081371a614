"""Secrets learned once, hidden everywhere (issue 22): the real ``sbkube`` on ``--memory-cluster``,
with the real helm and kubectl, on SQLite and PostgreSQL.

* Shapes: JSON inside a string value (chart values and a plain-YAML ConfigMap), a password
  a chart copies from a live Secret through ``lookup`` (the Secret made behind sbkube's
  back with kubectl), ``mysql -pPASS`` in a command string and in an argument list, and
  ``Authorization: Basic …``/``Bearer …`` headers. No sentinel (nor its base64, URL or
  plain-sha256 form) is in the store (the SQLite file's bytes, every PostgreSQL row) or
  in any command's output: deploy, ``state show -o json``, ``state diff``, ``state
  history``, ``state report``.
* A partial deploy: ``--app web`` of a config whose other app renders ``admin.code`` (a
  key that does not look secret) into a Secret stores that value nowhere, neither before
  the other app was ever deployed nor after; a later value ``old + "2"`` is hidden whole
  (never ``<digest of old>2``), and so is everything an uninstall records.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import LiveCluster
from test_secrets_corpus import _sentinel, leaks, pg_rows

pytestmark = pytest.mark.kube

# A digest with something glued to its end: what a substring replacement used to leave.
GLUED_DIGEST = re.compile(r"hmac-sha256:[0-9a-f]{65}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, state_db: Path) -> tuple[str, str | None]:
    """(the --state value the CLI gets, the URL the test reads it back through)."""
    if request.param == "sqlite":
        return str(state_db), None
    url: str = request.getfixturevalue("pg_schema_url")
    return url, url


def store_leaks(corpus: dict[str, str], backend: tuple[str, str | None]) -> list[str]:
    state_arg, pg_url = backend
    if pg_url is not None:
        text = pg_rows(pg_url)
        found = leaks(corpus, text, "postgres rows")
        return found + [f"postgres rows: glued digest {m}" for m in GLUED_DIGEST.findall(text)]
    found = []
    db = Path(state_arg)
    for path in db.parent.glob(db.name + "*"):
        data = path.read_bytes()
        found += leaks(corpus, data, path.name)
        found += [
            f"{path.name}: glued digest" for _ in GLUED_DIGEST.finditer(data.decode("latin-1"))
        ]
    return found


class Runner:
    """Runs ``sbkube --state S`` and keeps every output for the leak check."""

    def __init__(self, sbkube: Any, state_arg: str) -> None:
        self.sbkube, self.state_arg = sbkube, state_arg
        self.outputs: list[tuple[str, str]] = []

    def __call__(self, *args: str, ok: bool = True) -> str:
        proc = self.sbkube("--state", self.state_arg, *args, timeout=300)
        self.outputs += [(f"{' '.join(args[:3])} stdout", proc.stdout)]
        self.outputs += [(f"{' '.join(args[:3])} stderr", proc.stderr)]
        if ok:
            assert proc.returncode == 0, proc.stderr
        return str(proc.stdout)

    def read_everything(self, app: str, tmp_path: Path) -> None:
        """Every read command, over the whole history."""
        listed = json.loads(self("state", "list", "-o", "json"))
        ids = sorted(d["deployment_id"] for d in listed)
        for dep in ids:
            self("state", "show", dep, "-o", "json")
            self("state", "show", dep)
        for a, b in itertools.pairwise(ids):
            self("state", "diff", a, b)
            self("state", "diff", a, b, "-o", "json")
        self("state", "history", app)
        self("state", "history", app, "-o", "json")
        report = tmp_path / "report.html"
        self("state", "report", "--html", str(report))
        self.outputs.append(("report", report.read_text()))

    def leaks(self, corpus: dict[str, str]) -> list[str]:
        return [hit for where, text in self.outputs for hit in leaks(corpus, text, where)]


SHAPES_CHART = textwrap.dedent(
    """\
    {{- $creds := lookup "v1" "Secret" .Release.Namespace "db-creds" }}
    {{- $password := dig "data" "password" "" $creds | b64dec }}
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ .Release.Name }}-conf
    data:
      settings.json: {{ .Values.config | quote }}
      copied: {{ $password | quote }}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ .Release.Name }}-app
    spec:
      selector:
        matchLabels: {app: shapes}
      template:
        metadata:
          labels: {app: shapes}
        spec:
          containers:
            - name: app
              image: nginx:1.27
              command: ["sh", "-c", {{ .Values.dbCommand | quote }}]
              env: {{ toJson .Values.headers }}
    """
)


def write_shapes_app(root: Path, c: dict[str, str]) -> None:
    chart = root / "charts" / "shapes"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: shapes\nversion: 1.0.0\n")
    (chart / "templates" / "all.yaml").write_text(SHAPES_CHART)
    values = {
        "config": json.dumps({"db": {"user": "app", "password": c["json values"]}}),
        "dbCommand": f"mysql -h db -uroot -p{c['-p command']} app < /dump.sql",
        "headers": [{"name": "AUTH_HEADER", "value": f"Bearer {c['bearer header']}"}],
    }
    (root / "values.yaml").write_text(json.dumps(values, indent=1))
    basic = base64.b64encode(f"admin:{c['basic password']}".encode()).decode()
    (root / "m").mkdir(exist_ok=True)
    (root / "m" / "app.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "plain-conf"},
                        "data": {
                            "app.json": json.dumps([{"name": "x", "token": c["json configmap"]}]),
                            "probe": f"curl -H 'Authorization: Basic {basic}' http://web/",
                            "mode": "visible",
                        },
                    },
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "metadata": {"name": "dump"},
                        "spec": {
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [
                                        {
                                            "name": "dump",
                                            "image": "mysql:8",
                                            "args": ["mysqldump", "-uroot", f"-p{c['-p args']}"],
                                        }
                                    ],
                                }
                            }
                        },
                    },
                ],
            }
        )
    )
    (root / "config.yaml").write_text(
        "namespace: shapes\napps:\n"
        "  web: {type: helm, chart: ./charts/shapes, values: [values.yaml]}\n"
        "  plain: {type: yaml, manifests: [m/app.yaml]}\n"
    )


def test_every_shape_is_hidden_in_the_store_and_in_every_output(
    sbkube: Any, tmp_path: Path, cluster_file: Path, backend: tuple[str, str | None]
) -> None:
    corpus = {
        name: _sentinel(i)
        for i, name in enumerate(
            [
                "json values",
                "json configmap",
                "lookup",
                "-p command",
                "-p args",
                "bearer header",
                "basic password",
            ],
            start=1,
        )
    }
    app = tmp_path / "app"
    write_shapes_app(app, corpus)
    # The Secret the chart looks up, made behind sbkube's back, as an operator would.
    from sbkube.cluster.memory import MemoryCluster

    with MemoryCluster(path=cluster_file) as cluster:
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shapes"}})
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db-creds", "namespace": "shapes"},
                "stringData": {"password": corpus["lookup"]},
            }
        )
    run = Runner(sbkube, backend[0])
    mc = ["--memory-cluster", str(cluster_file)]
    run("deploy", "--app-dir", str(app), *mc)
    # Again, one value changed: the unchanged release (and its looked-up value) recorded anew.
    values = json.loads((app / "values.yaml").read_text())
    values["dbCommand"] = values["dbCommand"].replace("/dump.sql", "/dump2.sql")
    (app / "values.yaml").write_text(json.dumps(values))
    run("deploy", "--app-dir", str(app), *mc)
    run("deploy", "--app-dir", str(app), *mc, "--app", "plain")
    run.read_everything("web", tmp_path)

    # The chart did copy the looked-up password: the cluster holds it, the record does not.
    live = LiveCluster(cluster_file)
    conf = live.get(("v1", "ConfigMap", "shapes", "web-conf"))
    assert conf is not None and conf["data"]["copied"] == corpus["lookup"]
    assert live.get(("batch/v1", "Job", "shapes", "dump")) is not None
    found = run.leaks(corpus) + store_leaks(corpus, backend)
    assert not found, "\n".join(found)
    # What is not secret stays readable.
    shown = json.loads(run("state", "show", "latest", "-o", "json"))
    plain = next(a for a in shown["apps"] if a["name"] == "plain")
    assert '"mode": "visible"' in json.dumps(plain) or "visible" in json.dumps(plain)


CODE_CHART = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Secret
    metadata:
      name: {{ .Release.Name }}-admin
    stringData:
      admin-code: {{ .Values.admin.code | quote }}
    """
)


def write_code_app(root: Path, code: str) -> None:
    chart = root / "charts" / "creds"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: creds\nversion: 1.0.0\n")
    (chart / "templates" / "secret.yaml").write_text(CODE_CHART)
    (root / "m").mkdir(exist_ok=True)
    (root / "m" / "web.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {mode: visible}\n"
    )
    (root / "config.yaml").write_text(
        textwrap.dedent(
            f"""\
            namespace: partial
            apps:
              creds:
                type: helm
                chart: ./charts/creds
                set:
                  admin.code: "{code}"
              web:
                type: yaml
                manifests: [m/web.yaml]
            """
        )
    )


def test_a_partial_deploy_hides_what_another_apps_chart_renders_into_a_secret(
    sbkube: Any, tmp_path: Path, cluster_file: Path, backend: tuple[str, str | None]
) -> None:
    old = _sentinel(1)
    corpus = {"admin.code": old, "admin.code + 2": old + "2"}
    app = tmp_path / "app"
    mc = ["--memory-cluster", str(cluster_file)]
    run = Runner(sbkube, backend[0])

    write_code_app(app, old)
    run("deploy", "--app-dir", str(app), *mc, "--app", "web")  # creds never deployed yet
    assert not store_leaks(corpus, backend), store_leaks(corpus, backend)
    run("deploy", "--app-dir", str(app), *mc)
    write_code_app(app, old + "2")
    run("deploy", "--app-dir", str(app), *mc, "--app", "web")
    run("uninstall", "--app-dir", str(app), *mc, "--app", "web", "--yes")
    run.read_everything("web", tmp_path)

    secret = LiveCluster(cluster_file).get(("v1", "Secret", "partial", "creds-admin"))
    assert secret is not None  # the full deploy's value, live
    assert base64.b64decode(secret["data"]["admin-code"]).decode() == old
    found = run.leaks(corpus) + store_leaks(corpus, backend)
    assert not found, "\n".join(found)
    listed = json.loads(run("state", "list", "-o", "json"))
    assert len(listed) == 4, listed
