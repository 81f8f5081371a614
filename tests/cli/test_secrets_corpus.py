"""Secrets in every shape they come in never reach the store or the screen (issue 12).

The real ``sbkube`` deploys, on ``--memory-cluster``, a local chart and a plain-YAML app that
together carry a corpus of secret shapes, each with its own sentinel: values under secret
keys, the env idiom, URL passwords, secret flags in argument lists, a chart that
base64-encodes or URL-encodes a value, a Secret inside a ``kind: List``, credential formats,
a PEM key, a ConfigMap ``password:``, a value only a rendered Secret reveals, and (on
PostgreSQL) the password of the ``--state`` URL. It deploys twice (one secret changed),
then a third time with a chart that fails quoting a password. No sentinel — nor its base64,
URL-encoded or plain-sha256 form — may be in the store (the SQLite file's bytes, or every
row of every PostgreSQL table), in ``state show``/``diff``/``export``/``list`` output, or
in any command's stdout or stderr; and ``state diff`` still says which secret changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import stat
import string
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest


def _rand(n: int, alphabet: str = string.ascii_letters) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _sentinel(i: int) -> str:
    return f"Snt{i:02d}{_rand(12)}"


UPPER_DIGITS = string.ascii_uppercase + string.digits


def make_corpus() -> dict[str, str]:
    """shape -> sentinel."""
    s = {f"s{i:02d}": _sentinel(i) for i in range(1, 30)}
    return {
        "values: auth.password (key name, rendered into a Secret)": s["s01"],
        "values: auth.apiToken b64enc'd into a ConfigMap": s["s02"],
        "values: auth.clientSecret urlquery'd into a ConfigMap URL": s["s03"] + "/+=x",
        "values: env idiom {name: DB_PASSWORD, value}": s["s04"],
        "values: URL password under db.connection": s["s05"],
        "values: --db-password=V in additionalArguments": s["s06"],
        "values: --token V as two list items": s["s07"],
        "values: redis.auth.token b64enc'd into Secret data and urlquery'd": s["s08"],
        "values: password=V inside an ini blob": s["s09"],
        "values: AWS access key id under a plain key": "AKIA" + _rand(16, UPPER_DIGITS),
        "values: GitHub token under a plain key": "ghp_" + _rand(36, string.ascii_letters),
        "values: PEM private key under a plain key": _rand(48, string.ascii_letters),
        "values: JWT under a plain key": "eyJ" + _rand(20) + ".eyJ" + _rand(20) + "." + _rand(20),
        "values: password in a list of users": s["s14"],
        "values: redisPassword reappearing in a shell command": s["s15"],
        "values: plain key, only a rendered Secret in a List says it is secret": s["s16"],
        "values: plain key, b64enc'd into a Secret's data inside a List": s["s17"],
        "config.yaml set: auth.adminPassword": s["s18"],
        "yaml app: ConfigMap password:": s["s19"],
        "yaml app: env idiom {name: API_KEY, value}": s["s20"],
        "yaml app: [--api-key, V] in container args": s["s21"],
        "yaml app: URL password in an annotation": s["s22"],
        "yaml app: Secret data quoted in plain by a ConfigMap listed before it": s["s23"],
        "yaml app: URL password in a ConfigMap dsn": s["s24"],
        "yaml app: ConfigMap tls.key": s["s25"],
        "yaml app: --password=V inside a command string": s["s26"],
        "values: secret changed between deployments (old)": s["s27"],
        "values: secret changed between deployments (new)": s["s28"],
    }


CHART_YAML = "apiVersion: v2\nname: corpus\nversion: 1.0.0\nappVersion: '1.0'\n"

CHART_TEMPLATE = textwrap.dedent(
    """\
    {{- if .Values.failWith }}{{ fail (printf "refusing %s" .Values.auth.password) }}{{- end }}
    {{- $cs := urlquery .Values.auth.clientSecret }}
    {{- $cmd := printf "redis-server --requirepass %s" .Values.redisPassword }}
    apiVersion: v1
    kind: Secret
    metadata:
      name: {{ .Release.Name }}-auth
    stringData:
      password: {{ .Values.auth.password | quote }}
      rotating: {{ .Values.rotating.password | quote }}
    data:
      token: {{ .Values.redis.auth.token | b64enc | quote }}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ .Release.Name }}-conf
    data:
      connection: {{ .Values.db.connection | quote }}
      apiTokenB64: {{ .Values.auth.apiToken | b64enc | quote }}
      callback: {{ printf "https://example.com/cb?c=%s" $cs | quote }}
      tokenUrl: {{ .Values.redis.auth.token | urlquery | quote }}
      settings.ini: {{ .Values.config | quote }}
      aws: {{ .Values.aws.id | quote }}
      gh: {{ .Values.gh.pat | quote }}
      bundle: {{ .Values.bundle | quote }}
      bearer: {{ .Values.bearer | quote }}
      admin: {{ .Values.auth.adminPassword | quote }}
      users: {{ toJson .Values.users | quote }}
      listedCopy: {{ .Values.listed.plain | quote }}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ .Release.Name }}-app
    spec:
      selector:
        matchLabels: {app: corpus}
      template:
        metadata:
          labels: {app: corpus}
        spec:
          containers:
            - name: app
              image: nginx:1.27
              command: ["sh", "-c", {{ $cmd | quote }}]
              args: {{ toJson .Values.additionalArguments }}
              env: {{ toJson .Values.extraEnv }}
    ---
    apiVersion: v1
    kind: List
    items:
      - apiVersion: v1
        kind: Secret
        metadata:
          name: {{ .Release.Name }}-listed
        stringData:
          listed: {{ .Values.listed.plain | quote }}
        data:
          listedB64: {{ .Values.listed.encoded | b64enc | quote }}
    """
)


def write_app(root: Path, c: dict[str, str], *, rotating: str, fail: bool = False) -> Path:
    v = list(c.values())
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{v[11]}\n-----END RSA PRIVATE KEY-----\n"
    values: dict[str, Any] = {
        "auth": {"password": v[0], "apiToken": v[1], "clientSecret": v[2]},
        "extraEnv": [{"name": "DB_PASSWORD", "value": v[3]}, {"name": "MODE", "value": "prod"}],
        "db": {"connection": f"postgres://app:{v[4]}@db:5432/app"},
        "additionalArguments": [f"--db-password={v[5]}", "--token", v[6], "--log-level=info"],
        "redis": {"auth": {"token": v[7]}},
        "config": f"[main]\nuser=app\npassword={v[8]}\n",
        "aws": {"id": v[9]},
        "gh": {"pat": v[10]},
        "bundle": pem,
        "bearer": v[12],
        "users": [{"name": "bob", "password": v[13]}],
        "redisPassword": v[14],
        "listed": {"plain": v[15], "encoded": v[16]},
        "rotating": {"password": rotating},
        "failWith": fail,
    }
    chart = root / "charts" / "corpus"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(CHART_YAML)
    (chart / "templates" / "all.yaml").write_text(CHART_TEMPLATE)
    (root / "values.yaml").write_text(json.dumps(values, indent=1))
    b64 = base64.b64encode(v[22].encode()).decode()
    (root / "manifests").mkdir(exist_ok=True)
    (root / "manifests" / "app.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: plain-conf
              annotations:
                backup.example.com/target: "s3://backup:{v[21]}@bucket/x"
            data:
              password: "{v[18]}"
              copy: "{v[22]}"
              dsn: "mysql://root:{v[23]}@db:3306/x"
              tls.key: "{v[24]}"
              mode: visible
            ---
            apiVersion: v1
            kind: Secret
            metadata:
              name: plain-secret
            data:
              pw: "{b64}"
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: plain-app
            spec:
              selector:
                matchLabels: {{app: plain}}
              template:
                metadata:
                  labels: {{app: plain}}
                spec:
                  containers:
                    - name: app
                      image: nginx:1.27
                      command: ["sh", "-c", "exec app --password={v[25]} --verbose"]
                      args: ["--api-key", "{v[20]}", "--port", "8080"]
                      env:
                        - name: API_KEY
                          value: "{v[19]}"
            """
        )
    )
    (root / "config.yaml").write_text(
        textwrap.dedent(
            f"""\
            namespace: corpus
            apps:
              web:
                type: helm
                chart: ./charts/corpus
                values: [values.yaml]
                set:
                  auth.adminPassword: "{v[17]}"
              plain:
                type: yaml
                manifests: [manifests/app.yaml]
            """
        )
    )
    return root


