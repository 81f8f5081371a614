"""Names and messages from config, the cluster, the environment or an import are printed
safely: control characters (newline, ESC, ...) and Unicode bidi controls are escaped in
tables and one-line messages (``sbkube.cli.output.safe``), so a name cannot start a fake
row, redraw the terminal or reverse what follows it."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import deploy_args

from sbkube.cli.output import error_lines, safe, table

# Every character the output must never carry raw (a newline only as a line break).
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# An operator name with a newline, a screen-clearing ESC sequence and a right-to-left
# override; and a kubeconfig context with a newline and an isolate.
OPERATOR = "ev\nil\x1b[2J\u202eop"
OPERATOR_SHOWN = "ev\\nil\\x1b[2J\\u202eop"
CONTEXT = "pr\nod\u2066"
CONTEXT_SHOWN = "pr\\nod\\u2066"

BIDI_AND_CONTROLS = [
    "\n",
    "\r",
    "\t",
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9b",
    "\u061c",
    "\u200e",
    "\u200f",
    "\u2028",
    "\u2029",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
]


@pytest.mark.parametrize("char", BIDI_AND_CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_safe_escapes_controls_and_bidi_overrides(char: str) -> None:
    shown = safe(f"a{char}b")
    assert char not in shown
    assert UNSAFE.search(shown) is None and "\n" not in shown
    assert shown.startswith("a\\") and shown.endswith("b")


def test_safe_keeps_ordinary_text() -> None:
    text = "café 日本 — ok/ns: 100% [v1] \\ done"
    assert safe(text) == text


def test_every_table_cell_and_error_line_is_escaped() -> None:
    shown = table([OPERATOR], [("NAME", lambda r: r), ("SIZE", lambda _r: 3)])
    assert shown.split("\n") == [
        "NAME" + " " * (len(OPERATOR_SHOWN) - 2) + "SIZE",
        OPERATOR_SHOWN + "  3",
    ]
    # A tool's detail lines stay lines of their own, indented; each is escaped.
    assert error_lines("failed: \x1b[31mred\nbad \u202evalue") == (
        "error: failed: \\x1b[31mred\n  bad \\u202evalue"
    )


def assert_safe(text: str, lines: int | None = None) -> None:
    found = UNSAFE.search(text)
    assert found is None, f"raw {found.group(0)!r} in:\n{text}"
    if lines is not None:
        assert len(text.rstrip("\n").split("\n")) == lines, text


def renamed_kubeconfig(kubeconfig: Path, context: str) -> Path:
    config = yaml.safe_load(kubeconfig.read_text())
    old = config["current-context"]
    for entry in config["contexts"]:
        if entry["name"] == old:
            entry["name"] = context
    config["current-context"] = context
    renamed = kubeconfig.with_name("renamed.kubeconfig")
    renamed.write_text(yaml.safe_dump(config))
    renamed.chmod(0o600)
    return renamed


@pytest.mark.helm
@pytest.mark.kube
def test_names_from_the_cluster_and_the_environment_are_escaped(
    sbkube: Any, app_dir: Path, served: Any
) -> None:
    server, served_kubeconfig = served()
    kubeconfig = renamed_kubeconfig(served_kubeconfig, CONTEXT)
    env = {"SBKUBE_OPERATOR": OPERATOR}
    deploy = sbkube("deploy", "--app-dir", str(app_dir), "--kubeconfig", str(kubeconfig), env=env)
    assert deploy.returncode == 0, deploy.stderr
    # The record holds the names as they are; only their display is escaped.
    [recorded] = sbkube.json("state", "list")
    assert recorded["operator"] == OPERATOR
    assert recorded["cluster"].startswith(CONTEXT + "@127.0.0.1:")
    assert_safe(deploy.stdout)
    assert_safe(deploy.stderr)
    assert f"target {CONTEXT_SHOWN}@127.0.0.1:" in deploy.stdout

    listed = sbkube("state", "list")
    assert listed.returncode == 0, listed.stderr
    assert_safe(listed.stdout, lines=2)
    assert OPERATOR_SHOWN in listed.stdout and CONTEXT_SHOWN in listed.stdout

    history = sbkube("state", "history", "web")
    assert history.returncode == 0, history.stderr
    assert_safe(history.stdout, lines=2)
    assert OPERATOR_SHOWN in history.stdout and CONTEXT_SHOWN in history.stdout

    shown = sbkube("state", "show", "latest")
    assert shown.returncode == 0, shown.stderr
    assert_safe(shown.stdout)
    assert f"{OPERATOR_SHOWN}@" in shown.stdout

    status = sbkube("status", "--app-dir", str(app_dir), "--kubeconfig", str(kubeconfig))
    assert status.returncode == 0, status.stderr
    assert_safe(status.stdout)
    assert f"Status of {CONTEXT_SHOWN}@127.0.0.1:" in status.stdout

    server.proc.send_signal(signal.SIGTERM)
    assert server.finish(timeout=300) == 0


@pytest.mark.helm
@pytest.mark.kube
def test_an_error_naming_an_outside_name_stays_one_line(
    sbkube: Any, app_dir: Path, served: Any
) -> None:
    # The first deploy holds the lock (helm's write of cache is held); the second is told
    # who holds it, by an operator name that holds a newline and an override.
    server, kubeconfig = served(env={"SBKUBE_MEMORY_BLOCK_ON": "cache"})
    base = ("deploy", "--app-dir", str(app_dir), "--kubeconfig", str(kubeconfig))
    first = sbkube.spawn(*base, env={"SBKUBE_OPERATOR": OPERATOR})
    server.wait_for("BLOCKED cache")

    second = sbkube(*base)

    assert second.returncode == 1
    lines = second.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith("error: ") and "is locked" in lines[0], lines[0]
    assert f"by {OPERATOR_SHOWN}@" in lines[0]
    assert_safe(second.stderr)
    first.proc.send_signal(signal.SIGTERM)
    assert first.finish(timeout=300) == 143
    server.proc.send_signal(signal.SIGTERM)
    assert server.finish(timeout=300) == 0


@pytest.mark.helm
def test_names_and_messages_from_an_import_are_escaped(
    sbkube: Any, app_dir: Path, cluster_file: Path, tmp_path: Path
) -> None:
    assert sbkube(*deploy_args(app_dir, cluster_file)).returncode == 0
    exported = sbkube("state", "export")
    assert exported.returncode == 0, exported.stderr
    record = json.loads(exported.stdout.splitlines()[0])
    record["cluster"] = "evil\ncluster\u202e"
    record["operator"] = OPERATOR
    web = next(app for app in record["apps"] if app["name"] == "web")
    web["status"] = "failed"
    web["error_message"] = "kubectl apply failed\x1b[2J: \u202ereversed\ndetail\rline"
    (tmp_path / "evil.jsonl").write_text(json.dumps(record) + "\n")
    other = {"SBKUBE_STATE_URL": str(tmp_path / "other.db")}
    imported = sbkube("state", "import", str(tmp_path / "evil.jsonl"), env=other)
    assert imported.returncode == 0, imported.stderr

    listed = sbkube("state", "list", env=other)
    assert_safe(listed.stdout, lines=2)
    assert "evil\\ncluster\\u202e" in listed.stdout and OPERATOR_SHOWN in listed.stdout

    history = sbkube("state", "history", "web", env=other)
    assert_safe(history.stdout, lines=2)
    assert "evil\\ncluster\\u202e" in history.stdout

    # JSON carries the names as they are, every control and bidi character escaped.
    as_json = sbkube("state", "list", "-o", "json", env=other)
    assert_safe(as_json.stdout)
    [row] = json.loads(as_json.stdout)
    assert (row["cluster"], row["operator"]) == ("evil\ncluster\u202e", OPERATOR)

    shown = sbkube("state", "show", "latest", "--no-resources", env=other)
    assert shown.returncode == 0, shown.stderr
    assert_safe(shown.stdout)
    # The table shows the error's first line; the whole error follows, one detail a line.
    assert "kubectl apply failed\\x1b[2J: \\u202ereversed" in shown.stdout
    assert "\n  detail\\rline" in shown.stdout