def forms(secret: str) -> set[str]:
    raw = secret.encode()
    b64 = base64.b64encode(raw).decode()
    return {
        secret,
        b64,
        b64.rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        quote(secret, safe=""),
        quote_plus(secret),
        hashlib.sha256(raw).hexdigest(),
    }


def leaks(corpus: dict[str, str], text: str | bytes, where: str) -> list[str]:
    data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return [
        f"{where}: {shape} ({form!r})"
        for shape, secret in corpus.items()
        for form in forms(secret)
        if form in data
    ]


def pg_rows(url: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars()
            return "\n".join(
                json.dumps(row)
                for table in list(tables)
                for row in conn.execute(
                    sa.text(f'SELECT row_to_json(t) FROM "{table}" t')
                ).scalars()
            )
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, state_db: Path) -> tuple[str, str | None]:
    """(the --state value the CLI gets, the URL the test reads it back through)."""
    if request.param == "sqlite":
        return str(state_db), None
    url: str = request.getfixturevalue("pg_schema_url")
    return url, url


def test_no_secret_shape_reaches_store_or_output(
    sbkube: Any,
    tmp_path: Path,
    cluster_file: Path,
    state_db: Path,
    backend: tuple[str, str | None],
) -> None:
    corpus = make_corpus()
    state_arg, pg_url = backend
    if pg_url is not None:
        # Trust auth takes any password: the one in the URL must still never be recorded.
        db_password = _sentinel(40)
        corpus["--state URL password"] = db_password
        state_arg = pg_url.replace("postgres@", f"postgres:{db_password}@", 1)
    names = list(corpus)
    app = tmp_path / "app"
    app.mkdir()
    old, new = corpus[names[-3 if pg_url else -2]], corpus[names[-2 if pg_url else -1]]
    outputs: list[tuple[str, str]] = []

    def run(*args: str) -> str:
        proc = sbkube("--state", state_arg, *args, timeout=180)
        outputs.append((f"sbkube {args[0]} {args[1] if len(args) > 1 else ''} stdout", proc.stdout))
        outputs.append((f"sbkube {args[0]} {args[1] if len(args) > 1 else ''} stderr", proc.stderr))
        assert proc.returncode == 0 or args[0] == "deploy", proc.stderr
        return proc.stdout

    mc = ["--memory-cluster", str(cluster_file)]
    write_app(app, corpus, rotating=old)
    run("deploy", "--app-dir", str(app), *mc)
    write_app(app, corpus, rotating=new)
    run("deploy", "--app-dir", str(app), *mc)
    write_app(app, corpus, rotating=new, fail=True)
    failed = sbkube("--state", state_arg, "deploy", "--app-dir", str(app), *mc, timeout=180)
    outputs += [("failing deploy stdout", failed.stdout), ("failing deploy stderr", failed.stderr)]
    assert failed.returncode != 0 and "refusing ***" in failed.stderr, failed.stderr

    listed = json.loads(run("state", "list", "-o", "json"))
    ids = sorted(d["deployment_id"] for d in listed)
    assert len(ids) == 2, listed
    for dep in ids:
        run("state", "show", dep, "-o", "json")
    diff = json.loads(run("state", "diff", ids[0], ids[1], "-o", "json"))
    run("state", "diff", ids[0], ids[1])
    run("state", "export")

    found = [hit for where, text in outputs for hit in leaks(corpus, text, where)]
    if pg_url is None:
        for path in state_db.parent.glob(state_db.name + "*"):
            found += leaks(corpus, path.read_bytes(), str(path.name))
    else:
        found += leaks(corpus, pg_rows(pg_url), "postgres rows")
    assert not found, "\n".join(found)

    # Redacted, yet compared: the rotated password changed, the others did not.
    web = next(r for r in diff["releases"] if r["app"] == "web")
    changed = {v["path"] for v in web["values"] if v.get("secret")}
    assert "rotating.password" in changed, web
    assert "auth.password" in web["unchanged_secrets"], web
    assert "auth.password" not in changed
    # The Secret holding both is "changed"; the ConfigMap and plain app are not.
    touched = {(r["app"], c["resource"]["name"]) for r in diff["resources"] for c in r["changed"]}
    assert ("web", "web-auth") in touched, diff["resources"]
    assert not any(app == "plain" for app, _ in touched), diff["resources"]


def test_template_output_dir_writes_secret_files_private(sbkube: Any, tmp_path: Path) -> None:
    app = tmp_path / "tpl"
    (app / "m").mkdir(parents=True)
    (app / "m" / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: x}\n"
    )
    (app / "m" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    (app / "config.yaml").write_text(
        "namespace: t\napps:\n"
        "  creds: {type: yaml, manifests: [m/secret.yaml]}\n"
        "  conf: {type: yaml, manifests: [m/cm.yaml]}\n"
    )
    out = tmp_path / "rendered"
    proc = sbkube("template", "--app-dir", str(app), "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(out) == 0o700
    assert mode(out / "creds.yaml") == 0o600
    umask = os.umask(0)
    os.umask(umask)
    assert mode(out / "conf.yaml") == 0o666 & ~umask  # no Secret: the umask decides
    # A second run over a file an editor left world-readable makes it private again.
    (out / "creds.yaml").chmod(0o644)
    assert sbkube("template", "--app-dir", str(app), "--output-dir", str(out)).returncode == 0
    assert mode(out / "creds.yaml") == 0o600


URL_CHART_TEMPLATE = textwrap.dedent(
    """\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ .Release.Name }}-urls
    data:
    {{- range $k, $v := .Values.urls }}
      {{ $k }}: {{ $v | quote }}
    {{- end }}
    """
)


def test_url_passwords_with_any_character_never_reach_store_or_output(
    sbkube: Any, tmp_path: Path, cluster_file: Path, backend: tuple[str, str | None]
) -> None:
    """``postgres://u:ab/cd+ef@h/db`` (an ``openssl rand -base64`` password), and passwords
    holding ``@``, ``:`` and ``%``: hidden whole, in chart values and in a plain-YAML
    ConfigMap, on both backends. Each random piece of a password is a sentinel of its own,
    so that a password cut at its ``/`` leaks its tail into the check."""
    state_arg, pg_url = backend
    pieces = [_rand(12) for _ in range(10)]
    passwords = {
        "slash-plus": f"{pieces[0]}/{pieces[1]}+ef",
        "at": f"{pieces[2]}@{pieces[3]}",
        "colon": f"{pieces[4]}:{pieces[5]}",
        "percent": f"{pieces[6]}%2F{pieces[7]}%",
        "all": f"{pieces[8]}/+@:%{pieces[9]}",
    }
    corpus = {f"piece {i}": p for i, p in enumerate(pieces)}
    corpus.update({f"password {k}": p for k, p in passwords.items()})
    urls = {k: f"postgres://app:{p}@db.example:5432/app" for k, p in passwords.items()}
    app = tmp_path / "app"
    chart = app / "charts" / "urls"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: urls\nversion: 1.0.0\n")
    (chart / "templates" / "cm.yaml").write_text(URL_CHART_TEMPLATE)
    (app / "values.yaml").write_text(json.dumps({"urls": urls}))
    (app / "m").mkdir()
    (app / "m" / "cm.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "plain-urls"},
                "data": {f"dsn-{k}": f"mysql://root:{p}@db:3306/x" for k, p in passwords.items()},
            }
        )
    )
    (app / "config.yaml").write_text(
        "namespace: urls\napps:\n"
        "  web: {type: helm, chart: ./charts/urls, values: [values.yaml]}\n"
        "  plain: {type: yaml, manifests: [m/cm.yaml]}\n"
    )
    outputs: list[tuple[str, str]] = []
    for args in (
        ("deploy", "--app-dir", str(app), "--memory-cluster", str(cluster_file)),
        ("state", "list", "-o", "json"),
        ("state", "export"),
    ):
        proc = sbkube("--state", state_arg, *args, timeout=180)
        assert proc.returncode == 0, proc.stderr
        outputs += [(f"{args[:2]} stdout", proc.stdout), (f"{args[:2]} stderr", proc.stderr)]
    dep = json.loads(outputs[2][1])[0]["deployment_id"]
    shown = sbkube("--state", state_arg, "state", "show", dep, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    outputs.append(("state show", shown.stdout))
    assert "db.example:5432/app" in shown.stdout  # the rest of each URL stays readable

    found = [hit for where, text in outputs for hit in leaks(corpus, text, where)]
    if pg_url is None:
        state_db = Path(state_arg)
        for path in state_db.parent.glob(state_db.name + "*"):
            found += leaks(corpus, path.read_bytes(), path.name)
    else:
        found += leaks(corpus, pg_rows(pg_url), "postgres rows")
    assert not found, "\n".join(found)
